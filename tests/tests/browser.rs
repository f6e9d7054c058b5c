//! The dashboard in a real browser: Debian's Chromium, headless, driven over WebDriver by its
//! matching ChromeDriver (scripts/browser.sh). Journeys through the whole system (the route
//! service, registries, three `station watch` daemons, the creator's commands):
//!
//! 1. a creator signs in and watches a train move stop by stop without reloading;
//! 2. an operator at a manual station approves it from the dashboard;
//! 3. another operator rejects a second train with a reason holding markup and a terminal
//!    escape, which the creator then reads as text, no script run;
//! 4. an admin accepts a station's key proposal by fingerprint;
//! 5. every page is usable from the keyboard: each control reachable with Tab, labelled;
//! 6. at the station's own dashboard (`station watch --ui`), an operator signs in with the
//!    station's API key, reviews a waiting train (entrypoint, files, checks) and approves it,
//!    follows its run's output live (output holding `<script>` and a terminal escape, shown
//!    as text, no script run), then reads it under past runs, the audit log (verified) and
//!    health; what the dashboard refuses (no session, a wrong key, a form without its CSRF
//!    token or from another origin) is checked over plain HTTP first.
//!
//! Screenshots of each journey go to target/ui-screenshots/.

use e2e::route::{wait_for, RouteScene, Setup};
use e2e::watch::{submit, Watcher, COUNT};
use fantoccini::{Client, ClientBuilder, Locator};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// ChromeDriver on a free port; killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Self {
        let bin =
            std::env::var("PHT_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let port = e2e::route::free_port();
        let child = Command::new(&bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{bin}: {e} (scripts/browser.sh installs it)"));
        let url = format!("http://127.0.0.1:{port}");
        wait_for(20, "chromedriver listening", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Self { child, url }
    }

    /// A new headless browser with an empty profile.
    async fn browser(&self, profile: &std::path::Path) -> Client {
        let chromium = std::env::var("PHT_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                // This machine's network is closed: background connections only fail.
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        ClientBuilder::rustls()
            .expect("a TLS setup")
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a Chromium session (scripts/browser.sh installs chromium)")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn shots() -> std::path::PathBuf {
    let d = e2e::root().join("target/ui-screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(shots().join(format!("{name}.png")), png).unwrap();
}

/// The page's visible text (empty while a page is being replaced).
async fn text(c: &Client) -> String {
    match c.find(Locator::Css("body")).await {
        Ok(b) => b.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits until the page's text holds `what`, without navigating.
async fn until_text(c: &Client, secs: u64, what: &str) {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        let t = text(c).await;
        if t.contains(what) {
            return;
        }
        assert!(
            Instant::now() < end,
            "`{what}` not on the page after {secs} s:\n{t}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The visible text of the first element matching `css`.
async fn text_of(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no `{css}` on the page: {e}"))
        .text()
        .await
        .unwrap()
}

/// What a script that returns a boolean returns.
async fn js_bool(c: &Client, script: &str) -> bool {
    c.execute(script, vec![])
        .await
        .unwrap()
        .as_bool()
        .unwrap_or_else(|| panic!("`{script}` returned no boolean"))
}

async fn sign_in(c: &Client, base: &str, who: &str, key: &str) {
    c.goto(&format!("{base}/ui")).await.unwrap();
    let at = c.current_url().await.unwrap();
    assert!(
        at.path().ends_with("/ui/login"),
        "at {at}:\n{}",
        text(c).await
    );
    c.find(Locator::Id("principal"))
        .await
        .unwrap()
        .send_keys(who)
        .await
        .unwrap();
    c.find(Locator::Id("api_key"))
        .await
        .unwrap()
        .send_keys(key)
        .await
        .unwrap();
    c.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until_text(c, 10, &format!("Signed in as {who}")).await;
}

async fn click(c: &Client, button_text: &str) {
    let buttons = c.find_all(Locator::Css("button")).await.unwrap();
    for b in buttons {
        if b.text().await.unwrap() == button_text {
            b.click().await.unwrap();
            return;
        }
    }
    panic!("no button `{button_text}` on:\n{}", text(c).await);
}

/// Every form control has a label a screen reader names, and Tab reaches each of them.
async fn keyboard_and_labels(c: &Client, page: &str) {
    let unlabelled: i64 = c
        .execute(
            "return [...document.querySelectorAll('input:not([type=hidden]),select,textarea')]\
             .filter(e => !(e.labels && e.labels.length)).length",
            vec![],
        )
        .await
        .unwrap()
        .as_i64()
        .unwrap();
    assert_eq!(unlabelled, 0, "{page}: controls without a label");
    let controls: i64 = c
        .execute(
            "return document.querySelectorAll('a[href],button,input:not([type=hidden]),select,textarea').length",
            vec![],
        )
        .await
        .unwrap()
        .as_i64()
        .unwrap();
    // Tab from the top through every control: each gets the focus once.
    c.execute("document.activeElement && document.activeElement.blur(); window.__seen = new Set(); document.addEventListener('focusin', e => window.__seen.add(e.target))", vec![])
        .await
        .unwrap();
    let body = c.find(Locator::Css("body")).await.unwrap();
    for _ in 0..controls + 2 {
        body.send_keys("\u{e004}").await.unwrap();
    }
    let seen: i64 = c
        .execute("return window.__seen.size", vec![])
        .await
        .unwrap()
        .as_i64()
        .unwrap();
    assert!(
        seen >= controls,
        "{page}: Tab reached {seen} of {controls} controls"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journeys_through_the_dashboard_in_chromium() {
    let rs = RouteScene::new(Setup {
        stations: &[
            ("st-1", 0, "auto"),
            ("st-2", 0, "manual"),
            ("st-3", 0, "manual"),
        ],
        ..Setup::default()
    });
    let base = rs.url.clone();
    let ui_port = e2e::route::free_port();
    let st3 = rs.watcher_config("st-3", "approval = \"manual\"");
    let _ws: Vec<Watcher> = vec![
        rs.watcher("st-1", ""),
        rs.watcher("st-2", "approval = \"manual\""),
        rs.watcher_args("st-3", st3, &["--ui", &format!("127.0.0.1:{ui_port}")]),
    ];
    let driver = Driver::start();
    let profiles = tempfile::tempdir().unwrap();

    // 1. The creator signs in and opens a train's page; it follows the train live.
    let creator = driver.browser(&profiles.path().join("creator")).await;
    sign_in(&creator, &base, "creator", &rs.keys["creator"]).await;
    shot(&creator, "01-creator-signed-in").await;
    let t1 = submit(&rs, "native", COUNT, &["st-1", "st-2"]);
    creator
        .goto(&format!("{base}/ui/trains/{t1}"))
        .await
        .unwrap();
    creator
        .execute("window.__sameDocument = true", vec![])
        .await
        .unwrap();
    // st-1 runs it (auto); it moves to st-2, which waits for its operator.
    until_text(&creator, 120, "awaiting approval").await;
    let live = text_of(&creator, "#live ol.lane").await;
    assert!(live.contains("st-1 done"), "{live}");
    shot(&creator, "02-creator-train-awaiting-approval").await;

    // 2. st-2's operator approves it from the queue.
    let op2 = driver.browser(&profiles.path().join("st-2")).await;
    sign_in(&op2, &base, "st-2", &rs.keys["st-2"]).await;
    until_text(&op2, 10, "Awaiting your approval (1)").await;
    shot(&op2, "03-operator-queue").await;
    keyboard_and_labels(&op2, "the operator's queue").await;
    click(&op2, &format!("Approve {t1}")).await;
    until_text(&op2, 10, "Awaiting your approval (0)").await;

    // The creator's page, never reloaded, follows it to the end.
    until_text(&creator, 180, "finished").await;
    let same: bool = js_bool(&creator, "return window.__sameDocument === true").await;
    assert!(same, "the page was reloaded");
    until_text(&creator, 30, "creator (results) done").await;
    assert!(text(&creator)
        .await
        .contains(&format!("train results {t1}")));
    shot(&creator, "04-creator-train-finished").await;

    // 3. st-3's operator rejects a second train with a reason holding markup and an escape.
    let t2 = submit(&rs, "native", COUNT, &["st-1", "st-3"]);
    let op3 = driver.browser(&profiles.path().join("st-3")).await;
    sign_in(&op3, &base, "st-3", &rs.keys["st-3"]).await;
    let end = Instant::now() + Duration::from_secs(120);
    loop {
        op3.goto(&format!("{base}/ui")).await.unwrap();
        if text(&op3).await.contains("Awaiting your approval (1)") {
            break;
        }
        assert!(Instant::now() < end, "t2 never reached st-3's queue");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let reason = "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\"> \u{1b}[31mnot red\u{1b}[0m: data not consented";
    // Typed, then the escape put in by script (a WebDriver key press of ESC types nothing):
    // a reason can hold any character, whatever the client.
    op3.find(Locator::Id(&format!("reason-{t2}")))
        .await
        .unwrap()
        .send_keys("typed ")
        .await
        .unwrap();
    op3.execute(
        "document.getElementById(arguments[0]).value += arguments[1]",
        vec![
            serde_json::json!(format!("reason-{t2}")),
            serde_json::json!(reason),
        ],
    )
    .await
    .unwrap();
    shot(&op3, "05-operator-rejecting").await;
    click(&op3, &format!("Reject {t2}")).await;
    until_text(&op3, 10, "Awaiting your approval (0)").await;

    creator
        .goto(&format!("{base}/ui/trains/{t2}"))
        .await
        .unwrap();
    until_text(&creator, 10, "data not consented").await;
    let shown = text_of(&creator, ".reason").await;
    assert!(
        shown.contains("<script>window.__pwned = 1</script>"),
        "{shown}"
    );
    assert!(
        shown.contains("\\u{1b}[31m"),
        "the escape shown as text: {shown}"
    );
    assert!(
        js_bool(&creator, "return window.__pwned === undefined").await,
        "a script from the reason ran"
    );
    shot(&creator, "06-creator-reads-the-rejection").await;
    keyboard_and_labels(&creator, "a train's page").await;

    // 4. The admin accepts st-1's key proposal by the fingerprint its operator gave.
    let pem = std::fs::read_to_string(rs.scene.path("keys/creator.pub.pem")).unwrap();
    let (s, v) = rs.call(
        "POST",
        "/v1/stations/st-1/key",
        Some("st-1"),
        Some(&serde_json::json!({ "public_key": pem })),
    );
    assert_eq!(s, 200, "{v}");
    let fp = v["pending_fingerprint"].as_str().unwrap().to_string();
    let admin = driver.browser(&profiles.path().join("root")).await;
    sign_in(&admin, &base, "root", &rs.keys["root"]).await;
    admin.goto(&format!("{base}/ui/stations")).await.unwrap();
    until_text(&admin, 10, "Key proposals").await;
    keyboard_and_labels(&admin, "the stations page").await;
    admin
        .find(Locator::Id("fp-st-1"))
        .await
        .unwrap()
        .send_keys(&fp)
        .await
        .unwrap();
    shot(&admin, "07-admin-key-proposal").await;
    click(&admin, "Accept the key of st-1").await;
    until_text(&admin, 10, "None pending.").await;
    let (_, k) = rs.call("GET", "/v1/stations/st-1/key", Some("root"), None);
    assert_eq!(k["fingerprint"], fp.as_str());
    admin.goto(&format!("{base}/ui")).await.unwrap();
    shot(&admin, "08-admin-all-trains").await;

    // 6. The station's own dashboard.
    let station_ui = format!("http://127.0.0.1:{ui_port}");
    station_dashboard_refuses(&station_ui, &rs.keys["st-3"]).await;
    let t3 = submit(&rs, "native", SHOUT, &["st-3"]);
    let op = driver.browser(&profiles.path().join("st-3-station")).await;
    op.goto(&format!("{station_ui}/")).await.unwrap();
    until_text(&op, 10, "Sign in to station st-3").await;
    op.find(Locator::Id("api_key"))
        .await
        .unwrap()
        .send_keys(&rs.keys["st-3"])
        .await
        .unwrap();
    click(&op, "Sign in").await;
    let end = Instant::now() + Duration::from_secs(120);
    loop {
        op.goto(&format!("{station_ui}/")).await.unwrap();
        let t = text(&op).await;
        // Waiting, and read for review by the watcher (entrypoint and checks shown).
        if t.contains("Waiting for your decision (1)") && t.contains("verified") {
            break;
        }
        assert!(Instant::now() < end, "t3 never reviewable at st-3:\n{t}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let review = text_of(&op, "section.review").await;
    for want in [
        t3.as_str(),
        "creator",
        "run.sh",
        "st-3 (this is stop 1)",
        "verified",
    ] {
        assert!(
            review.contains(want),
            "`{want}` not in the review pane:\n{review}"
        );
    }
    keyboard_and_labels(&op, "the station's inbox").await;
    shot(&op, "09-station-inbox-review").await;
    click(&op, &format!("Approve train {t3}")).await;
    until_text(&op, 10, &format!("Train {t3} approved.")).await;

    // Its run, followed on the runs page without reloading.
    op.goto(&format!("{station_ui}/runs")).await.unwrap();
    op.execute("window.__sameDocument = true", vec![])
        .await
        .unwrap();
    until_text(&op, 120, "In progress (1)").await;
    until_text(&op, 60, "<script>window.__pwned = 3</script>").await;
    shot(&op, "10-station-run-live").await;
    until_text(&op, 120, "Ended since the watcher started (1)").await;
    let same: bool = js_bool(&op, "return window.__sameDocument === true").await;
    assert!(same, "the runs page was reloaded");
    let out = text_of(&op, "pre.output").await;
    assert!(
        out.contains("[train] <script>window.__pwned = 3</script>"),
        "{out}"
    );
    assert!(
        out.contains("\\u{1b}[31mnot red"),
        "the escape shown as text: {out}"
    );
    assert!(text(&op).await.contains("pushed"));
    assert!(
        js_bool(&op, "return window.__pwned === undefined").await,
        "a script from the output ran"
    );
    keyboard_and_labels(&op, "the station's runs").await;

    op.goto(&format!("{station_ui}/history")).await.unwrap();
    until_text(&op, 10, "Past runs").await;
    let t = text(&op).await;
    assert!(t.contains(&t3) && t.contains("pushed"), "{t}");
    assert!(t.contains("chain and signed head intact"), "{t}");
    op.goto(&format!("{station_ui}/audit")).await.unwrap();
    until_text(&op, 10, "chain and signed head intact").await;
    shot(&op, "11-station-audit-log").await;
    op.goto(&format!("{station_ui}/health")).await.unwrap();
    until_text(&op, 120, "as station doctor does").await;
    let t = text(&op).await;
    for check in [
        "key",
        "docker engine",
        "disk bound",
        "work area",
        "audit log",
        "clock",
    ] {
        assert!(
            t.contains(check),
            "no `{check}` check on the health page:\n{t}"
        );
    }
    shot(&op, "12-station-health").await;
    click(&op, "Sign out").await;
    until_text(&op, 10, "Signed out.").await;

    for c in [creator, op2, op3, admin, op] {
        c.close().await.unwrap();
    }
}

/// A train that says something hostile before counting, and takes long enough to be watched.
const SHOUT: &str = "#!/bin/sh\nset -e\necho '<script>window.__pwned = 3</script>'\nprintf '\\033[31mnot red\\033[0m\\n'\nsleep 6\nrows=$(wc -l < /opt/train_data/data-$STATION_ID/rows.csv)\necho \"$STATION_ID,$rows\" >> /opt/pht_results/counts.csv\n";

/// A form body (`application/x-www-form-urlencoded`).
fn form(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// What the station's dashboard refuses, over plain HTTP: pages without a session, a wrong
/// key, a form without the session's CSRF token, a form from another origin.
async fn station_dashboard_refuses(ui: &str, key: &str) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http.get(format!("{ui}/runs")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login");
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'; script-src 'self'"),
        "{csp}"
    );
    let r = http
        .post(format!("{ui}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("api_key", "pht_not-the-key")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("not this station's API key"));
    let r = http
        .post(format!("{ui}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("api_key", key)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    for want in [
        "pht_station_session=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(cookie.contains(want), "{cookie}");
    }
    let cookie = cookie.split(';').next().unwrap().to_string();
    let page = http
        .get(format!("{ui}/health"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a CSRF field on the page")
        .to_string();
    // A stale token, then the right one from another site: both refused, nothing done.
    for (token, origin) in [
        ("0".repeat(32), None),
        (csrf.clone(), Some("http://evil.example")),
    ] {
        let mut req = http
            .post(format!("{ui}/trains/no-such-train/approve"))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("csrf", token.as_str())]));
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 403, "token {token}, origin {origin:?}");
    }
    // The right token from this origin goes through to the route service (which knows no
    // such train).
    let r = http
        .post(format!("{ui}/trains/no-such-train/approve"))
        .header("cookie", &cookie)
        .header("origin", ui)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("csrf", csrf.as_str())]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "{}", r.text().await.unwrap());
    let r = http
        .post(format!("{ui}/logout"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("csrf", csrf.as_str())]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = http
        .get(format!("{ui}/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        303,
        "a session ended by sign-out is not honoured again"
    );
}
