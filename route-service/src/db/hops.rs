//! The hop state machine. Every transition is one transaction whose first statement is the
//! guarded write (`UPDATE … WHERE state IN (…)`): on SQLite that statement takes the write lock
//! at once (the effect of `BEGIN IMMEDIATE`, which sqlx's `Any` driver cannot issue), so a
//! transaction never fails half-way on a lock upgrade; on PostgreSQL the row lock makes a
//! concurrent twin see the new state and match nothing. A transition that matches nothing is
//! reported, never half-applied: that is what makes replays and duplicates no-ops.

use super::events::{append, NewEvent};
use super::trains::refresh;
use super::{Backend, Db, DbError};
use crate::clock::now_ms;
use route_wire::{Approval, HopState};
use sqlx::Row;

/// A move this replica claimed.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The train.
    pub train: String,
    /// The hop.
    pub idx: i64,
    /// The station it goes to (`None`: the creator's results).
    pub station: Option<String>,
    /// The pinned image to move.
    pub source: String,
    /// Where it goes.
    pub target: String,
    /// Attempts including this one.
    pub attempts: i64,
}

/// What became of a push a notification, a report or reconciliation announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// It was the station's turn: the hop is done and the next move is ready.
    Accepted,
    /// The push this station made and that is already recorded, seen again (a second
    /// notification of it, or the station's `done` report after the notification): nothing
    /// changes and nothing is refused.
    Duplicate,
    /// Ignored, with the reason (logged by the caller).
    Ignored(String),
}

/// What became of a station's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportOutcome {
    /// Recorded.
    Recorded,
    /// Not the station's hop, or not in a state the report applies to.
    Refused(String),
}

pub(super) const AT_STATION: &str = "('delivered', 'awaiting_approval', 'approved', 'running')";
const MAY_PUSH: &str = "('delivered', 'approved', 'running')";

/// Wait before attempt `n + 1` of a move: doubling from 1 s, capped at 5 minutes.
pub fn backoff_ms(attempts: i64) -> i64 {
    1000i64
        .saturating_mul(1 << attempts.clamp(0, 20))
        .min(300_000)
}

impl Db {
    /// Claims one move that is due (or whose lease ran out) for `owner` until now + `lease_ms`.
    pub async fn claim_move(&self, owner: &str, lease_ms: i64) -> Result<Option<Claimed>, DbError> {
        let now = now_ms();
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let row = sqlx::query(&format!(
            "UPDATE hops SET state = 'copying', lease_owner = $1, lease_until = $2, \
                 attempts = attempts + 1, updated_at = $3 \
             WHERE (train_id, idx) = (SELECT train_id, idx FROM hops \
                 WHERE (state = 'detected' AND next_attempt <= $3) \
                    OR (state = 'copying' AND lease_until < $3) \
                 ORDER BY next_attempt, updated_at LIMIT 1 {lock}) \
               AND (state = 'detected' OR (state = 'copying' AND lease_until < $3)) \
             RETURNING train_id, idx, station, source, target, attempts"
        ))
        .bind(owner)
        .bind(now + lease_ms)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(Claimed {
            train: r.try_get("train_id")?,
            idx: r.try_get("idx")?,
            station: r.try_get("station")?,
            source: r
                .try_get::<Option<String>, _>("source")?
                .ok_or_else(|| DbError::Corrupt("a claimed hop has no source".into()))?,
            target: r.try_get("target")?,
            attempts: r.try_get("attempts")?,
        }))
    }

    /// Extends the lease of a move in progress; false when it is no longer ours.
    pub async fn renew_lease(
        &self,
        c: &Claimed,
        owner: &str,
        lease_ms: i64,
    ) -> Result<bool, DbError> {
        let n = sqlx::query(
            "UPDATE hops SET lease_until = $1 WHERE train_id = $2 AND idx = $3 \
             AND state = 'copying' AND lease_owner = $4",
        )
        .bind(now_ms() + lease_ms)
        .bind(&c.train)
        .bind(c.idx)
        .bind(owner)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Records a finished move: the station's hop is delivered (or awaits its operator's
    /// approval); the creator's is done and the train finished. False when the lease was lost
    /// (another replica finished or took it over): nothing is recorded twice.
    pub async fn complete_move(
        &self,
        c: &Claimed,
        owner: &str,
        approval: Option<Approval>,
        detail: &str,
    ) -> Result<bool, DbError> {
        let next = match (&c.station, approval) {
            (None, _) => HopState::Done,
            (Some(_), Some(Approval::Manual)) => HopState::AwaitingApproval,
            (Some(_), _) => HopState::Delivered,
        };
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "UPDATE hops SET state = $1, lease_owner = NULL, lease_until = NULL, last_error = NULL, \
             updated_at = $2, delivered_at = $2 \
             WHERE train_id = $3 AND idx = $4 AND state = 'copying' AND lease_owner = $5",
        )
        .bind(next.as_str())
        .bind(now_ms())
        .bind(&c.train)
        .bind(c.idx)
        .bind(owner)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        let kind = if c.station.is_some() {
            "delivered"
        } else {
            "finished"
        };
        append(
            &mut tx,
            &NewEvent {
                train: Some(&c.train),
                station: c.station.as_deref(),
                kind,
                detail: detail.to_string(),
            },
        )
        .await?;
        if next == HopState::AwaitingApproval {
            append(
                &mut tx,
                &NewEvent {
                    train: Some(&c.train),
                    station: c.station.as_deref(),
                    kind: "awaiting_approval",
                    detail: "the station approves trains by hand; its operator decides".into(),
                },
            )
            .await?;
        }
        refresh(&mut tx, &c.train, None).await?;
        tx.commit().await?;
        self.touch(Some(&c.train), c.station.as_deref());
        Ok(true)
    }

    /// Gives a claimed move back untouched (shutdown): due again at once, this attempt uncounted.
    pub async fn release_move(&self, c: &Claimed, owner: &str) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE hops SET state = 'detected', lease_owner = NULL, lease_until = NULL, \
             attempts = attempts - 1, next_attempt = 0 \
             WHERE train_id = $1 AND idx = $2 AND state = 'copying' AND lease_owner = $3",
        )
        .bind(&c.train)
        .bind(c.idx)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        self.wake();
        Ok(())
    }

    /// Records a failed move attempt: retried after [`backoff_ms`], or failed for good after
    /// `max_attempts` (the train fails with the error).
    pub async fn fail_move(
        &self,
        c: &Claimed,
        owner: &str,
        error: &str,
        max_attempts: i64,
    ) -> Result<bool, DbError> {
        let give_up = c.attempts >= max_attempts;
        let state = if give_up {
            HopState::Failed
        } else {
            HopState::Detected
        };
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "UPDATE hops SET state = $1, lease_owner = NULL, lease_until = NULL, last_error = $2, \
             next_attempt = $3, updated_at = $4 \
             WHERE train_id = $5 AND idx = $6 AND state = 'copying' AND lease_owner = $7",
        )
        .bind(state.as_str())
        .bind(error)
        .bind(now_ms() + backoff_ms(c.attempts))
        .bind(now_ms())
        .bind(&c.train)
        .bind(c.idx)
        .bind(owner)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        let detail = if give_up {
            format!(
                "move to {} failed {} times, giving up: {error}",
                c.target, c.attempts
            )
        } else {
            format!(
                "move to {} failed (attempt {}), retrying in {} s: {error}",
                c.target,
                c.attempts,
                backoff_ms(c.attempts) / 1000
            )
        };
        append(
            &mut tx,
            &NewEvent {
                train: Some(&c.train),
                station: c.station.as_deref(),
                kind: if give_up { "failed" } else { "move_retry" },
                detail: detail.clone(),
            },
        )
        .await?;
        refresh(&mut tx, &c.train, give_up.then_some(detail.as_str())).await?;
        tx.commit().await?;
        self.touch(Some(&c.train), c.station.as_deref());
        Ok(true)
    }

    /// A push of `digest` into the outbox of `station` for `train`: accepted only when the
    /// train's open hop is that station's, it may push (delivered, approved or running), and
    /// the digest is not a state the train already had. Then the hop is done, the digest is
    /// the train's next state and the next move is ready, with `outbox` (`registry/repo`) as
    /// its source.
    pub async fn station_pushed(
        &self,
        train: &str,
        station: &str,
        outbox: &str,
        digest: &str,
        how: &str,
    ) -> Result<PushOutcome, DbError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(&format!(
            "UPDATE hops SET state = 'done', updated_at = $1 \
             WHERE train_id = $2 AND station = $3 AND state IN {MAY_PUSH} \
               AND NOT EXISTS (SELECT 1 FROM train_states s WHERE s.train_id = $2 AND s.digest = $4) \
             RETURNING idx"
        ))
        .bind(now)
        .bind(train)
        .bind(station)
        .bind(digest)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(done) = done else {
            drop(tx);
            if self.pushed_by(train, station, digest).await? {
                return Ok(PushOutcome::Duplicate);
            }
            return Ok(PushOutcome::Ignored(
                self.why_not_pushed(train, station, digest).await?,
            ));
        };
        let idx: i64 = done.try_get("idx")?;
        let seq: i64 = sqlx::query(
            "SELECT COALESCE(MAX(seq), -1) + 1 AS n FROM train_states WHERE train_id = $1",
        )
        .bind(train)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        sqlx::query("INSERT INTO train_states (train_id, seq, digest, at) VALUES ($1, $2, $3, $4)")
            .bind(train)
            .bind(seq)
            .bind(digest)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE hops SET state = 'detected', source = $1, next_attempt = 0, updated_at = $2 \
             WHERE train_id = $3 AND idx = $4 AND state = 'waiting_push'",
        )
        .bind(format!("{outbox}@{digest}"))
        .bind(now)
        .bind(train)
        .bind(idx + 1)
        .execute(&mut *tx)
        .await?;
        append(
            &mut tx,
            &NewEvent {
                train: Some(train),
                station: Some(station),
                kind: "pushed",
                detail: format!("{station} pushed {digest} to {outbox} (seen by {how})"),
            },
        )
        .await?;
        refresh(&mut tx, train, None).await?;
        tx.commit().await?;
        self.touch(Some(train), Some(station));
        Ok(PushOutcome::Accepted)
    }

    async fn why_not_pushed(
        &self,
        train: &str,
        station: &str,
        digest: &str,
    ) -> Result<String, DbError> {
        let Some(t) = self.train(train).await? else {
            return Ok(format!("no train `{train}` is known"));
        };
        if t.state.is_final() {
            return Ok(format!("train {train} is {}", t.state));
        }
        let older = sqlx::query("SELECT seq FROM train_states WHERE train_id = $1 AND digest = $2")
            .bind(train)
            .bind(digest)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(r) = older {
            let seq: i64 = r.try_get("seq")?;
            return Ok(format!(
                "{digest} is an older state of train {train} (state {seq}); a replay or a re-push"
            ));
        }
        let open = sqlx::query(
            "SELECT station, state FROM hops WHERE train_id = $1 AND state <> 'done' ORDER BY idx LIMIT 1",
        )
        .bind(train)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match open {
            Some(r) => {
                let st: Option<String> = r.try_get("station")?;
                let state: String = r.try_get("state")?;
                match st {
                    Some(s) if s == station => format!(
                        "train {train} is {state} at {station}: a push counts only after delivery and approval"
                    ),
                    Some(s) => format!("it is {s}'s turn on train {train}, not {station}'s"),
                    None => format!("train {train} has left the stations; it is {state} to its creator"),
                }
            }
            None => format!("train {train} has no open hop"),
        })
    }

    /// Hops where a station may push: (train, station, its registry, its namespace).
    pub async fn awaiting_push(&self) -> Result<Vec<(String, String, String, String)>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT h.train_id, h.station, s.registry, s.namespace FROM hops h \
             JOIN stations s ON s.id = h.station WHERE h.state IN {MAY_PUSH}"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("train_id")?,
                    r.try_get("station")?,
                    r.try_get("registry")?,
                    r.try_get("namespace")?,
                ))
            })
            .collect()
    }

    /// What waits at `station`: (train row, hop view), oldest first.
    pub async fn inbox(
        &self,
        station: &str,
    ) -> Result<Vec<(super::TrainRow, route_wire::HopView)>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT * FROM hops WHERE station = $1 AND state IN {AT_STATION} ORDER BY updated_at"
        ))
        .bind(station)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let hop = super::trains::hop_view(&r)?;
            let id: String = r.try_get("train_id")?;
            if let Some(t) = self.train(&id).await? {
                out.push((t, hop));
            }
        }
        Ok(out)
    }

    /// Records a registry notification's key; false when it was seen before (a redelivery).
    pub async fn first_notification(&self, registry: &str, key: &str) -> Result<bool, DbError> {
        let n = sqlx::query(
            "INSERT INTO notifications (registry, event_key, received_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(registry)
        .bind(key)
        .bind(now_ms())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff_ms(0), 1000);
        assert_eq!(backoff_ms(3), 8000);
        assert_eq!(backoff_ms(40), 300_000);
    }
}
