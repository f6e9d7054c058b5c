//! Transactions that read before they write, beside other writers, on SQLite: none may fail
//! with "database is locked". (CI failed so once: accepting a key read the station's row, then
//! its write found that the station's own `last_seen` had been written meanwhile, and a
//! deferred transaction cannot upgrade a stale snapshot; SQLite answers at once, without
//! waiting. Every writing transaction now begins `IMMEDIATE`.)

mod common;

use route_service::db::Db;
use route_wire::Approval;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn key_rotations_beside_last_seen_writes_never_hit_a_locked_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&format!("sqlite:{}", dir.path().join("l.db").display()))
        .await
        .unwrap();
    common::station(&db, "st-1", "r:1", Approval::Auto, "sha256:00").await;
    // The station polls (each poll writes last_seen) while its key is rotated over and over:
    // 200 rotations, each a propose then an accept that reads the row before writing it.
    let polling = {
        let db = db.clone();
        tokio::spawn(async move {
            for _ in 0..4_000 {
                db.touch_station("st-1").await.unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    let rotating = (0..2).map(|t| {
        let db = db.clone();
        tokio::spawn(async move {
            for i in 0..100 {
                let fp = format!("sha256:{t}-{i}");
                db.propose_key("st-1", "pem", &fp).await.unwrap();
                // The other task may have proposed in between: then this fingerprint is not
                // the pending one and the answer is a refusal, never a lock error.
                if let Err(e) = db.accept_key("st-1", &fp).await {
                    let e = e.to_string();
                    assert!(e.contains("proposed") && !e.contains("locked"), "{e}");
                }
            }
        })
    });
    for r in rotating.collect::<Vec<_>>() {
        r.await.unwrap();
    }
    polling.await.unwrap();
}
