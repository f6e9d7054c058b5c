//! The HTTP API in-process on a real port and a SQLite file: authentication and roles, error
//! bodies, long-poll timing, SSE resumption with `Last-Event-ID`, readiness, OpenAPI, metrics.
//! (The routes with registries are in `tests/` at the workspace root.)

use route_service::auth::new_key;
mod common;

use route_service::db::{Db, NewEvent};
use route_wire::Approval;
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

struct Api {
    url: String,
    db: Db,
    keys: std::collections::HashMap<&'static str, String>,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
}

async fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite:{}", dir.path().join("api.db").display());
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (url, stop) = common::serve(&format!(
        "listen = \"127.0.0.1:0\"\ndatabase = \"{database}\"\n[[registry]]\nname = \"gone\"\naddress = \"{dead}\"\n"
    ))
    .await;
    let db = Db::open(&database).await.unwrap();
    let mut keys = std::collections::HashMap::new();
    keys.insert("root", common::admin(&db, "root").await);
    keys.insert("alice", common::creator(&db, "alice", "r:1").await);
    for s in ["st-1", "st-2"] {
        keys.insert(
            s,
            common::station(&db, s, "r:1", Approval::Auto, "sha256:00").await,
        );
    }
    Api {
        url,
        db,
        keys,
        stop,
        _dir: dir,
    }
}

impl Api {
    fn auth(&self, who: &str) -> String {
        format!(
            "ApiKey {who} {}",
            self.keys.get(who).cloned().unwrap_or_else(new_key)
        )
    }

    async fn get(&self, path: &str, who: Option<&str>) -> (u16, Value) {
        let mut r = reqwest::Client::new().get(format!("{}{path}", self.url));
        if let Some(w) = who {
            r = r.header("Authorization", self.auth(w));
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, who: Option<&str>, body: &str) -> (u16, Value) {
        let mut r = reqwest::Client::new()
            .post(format!("{}{path}", self.url))
            .header("Content-Type", "application/json")
            .body(body.to_string());
        if let Some(w) = who {
            r = r.header("Authorization", self.auth(w));
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn principals_are_authenticated_and_held_to_their_role() {
    let a = api().await;
    let (s, v) = a.get("/v1/trains", None).await;
    assert_eq!((s, v["error"].as_str()), (401, Some("unauthenticated")));
    let (s, v) = a.get("/v1/trains", Some("mallory")).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (401, Some("unauthenticated")),
        "{v}"
    );
    let (s, _) = a.get("/v1/stations", Some("st-1")).await;
    assert_eq!(s, 403);
    let (s, v) = a.get("/v1/stations", Some("root")).await;
    assert_eq!((s, v.as_array().map(Vec::len)), (200, Some(2)));
    assert_eq!(v[0]["liveness"], "never_seen");
    let (s, v) = a
        .post(
            "/v1/trains",
            Some("st-1"),
            r#"{"image":"r:1/alice/submissions:t","route":["st-1"]}"#,
        )
        .await;
    assert_eq!((s, v["error"].as_str()), (403, Some("forbidden")), "{v}");
    let (s, v) = a
        .post(
            "/v1/trains",
            Some("alice"),
            r#"{"image":"r:1/bob/submissions:t","route":["st-1"]}"#,
        )
        .await;
    assert_eq!(
        (s, v["check"].as_str()),
        (422, Some("submission repository")),
        "{v}"
    );
    let (s, v) = a
        .post(
            "/v1/trains",
            Some("alice"),
            r#"{"image":"r:1/alice/submissions:t","route":["st-9"]}"#,
        )
        .await;
    assert_eq!((s, v["check"].as_str()), (422, Some("route")), "{v}");
    let (s, _) = a.get("/v1/trains/nope", Some("alice")).await;
    assert_eq!(s, 404);
    let (s, _) = a.get("/v1/stations/st-2/inbox", Some("st-1")).await;
    assert_eq!(s, 403);
    // Notifications with no secret configured for any registry are refused.
    let (s, _) = a
        .post("/v1/registry-events/distribution", None, r#"{"events":[]}"#)
        .await;
    assert_eq!(s, 401);
    a.stop.cancel();
}

#[tokio::test]
async fn an_empty_inbox_long_poll_answers_at_its_timeout_and_marks_the_station_seen() {
    let a = api().await;
    let t = Instant::now();
    let (s, v) = a.get("/v1/stations/st-1/inbox?wait=1s", Some("st-1")).await;
    assert_eq!((s, v["items"].as_array().map(Vec::len)), (200, Some(0)));
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
    let (s, _) = a
        .get("/v1/stations/st-1/inbox?wait=soon", Some("st-1"))
        .await;
    assert_eq!(s, 422);
    let (_, v) = a.get("/v1/stations", Some("root")).await;
    assert_eq!(v[0]["liveness"], "online");
    a.stop.cancel();
}

#[tokio::test]
async fn station_feeds_resume_after_the_last_event_id() {
    let a = api().await;
    for i in 0..3 {
        a.db.event(NewEvent {
            train: None,
            station: Some("st-1"),
            kind: route_wire::EventKind::ApprovalSet,
            detail: format!("n{i}"),
        })
        .await
        .unwrap();
    }
    let first =
        a.db.events(route_service::db::EventFilter::Station("st-1"), 0, 10)
            .await
            .unwrap()[0]
            .id;
    let mut resp = reqwest::Client::new()
        .get(format!("{}/v1/stations/st-1/events", a.url))
        .header("Authorization", a.auth("st-1"))
        .header("Last-Event-ID", first.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut text = String::new();
    let end = Instant::now() + Duration::from_secs(5);
    while !text.contains("n2") && Instant::now() < end {
        if let Ok(Ok(Some(c))) = tokio::time::timeout(Duration::from_secs(1), resp.chunk()).await {
            text.push_str(&String::from_utf8_lossy(&c));
        }
    }
    assert!(text.contains("n1") && text.contains("n2"), "{text}");
    assert!(!text.contains("n0"), "resumed after the last id: {text}");
    assert!(text.contains(&format!("id: {}", first + 1)), "{text}");
    drop(resp);
    // Not an id of ours: said as such, not replayed from the start.
    let r = reqwest::Client::new()
        .get(format!("{}/v1/stations/st-1/events", a.url))
        .header("Authorization", a.auth("st-1"))
        .header("Last-Event-ID", "seven")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("Last-Event-ID"));
    let (s, _) = a.get("/v1/stations/st-1/events", Some("st-2")).await;
    assert_eq!(s, 403);
    a.stop.cancel();
}

#[tokio::test]
async fn health_readiness_openapi_and_metrics() {
    let a = api().await;
    let r = reqwest::get(format!("{}/healthz", a.url)).await.unwrap();
    assert_eq!(r.status(), 200);
    let (s, v) = a.get("/readyz", None).await;
    assert_eq!(s, 503, "{v}");
    assert!(
        v["problems"][0].as_str().unwrap().contains("registry gone"),
        "{v}"
    );
    let (s, v) = a.get("/openapi.json", None).await;
    assert_eq!(s, 200);
    for p in [
        "/v1/trains",
        "/v1/stations/{id}/inbox",
        "/v1/registry-events/distribution",
        "/v1/registry-token",
    ] {
        assert!(
            v["paths"][p].is_object(),
            "{p} missing from the OpenAPI document"
        );
    }
    assert!(v["components"]["schemas"]["ApiError"].is_object());
    let r = reqwest::get(format!("{}/metrics", a.url)).await.unwrap();
    assert_eq!(r.status(), 200);
    a.stop.cancel();
}

fn client(a: &Api, who: &str) -> route_wire::client::Client {
    let key = secrecy::SecretString::from(a.keys[who].clone());
    route_wire::client::Client::new(&a.url, who, &key).unwrap()
}

#[tokio::test]
async fn a_station_proposes_its_next_key_and_only_the_confirmed_fingerprint_is_accepted() {
    let a = api().await;
    let next = train_lib::keys::PrivateKey::generate(2048).unwrap();
    let pem = next.public().to_pem();
    let fp = next.public().fingerprint();
    // Not for another station, not a creator, not something that is not a key.
    let err = client(&a, "st-2")
        .propose_key(&"st-1".parse().unwrap(), &pem)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403), "{err}");
    let err = client(&a, "alice")
        .propose_key(&"st-1".parse().unwrap(), &pem)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403), "{err}");
    let err = client(&a, "st-1")
        .propose_key(&"st-1".parse().unwrap(), "not a key")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(422), "{err}");
    assert!(err.to_string().contains("not a supported key"), "{err}");
    let k = client(&a, "st-1")
        .propose_key(&"st-1".parse().unwrap(), &pem)
        .await
        .unwrap();
    // Proposed is not accepted: routes are still checked against the registered key.
    assert_eq!(k.fingerprint, "sha256:00");
    assert_eq!(k.pending_fingerprint.as_deref(), Some(fp.as_str()));
    let err = a.db.accept_key("st-1", "sha256:11").await.unwrap_err();
    assert!(err.to_string().contains("not sha256:11"), "{err}");
    assert!(a
        .db
        .accept_key("st-2", &fp)
        .await
        .unwrap_err()
        .to_string()
        .contains("proposed no new key"));
    assert_eq!(a.db.accept_key("st-1", &fp).await.unwrap(), "sha256:00");
    let k = client(&a, "alice")
        .station_key(&"st-1".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        (k.fingerprint.as_str(), k.pending_fingerprint),
        (fp.as_str(), None)
    );
    assert_eq!(k.public_key, pem);
    a.stop.cancel();
}

#[tokio::test]
async fn a_station_sets_its_own_approval_mode_and_no_one_else_does() {
    let a = api().await;
    let err = client(&a, "st-2")
        .set_approval(&"st-1".parse().unwrap(), Approval::Manual)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403), "{err}");
    client(&a, "st-1")
        .set_approval(&"st-1".parse().unwrap(), Approval::Manual)
        .await
        .unwrap();
    assert_eq!(
        a.db.station("st-1").await.unwrap().unwrap().approval,
        Approval::Manual
    );
    assert_eq!(
        a.db.station("st-2").await.unwrap().unwrap().approval,
        Approval::Auto
    );
    a.stop.cancel();
}
