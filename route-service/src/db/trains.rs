//! Trains: creation with their hops, views, lists, and the train state derived from the hops.

use super::events::{append, NewEvent};
use super::{conflict, parse_col, parse_opt, Backend, Db, DbError};
use crate::clock::now_ms;
use route_wire::{
    CreatorId, Digest, EventView, Format, HopState, HopView, StationId, TrainId, TrainState,
    TrainView,
};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, Row};
use std::collections::HashMap;
use train_image::ImageRef;

/// A verified submission.
#[derive(Debug, Clone)]
pub struct NewTrain {
    /// The train id (its configuration's).
    pub id: TrainId,
    /// Its creator.
    pub creator: CreatorId,
    /// Its format.
    pub format: Format,
    /// Station ids in order.
    pub route: Vec<StationId>,
    /// The submitted manifest digest.
    pub digest: Digest,
    /// The pinned submitted image (`registry/repo@digest`), the first hop's source.
    pub source: ImageRef,
    /// Each hop's target: one per station (its inbox) and the creator's results, in order.
    pub targets: Vec<(Option<StationId>, ImageRef)>,
    /// What the submission check found, for the history.
    pub detail: String,
}

/// A stored train (without hops).
#[derive(Debug, Clone)]
pub struct TrainRow {
    /// Its id.
    pub id: TrainId,
    /// Its creator.
    pub creator: CreatorId,
    /// Its format.
    pub format: Format,
    /// Its route.
    pub route: Vec<StationId>,
    /// Its state.
    pub state: TrainState,
    /// Why it failed or was cancelled.
    pub reason: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
}

/// Which trains to list.
#[derive(Debug, Clone, Default)]
pub struct TrainFilter {
    /// Only in this state.
    pub state: Option<TrainState>,
    /// Only this creator's.
    pub creator: Option<CreatorId>,
    /// Only those whose open hop is at this station.
    pub station: Option<StationId>,
}

fn train_row(r: &AnyRow) -> Result<TrainRow, DbError> {
    let route: String = r.try_get("route")?;
    Ok(TrainRow {
        id: parse_col(r, "id")?,
        creator: parse_col(r, "creator")?,
        format: parse_col(r, "format")?,
        route: serde_json::from_str(&route).map_err(|e| DbError::Corrupt(e.to_string()))?,
        state: parse_col(r, "state")?,
        reason: r.try_get("reason")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub(crate) fn hop_view(r: &AnyRow) -> Result<HopView, DbError> {
    Ok(HopView {
        index: r.try_get::<i64, _>("idx")? as usize,
        station: parse_opt(r, "station")?,
        state: parse_col(r, "state")?,
        source: r.try_get("source")?,
        target: r.try_get("target")?,
        attempts: r.try_get("attempts")?,
        last_error: r.try_get("last_error")?,
        deadline: r.try_get("deadline")?,
        mover: r.try_get("lease_owner")?,
    })
}

/// The train's state as its hops say: the first hop not done decides.
pub(crate) fn derive_state(hops: &[HopView]) -> (TrainState, Option<usize>) {
    if hops.iter().any(|h| h.state == HopState::Cancelled) {
        return (TrainState::Cancelled, None);
    }
    if let Some(h) = hops
        .iter()
        .find(|h| matches!(h.state, HopState::Failed | HopState::Expired))
    {
        return (TrainState::Failed, Some(h.index));
    }
    let Some(open) = hops.iter().find(|h| h.state != HopState::Done) else {
        return (TrainState::Finished, None);
    };
    let s = match open.state {
        HopState::Detected
            if open.index == 0 && open.attempts == 0 && open.last_error.is_none() =>
        {
            TrainState::Submitted
        }
        HopState::WaitingPush | HopState::Detected | HopState::Copying => TrainState::InTransit,
        HopState::Delivered | HopState::AwaitingApproval | HopState::Approved => {
            TrainState::AtStation
        }
        HopState::Running => TrainState::Running,
        _ => TrainState::InTransit,
    };
    (s, Some(open.index))
}

/// Re-derives and stores the train's state (inside the caller's transaction).
pub(crate) async fn refresh(
    conn: &mut sqlx::AnyConnection,
    train: &str,
    reason: Option<&str>,
) -> Result<TrainState, DbError> {
    let rows = sqlx::query("SELECT * FROM hops WHERE train_id = $1 ORDER BY idx")
        .bind(train)
        .fetch_all(&mut *conn)
        .await?;
    let hops = rows.iter().map(hop_view).collect::<Result<Vec<_>, _>>()?;
    let (state, _) = derive_state(&hops);
    sqlx::query(
        "UPDATE trains SET state = $1, updated_at = $2, reason = COALESCE($3, reason) WHERE id = $4",
    )
    .bind(state.as_str())
    .bind(now_ms())
    .bind(reason)
    .bind(train)
    .execute(&mut *conn)
    .await?;
    Ok(state)
}

impl Db {
    /// Stores a verified submission: the train, its first state, its hops (the first one ready
    /// to move), and a `submitted` event.
    pub async fn create_train(&self, t: &NewTrain, deadline_ms: i64) -> Result<(), DbError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO trains (id, creator, format, route, state, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(t.id.as_str())
        .bind(t.creator.as_str())
        .bind(t.format.as_str())
        .bind(serde_json::to_string(&t.route).expect("strings serialise"))
        .bind(TrainState::Submitted.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            conflict(e, || {
                format!(
                    "a train with id `{}` was submitted before; give each train its own id",
                    t.id
                )
            })
        })?;
        sqlx::query("INSERT INTO train_states (train_id, seq, digest, at) VALUES ($1, 0, $2, $3)")
            .bind(t.id.as_str())
            .bind(t.digest.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        for (i, (station, target)) in t.targets.iter().enumerate() {
            let (state, source) = if i == 0 {
                (HopState::Detected, Some(t.source.to_string()))
            } else {
                (HopState::WaitingPush, None)
            };
            sqlx::query(
                "INSERT INTO hops (train_id, idx, station, state, source, target, deadline, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(t.id.as_str())
            .bind(i as i64)
            .bind(station.as_ref().map(|s| s.as_str()))
            .bind(state.as_str())
            .bind(source)
            .bind(target.to_string())
            .bind(station.as_ref().map(|_| now + deadline_ms))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        append(
            &mut tx,
            &NewEvent {
                train: Some(&t.id),
                station: None,
                kind: route_wire::EventKind::Submitted,
                detail: t.detail.clone(),
            },
        )
        .await?;
        tx.commit().await?;
        self.touch(Some(&t.id), None);
        Ok(())
    }

    /// One train's row.
    pub async fn train(&self, id: &str) -> Result<Option<TrainRow>, DbError> {
        let row = sqlx::query("SELECT * FROM trains WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(train_row).transpose()
    }

    /// One train with hops and states; with its events when `events`.
    pub async fn train_view(&self, id: &str, events: bool) -> Result<Option<TrainView>, DbError> {
        let Some(t) = self.train(id).await? else {
            return Ok(None);
        };
        let hops: Vec<HopView> = sqlx::query("SELECT * FROM hops WHERE train_id = $1 ORDER BY idx")
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(hop_view)
            .collect::<Result<_, _>>()?;
        let states =
            sqlx::query("SELECT digest FROM train_states WHERE train_id = $1 ORDER BY seq")
                .bind(id)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| parse_col(r, "digest"))
                .collect::<Result<Vec<Digest>, _>>()?;
        let events = if events {
            self.events(super::EventFilter::Train(id), 0, 10_000)
                .await?
        } else {
            Vec::new()
        };
        Ok(Some(view(t, hops, states, events)))
    }

    /// Trains matching `f`, newest first (at most 1,000), read in three queries whatever their
    /// number: building each train's view on its own took 3 per train, 3,001 for a full list.
    pub async fn trains(&self, f: &TrainFilter) -> Result<Vec<TrainView>, DbError> {
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            // One snapshot for the three reads, as a SQLite read transaction has: a train
            // listed by the first read then has its hops in the second.
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        let listed = &*LISTED;
        let trains = filtered(&format!("SELECT * FROM trains t WHERE {listed}"), f)
            .fetch_all(&mut *tx)
            .await?;
        let listed = format!("train_id IN (SELECT id FROM trains t WHERE {listed})");
        let hop_rows = filtered(
            &format!("SELECT * FROM hops WHERE {listed} ORDER BY train_id, idx"),
            f,
        )
        .fetch_all(&mut *tx)
        .await?;
        let state_rows = filtered(
            &format!(
                "SELECT train_id, digest FROM train_states WHERE {listed} ORDER BY train_id, seq"
            ),
            f,
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut hops: HashMap<String, Vec<HopView>> = HashMap::new();
        for r in &hop_rows {
            hops.entry(r.try_get("train_id")?)
                .or_default()
                .push(hop_view(r)?);
        }
        let mut states: HashMap<String, Vec<Digest>> = HashMap::new();
        for r in &state_rows {
            states
                .entry(r.try_get("train_id")?)
                .or_default()
                .push(parse_col(r, "digest")?);
        }
        trains
            .iter()
            .map(|r| {
                let t = train_row(r)?;
                let h = hops.remove(t.id.as_str()).unwrap_or_default();
                let s = states.remove(t.id.as_str()).unwrap_or_default();
                Ok(view(t, h, s, Vec::new()))
            })
            .collect()
    }
}

/// The trains a list shows, binding [`TrainFilter`] as `$1..$3`. The station filter: its hop
/// is the open one, i.e. at the station (from the state machine).
static LISTED: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "($1 IS NULL OR t.state = $1) AND ($2 IS NULL OR t.creator = $2) \
         AND ($3 IS NULL OR EXISTS (SELECT 1 FROM hops h WHERE h.train_id = t.id AND h.station = $3 \
              AND h.{})) \
         ORDER BY t.created_at DESC, t.id LIMIT 1000",
        crate::machine::in_list(crate::machine::at_station())
    )
});

/// `sql` with the filter's three values bound.
fn filtered<'q>(sql: &'q str, f: &'q TrainFilter) -> Query<'q, Any, AnyArguments<'q>> {
    sqlx::query(sql)
        .bind(f.state.map(|s| s.as_str()))
        .bind(f.creator.as_ref().map(|c| c.as_str()))
        .bind(f.station.as_ref().map(|s| s.as_str()))
}

/// A train's view from its row, hops, states and events.
fn view(t: TrainRow, hops: Vec<HopView>, states: Vec<Digest>, events: Vec<EventView>) -> TrainView {
    let (_, current_hop) = derive_state(&hops);
    let results = (t.state == TrainState::Finished)
        .then(|| hops.last().map(|h| h.target.clone()))
        .flatten();
    TrainView {
        id: t.id,
        creator: t.creator,
        format: t.format,
        route: t.route,
        state: t.state,
        current_hop: if t.state.is_final() {
            None
        } else {
            current_hop
        },
        states,
        hops,
        reason: t.reason,
        results,
        created_at: t.created_at,
        updated_at: t.updated_at,
        events,
    }
}
