//! Moves and pushes: a mover claims a due move under a lease, delivers it, retries or fails
//! it, or gives it back; a station's push makes its hop done and the next one ready. Every
//! transition goes through [`super::apply`], whose guards come from [`crate::machine`].

use super::apply::{apply, record, why_not, Applied, NotApplied, Transition, Val, Which};
use super::{Backend, Db, DbError};
use crate::clock::now_ms;
use crate::machine::{in_list, Step};
use route_wire::{Approval, EventKind, HopState, StationId, TrainId};
use sqlx::Row;
use train_image::ImageRef;

/// A move this replica claimed.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The train.
    pub train: TrainId,
    /// The hop.
    pub idx: i64,
    /// The station it goes to (`None`: the creator's results).
    pub station: Option<StationId>,
    /// The pinned image to move.
    pub source: ImageRef,
    /// Where it goes.
    pub target: ImageRef,
    /// Attempts including this one.
    pub attempts: i64,
}

/// A push that applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// It was the station's turn: the hop is done and the next move is ready.
    New,
    /// The push this station made and that is already recorded, seen again (a second
    /// notification of it, or the station's `done` report after the notification): nothing
    /// changes and nothing is refused.
    Duplicate,
}

/// The image a delivery of `source` to `target` left in the target repository: the target's
/// repository, pinned to the source's digest.
pub(super) fn inbox_copy(source: &ImageRef, target: &ImageRef) -> Option<ImageRef> {
    source.digest().map(|d| target.with_digest(d))
}

/// When a claimable hop is due, per state the claim applies in: a detected hop once its
/// back-off has passed, a copying one once its mover's lease ran out (that replica died).
const CLAIM_DUE: &[(HopState, &str)] = &[
    (HopState::Detected, "next_attempt <= $3"),
    (HopState::Copying, "lease_until < $3"),
];

/// The claim's guard: each state [`Step::Claim`] applies in, with its due condition.
fn claim_guard() -> String {
    let parts: Vec<String> = Step::Claim
        .from()
        .iter()
        .map(|s| {
            let due = CLAIM_DUE
                .iter()
                .find(|(d, _)| d == s)
                .map(|(_, c)| *c)
                .expect("CLAIM_DUE names every state Step::Claim applies in");
            format!("(state = '{}' AND {due})", s.as_str())
        })
        .collect();
    format!("({})", parts.join(" OR "))
}

/// Wait before attempt `n + 1` of a move: doubling from 1 s, capped at 5 minutes.
pub fn backoff_ms(attempts: i64) -> i64 {
    1000i64
        .saturating_mul(1 << attempts.clamp(0, 20))
        .min(300_000)
}

impl Db {
    /// Claims one move that is due (or whose lease ran out) for `owner` until now + `lease_ms`,
    /// and records it (`moving`).
    pub async fn claim_move(&self, owner: &str, lease_ms: i64) -> Result<Option<Claimed>, DbError> {
        let now = now_ms();
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let guard = claim_guard();
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "UPDATE hops SET state = '{copying}', lease_owner = $1, lease_until = $2, \
                 attempts = attempts + 1, updated_at = $3 \
             WHERE (train_id, idx) = (SELECT train_id, idx FROM hops WHERE {guard} \
                 ORDER BY next_attempt, updated_at LIMIT 1 {lock}) \
               AND {guard} \
             RETURNING train_id, idx, station, source, target, attempts",
            copying = Step::Claim.to(HopState::Detected).as_str(),
        ))
        .bind(owner)
        .bind(now + lease_ms)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let c = Claimed {
            train: super::parse_col(&r, "train_id")?,
            idx: r.try_get("idx")?,
            station: super::parse_opt(&r, "station")?,
            source: super::parse_opt(&r, "source")?
                .ok_or_else(|| DbError::Corrupt("a claimed hop has no source".into()))?,
            target: super::parse_col(&r, "target")?,
            attempts: r.try_get("attempts")?,
        };
        record(
            &mut tx,
            EventKind::Moving,
            &c.train,
            c.station.as_deref(),
            format!("moving to {} (attempt {})", c.target, c.attempts),
        )
        .await?;
        super::trains::refresh(&mut tx, &c.train, None).await?;
        tx.commit().await?;
        self.touch(Some(&c.train), c.station.as_deref());
        Ok(Some(c))
    }

    /// Extends the lease of a move in progress; false when it is no longer ours.
    pub async fn renew_lease(
        &self,
        c: &Claimed,
        owner: &str,
        lease_ms: i64,
    ) -> Result<bool, DbError> {
        let n = sqlx::query(&format!(
            "UPDATE hops SET lease_until = $1 WHERE train_id = $2 AND idx = $3 \
             AND {} AND lease_owner = $4",
            in_list(&[HopState::Copying])
        ))
        .bind(now_ms() + lease_ms)
        .bind(c.train.as_str())
        .bind(c.idx)
        .bind(owner)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Applies `t` in its own transaction, then wakes whoever follows the train (and
    /// `station`); says why not when it did not apply.
    pub(super) async fn transition(
        &self,
        t: Transition<'_>,
        station: Option<&str>,
    ) -> Result<Applied, DbError> {
        let mut tx = self.begin_write().await?;
        if apply(&mut tx, &t).await?.is_empty() {
            let why = why_not(&mut tx, t.step, t.train, t.which).await?;
            return Ok(Err(why));
        }
        tx.commit().await?;
        self.touch(Some(t.train), station);
        Ok(Ok(()))
    }

    /// Records a finished move: the station's hop is delivered (or awaits its operator's
    /// approval); the creator's is done and the train finished. Does not apply when the lease
    /// was lost (another replica finished or took it over): nothing is recorded twice.
    pub async fn complete_move(
        &self,
        c: &Claimed,
        owner: &str,
        approval: Option<Approval>,
        detail: &str,
    ) -> Result<Applied, DbError> {
        let step = match (&c.station, approval) {
            (None, _) => Step::Finish,
            (Some(_), Some(Approval::Manual)) => Step::DeliverForApproval,
            (Some(_), _) => Step::Deliver,
        };
        let now = now_ms();
        let t = Transition::new(step, &c.train, Which::Hop(c.idx))
            .lease(owner)
            .set("lease_owner", Val::OptText(None))
            .set_sql("lease_until", "NULL", vec![])
            .set("last_error", Val::OptText(None))
            .set("delivered_at", Val::Int(now))
            .event(c.station.as_deref(), detail.to_string());
        let mut tx = self.begin_write().await?;
        if apply(&mut tx, &t).await?.is_empty() {
            let why = why_not(&mut tx, step, &c.train, Which::Hop(c.idx)).await?;
            return Ok(Err(why));
        }
        if step == Step::DeliverForApproval {
            record(
                &mut tx,
                EventKind::AwaitingApproval,
                &c.train,
                c.station.as_deref(),
                "the station approves trains by hand; its operator decides".into(),
            )
            .await?;
        }
        tx.commit().await?;
        self.touch(Some(&c.train), c.station.as_deref());
        Ok(Ok(()))
    }

    /// Gives a claimed move back untouched (shutdown): due again at once, this attempt uncounted.
    pub async fn release_move(&self, c: &Claimed, owner: &str) -> Result<Applied, DbError> {
        let t = Transition::new(Step::Release, &c.train, Which::Hop(c.idx))
            .lease(owner)
            .set("lease_owner", Val::OptText(None))
            .set_sql("lease_until", "NULL", vec![])
            .set_sql("attempts", "attempts - 1", vec![])
            .set("next_attempt", Val::Int(0))
            .event(
                c.station.as_deref(),
                format!(
                    "the move to {} was given back (its replica stops); it is taken again",
                    c.target
                ),
            );
        let out = self.transition(t, c.station.as_deref()).await?;
        self.wake();
        Ok(out)
    }

    /// Records a failed move attempt: retried after [`backoff_ms`], or failed for good after
    /// `max_attempts` (the train fails with the error).
    pub async fn fail_move(
        &self,
        c: &Claimed,
        owner: &str,
        error: &str,
        max_attempts: i64,
    ) -> Result<Applied, DbError> {
        let give_up = c.attempts >= max_attempts;
        let (step, detail) = if give_up {
            (
                Step::MoveFail,
                format!(
                    "move to {} failed {} times, giving up: {error}",
                    c.target, c.attempts
                ),
            )
        } else {
            (
                Step::MoveRetry,
                format!(
                    "move to {} failed (attempt {}), retrying in {} s: {error}",
                    c.target,
                    c.attempts,
                    backoff_ms(c.attempts) / 1000
                ),
            )
        };
        let mut t = Transition::new(step, &c.train, Which::Hop(c.idx))
            .lease(owner)
            .set("lease_owner", Val::OptText(None))
            .set_sql("lease_until", "NULL", vec![])
            .set("last_error", Val::Text(error))
            .set("next_attempt", Val::Int(now_ms() + backoff_ms(c.attempts)))
            .event(c.station.as_deref(), detail.clone());
        if give_up {
            t = t.reason(&detail);
        }
        self.transition(t, c.station.as_deref()).await
    }

    /// A push by `station` for `train`, `pushed` being the image in its outbox pinned by
    /// digest: applies only when the train's open hop is that station's, it may push
    /// (delivered, approved or running), and the digest is not a state the train already had.
    /// Then the hop is done, the digest is the train's next state and the next move is ready,
    /// with `pushed` as its source.
    pub async fn station_pushed(
        &self,
        train: &str,
        station: &str,
        pushed: &ImageRef,
        how: &str,
    ) -> Result<Applied<Pushed>, DbError> {
        let now = now_ms();
        let Some(digest) = pushed.digest() else {
            return Err(DbError::State(format!(
                "the push {pushed} is not pinned by digest"
            )));
        };
        let outbox = format!("{}/{}", pushed.registry(), pushed.repository());
        let push = Transition::new(Step::Push, train, Which::Station(station))
            .when_sql(
                "NOT EXISTS (SELECT 1 FROM train_states s WHERE s.train_id = ? AND s.digest = ?)",
                vec![Val::Text(train), Val::Text(digest)],
            )
            .event(
                Some(station),
                format!("{station} pushed {digest} to {outbox} (seen by {how})"),
            );
        let mut tx = self.begin_write().await?;
        let Some(&idx) = apply(&mut tx, &push).await?.first() else {
            drop(tx);
            if self.pushed_by(train, station, digest).await? {
                return Ok(Ok(Pushed::Duplicate));
            }
            return Ok(Err(NotApplied {
                step: Step::Push,
                reason: self.why_not_pushed(train, station, digest).await?,
            }));
        };
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
        let source = pushed.to_string();
        let ready = Transition::new(Step::Ready, train, Which::Hop(idx + 1))
            .set("source", Val::Text(&source))
            .set("next_attempt", Val::Int(0));
        apply(&mut tx, &ready).await?;
        tx.commit().await?;
        self.touch(Some(train), Some(station));
        Ok(Ok(Pushed::New))
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
        let open = sqlx::query(&format!(
            "SELECT station, state FROM hops WHERE train_id = $1 AND NOT {} ORDER BY idx LIMIT 1",
            in_list(&[HopState::Done])
        ))
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

    /// The copy hop `idx` of `train` delivered (the station's inbox image): its target's
    /// repository pinned to its source's digest; `None` before it has a source.
    pub async fn delivered_copy(&self, train: &str, idx: i64) -> Result<Option<ImageRef>, DbError> {
        let Some(r) =
            sqlx::query("SELECT source, target FROM hops WHERE train_id = $1 AND idx = $2")
                .bind(train)
                .bind(idx)
                .fetch_optional(&self.pool)
                .await?
        else {
            return Ok(None);
        };
        let source: Option<ImageRef> = super::parse_opt(&r, "source")?;
        let target: ImageRef = super::parse_col(&r, "target")?;
        Ok(source.and_then(|s| inbox_copy(&s, &target)))
    }

    /// The hop of `train` at which `station` may push now (its index, which is the number of
    /// stops done before it), if any: a station appears in a route more than once only at
    /// hops that are open one after the other, so at most one matches.
    pub async fn turn_of(&self, train: &str, station: &str) -> Result<Option<i64>, DbError> {
        let row = sqlx::query(&format!(
            "SELECT idx FROM hops WHERE train_id = $1 AND station = $2 AND {} ORDER BY idx LIMIT 1",
            in_list(crate::machine::may_push())
        ))
        .bind(train)
        .bind(station)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("idx")?),
            None => None,
        })
    }

    /// Whether `digest` is a state of `train` already recorded (a duplicate or a replay).
    pub async fn is_state_of(&self, train: &str, digest: &str) -> Result<bool, DbError> {
        Ok(
            sqlx::query("SELECT seq FROM train_states WHERE train_id = $1 AND digest = $2")
                .bind(train)
                .bind(digest)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    /// Hops where a station may push: (train, station).
    pub async fn awaiting_push(&self) -> Result<Vec<(TrainId, StationId)>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT train_id, station FROM hops WHERE station IS NOT NULL AND {}",
            in_list(crate::machine::may_push())
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    super::parse_col(r, "train_id")?,
                    super::parse_col(r, "station")?,
                ))
            })
            .collect()
    }

    /// What waits at `station`: (train row, hop view, the image in its inbox), oldest first.
    pub async fn inbox(
        &self,
        station: &str,
    ) -> Result<Vec<(super::TrainRow, route_wire::HopView, ImageRef)>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT * FROM hops WHERE station = $1 AND {} ORDER BY updated_at",
            in_list(crate::machine::at_station())
        ))
        .bind(station)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let hop = super::trains::hop_view(&r)?;
            let source: Option<ImageRef> = super::parse_opt(&r, "source")?;
            let target: ImageRef = super::parse_col(&r, "target")?;
            let Some(image) = source.and_then(|s| inbox_copy(&s, &target)) else {
                return Err(DbError::Corrupt(format!(
                    "hop {} of train {} is at its station without a pinned source",
                    hop.index,
                    r.try_get::<String, _>("train_id")?
                )));
            };
            let id: String = r.try_get("train_id")?;
            if let Some(t) = self.train(&id).await? {
                out.push((t, hop, image));
            }
        }
        Ok(out)
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
