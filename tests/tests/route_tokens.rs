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
