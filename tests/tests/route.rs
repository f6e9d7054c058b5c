//! The route service end to end: its own two `docker-registry` processes notifying it, the
//! real `route-service` binary, `station run` at every stop, `train results` at the end.

use e2e::route::{http, RouteScene, Setup};
use e2e::*;
use serde_json::{json, Value};

const COUNT: &str = "#!/bin/sh\nset -e\nrows=$(wc -l < /opt/train_data/data-$STATION_ID/rows.csv)\necho \"$STATION_ID,$rows\" >> /opt/pht_results/counts.csv\n";

/// Creates a train over the scene's stations and pushes it to the creator's submissions.
fn submission(rs: &RouteScene, format: &str, id: &str) -> String {
    let train = rs.scene.create_with(format, COUNT, &["--train-id", id]);
    rs.build_submission(&train, id)
}

fn events(v: &Value, kind: &str) -> usize {
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .count()
}

fn counts(rs: &RouteScene, id: &str) -> Vec<(String, String)> {
    rs.scene
        .results(&format!("{}/creator/results:{id}", rs.regs[0].addr))
}

const EXPECTED: &str = "st-1,7\nst-2,7\nst-3,7\n";

/// The whole route with the checks an attacker or a flaky network meets on the way.
fn whole_route(postgres: Option<String>) {
    let rs = RouteScene::new(Setup {
        postgres,
        ..Setup::default()
    });
    let id = format!("t-{}", e2e::route::nonce().replace('_', "-"));
    let image = submission(&rs, "native", &id);

    // A submitted route that is not the signed one is refused, naming the check.
    let (s, v) = rs.submit(&image, &["st-1", "st-3", "st-2"]);
    assert_eq!((s, v["check"].as_str()), (422, Some("route")), "{v}");
    let (s, v) = rs.submit(&image, &["st-1", "st-2", "st-3"]);
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["format"], "native");
    // Submitted once: refused as a duplicate, or, once the first move removed the submission,
    // as an image that is no longer there. Either way, one train.
    let (s, v) = rs.submit(&image, &["st-1", "st-2", "st-3"]);
    assert!(
        s == 409 || (s == 422 && v["check"] == "image reference"),
        "a train id is submitted once: {s} {v}"
    );
    let (_, all) = rs.call("GET", "/v1/trains", Some("root"), None);
    assert_eq!(all["trains"].as_array().unwrap().len(), 1, "{all}");

    // Who may see what.
    let (s, v) = rs.call("GET", &format!("/v1/trains/{id}"), Some("st-2"), None);
    assert_eq!(
        (s, v["error"].as_str()),
        (403, Some("forbidden")),
        "not st-2's turn: {v}"
    );
    let (s, v) = rs.call("GET", &format!("/v1/trains/{id}"), Some("nobody"), None);
    assert_eq!(
        (s, v["error"].as_str()),
        (401, Some("unauthenticated")),
        "{v}"
    );
    let (s, _) = rs.call("GET", "/v1/stations", Some("creator"), None);
    assert_eq!(s, 403);
    let (s, v) = rs.call("GET", "/v1/stations/st-2/key", Some("creator"), None);
    assert_eq!(s, 200);
    assert!(v["fingerprint"].as_str().unwrap().starts_with("sha256:"));
    let (s, _) = rs.call("GET", "/v1/stations/st-1/inbox", Some("st-2"), None);
    assert_eq!(s, 403, "a station reads only its own inbox");

    // Stop 1, then a push by the wrong station and an older state pushed again.
    let item = rs.run_station("st-1", &id);
    assert_eq!(item["index"], 0);
    // Waited for at stop 2: the train is `at_station` at stop 1 too, until the push is seen
    // (a notification handled in the background: checking at once raced it).
    e2e::route::wait_for(30, "the train at st-2", || {
        let v = rs.train(&id);
        v["state"] == "at_station" && v["current_hop"] == 1
    });
    let v = rs.train(&id);
    let delivered = v["states"][1].as_str().unwrap().to_string();
    let (a, b) = (rs.regs[0].addr.clone(), rs.regs[1].addr.clone());
    let copy = |from: &str, to: &str| {
        ok(std::process::Command::new(bin("train")).args(["image", "copy", from, to]));
    };
    // st-3 pushes something into its own outbox out of turn.
    copy(master(), &format!("{a}/st-3/outbox:{id}"));
    // st-2 pushes back the state it was given, without running it.
    copy(
        &format!("{b}/st-2/inbox@{delivered}"),
        &format!("{b}/st-2/outbox:{id}"),
    );
    let ignored =
        |v: &Value, needle: &str| {
            v["events"].as_array().unwrap().iter().any(|e| {
                e["kind"] == "push_ignored" && e["detail"].as_str().unwrap().contains(needle)
            })
        };
    e2e::route::wait_for(20, "both pushes to be ignored", || {
        let v = rs.train(&id);
        ignored(&v, "st-2's turn") && ignored(&v, "older state")
    });
    let v = rs.train(&id);
    assert_eq!(
        (v["current_hop"].clone(), v["state"].clone()),
        (json!(1), json!("at_station")),
        "{v:#}"
    );

    // A forged notification (bad secret) records nothing; a replayed one changes nothing.
    let hook = format!("{}/v1/registry-events/distribution", rs.url);
    let forged = json!({"events": [{"id": "forged-1", "action": "push", "target": {
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000",
        "repository": "st-2/outbox", "tag": id}}]});
    let (s, _) = http(
        "POST",
        &hook,
        Some("not-the-secret-at-all"),
        Some(&forged.to_string()),
    );
    assert_eq!(s, 401);
    let (s, _) = http("POST", &hook, None, Some(&forged.to_string()));
    assert_eq!(s, 401);
    // With the right secret, a notification is still only a hint: the registry does not hold
    // what it announces, so nothing moves.
    let (s, r) = http("POST", &hook, Some(rs.secret(1)), Some(&forged.to_string()));
    assert_eq!((s, &r["received"]), (200, &json!(1)), "{r}");
    let (s, r) = http("POST", &hook, Some(rs.secret(1)), Some(&forged.to_string()));
    assert_eq!(
        (s, &r["duplicates"]),
        (200, &json!(1)),
        "a redelivery is a duplicate: {r}"
    );
    e2e::route::wait_for(10, "the forged push to be ignored", || {
        ignored(&rs.train(&id), "announced sha256:0000")
    });
    let v = rs.train(&id);
    assert_eq!(
        (
            v["current_hop"].clone(),
            v["states"].as_array().unwrap().len()
        ),
        (json!(1), 2),
        "{v:#}"
    );
    // An announced "digest" that is not one.
    let bad = json!({"events": [{"id": "bad-digest-1", "action": "push", "target": {
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "digest": "sha256:../../v2", "repository": "st-2/outbox", "tag": id}}]});
    let (s, _) = http("POST", &hook, Some(rs.secret(1)), Some(&bad.to_string()));
    assert_eq!(s, 200);
    e2e::route::wait_for(10, "the malformed digest to be ignored", || {
        ignored(&rs.train(&id), "not a sha256 digest")
    });
    // In turn, a new digest, but the image of another train (its label says so).
    let other = format!("{id}-other");
    let route_keys = [("st-1", "st-1"), ("st-2", "st-2"), ("st-3", "st-3")];
    let other_image = create_custom(&rs, &other, "creator", &route_keys);
    copy(&other_image, &format!("{b}/st-2/outbox:{id}"));
    e2e::route::wait_for(20, "the other train's image to be ignored", || {
        ignored(&rs.train(&id), &format!("labelled train {other}"))
    });
    assert_eq!(rs.train(&id)["current_hop"], 1);
    // In turn, this train's label and a new digest, but not a state st-2 signed: the state it
    // was delivered, restamped (a registry operator needs no key for that), and an image with
    // no train configuration at all. The service reads the configuration and counts stop
    // signatures against the registered keys.
    e2e::route::restamp(
        &format!("{b}/st-2/inbox@{delivered}"),
        &format!("{b}/st-2/outbox:{id}"),
    );
    e2e::route::wait_for(20, "the restamped state to be ignored", || {
        ignored(&rs.train(&id), "carries 1 verified stop signature(s)")
    });
    copy(master(), &format!("{b}/st-2/outbox:{id}"));
    e2e::route::wait_for(
        20,
        "the image without a configuration to be ignored",
        || ignored(&rs.train(&id), "no train configuration"),
    );
    let v = rs.train(&id);
    assert_eq!(
        (
            v["current_hop"].clone(),
            v["states"].as_array().unwrap().len()
        ),
        (json!(1), 2),
        "{v:#}"
    );

    // Stops 2 (registry B) and 3 (back on A), then the creator's results.
    rs.run_station("st-2", &id);
    rs.run_station("st-3", &id);
    let v = rs.wait_state(&id, "finished", 60);
    assert_eq!(v["states"].as_array().unwrap().len(), 4, "{v:#}");
    assert_eq!(events(&v, "delivered"), 3, "{v:#}");
    assert_eq!(events(&v, "finished"), 1);
    assert_eq!(
        counts(&rs, &id),
        vec![("counts.csv".into(), EXPECTED.into())]
    );
    // The creator sees its train; another creator would not (checked with a second creator).
    let mut rs = rs;
    let other = rs.scene.path("keys/st-1.pub.pem");
    let addr = rs.regs[0].addr.clone();
    rs.admin(&[
        "creator",
        "add",
        "mallory",
        "--registry",
        &addr,
        "--public-key",
        other.to_str().unwrap(),
    ]);
    let (s, v) = rs.call("GET", &format!("/v1/trains/{id}"), Some("mallory"), None);
    assert_eq!((s, v["error"].as_str()), (403, Some("forbidden")), "{v}");
    let (s, v) = rs.call("GET", "/v1/trains", Some("mallory"), None);
    assert_eq!((s, v["trains"].as_array().map(Vec::len)), (200, Some(0)));
    let (s, _) = rs.call("GET", &format!("/v1/trains/{id}"), Some("creator"), None);
    assert_eq!(s, 200);
    assert!(rs.log().contains("denied"), "denials are logged");
    assert!(
        !rs.log().contains(rs.keys["creator"].as_str()),
        "no API key in the log"
    );
}

#[test]
fn a_train_travels_three_stations_across_two_registries_to_its_creator() {
    whole_route(None);
}

#[test]
fn the_same_route_on_postgresql() {
    match std::env::var("PHT_TEST_POSTGRES_URL") {
        Ok(base) => whole_route(Some(base)),
        Err(_) => panic!("PHT_TEST_POSTGRES_URL is not set: start PostgreSQL with `eval \"$(scripts/postgres.sh)\"` (scripts/test.sh does)"),
    }
}

/// `train create` with the route's keys given explicitly (`id=key file`).
fn create_custom(rs: &RouteScene, id: &str, creator_key: &str, route: &[(&str, &str)]) -> String {
    let algo = rs.scene.path("algo");
    std::fs::create_dir_all(&algo).unwrap();
    std::fs::write(algo.join("run.sh"), COUNT).unwrap();
    let out = rs.scene.path(&format!("train-{id}"));
    let mut c = std::process::Command::new(bin("train"));
    c.args([
        "create",
        "--format",
        "native",
        "--entrypoint",
        "run.sh",
        "--creator-id",
        "creator",
    ])
    .arg("--creator-key")
    .arg(rs.scene.key(creator_key))
    .arg("--files")
    .arg(&algo)
    .arg("--out")
    .arg(&out)
    .args(["--train-id", id]);
    for (st, key) in route {
        c.arg("--station").arg(format!(
            "{st}={}",
            rs.scene.path(&format!("keys/{key}.pub.pem")).display()
        ));
    }
    ok(&mut c);
    rs.build_submission_by(&out, id, creator_key)
}

#[test]
fn submissions_that_fail_a_check_are_refused_naming_it() {
    let rs = RouteScene::new(Setup {
        stations: &[("st-1", 0, "auto"), ("st-2", 1, "auto")],
        ..Setup::default()
    });
    ok(std::process::Command::new(bin("train"))
        .args(["keygen", "other", "--bits", "2048", "--out-dir"])
        .arg(rs.scene.path("keys")));
    let route = ["st-1", "st-2"];
    let id = |n: &str| format!("{n}-{}", e2e::route::nonce().replace('_', "-"));

    // A route key that is not the one registered for the station.
    let t = id("wrong-station-key");
    let image = create_custom(&rs, &t, "creator", &[("st-1", "st-1"), ("st-2", "other")]);
    let (s, v) = rs.submit(&image, &route);
    assert_eq!((s, v["check"].as_str()), (422, Some("signatures")), "{v}");
    assert!(v["message"].as_str().unwrap().contains("st-2"), "{v}");

    // Signed with a key that is not the registered creator's.
    let t = id("wrong-creator-key");
    let image = create_custom(&rs, &t, "other", &[("st-1", "st-1"), ("st-2", "st-2")]);
    let (s, v) = rs.submit(&image, &route);
    assert_eq!((s, v["check"].as_str()), (422, Some("signatures")), "{v}");

    // A train that already ran a stop is not a submission.
    let t = id("ran-already");
    let image = create_custom(&rs, &t, "creator", &[("st-1", "st-1"), ("st-2", "st-2")]);
    let ran = format!("{}/creator/submissions:{t}-ran", rs.regs[0].addr);
    let cfg = rs.scene.config("direct.toml", "");
    let o = run(rs
        .scene
        .station_cmd("st-1", &image)
        .arg("--push")
        .arg(&ran)
        .arg("--config")
        .arg(cfg));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (s, v) = rs.submit(&ran, &route);
    assert_eq!((s, v["check"].as_str()), (422, Some("state")), "{v}");

    // An image that is not there: the creator's to fix, and nothing is stored.
    let (s, v) = rs.submit(
        &format!("{}/creator/submissions:missing", rs.regs[0].addr),
        &route,
    );
    assert_eq!(
        (s, v["check"].as_str()),
        (422, Some("image reference")),
        "{v}"
    );
    let (_, v) = rs.call("GET", "/v1/trains", Some("root"), None);
    assert_eq!(v["trains"].as_array().unwrap().len(), 0, "{v}");
}
