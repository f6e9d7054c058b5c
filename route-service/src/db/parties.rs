//! Principals (API keys and roles), stations and creators.

use super::{conflict, parse_col, Db, DbError};
use crate::clock::now_ms;
use route_wire::{Approval, CreatorId, CreatorView, Liveness, Role, StationId, StationView};
use sqlx::any::AnyRow;
use sqlx::Row;

/// A station to register.
#[derive(Debug, Clone)]
pub struct NewStation {
    /// Its id (the id grammar of trains' routes).
    pub id: StationId,
    /// Its registry `host:port`.
    pub registry: String,
    /// Its namespace there.
    pub namespace: String,
    /// Its public key, PEM.
    pub public_key: String,
    /// The key's `sha256:` fingerprint.
    pub fingerprint: String,
    /// How it takes trains.
    pub approval: Approval,
}

/// A registered station.
#[derive(Debug, Clone)]
pub struct StationRow {
    /// Its id.
    pub id: StationId,
    /// Its registry.
    pub registry: String,
    /// Its namespace.
    pub namespace: String,
    /// Its public key, PEM.
    pub public_key: String,
    /// The key's fingerprint.
    pub fingerprint: String,
    /// How it takes trains.
    pub approval: Approval,
    /// Unix ms of its last poll.
    pub last_seen: Option<i64>,
    /// The fingerprint of a proposed next key no admin has accepted yet.
    pub pending_fingerprint: Option<String>,
}

impl StationRow {
    fn from_row(r: &AnyRow) -> Result<Self, DbError> {
        Ok(Self {
            id: parse_col(r, "id")?,
            registry: r.try_get("registry")?,
            namespace: r.try_get("namespace")?,
            public_key: r.try_get("public_key")?,
            fingerprint: r.try_get("fingerprint")?,
            approval: parse_col(r, "approval")?,
            last_seen: r.try_get("last_seen")?,
            pending_fingerprint: r.try_get("pending_fingerprint")?,
        })
    }

    /// The API's view; `offline_after_ms` decides online/offline.
    pub fn view(&self, offline_after_ms: i64) -> StationView {
        let liveness = match self.last_seen {
            None => Liveness::NeverSeen,
            Some(t) if now_ms() - t <= offline_after_ms => Liveness::Online,
            Some(_) => Liveness::Offline,
        };
        StationView {
            id: self.id.clone(),
            registry: self.registry.clone(),
            namespace: self.namespace.clone(),
            fingerprint: self.fingerprint.clone(),
            approval: self.approval,
            liveness,
            last_seen: self.last_seen,
        }
    }
}

/// A creator to register.
#[derive(Debug, Clone)]
pub struct NewCreator {
    /// Its id (the id its trains' configurations name).
    pub id: CreatorId,
    /// Its registry `host:port`.
    pub registry: String,
    /// Its namespace (submissions and results repositories).
    pub namespace: String,
    /// Its public key, PEM.
    pub public_key: String,
    /// The key's fingerprint.
    pub fingerprint: String,
}

/// A registered creator.
pub type CreatorRow = NewCreator;

impl NewCreator {
    fn from_row(r: &AnyRow) -> Result<Self, DbError> {
        Ok(Self {
            id: parse_col(r, "id")?,
            registry: r.try_get("registry")?,
            namespace: r.try_get("namespace")?,
            public_key: r.try_get("public_key")?,
            fingerprint: r.try_get("fingerprint")?,
        })
    }

    /// The API's view.
    pub fn view(&self) -> CreatorView {
        CreatorView {
            id: self.id.clone(),
            fingerprint: self.fingerprint.clone(),
            registry: self.registry.clone(),
            namespace: self.namespace.clone(),
        }
    }
}

impl Db {
    async fn add_principal(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        id: &str,
        role: Role,
        key_hash: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO principals (id, role, key_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(role.as_str())
        .bind(key_hash)
        .bind(now_ms())
        .execute(&mut **tx)
        .await
        .map_err(|e| {
            conflict(e, || {
                format!(
                    "the id `{id}` is taken (ids are unique across admins, stations and creators)"
                )
            })
        })?;
        Ok(())
    }

    /// Registers an administrator with the hash of its API key.
    pub async fn add_admin(&self, id: &str, key_hash: &str) -> Result<(), DbError> {
        let mut tx = self.begin_write().await?;
        self.add_principal(&mut tx, id, Role::Admin, key_hash)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The role and key hash of `id`.
    pub async fn principal(&self, id: &str) -> Result<Option<(Role, String)>, DbError> {
        let row = sqlx::query("SELECT role, key_hash FROM principals WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((parse_col(&r, "role")?, r.try_get("key_hash")?)))
            .transpose()
    }

    /// Replaces `id`'s key hash (a rotated API key).
    pub async fn set_key_hash(&self, id: &str, key_hash: &str) -> Result<(), DbError> {
        let n = sqlx::query("UPDATE principals SET key_hash = $1 WHERE id = $2")
            .bind(key_hash)
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(DbError::NotFound(format!("no principal `{id}`")));
        }
        Ok(())
    }

    /// Registers a station.
    pub async fn add_station(&self, s: &NewStation, key_hash: &str) -> Result<(), DbError> {
        check_namespace(&s.namespace)?;
        let mut tx = self.begin_write().await?;
        // The write first: on SQLite it takes the write lock (waiting for it), so the check
        // below reads what no one else can change before the commit. A read first held a
        // snapshot that a concurrent writer made stale: "database is locked", at once.
        self.add_principal(&mut tx, &s.id, Role::Station, key_hash)
            .await?;
        namespace_free(&mut tx, &s.registry, &s.namespace).await?;
        sqlx::query(
            "INSERT INTO stations (id, registry, namespace, public_key, fingerprint, approval) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(s.id.as_str())
        .bind(&s.registry)
        .bind(&s.namespace)
        .bind(&s.public_key)
        .bind(&s.fingerprint)
        .bind(s.approval.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes a station: its API key stops working at once; trains whose route names it can
    /// no longer be submitted. Trains already in flight to it fail at its hop.
    pub async fn remove_station(&self, id: &str) -> Result<(), DbError> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query("UPDATE stations SET removed = 1 WHERE id = $1 AND removed = 0")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(DbError::NotFound(format!("no station `{id}`")));
        }
        // The principal row stays (its id is referenced) but no key can match this hash.
        sqlx::query("UPDATE principals SET key_hash = 'removed' WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// One station (not removed).
    pub async fn station(&self, id: &str) -> Result<Option<StationRow>, DbError> {
        let row = sqlx::query("SELECT * FROM stations WHERE id = $1 AND removed = 0")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(StationRow::from_row).transpose()
    }

    /// The station whose `namespace` on `registry` this is.
    pub async fn station_by_namespace(
        &self,
        registry: &str,
        namespace: &str,
    ) -> Result<Option<StationRow>, DbError> {
        let row = sqlx::query(
            "SELECT * FROM stations WHERE registry = $1 AND namespace = $2 AND removed = 0",
        )
        .bind(registry)
        .bind(namespace)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(StationRow::from_row).transpose()
    }

    /// Every station, by id.
    pub async fn stations(&self) -> Result<Vec<StationRow>, DbError> {
        let rows = sqlx::query("SELECT * FROM stations WHERE removed = 0 ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(StationRow::from_row).collect()
    }

    /// Records that `id` polled now.
    pub async fn touch_station(&self, id: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE stations SET last_seen = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Registers a creator.
    pub async fn add_creator(&self, c: &NewCreator, key_hash: &str) -> Result<(), DbError> {
        check_namespace(&c.namespace)?;
        let mut tx = self.begin_write().await?;
        // The write first: on SQLite it takes the write lock (waiting for it), so the check
        // below reads what no one else can change before the commit. A read first held a
        // snapshot that a concurrent writer made stale: "database is locked", at once.
        self.add_principal(&mut tx, &c.id, Role::Creator, key_hash)
            .await?;
        namespace_free(&mut tx, &c.registry, &c.namespace).await?;
        sqlx::query(
            "INSERT INTO creators (id, registry, namespace, public_key, fingerprint) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(c.id.as_str())
        .bind(&c.registry)
        .bind(&c.namespace)
        .bind(&c.public_key)
        .bind(&c.fingerprint)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// One creator.
    pub async fn creator(&self, id: &str) -> Result<Option<CreatorRow>, DbError> {
        let row = sqlx::query("SELECT * FROM creators WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(NewCreator::from_row).transpose()
    }

    /// Every creator, by id.
    pub async fn creators(&self) -> Result<Vec<CreatorRow>, DbError> {
        let rows = sqlx::query("SELECT * FROM creators ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(NewCreator::from_row).collect()
    }
}

/// A namespace is the first part of repository paths (`<ns>/inbox`): it must make canonical
/// ones (a registry that normalised `A/../b` would serve another party's repository).
fn check_namespace(ns: &str) -> Result<(), DbError> {
    if ns.is_empty() || !crate::token::is_canonical_repository(&format!("{ns}/inbox")) {
        return Err(DbError::Invalid(format!(
            "namespace {:?} is not a repository path: lower-case letters and digits, joined by `.`, `_`, `__` or `-`, components separated by `/`",
            ns.escape_debug().to_string()
        )));
    }
    Ok(())
}

/// A (registry, namespace) belongs to one party, station or creator: grants follow it.
async fn namespace_free(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    registry: &str,
    ns: &str,
) -> Result<(), DbError> {
    let taken = sqlx::query(
        "SELECT id FROM stations WHERE registry = $1 AND namespace = $2 AND removed = 0 \
         UNION ALL SELECT id FROM creators WHERE registry = $1 AND namespace = $2",
    )
    .bind(registry)
    .bind(ns)
    .fetch_optional(&mut **tx)
    .await?;
    match taken {
        Some(row) => {
            let id: String = row.try_get("id")?;
            Err(DbError::Conflict(format!(
                "namespace {ns} on {registry} is {id}'s already: give each party its own"
            )))
        }
        None => Ok(()),
    }
}
