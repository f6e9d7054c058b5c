//! The append-only event log: one table, read per train or per station. It is the source of
//! the SSE feeds and of a train's history.

use super::{Db, DbError};
use crate::clock::now_ms;
use route_wire::{EventKind, EventView};
use sqlx::any::AnyRow;
use sqlx::Row;

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    /// The train it is about.
    pub train: Option<&'a str>,
    /// The station it is about.
    pub station: Option<&'a str>,
    /// What happened.
    pub kind: EventKind,
    /// For people.
    pub detail: String,
}

/// Which events to read.
#[derive(Debug, Clone, Copy)]
pub enum EventFilter<'a> {
    /// One train's.
    Train(&'a str),
    /// One station's.
    Station(&'a str),
}

pub(crate) fn view(r: &AnyRow) -> Result<EventView, DbError> {
    Ok(EventView {
        id: r.try_get("id")?,
        train: super::parse_opt(r, "train_id")?,
        station: super::parse_opt(r, "station")?,
        kind: EventKind::parse(&r.try_get::<String, _>("kind")?),
        detail: r.try_get("detail")?,
        at: r.try_get("at")?,
    })
}

pub(crate) async fn append(
    conn: &mut sqlx::AnyConnection,
    e: &NewEvent<'_>,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO events (train_id, station, kind, detail, at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(e.train)
    .bind(e.station)
    .bind(e.kind.as_str())
    .bind(&e.detail)
    .bind(now_ms())
    .execute(conn)
    .await?;
    metrics::counter!(crate::metrics::EVENTS, "kind" => e.kind.as_str()).increment(1);
    Ok(())
}

impl Db {
    /// Appends one event on its own.
    pub async fn event(&self, e: NewEvent<'_>) -> Result<(), DbError> {
        let mut c = self.pool.acquire().await?;
        append(&mut c, &e).await?;
        self.touch(e.train, e.station);
        Ok(())
    }

    /// Events after `after` (exclusive), oldest first, at most `limit`.
    pub async fn events(
        &self,
        filter: EventFilter<'_>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<EventView>, DbError> {
        let (col, val) = match filter {
            EventFilter::Train(t) => ("train_id", t),
            EventFilter::Station(s) => ("station", s),
        };
        let rows = sqlx::query(&format!(
            "SELECT * FROM events WHERE {col} = $1 AND id > $2 ORDER BY id LIMIT $3"
        ))
        .bind(val)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(view).collect()
    }

    /// The last `limit` events of a station, newest first (the dashboard's history).
    pub async fn recent_station_events(
        &self,
        station: &str,
        limit: i64,
    ) -> Result<Vec<EventView>, DbError> {
        let rows = sqlx::query("SELECT * FROM events WHERE station = $1 ORDER BY id DESC LIMIT $2")
            .bind(station)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(view).collect()
    }
}
