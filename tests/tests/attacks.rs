//! The attacks of issue 19, each fed to the real service, registries and station, with the
//! outcome asserted (each of these got through before its fix).

use e2e::route::{http, RouteScene, Setup};
use std::process::Command;

fn metric(rs: &RouteScene, series: &str) -> f64 {
    let o = e2e::run(Command::new("curl").args(["-sS", &format!("{}/metrics", rs.url)]));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in /metrics"))
}

/// Hole 7: `ApiKey <key> <id>` (fields swapped) logged the key at WARN.
#[test]
fn a_key_sent_in_the_id_s_place_never_reaches_the_log() {
    let rs = RouteScene::new(Setup {
        token: true,
        ..Setup::default()
    });
    let key = rs.keys["st-1"].clone();
    let unknown = r#"route_login_failures_total{via="api_key",principal="unknown"}"#;
    let known = r#"route_login_failures_total{via="api_key",principal="known"}"#;
    let (before_unknown, before_known) = (metric(&rs, unknown), metric(&rs, known));
    let url = format!("{}/v1/stations/st-1/inbox?wait=0", rs.url);
    let (s, v) = http("GET", &url, Some(&format!("ApiKey {key} st-1")), None);
    assert_eq!(
        (s, v["error"].as_str()),
        (401, Some("unauthenticated")),
        "{v}"
    );
    // A right id with a wrong key is logged by its id (no secret), and counted apart.
    let (s, _) = http("GET", &url, Some("ApiKey st-1 pht_wrong"), None);
    assert_eq!(s, 401);
    // The registry login, the same way round: the key as the user name.
    let realm = format!("{}/v1/registry-token?service=registry-0", rs.url);
    let o = e2e::run(Command::new("curl").args([
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-u",
        &format!("{key}:st-1"),
        &realm,
    ]));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "401");
    let log = rs.log();
    assert!(!log.contains(&key), "the key reached the log:\n{log}");
    assert!(
        log.contains("principal=st-1") || log.contains("principal=\"st-1\""),
        "the known principal's failed login is logged by id:\n{log}"
    );
    assert_eq!(metric(&rs, unknown), before_unknown + 1.0);
    assert_eq!(metric(&rs, known), before_known + 1.0);
    assert_eq!(
        metric(
            &rs,
            r#"route_login_failures_total{via="registry_login",principal="unknown"}"#
        ),
        1.0
    );
}

/// The `access` claim of the token the service's realm answers `user:password` with, or the
/// HTTP status when it answers no token.
fn token_access(
    rs: &RouteScene,
    user: &str,
    password: &str,
    service: &str,
    scope: &str,
) -> Result<serde_json::Value, u16> {
    use base64::Engine;
    let url = format!(
        "{}/v1/registry-token?service={service}&scope={scope}",
        rs.url
    );
    let o = e2e::run(Command::new("curl").args([
        "-sS",
        "-w",
        "\n%{http_code}",
        "-u",
        &format!("{user}:{password}"),
        &url,
    ]));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    if code != "200" {
        return Err(code.parse().unwrap());
    }
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    let payload = v["token"].as_str().unwrap().split('.').nth(1).unwrap();
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    Ok(serde_json::from_slice::<serde_json::Value>(&claims).unwrap()["access"].clone())
}

/// Hole 1: the movers' one password (every action on every repository of every registry)
/// went to whatever realm a registry named. There is no mover account any more: its old name
/// logs in to nothing, and the moves of every other test run on tokens the service signs.
/// Hole 2: a station was granted push on its namespace at every registry.
#[test]
fn there_is_no_mover_account_and_grants_hold_at_the_party_s_own_registry_only() {
    let rs = RouteScene::new(Setup {
        token: true,
        ..Setup::default()
    });
    let push = "repository:st-1/outbox:pull,push";
    for password in ["", "pht-route-service", &rs.keys["st-1"]] {
        assert_eq!(
            token_access(&rs, "pht-route-service", password, "registry-0", push),
            Err(401)
        );
    }
    // st-1 lives on registry A (`registry-0`).
    let key = rs.keys["st-1"].clone();
    let home = token_access(&rs, "st-1", &key, "registry-0", push).unwrap();
    assert_eq!(
        home[0]["actions"],
        serde_json::json!(["pull", "push"]),
        "{home}"
    );
    let away = token_access(&rs, "st-1", &key, "registry-1", push).unwrap();
    assert_eq!(
        away,
        serde_json::json!([]),
        "st-1 was granted at registry B: {away}"
    );
    // A name that is not canonical is granted nothing, even under a public prefix.
    let dotted = token_access(
        &rs,
        "st-1",
        &key,
        "registry-0",
        "repository:master/../st-2/outbox:pull",
    )
    .unwrap();
    assert_eq!(dotted, serde_json::json!([]), "{dotted}");
}
