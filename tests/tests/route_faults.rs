//! The route service when things go wrong: a service killed between copying and recording a
//! delivery, two replicas with one killed mid-move, a registry down during a move, lost
//! notifications, manual approval and rejection, and a clean SIGTERM.

use e2e::route::{wait_for, RouteScene, Setup};
use e2e::*;
use serde_json::Value;

const COUNT: &str = "#!/bin/sh\nset -e\nrows=$(wc -l < /opt/train_data/data-$STATION_ID/rows.csv)\necho \"$STATION_ID,$rows\" >> /opt/pht_results/counts.csv\n";

fn new_id() -> String {
    format!("t-{}", e2e::route::nonce().replace('_', "-"))
}

fn submit(rs: &RouteScene, format: &str, route: &[&str]) -> String {
    let id = new_id();
    let _ = std::fs::remove_dir_all(rs.scene.path("train"));
    let train = rs.scene.create_with(format, COUNT, &["--train-id", &id]);
    let image = rs.build_submission(&train, &id);
    let (s, v) = rs.submit(&image, route);
    assert_eq!(s, 201, "{v}");
    id
}

fn events(v: &Value, kind: &str) -> Vec<Value> {
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .cloned()
        .collect()
}

fn results(rs: &RouteScene, id: &str) -> String {
    let r = rs
        .scene
        .results(&format!("{}/creator/results:{id}", rs.regs[0].addr));
    r.into_iter().map(|(_, c)| c).collect()
}

fn hold(ms: u64) -> Vec<(String, String)> {
    vec![(
        route_service::mover::FAULT_HOLD_ENV.to_string(),
        ms.to_string(),
    )]
}

#[test]
fn a_service_killed_between_copying_and_delivering_delivers_once_after_restart() {
    let mut rs = RouteScene::new(Setup {
        stations: &[("st-1", 0, "auto"), ("st-2", 1, "auto")],
        lease_secs: 2,
        env: hold(60_000),
        ..Setup::default()
    });
    let id = submit(&rs, "native", &["st-1", "st-2"]);
    // The copy is done (the inbox has it) but the delivery is not recorded yet: kill -9.
    wait_for(30, "the copy into st-1's inbox", || {
        rs.digest(0, "st-1/inbox", &id).is_some()
    });
    assert_eq!(rs.train(&id)["hops"][0]["state"], "copying");
    rs.kill();
    rs.env.clear();
    rs.start();
    let v = rs.wait_state(&id, "at_station", 30);
    assert_eq!(events(&v, "delivered").len(), 1, "{v:#}");
    assert_eq!(
        v["hops"][0]["attempts"], 2,
        "the restart took the expired lease over: {v:#}"
    );
    rs.run_station("st-1", &id);
    rs.run_station("st-2", &id);
    let v = rs.wait_state(&id, "finished", 60);
    assert_eq!(events(&v, "delivered").len(), 2, "{v:#}");
    assert_eq!(events(&v, "finished").len(), 1);
    assert_eq!(results(&rs, &id), "st-1,7\nst-2,7\n");
}

#[test]
fn two_replicas_on_one_postgresql_one_killed_mid_move() {
    let base = std::env::var("PHT_TEST_POSTGRES_URL")
        .expect("PHT_TEST_POSTGRES_URL: start PostgreSQL with `eval \"$(scripts/postgres.sh)\"`");
    let mut rs = RouteScene::new(Setup {
        stations: &[("st-1", 0, "auto"), ("st-2", 1, "auto")],
        postgres: Some(base),
        lease_secs: 2,
        reconcile_secs: 1,
        env: hold(4_000),
        ..Setup::default()
    });
    let (mut replica, replica_url) = rs.start_replica();
    let id = submit(&rs, "native", &["st-1", "st-2"]);
    // Whichever replica claimed the move is killed mid-move; the other finishes it.
    let mut owner = String::new();
    wait_for(30, "a replica to claim the move", || {
        owner = rs.train(&id)["hops"][0]["mover"]
            .as_str()
            .unwrap_or("")
            .to_string();
        !owner.is_empty()
    });
    let pid: u32 = owner.rsplit('-').nth(1).unwrap().parse().unwrap();
    if Some(pid) == rs.pid() {
        rs.kill();
        rs.url = replica_url;
    } else {
        assert_eq!(pid, replica.id(), "the lease names one of the two replicas");
        replica.kill().unwrap();
        replica.wait().unwrap();
    }
    let v = rs.wait_state(&id, "at_station", 40);
    assert_eq!(events(&v, "delivered").len(), 1, "{v:#}");
    let moved_by = v["events"].as_array().unwrap().len();
    assert!(moved_by > 0);
    rs.run_station("st-1", &id);
    // Notifications may go to the killed replica: reconciliation finds the push.
    rs.run_station("st-2", &id);
    let v = rs.wait_state(&id, "finished", 60);
    assert_eq!(events(&v, "delivered").len(), 2, "{v:#}");
    assert_eq!(events(&v, "finished").len(), 1);
    let _ = replica.kill();
    let _ = replica.wait();
}

#[test]
fn a_registry_stopped_mid_copy_and_started_again_gets_the_train() {
    let mut rs = RouteScene::new(Setup {
        stations: &[("st-1", 0, "auto"), ("st-2", 1, "auto")],
        ..Setup::default()
    });
    // 192 MiB of train files: the move to registry B takes long enough to be caught mid-way.
    let algo = rs.scene.path("algo");
    std::fs::create_dir_all(&algo).unwrap();
    ok(std::process::Command::new("head")
        .args(["-c", "201326592", "/dev/urandom"])
        .stdout(std::fs::File::create(algo.join("big.bin")).unwrap()));
    let id = submit(&rs, "native", &["st-1", "st-2"]);
    rs.run_station("st-1", &id);
    // Registry B is killed while the layer streams into st-2's inbox (an upload in progress).
    let uploads = rs
        .scene
        .path("route/registry-1/docker/registry/v2/repositories/st-2/inbox/_uploads");
    let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let growing = std::fs::read_dir(&uploads)
            .into_iter()
            .flatten()
            .flatten()
            .any(|u| std::fs::metadata(u.path().join("data")).is_ok_and(|m| m.len() > 0));
        if growing {
            rs.regs[1].stop();
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "no upload into st-2's inbox seen: {:#}",
            rs.train(&id)
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    wait_for(30, "the interrupted move to be retried", || {
        let v = rs.train(&id);
        !events(&v, "move_retry").is_empty()
    });
    let v = rs.train(&id);
    assert_eq!(v["state"], "in_transit", "{v:#}");
    assert!(
        events(&v, "delivered").len() == 1,
        "not delivered while B is down: {v:#}"
    );
    rs.regs[1].restart();
    rs.wait_state(&id, "at_station", 90);
    rs.run_station("st-2", &id);
    let v = rs.wait_state(&id, "finished", 90);
    assert_eq!(events(&v, "delivered").len(), 2, "{v:#}");
    assert_eq!(results(&rs, &id), "st-1,7\nst-2,7\n");
}

#[test]
fn a_lost_notification_is_caught_by_reconciliation_with_a_legacy_train() {
    // Registry B never notifies (as when it restarts with events queued): st-2's push is
    // found by the reconciliation pass alone.
    let rs = RouteScene::new(Setup {
        stations: &[("st-1", 0, "auto"), ("st-2", 1, "auto")],
        notify: [true, false],
        reconcile_secs: 1,
        ..Setup::default()
    });
    let id = submit(&rs, "legacy", &["st-1", "st-2"]);
    let policy = master_policy();
    rs.run_station_with("st-1", &id, &policy);
    rs.run_station_with("st-2", &id, &policy);
    let v = rs.wait_state(&id, "finished", 60);
    assert_eq!(v["format"], "legacy");
    let pushed = events(&v, "pushed");
    assert_eq!(pushed.len(), 2, "{v:#}");
    assert!(
        pushed[1]["detail"]
            .as_str()
            .unwrap()
            .contains("reconciliation"),
        "{v:#}"
    );
    assert_eq!(results(&rs, &id), "st-1,7\nst-2,7\n");
}

#[test]
fn a_manual_station_holds_trains_for_its_operator_and_a_rejection_reaches_the_creator() {
    let mut rs = RouteScene::new(Setup {
        stations: &[("st-1", 0, "manual"), ("st-2", 1, "auto")],
        ..Setup::default()
    });
    let id = submit(&rs, "native", &["st-1", "st-2"]);
    rs.wait_state(&id, "at_station", 30);
    let items = rs.inbox("st-1", 0);
    assert_eq!(items[0]["state"], "awaiting_approval");
    // Only the station approves, and only its own queue.
    let (s, _) = rs.call(
        "POST",
        &format!("/v1/trains/{id}/approve"),
        Some("creator"),
        None,
    );
    assert_eq!(s, 403);
    let (s, _) = rs.call(
        "POST",
        &format!("/v1/trains/{id}/approve"),
        Some("st-2"),
        None,
    );
    assert_eq!(s, 409, "not at st-2");
    let (s, v) = rs.call(
        "POST",
        &format!("/v1/trains/{id}/approve"),
        Some("st-1"),
        None,
    );
    assert_eq!(s, 200, "{v}");
    rs.run_station("st-1", &id);
    rs.run_station("st-2", &id);
    rs.wait_state(&id, "finished", 60);

    // A second train, rejected: the creator sees why; an admin can send it again.
    let id2 = submit(&rs, "native", &["st-1", "st-2"]);
    rs.wait_state(&id2, "at_station", 30);
    let (s, _) = rs.call(
        "POST",
        &format!("/v1/trains/{id2}/reject"),
        Some("st-1"),
        Some(&serde_json::json!({})),
    );
    assert_eq!(s, 422, "a rejection needs a reason");
    let (s, _) = rs.call(
        "POST",
        &format!("/v1/trains/{id2}/reject"),
        Some("st-1"),
        Some(&serde_json::json!({"reason": "the cohort is not available this week"})),
    );
    assert_eq!(s, 200);
    let (s, v) = rs.call("GET", &format!("/v1/trains/{id2}"), Some("creator"), None);
    assert_eq!((s, v["state"].as_str()), (200, Some("failed")));
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("the cohort is not available"),
        "{v}"
    );
    let (s, _) = rs.call(
        "POST",
        &format!("/v1/trains/{id2}/retry"),
        Some("creator"),
        None,
    );
    assert_eq!(s, 403, "retry is the admins'");
    let (s, v) = rs.call(
        "POST",
        &format!("/v1/trains/{id2}/retry"),
        Some("root"),
        None,
    );
    assert_eq!(s, 200, "{v}");
    rs.wait_state(&id2, "at_station", 30);
    let (s, v) = rs.call(
        "POST",
        &format!("/v1/trains/{id2}/cancel"),
        Some("creator"),
        None,
    );
    assert_eq!((s, v["state"].as_str()), (200, Some("cancelled")), "{v}");
    assert!(
        rs.inbox("st-1", 0).is_empty(),
        "a cancelled train leaves the inbox"
    );

    // SIGTERM stops the service cleanly.
    assert!(rs.terminate().success(), "{}", rs.log());
}
