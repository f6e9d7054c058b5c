//! Least-privilege registry access: both registries take the route service's tokens
//! (`auth: token`); stations and creators log in with their id and API key and get only their
//! own repositories; the service moves with its own account; a push counts only when the
//! registry's verified actor is the station whose turn it is.

use e2e::route::{http, RouteScene, Setup};
use e2e::*;
use serde_json::json;
use std::process::Command;

const COUNT: &str = "#!/bin/sh\nset -e\nrows=$(wc -l < /opt/train_data/data-$STATION_ID/rows.csv)\necho \"$STATION_ID,$rows\" >> /opt/pht_results/counts.csv\n";

/// `train image copy` as `who`; returns (success, stderr).
fn copy_as(rs: &RouteScene, who: &str, from: &str, to: &str) -> (bool, String) {
    let o = run(rs
        .as_party(who, Command::new(bin("train")))
        .args(["image", "copy", from, to]));
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn with_token_auth_every_party_reaches_only_its_own_repositories() {
    let rs = RouteScene::new(Setup {
        token: true,
        ..Setup::default()
    });
    let (a, b) = (rs.regs[0].addr.clone(), rs.regs[1].addr.clone());
    let id = format!("t-{}", e2e::route::nonce().replace('_', "-"));
    let train = rs.scene.create_with("native", COUNT, &["--train-id", &id]);
    let image = rs.build_submission(&train, &id);

    // Anonymous clients get nothing but public pulls.
    let (ok_anon, err) = copy_as(
        &rs,
        "nobody-at-all",
        &image,
        &format!("{a}/creator/submissions:copy"),
    );
    assert!(
        !ok_anon,
        "wrong credentials are refused by the token endpoint"
    );
    assert!(
        err.contains("401") || err.to_lowercase().contains("unauthorized") || err.contains("auth"),
        "{err}"
    );

    let (s, v) = rs.submit(&image, &["st-1", "st-2", "st-3"]);
    assert_eq!(s, 201, "{v}");
    rs.wait_state(&id, "at_station", 30);
    let inbox1 = format!("{a}/st-1/inbox:{id}");

    // A station's token: not another station's outbox, not another station's inbox, not the
    // creator's results.
    let (done, err) = copy_as(&rs, "st-1", &inbox1, &format!("{a}/st-3/outbox:{id}"));
    assert!(!done, "st-1 pushed into st-3's outbox");
    assert!(
        err.to_lowercase().contains("denied")
            || err.contains("401")
            || err.contains("403")
            || err.to_lowercase().contains("unauthorized"),
        "{err}"
    );
    let (done, _) = copy_as(&rs, "st-3", &inbox1, &format!("{a}/st-3/outbox:{id}"));
    assert!(!done, "st-3 read st-1's inbox");
    let (done, _) = copy_as(
        &rs,
        "creator",
        &inbox1,
        &format!("{a}/creator/submissions:stolen"),
    );
    assert!(!done, "the creator read st-1's inbox");
    // Its own inbox to its own outbox is allowed (and is then an older state: ignored).
    let (done, err) = copy_as(&rs, "st-1", &inbox1, &format!("{a}/st-1/outbox:{id}"));
    assert!(done, "st-1 may push to its own outbox: {err}");

    // A notification whose (registry-verified) actor is not the station whose turn it is.
    let hook = format!("{}/v1/registry-events/distribution", rs.url);
    let forged = json!({"events": [{"id": "actor-1", "action": "push", "actor": {"name": "st-3"}, "target": {
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111",
        "repository": "st-1/outbox", "tag": id}}]});
    let (s, _) = http("POST", &hook, Some(rs.secret(0)), Some(&forged.to_string()));
    assert_eq!(s, 200);
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let v = rs.train(&id);
        let ev = v["events"].as_array().unwrap().clone();
        let has = |n: &str| {
            ev.iter()
                .any(|e| e["kind"] == "push_ignored" && e["detail"].as_str().unwrap().contains(n))
        };
        if has("pushed by st-3") && has("older state") {
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "pushes not ignored as expected: {:#}\n{}",
            v["events"],
            rs.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    rs.run_station("st-1", &id);
    rs.run_station("st-2", &id);
    rs.run_station("st-3", &id);
    let v = rs.wait_state(&id, "finished", 60);
    assert_eq!(v["states"].as_array().unwrap().len(), 4, "{v:#}");
    assert_eq!(rs.results(&id), "st-1,7\nst-2,7\nst-3,7\n");
    // Another party cannot read the creator's results.
    let (done, _) = copy_as(
        &rs,
        "st-2",
        &format!("{a}/creator/results:{id}"),
        &format!("{b}/st-2/outbox:loot"),
    );
    assert!(!done, "st-2 read the creator's results");
    assert!(
        !rs.log().contains(&rs.keys["st-1"]),
        "no API key in the service log"
    );
}

/// `curl` with `args`; returns (HTTP status, response headers and body).
fn curl(args: &[&str]) -> (u16, String) {
    let o = run(Command::new("curl")
        .args(["-sS", "-i", "-o", "-", "-w", "\n%{http_code}"])
        .args(args));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// A token from the service's realm for `who` (Basic with its API key) and `scopes`.
fn token_for(rs: &RouteScene, who: &str, service: &str, scopes: &[&str]) -> String {
    let mut url = format!("{}/v1/registry-token?service={service}", rs.url);
    for s in scopes {
        url.push_str(&format!("&scope={s}"));
    }
    let (s, v) = http(
        "GET",
        &url,
        Some(&format!(
            "Basic {}",
            b64(&format!("{who}:{}", rs.keys[who]))
        )),
        None,
    );
    assert_eq!(s, 200, "{v}");
    v["token"].as_str().unwrap().to_string()
}

fn b64(s: &str) -> String {
    let o = run(Command::new("sh").args(["-c", &format!("printf %s '{s}' | base64 -w0")]));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn under_token_auth_a_same_registry_move_mounts_every_layer_and_sends_none() {
    // Every stop on registry A: submission → st-1 → st-3 → the creator's results, all mounts.
    let rs = RouteScene::new(Setup {
        token: true,
        stations: &[("st-1", 0, "auto"), ("st-3", 0, "auto")],
        ..Setup::default()
    });
    let a = rs.regs[0].addr.clone();
    let id = format!("t-{}", e2e::route::nonce().replace('_', "-"));
    let train = rs.scene.create_with("native", COUNT, &["--train-id", &id]);
    let image = rs.build_submission(&train, &id);
    let (s, v) = rs.submit(&image, &["st-1", "st-3"]);
    assert_eq!(s, 201, "{v}");
    rs.wait_state(&id, "at_station", 30);

    // A station's token grants no pull on another station's inbox, so it cannot mount from it:
    // the registry refuses the mount itself and st-3's outbox gets nothing.
    let item = rs
        .inbox("st-1", 5)
        .into_iter()
        .find(|i| i["train"] == id.as_str())
        .expect("the train in st-1's inbox");
    let pinned = item["image"].as_str().unwrap().to_string();
    let layer = {
        let t = token_for(&rs, "st-1", "registry-0", &["repository:st-1/inbox:pull"]);
        let (s, m) = curl(&[
            "-H",
            &format!("Authorization: Bearer {t}"),
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json",
            &format!(
                "http://{a}/v2/st-1/inbox/manifests/{}",
                pinned.rsplit_once('@').unwrap().1
            ),
        ]);
        assert_eq!(s, 200, "{m}");
        let json = &m[m.find("\r\n\r\n").unwrap() + 4..];
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        v["layers"][0]["digest"].as_str().unwrap().to_string()
    };
    let t3 = token_for(
        &rs,
        "st-3",
        "registry-0",
        &[
            "repository:st-3/outbox:pull,push",
            "repository:st-1/inbox:pull",
        ],
    );
    let mount = format!("http://{a}/v2/st-3/outbox/blobs/uploads/?mount={layer}&from=st-1/inbox");
    let (s, answer) = curl(&[
        "-X",
        "POST",
        "-H",
        &format!("Authorization: Bearer {t3}"),
        "-H",
        "Content-Length: 0",
        &mount,
    ]);
    assert_eq!(s, 401, "st-3 mounted from st-1's inbox: {answer}");
    assert!(answer.contains("insufficient_scope"), "{answer}");
    let (s, _) = curl(&[
        "-I",
        "-H",
        &format!("Authorization: Bearer {t3}"),
        &format!("http://{a}/v2/st-3/outbox/blobs/{layer}"),
    ]);
    assert_eq!(s, 404, "the layer reached st-3's outbox");

    rs.run_station("st-1", &id);
    rs.run_station("st-3", &id);
    let v = rs.wait_state(&id, "finished", 60);
    assert_eq!(rs.results(&id), "st-1,7\nst-3,7\n");
    // Three moves (to st-1, to st-3, to the results), each with every blob mounted or present.
    let moves: Vec<String> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "delivered" || e["kind"] == "finished")
        .map(|e| e["detail"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(moves.len(), 3, "{moves:#?}");
    for m in &moves {
        assert!(m.contains(" 0 sent (0 bytes)"), "a layer was sent: {m}");
        assert!(!m.contains(" 0 blobs mounted"), "nothing was mounted: {m}");
    }
    let (_, metrics) = curl(&[&format!("{}/metrics", rs.url)]);
    let sent = metrics
        .lines()
        .find(|l| l.starts_with("route_move_bytes_sent_total"))
        .unwrap_or("route_move_bytes_sent_total 0");
    assert!(sent.ends_with(" 0"), "{sent}");
}
