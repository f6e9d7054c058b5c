//! The route service's API judged by standard tools no one here wrote (`scripts/api-tools.sh`
//! installs them, pinned): `openapi-spec-validator` on the document, `schemathesis` (a
//! property-based API tester, every check) against the running service as each kind of caller,
//! and a client generated from the document by `openapi-python-client`, used for real.

use e2e::route::{http, RouteScene, Setup};
use e2e::{bin, ok, run};
use std::path::PathBuf;
use std::process::Command;

/// The tools' bin directory (`eval "$(scripts/api-tools.sh)"`; `scripts/test.sh` does it).
fn tools() -> PathBuf {
    let dir = std::env::var_os("PHT_API_TOOLS").unwrap_or_else(|| {
        panic!("PHT_API_TOOLS is not set: run `eval \"$(scripts/api-tools.sh)\"` first (scripts/test.sh does)")
    });
    PathBuf::from(dir)
}

/// A scene with one train waiting at st-1, so that ids in paths can name real things.
fn scene() -> (RouteScene, String) {
    let rs = RouteScene::new(Setup {
        token: true,
        ..Setup::default()
    });
    let id = format!("t-{}", e2e::route::nonce().replace('_', "-"));
    let train = rs
        .scene
        .create_with("native", "#!/bin/sh\necho hi\n", &["--train-id", &id]);
    let image = rs.build_submission(&train, &id);
    let (s, v) = rs.submit(&image, &["st-1", "st-2", "st-3"]);
    assert_eq!(s, 201, "{v}");
    rs.wait_state(&id, "at_station", 30);
    (rs, id)
}

#[test]
fn the_document_passes_openapi_spec_validator_and_is_what_the_service_serves() {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("openapi.json");
    std::fs::write(&doc, ok(Command::new(bin("route-service")).arg("openapi"))).unwrap();
    let o = run(Command::new(tools().join("openapi-spec-validator")).arg(&doc));
    assert!(
        o.status.success(),
        "openapi-spec-validator refused the document:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let rs = RouteScene::new(Setup::default());
    let (s, served) = http("GET", &format!("{}/openapi.json", rs.url), None, None);
    assert_eq!(s, 200);
    let printed: serde_json::Value = serde_json::from_slice(&std::fs::read(&doc).unwrap()).unwrap();
    assert_eq!(
        served, printed,
        "`route-service openapi` and /openapi.json differ"
    );
}

/// schemathesis' configuration: realistic ids beside generated ones, long-polls kept short
/// (the inbox holds a request up to 55 s), and what a schema-valid request may be answered
/// with besides 2xx.
fn schemathesis_config(train: &str) -> String {
    format!(
        r#"
[checks.positive_data_acceptance]
# A schema-valid body can still be refused for what it means: a submission whose image fails
# a check (422 `rejected`), a report or decision in the wrong state (409).
expected-statuses = ["2xx", "401", "403", "404", "409", "422"]

[dictionaries]
trains = {{ values = ["{train}"] }}
stations = {{ values = ["st-1", "st-2", "st-3"] }}
waits = {{ values = ["0", "1", "0s", "1s"] }}

[[operations]]
include-path-regex = "^/v1/trains/"
parameters = {{ "path.id" = {{ dictionary = "trains", probability = 0.5 }} }}

[[operations]]
include-path-regex = "^/v1/stations/[^/]+/(key|approval|events)$"
parameters = {{ "path.id" = {{ dictionary = "stations", probability = 0.5 }} }}

[[operations]]
include-path-regex = "^/v1/stations/[^/]+/inbox$"
request-timeout = 60
checks = {{ max_response_time = 60 }}
parameters = {{ "path.id" = {{ dictionary = "stations", probability = 0.5 }}, "query.wait" = {{ dictionary = "waits", probability = 0.95 }} }}
"#
    )
}

/// One bounded schemathesis run with `header` (none: no credentials) over the operations
/// `include` (a path regex); panics with its report unless it found nothing.
fn schemathesis(
    rs: &RouteScene,
    config: &std::path::Path,
    who: &str,
    header: Option<String>,
    include: &str,
    secs: u32,
) {
    let mut c = Command::new(tools().join("schemathesis"));
    // Its cache (`.schemathesis/`) goes beside the configuration, not into the source tree.
    c.current_dir(config.parent().unwrap());
    c.arg("--config-file").arg(config).args([
        "run",
        &format!("{}/openapi.json", rs.url),
        "--checks",
        "all",
        "--max-time",
        &secs.to_string(),
        "--request-timeout",
        "10",
        "--include-path-regex",
        include,
        "--no-color",
        "--output-truncate",
        "false",
    ]);
    if let Some(h) = header {
        c.args(["-H", &h]);
    }
    let o = run(&mut c);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "schemathesis as {who} found something:\n{out}\n{}\nservice log (tail):\n{}",
        String::from_utf8_lossy(&o.stderr),
        rs.log()
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!(
        "schemathesis as {who}: {}",
        out.lines()
            .filter(|l| l.contains("generated") || l.starts_with("Seed"))
            .collect::<Vec<_>>()
            .join("; ")
    );
}

#[test]
fn schemathesis_with_every_check_finds_nothing_for_any_caller() {
    let (rs, train) = scene();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("schemathesis.toml");
    std::fs::write(&config, schemathesis_config(&train)).unwrap();
    let key = |who: &str| Some(format!("Authorization: ApiKey {who} {}", rs.keys[who]));
    // 40 s of generation per caller: about 1,500 requests each on this host; the whole test
    // stays under 4 minutes.
    for (who, header) in [
        ("admin", key("root")),
        ("creator", key("creator")),
        ("station st-1", key("st-1")),
        ("no one", None),
    ] {
        schemathesis(&rs, &config, who, header, "^/", 40);
    }
    // The notification endpoints with a registry's own secret: bodies that are not its
    // envelope are refused with the documented error, never a server error.
    schemathesis(
        &rs,
        &config,
        "registry 0",
        Some(format!("Authorization: {}", rs.secret(0))),
        "^/v1/registry-events/",
        15,
    );
}

const CLIENT_SCRIPT: &str = r#"
import json, sys
sys.path.insert(0, sys.argv[1])
from pht_client import AuthenticatedClient, Client
from pht_client.api.trains import get_one, list_
from pht_client.api.stations import inbox, list_stations, station_key
from pht_client.api.health import readyz
from pht_client.models import ApiError, ErrorCode, TrainView, TrainList, Inbox

url, train = sys.argv[2], sys.argv[3]
keys = json.loads(sys.argv[4])
def as_(who):
    return AuthenticatedClient(base_url=url, token=f"{who} {keys[who]}", prefix="ApiKey")

out = {}
stations = list_stations.sync(client=as_("root"))
out["stations"] = sorted(s.id for s in stations)
trains = list_.sync(client=as_("creator"))
assert isinstance(trains, TrainList), trains
out["creator_trains"] = [t.id for t in trains.trains]
t = get_one.sync(id=train, client=as_("creator"))
assert isinstance(t, TrainView), t
out["state"] = t.state.value
out["route"] = t.route
box = inbox.sync(id="st-1", client=as_("st-1"), wait="0")
assert isinstance(box, Inbox), box
out["inbox"] = [i.train for i in box.items]
missing = get_one.sync(id="no-such-train", client=as_("root"))
assert isinstance(missing, ApiError), missing
out["missing"] = [missing.error.value, missing.error == ErrorCode.NOT_FOUND]
other = inbox.sync(id="st-2", client=as_("st-1"), wait="0")
out["other_inbox"] = other.error.value
k = station_key.sync(id="st-2", client=as_("creator"))
out["key_fingerprint"] = k.fingerprint.startswith("sha256:")
r = readyz.sync(client=Client(base_url=url))
out["ready"] = r.ready
print(json.dumps(out))
"#;

#[test]
fn a_client_generated_from_the_document_by_a_standard_generator_works() {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("openapi.json");
    std::fs::write(&doc, ok(Command::new(bin("route-service")).arg("openapi"))).unwrap();
    let cfg = dir.path().join("generator.yaml");
    // No post-hooks: the formatter they call is not installed, and a warning fails the run.
    std::fs::write(&cfg, "post_hooks: []\n").unwrap();
    let gen = dir.path().join("gen");
    ok(Command::new(tools().join("openapi-python-client"))
        .args(["generate", "--meta", "none", "--fail-on-warning", "--path"])
        .arg(&doc)
        .arg("--config")
        .arg(&cfg)
        .arg("--output-path")
        .arg(gen.join("pht_client")));
    let (rs, train) = scene();
    let keys = serde_json::to_string(&rs.keys).unwrap();
    let out = ok(Command::new(tools().join("python"))
        .args(["-c", CLIENT_SCRIPT])
        .arg(&gen)
        .arg(&rs.url)
        .arg(&train)
        .arg(&keys));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["stations"], serde_json::json!(["st-1", "st-2", "st-3"]));
    assert_eq!(v["creator_trains"], serde_json::json!([train]));
    assert_eq!(v["state"], "at_station");
    assert_eq!(v["route"], serde_json::json!(["st-1", "st-2", "st-3"]));
    assert_eq!(v["inbox"], serde_json::json!([train]));
    assert_eq!(v["missing"], serde_json::json!(["not_found", true]));
    assert_eq!(v["other_inbox"], "forbidden");
    assert_eq!(v["key_fingerprint"], true);
    assert_eq!(v["ready"], true);
}
