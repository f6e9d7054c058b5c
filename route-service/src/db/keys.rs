//! A station's own settings: its proposed next key (accepted by an admin) and how it takes
//! trains. Both are recorded as station events, so the history says who changed what.

use super::events::{append, NewEvent};
use super::{Db, DbError};
use route_wire::{Approval, EventKind};
use sqlx::Row;

impl Db {
    /// Records `public_key` (PEM, fingerprint `fingerprint`) as station `id`'s proposed next
    /// key, replacing an earlier proposal.
    pub async fn propose_key(
        &self,
        id: &str,
        public_key: &str,
        fingerprint: &str,
    ) -> Result<(), DbError> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE stations SET pending_public_key = $1, pending_fingerprint = $2 \
             WHERE id = $3 AND removed = 0",
        )
        .bind(public_key)
        .bind(fingerprint)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(DbError::NotFound(format!("no station `{id}`")));
        }
        let detail = format!("{id} proposed a new key {fingerprint}; an admin accepts it with `route-service station accept-key {id} --fingerprint {fingerprint}`");
        append(&mut tx, &station_event(id, EventKind::KeyProposed, detail)).await?;
        tx.commit().await?;
        self.touch(None, Some(id));
        Ok(())
    }

    /// Makes the proposed key station `id`'s key, if its fingerprint is `fingerprint` (what the
    /// admin was told out of band). Returns the old fingerprint.
    pub async fn accept_key(&self, id: &str, fingerprint: &str) -> Result<String, DbError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "SELECT fingerprint, pending_fingerprint FROM stations WHERE id = $1 AND removed = 0",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| DbError::NotFound(format!("no station `{id}`")))?;
        let old: String = row.try_get("fingerprint")?;
        let pending: Option<String> = row.try_get("pending_fingerprint")?;
        match pending {
            None => {
                return Err(DbError::State(format!(
                    "station {id} has proposed no new key; its operator runs `station keys rotate` first"
                )))
            }
            Some(p) if p != fingerprint => {
                return Err(DbError::State(format!(
                    "station {id} proposed {p}, not {fingerprint}: do not accept it until its operator confirms the fingerprint `station keys show` prints"
                )))
            }
            Some(_) => {}
        }
        sqlx::query(
            "UPDATE stations SET public_key = pending_public_key, fingerprint = pending_fingerprint, \
             pending_public_key = NULL, pending_fingerprint = NULL WHERE id = $1",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let detail = format!("key of {id} rotated from {old} to {fingerprint}; trains built for the old key fail at {id} with a message naming both");
        append(&mut tx, &station_event(id, EventKind::KeyRotated, detail)).await?;
        tx.commit().await?;
        self.touch(None, Some(id));
        Ok(old)
    }

    /// Sets how station `id` takes trains; trains already delivered keep their state.
    pub async fn set_approval(&self, id: &str, approval: Approval) -> Result<(), DbError> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE stations SET approval = $1 WHERE id = $2 AND removed = 0 AND approval <> $1",
        )
        .bind(approval.as_str())
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n > 0 {
            let detail = format!("{id} takes trains with `{approval}` approval from now on");
            append(&mut tx, &station_event(id, EventKind::ApprovalSet, detail)).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

fn station_event<'a>(id: &'a str, kind: EventKind, detail: String) -> NewEvent<'a> {
    NewEvent {
        train: None,
        station: Some(id),
        kind,
        detail,
    }
}
