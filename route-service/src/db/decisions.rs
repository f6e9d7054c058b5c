//! Decisions on a hop other than moves and pushes: a station's reports (pulled, running,
//! failed, interrupted), its operator's approval or rejection, cancellation, retry and
//! expiry. Each is a [`Step`] of [`crate::machine`], applied through [`super::apply`].

use super::apply::{apply, record, why_not, Applied, Transition, Val, Which};
use super::{Db, DbError};
use crate::clock::now_ms;
use crate::machine::Step;
use route_wire::{EventKind, HopState};
use sqlx::Row;
use train_image::ImageRef;

impl Db {
    /// `step` (a station's report or its operator's decision) on `station`'s hop of `train`,
    /// recorded with `detail`. A step that fails the train keeps `detail` as its reason.
    pub async fn station_step(
        &self,
        train: &str,
        station: &str,
        step: Step,
        detail: String,
    ) -> Result<Applied, DbError> {
        let fails = matches!(step.rule().to, Some(HopState::Failed | HopState::Expired));
        let mut t = Transition::new(step, train, Which::Station(station))
            .event(Some(station), detail.clone());
        if fails {
            t = t.set("last_error", Val::Text(&detail)).reason(&detail);
        }
        self.transition(t, Some(station)).await
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
        let row = sqlx::query(&format!(
            "SELECT 1 AS x FROM hops h JOIN train_states s ON s.train_id = h.train_id AND s.seq = h.idx + 1 \
             WHERE h.train_id = $1 AND h.station = $2 AND h.{} AND s.digest = $3",
            crate::machine::in_list(&[HopState::Done])
        ))
        .bind(train)
        .bind(station)
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Cancels every open hop of `train`; does not apply when it had already ended.
    pub async fn cancel_train(&self, train: &str, by: &str) -> Result<Applied, DbError> {
        let detail = format!("cancelled by {by}");
        let t = Transition::new(Step::Cancel, train, Which::All)
            .set("lease_owner", Val::OptText(None))
            .event(None, detail.clone())
            .reason(&detail);
        let out = self.transition(t, None).await?;
        Ok(out.map_err(|mut n| {
            n.reason = format!("train {train} has already ended");
            n
        }))
    }

    /// Makes a failed or expired hop of `train` move again; does not apply when no hop had
    /// failed. A hop that failed at its station (after delivery: its source was removed then)
    /// is delivered anew from the station's inbox copy, a no-op copy that records a new
    /// delivery.
    pub async fn retry_train(&self, train: &str, by: &str) -> Result<Applied, DbError> {
        let failed = sqlx::query(&format!(
            "SELECT idx, source, target, delivered_at FROM hops \
             WHERE train_id = $1 AND {} AND source IS NOT NULL",
            Step::Retry.guard()
        ))
        .bind(train)
        .fetch_all(&self.pool)
        .await?;
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let mut retried = 0;
        for r in failed {
            let idx: i64 = r.try_get("idx")?;
            let source: ImageRef = super::parse_col(&r, "source")?;
            let target: ImageRef = super::parse_col(&r, "target")?;
            let delivered: Option<i64> = r.try_get("delivered_at")?;
            let source = match delivered {
                Some(_) => super::hops::inbox_copy(&source, &target).unwrap_or(source),
                None => source,
            }
            .to_string();
            let t = Transition::new(Step::Retry, train, Which::Hop(idx))
                .set("source", Val::Text(&source))
                .set("attempts", Val::Int(0))
                .set("next_attempt", Val::Int(0))
                .set("lease_owner", Val::OptText(None))
                .set_sql(
                    "deadline",
                    "CASE WHEN deadline IS NULL THEN NULL ELSE ? + (deadline - COALESCE(delivered_at, updated_at)) END",
                    vec![Val::Int(now)],
                );
            retried += apply(&mut tx, &t).await?.len();
        }
        if retried == 0 {
            let why = why_not(&mut tx, Step::Retry, train, Which::All).await?;
            return Ok(Err(super::apply::NotApplied {
                reason: format!("train {train} has no failed hop to retry"),
                ..why
            }));
        }
        sqlx::query("UPDATE trains SET reason = NULL WHERE id = $1")
            .bind(train)
            .execute(&mut *tx)
            .await?;
        record(
            &mut tx,
            EventKind::Retried,
            train,
            None,
            format!("retried by {by}"),
        )
        .await?;
        tx.commit().await?;
        self.touch(Some(train), None);
        Ok(Ok(()))
    }

    /// Expires hops at stations past their deadline; returns how many.
    pub async fn expire_hops(&self) -> Result<u64, DbError> {
        let now = now_ms();
        let rows = sqlx::query(&format!(
            "SELECT train_id, station FROM hops WHERE {} AND deadline IS NOT NULL AND deadline < $1",
            Step::Expire.guard()
        ))
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut n = 0;
        for r in rows {
            let (train, station): (String, String) =
                (r.try_get("train_id")?, r.try_get("station")?);
            let detail = format!("{station} did not push the train before its deadline");
            if self
                .station_step(&train, &station, Step::Expire, detail)
                .await?
                .is_ok()
            {
                n += 1;
            }
        }
        Ok(n)
    }
}
