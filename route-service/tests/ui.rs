//! The dashboard without a browser: the real service on a port, pages fetched and read as
//! text. Sign-in and its cookie, sessions ending (sign-out, a changed key, expiry), pages
//! showing a principal only what the API would, forms refused without the session's CSRF
//! token or from another origin, a reason holding `<script>` shown as text, an admin
//! accepting a key proposal by fingerprint. The browser journeys are `tests/tests/browser.rs`.

use route_service::auth::{key_hash, new_key};
mod common;

use route_service::db::Db;
use route_wire::Approval;
use std::collections::HashMap;
use tokio_util::sync::CancellationToken;

struct Ui {
    url: String,
    keys: HashMap<&'static str, String>,
    http: reqwest::Client,
    database: String,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Ui {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

const NOTIFY_SECRET: &str = "registry-a-secret";

/// A service with root, alice, bob, st-1 (manual approval) and st-2; alice's train t-a and
/// bob's t-b waiting for st-1's approval.
async fn ui(extra: &str) -> Ui {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite:{}", dir.path().join("ui.db").display());
    let db = Db::open(&database).await.unwrap();
    let mut keys = HashMap::new();
    keys.insert("root", common::admin(&db, "root").await);
    for c in ["alice", "bob"] {
        keys.insert(c, common::creator(&db, c, "127.0.0.1:1").await);
    }
    for s in ["st-1", "st-2"] {
        let fp = format!("sha256:{s}-old");
        keys.insert(
            s,
            common::station(&db, s, "127.0.0.1:1", Approval::Manual, &fp).await,
        );
    }
    common::train_at_st1(&db, "t-a", "alice", Approval::Manual).await;
    common::train_at_st1(&db, "t-b", "bob", Approval::Manual).await;
    db.close().await;
    // The registry's notification secret: the same in every test of this file.
    std::env::set_var("PHT_UI_TEST_NOTIFY", NOTIFY_SECRET);
    let (url, stop) = common::serve(&format!(
        "listen = \"127.0.0.1:0\"\ndatabase = \"{database}\"\n{extra}[[registry]]\nname = \"a\"\naddress = \"127.0.0.1:1\"\nnotification_secret_env = \"PHT_UI_TEST_NOTIFY\"\n"
    ))
    .await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap();
    Ui {
        url,
        keys,
        http,
        database,
        stop,
        _dir: dir,
    }
}

fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            let enc: String = v
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            format!("{k}={enc}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// An answer: status, headers, body.
struct Got {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Got {
    fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl Ui {
    async fn send(&self, req: reqwest::RequestBuilder) -> Got {
        let r = req.send().await.unwrap();
        Got {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> Got {
        let mut req = self.http.get(format!("{}{path}", self.url));
        if let Some(c) = cookie {
            req = req.header("Cookie", c);
        }
        self.send(req).await
    }

    async fn post(
        &self,
        path: &str,
        cookie: Option<&str>,
        body: &str,
        origin: Option<&str>,
    ) -> Got {
        let mut req = self
            .http
            .post(format!("{}{path}", self.url))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.to_string());
        if let Some(c) = cookie {
            req = req.header("Cookie", c);
        }
        if let Some(o) = origin {
            req = req.header("Origin", o);
        }
        self.send(req).await
    }

    /// Signs `who` in; the `name=value` of the session cookie.
    async fn sign_in(&self, who: &str) -> String {
        let g = self
            .post(
                "/ui/login",
                None,
                &form(&[("principal", who), ("api_key", &self.keys[who])]),
                None,
            )
            .await;
        assert_eq!(g.status, 303, "{}", g.body);
        let c = g.headers["set-cookie"].to_str().unwrap();
        c.split(';').next().unwrap().to_string()
    }

    /// The CSRF token on a page.
    async fn csrf(&self, cookie: &str) -> String {
        let g = self.get("/ui", Some(cookie)).await;
        let at = g
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a form with a CSRF token");
        g.body[at + 19..].split('"').next().unwrap().to_string()
    }

    async fn api(&self, who: &str, path: &str) -> serde_json::Value {
        self.http
            .get(format!("{}{path}", self.url))
            .header("Authorization", format!("ApiKey {who} {}", self.keys[who]))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_gives_a_strict_cookie_stored_as_a_hash_and_a_wrong_key_gives_none() {
    let u = ui("").await;
    let g = u.get("/ui", None).await;
    assert_eq!((g.status, g.location()), (303, "/ui/login"));

    let g = u.get("/ui/login", None).await;
    assert_eq!(g.status, 200);
    assert_eq!(g.headers["content-security-policy"], route_service::ui::CSP);
    assert_eq!(g.headers["x-content-type-options"], "nosniff");
    assert!(g.body.contains("type=\"password\""), "{}", g.body);

    for (who, key) in [
        ("alice", "pht_wrong"),
        ("nobody", "pht_wrong"),
        ("alice", ""),
    ] {
        let g = u
            .post(
                "/ui/login",
                None,
                &form(&[("principal", who), ("api_key", key)]),
                None,
            )
            .await;
        assert_eq!(g.status, 401, "{who}");
        assert!(
            g.body.contains("Unknown principal or wrong key"),
            "{}",
            g.body
        );
        assert!(g.headers.get("set-cookie").is_none());
    }

    let g = u
        .post(
            "/ui/login",
            None,
            &form(&[("principal", "alice"), ("api_key", &u.keys["alice"])]),
            None,
        )
        .await;
    assert_eq!((g.status, g.location()), (303, "/ui"));
    let set = g.headers["set-cookie"].to_str().unwrap().to_string();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age=28800"] {
        assert!(set.contains(flag), "{flag} in {set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP on loopback: {set}");
    let token = set
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string();
    assert_eq!(token.len(), 43);

    // Behind the TLS proxy the cookie is Secure.
    let g = u
        .send(
            u.http
                .post(format!("{}/ui/login", u.url))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .header("X-Forwarded-Proto", "https")
                .body(form(&[
                    ("principal", "alice"),
                    ("api_key", &u.keys["alice"]),
                ])),
        )
        .await;
    assert!(g.headers["set-cookie"]
        .to_str()
        .unwrap()
        .contains("; Secure"));

    // The database holds hashes, never the token; the API key is in neither.
    let db = Db::open(&u.database).await.unwrap();
    let rows: Vec<(String,)> = sqlx::query_as("SELECT token_hash FROM ui_sessions")
        .fetch_all(db.pool())
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|(h,)| h.len() == 64 && !h.contains(&token)));
    db.close().await;

    // A login form posted from another site is refused.
    let g = u
        .post(
            "/ui/login",
            None,
            &form(&[("principal", "alice"), ("api_key", &u.keys["alice"])]),
            Some("http://evil.example"),
        )
        .await;
    assert_eq!(g.status, 403);
    assert!(g.headers.get("set-cookie").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_show_a_principal_only_what_the_api_would() {
    let u = ui("").await;
    let alice = u.sign_in("alice").await;
    let g = u.get("/ui", Some(&alice)).await;
    assert_eq!(g.status, 200);
    assert!(g.body.contains("href=\"/ui/trains/t-a\""), "{}", g.body);
    assert!(!g.body.contains("t-b"), "bob's train on alice's page");
    assert!(
        g.body.contains("awaiting approval"),
        "states in words: {}",
        g.body
    );
    let g = u.get("/ui/trains/t-b", Some(&alice)).await;
    assert_eq!(g.status, 403);
    assert!(g.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(g.body.contains("alice may not see train t-b"), "{}", g.body);
    let g = u.get("/ui/stations", Some(&alice)).await;
    assert_eq!(g.status, 403);

    // st-1 reviews both; st-2 neither.
    let st1 = u.sign_in("st-1").await;
    let g = u.get("/ui", Some(&st1)).await;
    assert!(g.body.contains("Awaiting your approval (2)"), "{}", g.body);
    assert!(g.body.contains("Approve t-a") && g.body.contains("Reject t-b"));
    assert!(
        g.body
            .contains("Fingerprint <code class=\"copy\">sha256:st-1-old"),
        "{}",
        g.body
    );
    assert!(
        g.body.contains("History") && g.body.contains("t-a"),
        "{}",
        g.body
    );
    // Train pages are live for creators and admins, not for stations (a station's feeds
    // count among its watcher's streams).
    let g = u.get("/ui/trains/t-a", Some(&st1)).await;
    assert_eq!(g.status, 200);
    assert!(
        !g.body.contains("data-feed") && !g.body.contains("ui.js"),
        "{}",
        g.body
    );
    let g = u.get("/ui/trains/t-a", Some(&alice)).await;
    assert!(
        g.body.contains("data-feed=\"/ui/trains/t-a/events\""),
        "{}",
        g.body
    );
    // Its feed and fragment follow the API's rules, by the session.
    let feed = |cookie: &str| {
        u.http
            .get(format!("{}/ui/trains/t-a/events", u.url))
            .header("Cookie", cookie.to_string())
            .send()
    };
    let r = feed(&alice).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    drop(r);
    let bob = u.sign_in("bob").await;
    assert_eq!(feed(&bob).await.unwrap().status(), 403);
    assert_eq!(u.get("/ui/trains/t-a/live", Some(&bob)).await.status, 403);
    let g = u.get("/ui/trains/t-a/live", Some(&alice)).await;
    assert!(
        g.body.contains("ol class=\"lane\"") && !g.body.contains("<html"),
        "{}",
        g.body
    );
    let st2 = u.sign_in("st-2").await;
    let g = u.get("/ui", Some(&st2)).await;
    assert!(g.body.contains("Awaiting your approval (0)") && !g.body.contains("t-a"));
    assert_eq!(u.get("/ui/trains/t-a", Some(&st2)).await.status, 403);

    // The admin sees all, filters them, and every station with its liveness.
    let root = u.sign_in("root").await;
    let g = u.get("/ui", Some(&root)).await;
    assert!(g.body.contains("t-a") && g.body.contains("t-b"));
    let g = u.get("/ui?state=&creator=bob&station=", Some(&root)).await;
    assert!(g.body.contains("t-b") && !g.body.contains("/ui/trains/t-a"));
    let g = u.get("/ui?state=sideways", Some(&root)).await;
    assert!(g.body.contains("is not a TrainState"), "{}", g.body);
    let g = u.get("/ui/stations", Some(&root)).await;
    assert!(g.body.contains("never seen"), "{}", g.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_need_the_session_s_csrf_token_and_this_origin() {
    let u = ui("").await;
    let alice = u.sign_in("alice").await;
    let csrf = u.csrf(&alice).await;
    for (body, origin) in [
        (String::new(), None),
        (form(&[("csrf", "0123456789abcdef0123456789abcdef")]), None),
        (form(&[("csrf", &csrf)]), Some("http://evil.example")),
    ] {
        let g = u
            .post("/ui/trains/t-a/cancel", Some(&alice), &body, origin)
            .await;
        assert!(
            matches!(g.status, 403 | 422),
            "{body} {origin:?}: {}",
            g.status
        );
        assert_eq!(
            u.api("alice", "/v1/trains/t-a").await["state"],
            "at_station"
        );
    }
    // Another session's token is not this one's.
    let alice2 = u.sign_in("alice").await;
    let other = u.csrf(&alice2).await;
    assert_ne!(other, csrf);
    let g = u
        .post(
            "/ui/trains/t-a/cancel",
            Some(&alice),
            &form(&[("csrf", &other)]),
            None,
        )
        .await;
    assert_eq!(g.status, 403);

    // No cookie: to sign-in, nothing done.
    let g = u
        .post(
            "/ui/trains/t-a/cancel",
            None,
            &form(&[("csrf", &csrf)]),
            None,
        )
        .await;
    assert_eq!((g.status, g.location()), (303, "/ui/login"));

    let own = u.url.clone();
    let g = u
        .post(
            "/ui/trains/t-a/cancel",
            Some(&alice),
            &form(&[("csrf", &csrf)]),
            Some(&own),
        )
        .await;
    assert_eq!(
        (g.status, g.location()),
        (303, "/ui/trains/t-a"),
        "{}",
        g.body
    );
    assert_eq!(u.api("alice", "/v1/trains/t-a").await["state"], "cancelled");
    // The API's refusal, on the page: a second cancel is 409.
    let g = u
        .post(
            "/ui/trains/t-a/cancel",
            Some(&alice),
            &form(&[("csrf", &csrf)]),
            None,
        )
        .await;
    assert_eq!(g.status, 409);
    assert!(g.body.contains("role=\"alert\""), "{}", g.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_reason_holding_markup_reaches_the_creator_as_text() {
    let u = ui("").await;
    let st1 = u.sign_in("st-1").await;
    let csrf = u.csrf(&st1).await;
    let reason = "<script>alert(1)</script> \u{1b}[31mred\u{1b}[0m & \"quoted\"";
    let g = u
        .post(
            "/ui/trains/t-a/reject",
            Some(&st1),
            &form(&[("csrf", &csrf), ("reason", reason)]),
            None,
        )
        .await;
    assert_eq!((g.status, g.location()), (303, "/ui"), "{}", g.body);
    // A rejection without a reason is the API's 422, shown on the page.
    let g = u
        .post(
            "/ui/trains/t-b/reject",
            Some(&st1),
            &form(&[("csrf", &csrf), ("reason", " ")]),
            None,
        )
        .await;
    assert_eq!(g.status, 422, "{}", g.body);

    let alice = u.sign_in("alice").await;
    let g = u.get("/ui/trains/t-a", Some(&alice)).await;
    assert_eq!(g.status, 200);
    assert!(g.body.contains("failed"), "{}", g.body);
    assert!(
        g.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        g.body
    );
    assert!(
        !g.body.contains("<script>"),
        "markup from a reason reached the page"
    );
    assert!(
        !g.body.contains('\u{1b}'),
        "a terminal escape reached the page"
    );

    // Approving t-b: it is st-1's to run.
    let g = u
        .post(
            "/ui/trains/t-b/approve",
            Some(&st1),
            &form(&[("csrf", &csrf)]),
            None,
        )
        .await;
    assert_eq!(g.status, 303, "{}", g.body);
    let v = u.api("bob", "/v1/trains/t-b").await;
    assert_eq!(v["hops"][0]["state"], "approved", "{v:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_at_sign_out_with_a_changed_key_and_at_expiry() {
    let u = ui("ui_session_secs = 2\n").await;
    let alice = u.sign_in("alice").await;
    assert_eq!(u.get("/ui", Some(&alice)).await.status, 200);
    let csrf = u.csrf(&alice).await;
    let g = u
        .post("/ui/logout", Some(&alice), &form(&[("csrf", &csrf)]), None)
        .await;
    assert_eq!((g.status, g.location()), (303, "/ui/login?m=out"));
    assert!(g.headers["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(u.get("/ui", Some(&alice)).await.status, 303);

    // A new API key (a rotation, or the key removed) ends the sessions of the old one.
    let bob = u.sign_in("bob").await;
    assert_eq!(u.get("/ui", Some(&bob)).await.status, 200);
    let db = Db::open(&u.database).await.unwrap();
    db.set_key_hash("bob", &key_hash("bob", &new_key()))
        .await
        .unwrap();
    db.close().await;
    assert_eq!(u.get("/ui", Some(&bob)).await.status, 303);

    // Expiry.
    let root = u.sign_in("root").await;
    assert_eq!(u.get("/ui", Some(&root)).await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    assert_eq!(u.get("/ui", Some(&root)).await.status, 303);

    // A cookie that is no session, or malformed, signs no one in.
    for c in [
        "pht_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "pht_session=../../etc",
        "pht_session=",
    ] {
        assert_eq!(u.get("/ui", Some(c)).await.status, 303, "{c}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_accepts_a_key_proposal_by_fingerprint() {
    let u = ui("").await;
    let db = Db::open(&u.database).await.unwrap();
    db.propose_key("st-1", "pem-new", "sha256:st-1-new")
        .await
        .unwrap();
    db.close().await;
    let st1 = u.sign_in("st-1").await;
    let g = u.get("/ui", Some(&st1)).await;
    assert!(
        g.body.contains("rotation pending") && g.body.contains("sha256:st-1-new"),
        "{}",
        g.body
    );
    let root = u.sign_in("root").await;
    let g = u.get("/ui/stations", Some(&root)).await;
    assert!(g.body.contains("sha256:st-1-new"), "{}", g.body);
    let csrf = u.csrf(&root).await;
    let g = u
        .post(
            "/ui/stations/st-1/accept-key",
            Some(&root),
            &form(&[("csrf", &csrf), ("fingerprint", "sha256:something-else")]),
            None,
        )
        .await;
    assert_eq!(g.status, 409, "{}", g.body);
    assert!(g.body.contains("do not accept it"), "{}", g.body);
    assert_eq!(
        u.api("root", "/v1/stations/st-1/key").await["fingerprint"],
        "sha256:st-1-old"
    );
    let g = u
        .post(
            "/ui/stations/st-1/accept-key",
            Some(&root),
            &form(&[("csrf", &csrf), ("fingerprint", "sha256:st-1-new")]),
            None,
        )
        .await;
    assert_eq!(
        (g.status, g.location()),
        (303, "/ui/stations"),
        "{}",
        g.body
    );
    assert_eq!(
        u.api("root", "/v1/stations/st-1/key").await["fingerprint"],
        "sha256:st-1-new"
    );
    // Only admins: a station cannot accept its own proposal through the dashboard.
    let c = u.csrf(&st1).await;
    let g = u
        .post(
            "/ui/stations/st-1/accept-key",
            Some(&st1),
            &form(&[("csrf", &c), ("fingerprint", "sha256:st-1-new")]),
            None,
        )
        .await;
    assert_eq!(g.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_reads_the_registry_notification_log_with_what_became_of_each() {
    let u = ui("").await;
    let envelope = r#"{"events":[
      {"id":"n1","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json",
       "digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","repository":"nobody/outbox","tag":"t-a"},"actor":{"name":"st-1"}},
      {"id":"n2","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json",
       "digest":"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","repository":"st-1/<b>x</b>","tag":"t-a"}}
    ]}"#;
    let r = u
        .http
        .post(format!("{}/v1/registry-events/distribution", u.url))
        .header("Authorization", format!("Bearer {NOTIFY_SECRET}"))
        .header("Content-Type", "application/json")
        .body(envelope)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The checks run in the background; the log says what each came to.
    let mut log = serde_json::Value::Null;
    for _ in 0..100 {
        log = u.api("root", "/v1/notifications").await;
        let arr = log.as_array().unwrap();
        if arr.len() == 2 && arr.iter().all(|n| n["outcome"].is_string()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let arr = log.as_array().unwrap();
    let by = |k: &str| arr.iter().find(|n| n["event_key"] == k).unwrap();
    let n1 = by("distribution:n1");
    assert_eq!(
        (
            n1["registry"].as_str(),
            n1["tag"].as_str(),
            n1["actor"].as_str()
        ),
        (Some("127.0.0.1:1"), Some("t-a"), Some("st-1"))
    );
    assert!(
        n1["outcome"]
            .as_str()
            .unwrap()
            .contains("ignored: no station has the namespace nobody on 127.0.0.1:1"),
        "{n1}"
    );
    assert!(by("distribution:n2")["outcome"]
        .as_str()
        .unwrap()
        .contains("is not an outbox"));

    // Admins only, in the API and on the page; a limit out of range is refused.
    let g = u.get("/v1/notifications", None).await;
    assert_eq!(g.status, 401);
    let alice = u.sign_in("alice").await;
    assert_eq!(u.get("/ui/notifications", Some(&alice)).await.status, 403);
    let root = u.sign_in("root").await;
    let g = u.get("/ui/notifications", Some(&root)).await;
    assert_eq!(g.status, 200);
    for want in [
        "no station has the namespace nobody on 127.0.0.1:1",
        "nobody/outbox",
        // The markup a registry sent is text on the page.
        "st-1/&lt;b&gt;x&lt;/b&gt;",
        "href=\"/ui/notifications\"",
    ] {
        assert!(
            g.body.contains(want),
            "`{want}` not on the page:\n{}",
            g.body
        );
    }
    assert!(!g.body.contains("<b>x</b>"));
    let g = u
        .get("/ui/notifications?registry=127.0.0.9:1", Some(&root))
        .await;
    assert!(
        g.body.contains("No notification received yet."),
        "{}",
        g.body
    );
    let r = u
        .http
        .get(format!("{}/v1/notifications?limit=0", u.url))
        .header("Authorization", format!("ApiKey root {}", u.keys["root"]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}
