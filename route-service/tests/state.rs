//! The hop state machine against a real database: SQLite always; PostgreSQL as well when
//! `PHT_TEST_POSTGRES_URL` is set (`scripts/postgres.sh` starts one; `.ci/run` sets it).

use route_service::db::{Db, NewCreator, NewStation, NewTrain, Pushed, TrainFilter};
use route_service::machine::Step;
use route_wire::{Approval, Format, HopState, TrainState};
use route_wire::{Digest, EventKind, TrainId};
use std::collections::HashSet;
use train_image::ImageRef;

async fn databases() -> Vec<(tempfile::TempDir, Db)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Db::open(&format!("sqlite:{}", dir.path().join("s.db").display()))
        .await
        .unwrap();
    let mut v = vec![(dir, sqlite)];
    if let Ok(base) = std::env::var("PHT_TEST_POSTGRES_URL") {
        let name = uniq("state").replace('-', "_");
        let url = Db::create_database(&base, &name).await.unwrap();
        v.push((tempfile::tempdir().unwrap(), Db::open(&url).await.unwrap()));
    }
    v
}

/// A valid digest named by `label` (the test's own short names: d0, d1, …).
fn dg(label: &str) -> Digest {
    let h = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, label.as_bytes());
    Digest::parse(&format!("sha256:{}", hex::encode(h.as_ref()))).unwrap()
}

/// The image `repo@dg(label)` a station pushed.
fn pushed(repo: &str, label: &str) -> ImageRef {
    format!("r:1/{repo}@{}", dg(label)).parse().unwrap()
}

fn uniq(p: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "{p}-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// A creator, two stations and a train routed through them; returns (train, stations).
async fn scene(db: &Db, approval: Approval) -> (TrainId, Vec<String>) {
    scene_with_deadline(db, approval, 60_000).await
}

/// [`scene`] with each station hop's deadline.
async fn scene_with_deadline(
    db: &Db,
    approval: Approval,
    deadline_ms: i64,
) -> (TrainId, Vec<String>) {
    let creator = uniq("c");
    db.add_creator(
        &NewCreator {
            id: creator.parse().unwrap(),
            registry: "r:1".into(),
            namespace: creator.clone(),
            public_key: "pem".into(),
            fingerprint: "sha256:00".into(),
        },
        "h",
    )
    .await
    .unwrap();
    let mut stations = Vec::new();
    for _ in 0..2 {
        let s = uniq("s");
        db.add_station(
            &NewStation {
                id: s.parse().unwrap(),
                registry: "r:1".into(),
                namespace: s.clone(),
                public_key: "pem".into(),
                fingerprint: "sha256:00".into(),
                approval,
            },
            "h",
        )
        .await
        .unwrap();
        stations.push(s);
    }
    let train = uniq("t");
    let mut targets: Vec<_> = stations
        .iter()
        .map(|s| {
            (
                Some(s.parse().unwrap()),
                format!("r:1/{s}/inbox:{train}").parse().unwrap(),
            )
        })
        .collect();
    targets.push((
        None,
        format!("r:1/{creator}/results:{train}").parse().unwrap(),
    ));
    db.create_train(
        &NewTrain {
            id: train.parse().unwrap(),
            creator: creator.parse().unwrap(),
            format: Format::Native,
            route: stations.iter().map(|s| s.parse().unwrap()).collect(),
            digest: dg("d0"),
            source: pushed("c/submissions", "d0"),
            targets,
            detail: "test".into(),
        },
        deadline_ms,
    )
    .await
    .unwrap();
    (train.parse().unwrap(), stations)
}

async fn state(db: &Db, t: &str) -> (TrainState, Vec<HopState>) {
    let v = db.train_view(t, false).await.unwrap().unwrap();
    (v.state, v.hops.iter().map(|h| h.state).collect())
}

async fn claim_for(db: &Db, owner: &str, train: &str, lease: i64) -> route_service::db::Claimed {
    // Each test has its own database, but scenes within a test share it: claim until ours
    // comes (a foreign hop claimed here is simply left to expire).
    for _ in 0..1000 {
        if let Some(c) = db.claim_move(owner, lease).await.unwrap() {
            if c.train == train {
                return c;
            }
        } else {
            break;
        }
    }
    panic!("no move of {train} was claimable");
}

#[tokio::test]
async fn a_train_goes_the_whole_way_and_every_step_happens_once() {
    for (_d, db) in databases().await {
        let (t, st) = scene(&db, Approval::Auto).await;
        assert_eq!(state(&db, &t).await.0, TrainState::Submitted);
        let c = claim_for(&db, "w1", &t, 60_000).await;
        assert_eq!(c.idx, 0);
        assert!(
            db.complete_move(&c, "w2", Some(Approval::Auto), "x")
                .await
                .unwrap()
                .is_err(),
            "another owner cannot record it"
        );
        assert!(db
            .complete_move(&c, "w1", Some(Approval::Auto), "x")
            .await
            .unwrap()
            .is_ok());
        assert!(
            db.complete_move(&c, "w1", Some(Approval::Auto), "x")
                .await
                .unwrap()
                .is_err(),
            "recorded once"
        );
        assert_eq!(
            state(&db, &t).await,
            (
                TrainState::AtStation,
                vec![
                    HopState::Delivered,
                    HopState::WaitingPush,
                    HopState::WaitingPush
                ]
            )
        );

        // Not the second station's turn; not an older state; then the right push, once.
        let o = db
            .station_pushed(&t, &st[1], &pushed("x/outbox", "d1"), "test")
            .await
            .unwrap();
        assert!(matches!(&o, Err(w) if w.reason.contains("turn")), "{o:?}");
        let o = db
            .station_pushed(&t, &st[0], &pushed("x/outbox", "d0"), "test")
            .await
            .unwrap();
        assert!(
            matches!(&o, Err(w) if w.reason.contains("older state")),
            "{o:?}"
        );
        assert_eq!(
            db.station_pushed(&t, &st[0], &pushed("x/outbox", "d1"), "test")
                .await
                .unwrap(),
            Ok(Pushed::New)
        );
        let o = db
            .station_pushed(&t, &st[0], &pushed("x/outbox", "d1"), "test")
            .await
            .unwrap();
        assert_eq!(o, Ok(Pushed::Duplicate), "a duplicate changes nothing");
        assert_eq!(
            state(&db, &t).await.1[..2],
            [HopState::Done, HopState::Detected]
        );

        let c = claim_for(&db, "w1", &t, 60_000).await;
        assert_eq!(c.source, pushed("x/outbox", "d1"));
        assert!(db
            .complete_move(&c, "w1", Some(Approval::Auto), "x")
            .await
            .unwrap()
            .is_ok());
        assert_eq!(
            db.station_pushed(&t, &st[1], &pushed("y/outbox", "d2"), "test")
                .await
                .unwrap(),
            Ok(Pushed::New)
        );
        // The state st-1 received, pushed back by st-2: a replay, refused as such.
        let o = db
            .station_pushed(&t, &st[1], &pushed("y/outbox", "d1"), "test")
            .await
            .unwrap();
        assert!(
            matches!(&o, Err(w) if w.reason.contains("older state")),
            "{o:?}"
        );
        let c = claim_for(&db, "w1", &t, 60_000).await;
        assert_eq!(c.station, None);
        assert!(db.complete_move(&c, "w1", None, "x").await.unwrap().is_ok());
        let v = db.train_view(&t, true).await.unwrap().unwrap();
        assert_eq!(v.state, TrainState::Finished);
        assert_eq!(v.states, [dg("d0"), dg("d1"), dg("d2")]);
        let delivered = v
            .events
            .iter()
            .filter(|e| e.kind == EventKind::Delivered)
            .count();
        assert_eq!(delivered, 2);
        assert_eq!(
            v.events
                .iter()
                .filter(|e| e.kind == EventKind::Finished)
                .count(),
            1
        );
    }
}

#[tokio::test]
async fn a_crashed_movers_lease_is_taken_over_and_its_late_record_is_refused() {
    for (_d, db) in databases().await {
        let (t, _) = scene(&db, Approval::Auto).await;
        let first = claim_for(&db, "crashed", &t, 1).await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let second = claim_for(&db, "alive", &t, 60_000).await;
        assert_eq!((second.idx, second.attempts), (0, 2));
        assert!(db
            .complete_move(&second, "alive", Some(Approval::Auto), "x")
            .await
            .unwrap()
            .is_ok());
        assert!(db
            .complete_move(&first, "crashed", Some(Approval::Auto), "x")
            .await
            .unwrap()
            .is_err());
        let v = db.train_view(&t, true).await.unwrap().unwrap();
        assert_eq!(
            v.events
                .iter()
                .filter(|e| e.kind == EventKind::Delivered)
                .count(),
            1
        );
    }
}

#[tokio::test]
async fn concurrent_movers_never_claim_one_move_twice() {
    for (_d, db) in databases().await {
        let mut trains = HashSet::new();
        for _ in 0..12 {
            trains.insert(scene(&db, Approval::Auto).await.0);
        }
        let mut tasks = Vec::new();
        for w in 0..6 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(c) = db.claim_move(&format!("w{w}"), 60_000).await.unwrap() {
                    got.push((c.train, c.idx));
                }
                got
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let unique: HashSet<_> = all.iter().cloned().collect();
        assert_eq!(unique.len(), all.len(), "a move was claimed twice");
        for t in &trains {
            assert!(unique.contains(&(t.clone(), 0)), "{t} was never claimed");
        }
    }
}

#[tokio::test]
async fn manual_stations_hold_trains_until_approved_and_a_rejection_fails_the_train_with_its_reason(
) {
    for (_d, db) in databases().await {
        let (t, st) = scene(&db, Approval::Manual).await;
        let c = claim_for(&db, "w", &t, 60_000).await;
        assert!(db
            .complete_move(&c, "w", Some(Approval::Manual), "x")
            .await
            .unwrap()
            .is_ok());
        assert_eq!(state(&db, &t).await.1[0], HopState::AwaitingApproval);
        let o = db
            .station_pushed(&t, &st[0], &pushed("x/outbox", "d1"), "test")
            .await
            .unwrap();
        assert!(
            matches!(&o, Err(w) if w.reason.contains("approval")),
            "{o:?}"
        );
        let o = db
            .station_step(&t, &st[0], Step::Reject, "rejected by s: no".into())
            .await
            .unwrap();
        assert_eq!(o, Ok(()));
        let v = db.train_view(&t, false).await.unwrap().unwrap();
        assert_eq!(v.state, TrainState::Failed);
        assert_eq!(v.reason.as_deref(), Some("rejected by s: no"));
        assert!(db.retry_train(&t, "admin").await.unwrap().is_ok());
        assert_eq!(state(&db, &t).await.0, TrainState::InTransit);
    }
}

fn push(key: &str, digest: Result<Digest, route_wire::BadValue>) -> route_service::notify::Push {
    route_service::notify::Push {
        key: key.into(),
        repository: "s1/outbox".into(),
        tag: "t-1".parse().unwrap(),
        digest,
        actor: Some("s1".into()),
    }
}

#[tokio::test]
async fn a_notification_is_taken_once_and_logged_with_its_outcome() {
    for (_d, db) in databases().await {
        let k = uniq("event");
        let d = Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap();
        assert!(db
            .first_notification("r:1", &push(&k, Ok(d.clone())))
            .await
            .unwrap());
        assert!(!db
            .first_notification("r:1", &push(&k, Ok(d.clone())))
            .await
            .unwrap());
        assert!(
            db.first_notification("r:2", &push(&k, Ok(d.clone())))
                .await
                .unwrap(),
            "keys are per registry"
        );
        // What a registry sends instead of a digest is kept, escaped and capped.
        let junk = Digest::parse(&format!("\u{1b}[31m{}", "x".repeat(5000))).unwrap_err();
        let k2 = uniq("event");
        assert!(db
            .first_notification("r:1", &push(&k2, Err(junk)))
            .await
            .unwrap());
        db.notification_outcome(
            "r:1",
            &k,
            "accepted: s1/outbox pushed train t-1; it moves on",
        )
        .await
        .unwrap();
        let log = db.notifications(Some("r:1"), 100).await.unwrap();
        assert_eq!(log.len(), 2, "{log:?}");
        assert!(log.iter().all(|n| n.registry == "r:1"));
        let first = log.iter().find(|n| n.event_key == k).unwrap();
        assert_eq!(first.digest.as_deref(), Some(d.as_str()));
        assert_eq!(
            (first.tag.as_deref(), first.actor.as_deref()),
            (Some("t-1"), Some("s1"))
        );
        assert!(first.outcome.as_deref().unwrap().starts_with("accepted"));
        let second = log.iter().find(|n| n.event_key == k2).unwrap();
        let shown = second.digest.as_deref().unwrap();
        assert!(
            shown.starts_with("\\u{1b}[31mxxx") && shown.len() <= 300,
            "{shown}"
        );
        assert_eq!(second.outcome, None, "no outcome yet");
        assert_eq!(db.notifications(None, 100).await.unwrap().len(), 3);
        assert_eq!(db.notifications(None, 1).await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn a_hop_past_its_deadline_expires_and_fails_the_train() {
    for (_d, db) in databases().await {
        let (t, st) = scene_with_deadline(&db, Approval::Auto, 1).await;
        let s = st[0].clone();
        let c = claim_for(&db, "w", &t, 60_000).await;
        assert!(db
            .complete_move(&c, "w", Some(Approval::Auto), "x")
            .await
            .unwrap()
            .is_ok());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(db.expire_hops().await.unwrap() >= 1);
        let v = db.train_view(&t, false).await.unwrap().unwrap();
        assert_eq!(
            (v.state, v.hops[0].state),
            (TrainState::Failed, HopState::Expired)
        );
        assert!(v.reason.unwrap().contains("deadline"));
        let o = db
            .station_pushed(&t, &s, &pushed("x/outbox", "d1"), "test")
            .await
            .unwrap();
        assert!(o.is_err(), "an expired hop takes no push");
    }
}

#[tokio::test]
async fn a_list_shows_each_train_as_its_own_view_does_and_filters_by_state_creator_and_station() {
    for (_d, db) in databases().await {
        // t1 at its first station, pushed there, and moved on: two states, hops in three
        // states. The others come after, so that no claim here takes their first moves.
        let (t1, st1) = scene(&db, Approval::Auto).await;
        let c = claim_for(&db, "w1", &t1, 60_000).await;
        assert!(db
            .complete_move(&c, "w1", Some(Approval::Auto), "x")
            .await
            .unwrap()
            .is_ok());
        let pushed = db
            .station_pushed(&t1, &st1[0], &pushed("x/outbox", "d1"), "test")
            .await
            .unwrap();
        assert_eq!(pushed, Ok(Pushed::New));
        let c = claim_for(&db, "w1", &t1, 60_000).await;
        assert!(db
            .complete_move(&c, "w1", Some(Approval::Auto), "x")
            .await
            .unwrap()
            .is_ok());
        let (t2, st2) = scene(&db, Approval::Auto).await;
        let (t3, _) = scene(&db, Approval::Auto).await;

        let list = |f: TrainFilter| {
            let db = &db;
            async move { db.trains(&f).await.unwrap() }
        };
        let all = list(TrainFilter::default()).await;
        let ids: HashSet<_> = all.iter().map(|v| v.id.clone()).collect();
        assert_eq!(ids, HashSet::from([t1.clone(), t2.clone(), t3.clone()]));
        for v in &all {
            let alone = db.train_view(&v.id, false).await.unwrap().unwrap();
            assert_eq!(
                serde_json::to_value(v).unwrap(),
                serde_json::to_value(&alone).unwrap(),
                "the listed view of {} is its own view",
                v.id
            );
        }
        let v1 = all.iter().find(|v| v.id == t1).unwrap();
        assert_eq!(v1.states, [dg("d0"), dg("d1")]);
        assert_eq!(
            v1.hops.iter().map(|h| h.state).collect::<Vec<_>>(),
            [HopState::Done, HopState::Delivered, HopState::WaitingPush]
        );

        let only = |v: Vec<route_wire::TrainView>| v.into_iter().map(|v| v.id).collect::<Vec<_>>();
        let creator2 = db.train_view(&t2, false).await.unwrap().unwrap().creator;
        let by_creator = TrainFilter {
            creator: Some(creator2),
            ..TrainFilter::default()
        };
        assert_eq!(only(list(by_creator).await), [t2.as_str()]);
        let at = |s: &str| TrainFilter {
            station: Some(s.parse().unwrap()),
            ..TrainFilter::default()
        };
        assert_eq!(only(list(at(&st1[1])).await), [t1.as_str()], "its open hop");
        assert!(list(at(&st1[0])).await.is_empty(), "done there");
        assert!(list(at(&st2[0])).await.is_empty(), "not delivered yet");
        let in_state = |s: TrainState| TrainFilter {
            state: Some(s),
            ..TrainFilter::default()
        };
        assert_eq!(
            only(list(in_state(TrainState::AtStation)).await),
            [t1.as_str()]
        );
        let submitted: HashSet<_> = only(list(in_state(TrainState::Submitted)).await)
            .into_iter()
            .collect();
        assert_eq!(submitted, HashSet::from([t2.clone(), t3.clone()]));
    }
}

/// Issue 19, hole 2: nothing stopped two parties from sharing a (registry, namespace), or a
/// namespace that is not a repository path; grants follow the namespace.
#[tokio::test]
async fn a_namespace_is_one_party_s_on_its_registry_and_a_repository_path() {
    for (_dir, db) in databases().await {
        let ns = uniq("ns");
        let station = |id: &str, registry: &str, namespace: &str| NewStation {
            id: id.parse().unwrap(),
            registry: registry.into(),
            namespace: namespace.into(),
            public_key: "pem".into(),
            fingerprint: "sha256:00".into(),
            approval: Approval::Auto,
        };
        let a = uniq("a");
        db.add_station(&station(&a, "r:1", &ns), "h").await.unwrap();
        // The same namespace on the same registry: another station, or a creator.
        let e = db
            .add_station(&station(&uniq("b"), "r:1", &ns), "h")
            .await
            .unwrap_err();
        assert!(
            matches!(&e, route_service::db::DbError::Conflict(m) if m.contains(&a)),
            "{e}"
        );
        let e = db
            .add_creator(
                &NewCreator {
                    id: uniq("c").parse().unwrap(),
                    registry: "r:1".into(),
                    namespace: ns.clone(),
                    public_key: "pem".into(),
                    fingerprint: "sha256:00".into(),
                },
                "h",
            )
            .await
            .unwrap_err();
        assert!(matches!(e, route_service::db::DbError::Conflict(_)), "{e}");
        // On another registry it is another party's to have.
        db.add_station(&station(&uniq("d"), "r:2", &ns), "h")
            .await
            .unwrap();
        for bad in ["", "Upper", "a/../b", "a//b", "a/", "-a", "a b"] {
            let e = db
                .add_station(&station(&uniq("e"), "r:3", bad), "h")
                .await
                .unwrap_err();
            assert!(
                matches!(&e, route_service::db::DbError::Invalid(m) if m.contains("not a repository path")),
                "{bad:?}: {e}"
            );
        }
    }
}

/// Issue 19: a file that is not a database gave a 30 s pool timeout and "timed out".
#[tokio::test]
async fn a_file_that_is_not_a_database_is_named_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("route.db");
    std::fs::write(&f, b"this is a text file, not a database\n").unwrap();
    let t = std::time::Instant::now();
    let e = Db::open(&format!("sqlite:{}", f.display()))
        .await
        .err()
        .expect("refused");
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
    assert!(e.to_string().contains("is not an SQLite database"), "{e}");
}

/// Issue 19: `/readyz` said ready while the database could not be written. Its probe commits a
/// write and, for SQLite, wants room on the file system: a database on an 8 MiB file system
/// is not ready, and says why.
#[tokio::test]
async fn a_database_without_room_to_write_is_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(ok.success(), "mounting a tmpfs (the tests run as root)");
    let db = Db::open(&format!("sqlite:{}", mnt.join("route.db").display()))
        .await
        .unwrap();
    let e = db.ping().await.unwrap_err().to_string();
    db.close().await;
    let _ = std::process::Command::new("umount").arg(&mnt).status();
    assert!(e.contains("MiB free"), "{e}");
    // And a database with room is ready.
    let db = Db::open(&format!("sqlite:{}", dir.path().join("ok.db").display()))
        .await
        .unwrap();
    db.ping().await.unwrap();
}

/// SQLite's backup as the README documents it (`sqlite3 route.db "VACUUM INTO 'backup.db'"`,
/// the same SQL here), taken while the service holds the database open and a train is in
/// flight: the copy opens as a database of its own with the train where it was, and it goes
/// on from there.
#[tokio::test]
async fn a_sqlite_backup_taken_live_restores_with_the_train_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let live = Db::open(&format!("sqlite:{}", dir.path().join("route.db").display()))
        .await
        .unwrap();
    let (t, st) = scene(&live, Approval::Auto).await;
    let c = claim_for(&live, "m1", &t, 30_000).await;
    live.complete_move(&c, "m1", Some(Approval::Auto), "x")
        .await
        .unwrap()
        .unwrap();
    let before = state(&live, &t).await;
    let copy = dir.path().join("backup.db");
    sqlx::query(&format!("VACUUM INTO '{}'", copy.display()))
        .execute(live.pool())
        .await
        .unwrap();
    live.close().await;
    std::fs::remove_file(dir.path().join("route.db")).unwrap();
    let restored = Db::open(&format!("sqlite:{}", copy.display()))
        .await
        .unwrap();
    assert_eq!(state(&restored, &t).await, before);
    assert!(restored.station(&st[0]).await.unwrap().is_some());
    // The train goes on: the first station's push counts.
    let p = restored
        .station_pushed(&t, &st[0], &pushed("x/outbox", "after-restore"), "test")
        .await
        .unwrap();
    assert_eq!(p, Ok(Pushed::New));
}

/// Undoes migrations 0004 and 0003 on a migrated database: what the releases before the
/// dashboard and the namespace rules left.
async fn as_previous_release(db: &Db) {
    for sql in [
        "DROP INDEX notifications_received",
        "ALTER TABLE notifications DROP COLUMN repository",
        "ALTER TABLE notifications DROP COLUMN tag",
        "ALTER TABLE notifications DROP COLUMN digest",
        "ALTER TABLE notifications DROP COLUMN actor",
        "ALTER TABLE notifications DROP COLUMN outcome",
        "DELETE FROM _sqlx_migrations WHERE version = 5",
        "DROP INDEX ui_sessions_expiry",
        "DROP TABLE ui_sessions",
        "DELETE FROM _sqlx_migrations WHERE version = 4",
        "DROP INDEX stations_registry_namespace",
        "DROP INDEX creators_registry_namespace",
        "DROP TABLE probe",
        "DELETE FROM _sqlx_migrations WHERE version = 3",
    ] {
        sqlx::query(sql).execute(db.pool()).await.unwrap();
    }
}

/// The upgrade: a database the previous release made (its schema, a train in flight) opens
/// with this one, migrates, and the train goes on; one holding data the new schema forbids
/// (two stations on one registry and namespace) stops with what to do and changes nothing.
#[tokio::test]
async fn a_database_of_the_previous_schema_migrates_and_its_trains_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut urls = vec![
        format!("sqlite:{}", dir.path().join("old.db").display()),
        format!("sqlite:{}", dir.path().join("dup.db").display()),
    ];
    if let Ok(base) = std::env::var("PHT_TEST_POSTGRES_URL") {
        for n in ["old", "dup"] {
            let name = uniq(&format!("upgrade-{n}")).replace('-', "_");
            urls.push(Db::create_database(&base, &name).await.unwrap());
        }
    }
    for url in urls {
        let db = Db::open(&url).await.unwrap();
        let (t, st) = scene(&db, Approval::Auto).await;
        let c = claim_for(&db, "m1", &t, 30_000).await;
        db.complete_move(&c, "m1", Some(Approval::Auto), "x")
            .await
            .unwrap()
            .unwrap();
        let before = state(&db, &t).await;
        as_previous_release(&db).await;
        let dup = url.contains("dup");
        if dup {
            // The previous release let a second station take st[0]'s namespace.
            sqlx::query("INSERT INTO principals (id, role, key_hash, created_at) VALUES ('twin', 'station', 'h', 0)")
                .execute(db.pool())
                .await
                .unwrap();
            sqlx::query(&format!(
                "INSERT INTO stations (id, registry, namespace, public_key, fingerprint, approval) VALUES ('twin', 'r:1', '{}', 'pem', 'sha256:00', 'auto')",
                st[0]
            ))
            .execute(db.pool())
            .await
            .unwrap();
        }
        db.close().await;
        match Db::open(&url).await {
            Ok(db) => {
                assert!(!dup, "the upgrade let two stations share a namespace");
                assert_eq!(state(&db, &t).await, before);
                db.ping().await.unwrap();
                assert_eq!(
                    db.station_pushed(&t, &st[0], &pushed("x/outbox", "upgraded"), "test")
                        .await
                        .unwrap(),
                    Ok(Pushed::New)
                );
            }
            Err(e) => {
                assert!(dup, "{url}: {e}");
                let e = e.to_string();
                assert!(
                    e.contains("remove one") && e.contains("changed nothing"),
                    "{e}"
                );
            }
        }
    }
}
