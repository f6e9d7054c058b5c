//! What several of the service's test files set up the same way: parties registered straight
//! in the database, each with a fresh API key; trains delivered to their first station; the
//! service running on a port.

#![allow(dead_code)] // each test file uses some of these

use route_service::auth::{key_hash, new_key};
use route_service::config::Config;
use route_service::db::{Db, NewCreator, NewStation, NewTrain};
use route_service::serve::Service;
use route_wire::{Approval, Digest, Format};
use tokio_util::sync::CancellationToken;

/// Registers admin `id`; its API key.
pub async fn admin(db: &Db, id: &str) -> String {
    let key = new_key();
    db.add_admin(id, &key_hash(id, &key)).await.unwrap();
    key
}

/// Registers creator `id` on `registry` (namespace = id); its API key.
pub async fn creator(db: &Db, id: &str, registry: &str) -> String {
    let key = new_key();
    db.add_creator(
        &NewCreator {
            id: id.parse().unwrap(),
            registry: registry.into(),
            namespace: id.into(),
            public_key: "pem".into(),
            fingerprint: "sha256:00".into(),
        },
        &key_hash(id, &key),
    )
    .await
    .unwrap();
    key
}

/// Registers station `id` on `registry` (namespace = id) with `approval` and key
/// `fingerprint`; its API key.
pub async fn station(
    db: &Db,
    id: &str,
    registry: &str,
    approval: Approval,
    fingerprint: &str,
) -> String {
    let key = new_key();
    db.add_station(
        &NewStation {
            id: id.parse().unwrap(),
            registry: registry.into(),
            namespace: id.into(),
            public_key: "pem".into(),
            fingerprint: fingerprint.into(),
            approval,
        },
        &key_hash(id, &key),
    )
    .await
    .unwrap();
    key
}

/// `sha256:` and 64 times `c`.
pub fn dg(c: char) -> Digest {
    Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
}

/// A train of `creator`'s along st-1 alone, delivered there with `approval` (its next hop
/// waiting for st-1's push, or for its operator).
pub async fn train_at_st1(db: &Db, id: &str, creator: &str, approval: Approval) {
    let targets = vec![
        (
            Some("st-1".parse().unwrap()),
            format!("127.0.0.1:1/st-1/inbox:{id}").parse().unwrap(),
        ),
        (
            None,
            format!("127.0.0.1:1/{creator}/results:{id}")
                .parse()
                .unwrap(),
        ),
    ];
    db.create_train(
        &NewTrain {
            id: id.parse().unwrap(),
            creator: creator.parse().unwrap(),
            format: Format::Native,
            route: vec!["st-1".parse().unwrap()],
            digest: dg('a'),
            source: format!("127.0.0.1:1/{creator}/submissions@{}", dg('a'))
                .parse()
                .unwrap(),
            targets,
            detail: "test".into(),
        },
        3_600_000,
    )
    .await
    .unwrap();
    let c = db.claim_move("test", 3_600_000).await.unwrap().unwrap();
    assert_eq!(c.train, id);
    db.complete_move(&c, "test", Some(approval), "test")
        .await
        .unwrap()
        .unwrap();
}

/// The service of `config` (TOML, secrets loaded) on a free port: its URL, and the token
/// that stops it.
pub async fn serve(config: &str) -> (String, CancellationToken) {
    let mut cfg: Config = toml::from_str(config).unwrap();
    cfg.load_secrets().unwrap();
    let svc = Service::bind(cfg).await.unwrap();
    let url = format!("http://{}", svc.addr());
    let stop = CancellationToken::new();
    tokio::spawn(svc.run(stop.clone()));
    (url, stop)
}
