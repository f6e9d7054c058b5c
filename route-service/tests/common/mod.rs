//! What several of the service's test files set up the same way: parties registered straight
//! in the database, each with a fresh API key.

#![allow(dead_code)] // each test file uses some of these

use route_service::auth::{key_hash, new_key};
use route_service::db::{Db, NewCreator, NewStation};
use route_wire::Approval;

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
