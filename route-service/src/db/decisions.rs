//! Decisions on a hop other than moves and pushes: a station's reports (pulled, running,
//! failed), its operator's approval or rejection, cancellation, retry and expiry. Same rule as
//! `hops.rs`: the guarded write first, so a decision that does not apply changes nothing.

use super::events::{append, NewEvent};
use super::hops::{ReportOutcome, AT_STATION};
use super::trains::refresh;
use super::{Db, DbError};
use crate::clock::now_ms;
use route_wire::HopState;
use sqlx::Row;

impl Db {
    /// A station's report on its open hop of `train`.
    pub async fn station_report(
        &self,
        train: &str,
        station: &str,
        kind: &str,
        from: &[HopState],
        to: Option<HopState>,
        detail: String,
    ) -> Result<ReportOutcome, DbError> {
        let mut tx = self.pool.begin().await?;
        let list = from
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let (to_s, error) = match to {
            Some(s @ (HopState::Failed | HopState::Expired)) => (s.as_str(), Some(detail.as_str())),
            Some(s) => (s.as_str(), None),
            None => ("", None),
        };
        // `state = state` when the report changes nothing but is recorded (pulled).
        let n = sqlx::query(&format!(
            "UPDATE hops SET state = CASE WHEN $1 = '' THEN state ELSE $1 END, \
             last_error = COALESCE($2, last_error), updated_at = $3 \
             WHERE train_id = $4 AND station = $5 AND state IN ({list})"
        ))
        .bind(to_s)
        .bind(error)
        .bind(now_ms())
        .bind(train)
        .bind(station)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            drop(tx);
            let open = sqlx::query(&format!(
                "SELECT state FROM hops WHERE train_id = $1 AND station = $2 AND state IN {AT_STATION}"
            ))
            .bind(train)
            .bind(station)
            .fetch_optional(&self.pool)
            .await?;
            return Ok(ReportOutcome::Refused(match open {
                Some(r) => format!(
                    "train {train} is {} at {station}; `{kind}` does not apply",
                    r.try_get::<String, _>("state")?
                ),
                None => format!("train {train} is not at {station}"),
            }));
        }
        append(
            &mut tx,
            &NewEvent {
                train: Some(train),
                station: Some(station),
                kind,
                detail: detail.clone(),
            },
        )
        .await?;
        let reason =
            matches!(to, Some(HopState::Failed | HopState::Expired)).then_some(detail.as_str());
        refresh(&mut tx, train, reason).await?;
        tx.commit().await?;
        self.touch(Some(train), Some(station));
        Ok(ReportOutcome::Recorded)
    }

    /// Whether `station` already pushed `digest` as its state of `train` (its hop is done and
    /// the state after it is `digest`): a `done` report that arrives after the registry's
    /// notification is then answered as recorded, not refused as a replay.
    pub async fn pushed_by(
        &self,
        train: &str,
        station: &str,
        digest: &str,
    ) -> Result<bool, DbError> {
        let row = sqlx::query(
            "SELECT 1 AS x FROM hops h JOIN train_states s ON s.train_id = h.train_id AND s.seq = h.idx + 1 \
             WHERE h.train_id = $1 AND h.station = $2 AND h.state = 'done' AND s.digest = $3",
        )
        .bind(train)
        .bind(station)
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Cancels every open hop of `train`; false when it had already ended.
    pub async fn cancel_train(&self, train: &str, by: &str) -> Result<bool, DbError> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "UPDATE hops SET state = 'cancelled', lease_owner = NULL, updated_at = $1 \
             WHERE train_id = $2 AND state NOT IN ('done', 'failed', 'cancelled', 'expired')",
        )
        .bind(now_ms())
        .bind(train)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        let detail = format!("cancelled by {by}");
        append(
            &mut tx,
            &NewEvent {
                train: Some(train),
                station: None,
                kind: "cancelled",
                detail: detail.clone(),
            },
        )
        .await?;
        refresh(&mut tx, train, Some(&detail)).await?;
        tx.commit().await?;
        self.touch(Some(train), None);
        Ok(true)
    }

    /// Makes a failed or expired hop of `train` move again; false when no hop had failed. A
    /// hop that failed at its station (after delivery: its source was removed then) is
    /// delivered anew from the station's inbox copy, a no-op copy that records a new delivery.
    pub async fn retry_train(&self, train: &str, by: &str) -> Result<bool, DbError> {
        let failed = sqlx::query(
            "SELECT idx, source, target, delivered_at FROM hops \
             WHERE train_id = $1 AND state IN ('failed', 'expired') AND source IS NOT NULL",
        )
        .bind(train)
        .fetch_all(&self.pool)
        .await?;
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let mut n = 0;
        for r in failed {
            let (idx, source, target): (i64, String, String) = (
                r.try_get("idx")?,
                r.try_get("source")?,
                r.try_get("target")?,
            );
            let delivered: Option<i64> = r.try_get("delivered_at")?;
            let source = match (delivered, source.split_once('@'), target.rsplit_once(':')) {
                (Some(_), Some((_, digest)), Some((repo, _))) => format!("{repo}@{digest}"),
                _ => source,
            };
            n += sqlx::query(
                "UPDATE hops SET state = 'detected', source = $1, attempts = 0, next_attempt = 0, \
                 lease_owner = NULL, updated_at = $2, \
                 deadline = CASE WHEN deadline IS NULL THEN NULL ELSE $2 + (deadline - COALESCE(delivered_at, updated_at)) END \
                 WHERE train_id = $3 AND idx = $4 AND state IN ('failed', 'expired')",
            )
            .bind(&source)
            .bind(now)
            .bind(train)
            .bind(idx)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        if n == 0 {
            return Ok(false);
        }
        sqlx::query("UPDATE trains SET reason = NULL WHERE id = $1")
            .bind(train)
            .execute(&mut *tx)
            .await?;
        append(
            &mut tx,
            &NewEvent {
                train: Some(train),
                station: None,
                kind: "retried",
                detail: format!("retried by {by}"),
            },
        )
        .await?;
        refresh(&mut tx, train, None).await?;
        tx.commit().await?;
        self.touch(Some(train), None);
        Ok(true)
    }

    /// Expires hops at stations past their deadline; returns how many.
    pub async fn expire_hops(&self) -> Result<u64, DbError> {
        let now = now_ms();
        let rows = sqlx::query(&format!(
            "SELECT train_id, station FROM hops WHERE state IN {AT_STATION} AND deadline IS NOT NULL AND deadline < $1"
        ))
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut n = 0;
        for r in rows {
            let (train, station): (String, String) =
                (r.try_get("train_id")?, r.try_get("station")?);
            let from = [
                HopState::Delivered,
                HopState::AwaitingApproval,
                HopState::Approved,
                HopState::Running,
            ];
            let detail = format!("{station} did not push the train before its deadline");
            if self
                .station_report(
                    &train,
                    &station,
                    "expired",
                    &from,
                    Some(HopState::Expired),
                    detail,
                )
                .await?
                == ReportOutcome::Recorded
            {
                n += 1;
            }
        }
        Ok(n)
    }
}
