//! The authorisation matrix (issue 19): every operation of the OpenAPI document, called by
//! every kind of caller, answers what the rules below say. The operations come from the
//! document, so a new endpoint without a row here fails this test instead of going unchecked.

mod common;

use route_service::db::Db;
use route_wire::Approval;
use std::collections::HashMap;

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Who {
    Nobody,
    WrongKey,
    Revoked,
    StationOther,
    StationElsewhere,
    CreatorOther,
    StationOwn,
    CreatorOwn,
    Admin,
}
use Who::*;

/// Denied callers first: an allowed one may change the train (a cancel) for those after it.
const CALLERS: [Who; 9] = [
    Nobody,
    WrongKey,
    Revoked,
    StationOther,
    StationElsewhere,
    CreatorOther,
    StationOwn,
    CreatorOwn,
    Admin,
];
const AUTHENTICATED: &[Who] = &[
    StationOther,
    StationElsewhere,
    CreatorOther,
    StationOwn,
    CreatorOwn,
    Admin,
];

/// What an operation answers a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// 401.
    Unauthenticated,
    /// 403.
    Forbidden,
    /// Anything but 401, 403 and 5xx other than 502 (the test's registry does not exist).
    Allowed,
    /// Exactly this status.
    Exactly(u16),
}

/// The rules: who may call each operation (the README's API table). Callers not listed and
/// authenticated get 403; unauthenticated ones 401.
fn rule(op: &str) -> Option<(&'static [Who], Option<&'static str>)> {
    // (allowed, body)
    Some(match op {
        "GET /v1/trains" => (AUTHENTICATED, None),
        // Creators submit; an admin is no creator (it has no submissions repository).
        "POST /v1/trains" => (
            &[CreatorOther, CreatorOwn],
            Some(r#"{"image":"127.0.0.1:1/alice/submissions:x","route":["st-1"]}"#),
        ),
        "GET /v1/trains/{id}" | "GET /v1/trains/{id}/events" => {
            (&[StationOwn, CreatorOwn, Admin], None)
        }
        "POST /v1/trains/{id}/cancel" => (&[CreatorOwn, Admin], Some("{}")),
        "POST /v1/trains/{id}/retry" => (&[Admin], Some("{}")),
        // Stations of the train's route only: an admin does not act for a station.
        "POST /v1/trains/{id}/reports" => (&[StationOwn], Some(r#"{"status":"running"}"#)),
        "POST /v1/trains/{id}/approve" => (&[StationOwn], Some("{}")),
        "POST /v1/trains/{id}/reject" => (&[StationOwn], Some(r#"{"reason":"no"}"#)),
        "GET /v1/stations/{id}/inbox" | "GET /v1/stations/{id}/events" => {
            (&[StationOwn, Admin], None)
        }
        "GET /v1/stations/{id}/key" => (AUTHENTICATED, None),
        "POST /v1/stations/{id}/key" => (&[StationOwn], Some(r#"{"public_key":"not a key"}"#)),
        "PUT /v1/stations/{id}/approval" => (&[StationOwn], Some(r#"{"approval":"auto"}"#)),
        // An admin's; allowed answers 409 here (no key proposed).
        "POST /v1/stations/{id}/key/accept" => (&[Admin], Some(r#"{"fingerprint":"sha256:x"}"#)),
        "GET /v1/stations" | "GET /v1/creators" | "GET /v1/notifications" => (&[Admin], None),
        _ => return None,
    })
}

fn expected(op: &str, who: Who) -> Answer {
    match op {
        // Not API-key operations: a registry's secret, distribution's Basic login (no
        // `[token]` here: 404 for everyone), and what anyone may read.
        "POST /v1/registry-events/distribution" | "POST /v1/registry-events/harbor" => {
            Answer::Unauthenticated
        }
        "GET /v1/registry-token" => Answer::Exactly(404),
        "GET /healthz" | "GET /metrics" | "GET /openapi.json" => Answer::Allowed,
        // Anyone may ask; the test's registries do not exist, so: not ready.
        "GET /readyz" => Answer::Exactly(503),
        _ => {
            let (allowed, _) = rule(op).expect("checked");
            if matches!(who, Nobody | WrongKey | Revoked) {
                Answer::Unauthenticated
            } else if allowed.contains(&who) {
                Answer::Allowed
            } else {
                Answer::Forbidden
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_every_kind_of_caller_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite:{}", dir.path().join("m.db").display());
    let db = Db::open(&database).await.unwrap();
    let mut keys: HashMap<&str, String> = HashMap::new();
    keys.insert("root", common::admin(&db, "root").await);
    for c in ["alice", "bob"] {
        keys.insert(c, common::creator(&db, c, "127.0.0.1:1").await);
    }
    for (s, registry) in [
        ("st-1", "127.0.0.1:1"),
        ("st-2", "127.0.0.1:1"),
        ("st-9", "127.0.0.1:2"),
        ("st-gone", "127.0.0.1:1"),
    ] {
        keys.insert(
            s,
            common::station(&db, s, registry, Approval::Auto, "sha256:00").await,
        );
    }
    db.remove_station("st-gone").await.unwrap();

    // One train per operation on trains, all made before the service runs (its movers then
    // find nothing to do: the trains wait for st-1's push).
    let doc = serde_json::to_value(route_service::api::openapi()).unwrap();
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, _) in item.as_object().unwrap() {
            if matches!(method.as_str(), "get" | "post" | "put" | "delete" | "patch") {
                ops.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    let missing: Vec<String> = ops
        .iter()
        .map(|(m, p)| format!("{m} {p}"))
        .filter(|op| {
            rule(op).is_none()
                && !matches!(
                    op.as_str(),
                    "POST /v1/registry-events/distribution"
                        | "POST /v1/registry-events/harbor"
                        | "GET /v1/registry-token"
                        | "GET /healthz"
                        | "GET /readyz"
                        | "GET /metrics"
                        | "GET /openapi.json"
                )
        })
        .collect();
    assert!(
        missing.is_empty(),
        "operations without a row in the authorisation matrix: {missing:?}"
    );
    let mut trains = HashMap::new();
    for (i, (m, p)) in ops.iter().enumerate() {
        if p.starts_with("/v1/trains/{id}") {
            let id = format!("t-{i}");
            common::train_at_st1(&db, &id, "alice", Approval::Auto).await;
            trains.insert(format!("{m} {p}"), id);
        }
    }
    db.close().await;

    let (url, stop) = common::serve(&format!(
        "listen = \"127.0.0.1:0\"\ndatabase = \"{database}\"\n[[registry]]\nname = \"a\"\naddress = \"127.0.0.1:1\"\n[[registry]]\nname = \"b\"\naddress = \"127.0.0.1:2\"\n"
    ))
    .await;
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap();

    let header = |who: Who| -> Option<String> {
        let (id, key) = match who {
            Nobody => return None,
            WrongKey => ("st-1", "pht_wrong".to_string()),
            Revoked => ("st-gone", keys["st-gone"].clone()),
            StationOther => ("st-2", keys["st-2"].clone()),
            StationElsewhere => ("st-9", keys["st-9"].clone()),
            CreatorOther => ("bob", keys["bob"].clone()),
            StationOwn => ("st-1", keys["st-1"].clone()),
            CreatorOwn => ("alice", keys["alice"].clone()),
            Admin => ("root", keys["root"].clone()),
        };
        Some(format!("ApiKey {id} {key}"))
    };
    let mut wrong = Vec::new();
    let mut calls = 0;
    for (m, p) in &ops {
        let op = format!("{m} {p}");
        let body = rule(&op).and_then(|r| r.1);
        let mut path = match trains.get(&op) {
            Some(t) => p.replace("{id}", t),
            None => p.replace("{id}", "st-1"),
        };
        if path.ends_with("/inbox") {
            path.push_str("?wait=0");
        }
        for who in CALLERS {
            let mut req = http.request(m.parse().unwrap(), format!("{url}{path}"));
            if let Some(h) = header(who) {
                req = req.header("Authorization", h);
            }
            if let Some(b) = body {
                req = req
                    .header("Content-Type", "application/json")
                    .body(b.to_string());
            }
            // The status only: an allowed feed streams on and is dropped.
            let status = req.send().await.unwrap().status().as_u16();
            calls += 1;
            let want = expected(&op, who);
            let ok = match want {
                Answer::Unauthenticated => status == 401,
                Answer::Forbidden => status == 403,
                Answer::Allowed => !matches!(status, 401 | 403) && (status < 500 || status == 502),
                Answer::Exactly(s) => status == s,
            };
            if !ok {
                wrong.push(format!("{op} as {who:?}: {status}, want {want:?}"));
            }
        }
    }
    stop.cancel();
    assert!(
        wrong.is_empty(),
        "{} of {calls} calls answered otherwise:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(calls >= 20 * CALLERS.len(), "{calls} calls");
}
