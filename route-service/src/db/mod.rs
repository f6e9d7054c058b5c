//! The service's state in SQLite (embedded, the default) or PostgreSQL (for several replicas),
//! through sqlx's `Any` driver: one set of runtime queries with `$n` placeholders, which both
//! drivers bind by number, and one migrations folder per database.
//!
//! Times are Unix milliseconds; booleans are integers; ids are text. Where the two databases
//! differ (claiming a move), [`Backend`] picks the statement.

mod apply;
mod decisions;
mod events;
mod hops;
mod keys;
mod notifications;
mod parties;
mod sessions;
mod trains;

pub use apply::{Applied, NotApplied};
pub use events::{EventFilter, NewEvent};
pub use hops::{Claimed, Pushed};
pub use parties::{CreatorRow, NewCreator, NewStation, StationRow};
pub use trains::{NewTrain, TrainFilter, TrainRow};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor};
use std::sync::Arc;
use tokio::sync::Notify;

/// Errors of the state store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// The database could not be opened or migrated.
    #[error("database {url}: {detail}")]
    Open {
        /// The URL without its password.
        url: String,
        /// What failed.
        detail: String,
    },
    /// A query failed.
    #[error("database: {0}")]
    Query(#[from] sqlx::Error),
    /// Something exists already.
    #[error("{0}")]
    Conflict(String),
    /// A value that cannot be stored (it breaks a rule of its kind).
    #[error("{0}")]
    Invalid(String),
    /// Something does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A transition that the state machine does not allow.
    #[error("{0}")]
    State(String),
    /// A stored value could not be read back.
    #[error("database holds an unreadable value: {0}")]
    Corrupt(String),
}

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite: one writer at a time, so a single `UPDATE … RETURNING` claims atomically.
    Sqlite,
    /// PostgreSQL: claims skip rows other replicas hold (`FOR UPDATE SKIP LOCKED`).
    Postgres,
}

/// The state store, shared by the API, the movers and the administration commands.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// Woken on every change this process commits: idle movers wait on it (other replicas'
    /// changes are seen by their periodic re-reads).
    changed: Arc<Notify>,
    /// Which train and station each committed change concerns: SSE feeds and long-polls wake
    /// only for their own. (Waking all of them on every event made 500 feeds run 500 queries
    /// per event.)
    touched: tokio::sync::broadcast::Sender<Touched>,
    /// The SQLite file, for the free-space check of `/readyz`.
    file: Option<std::path::PathBuf>,
}

/// Below this much free space on an SQLite database's file system the service is not ready:
/// a write that needs a new page would fail (a one-row update still fits in pages SQLite
/// holds, so the write probe alone passed on a full disk). 64 MiB is ~100,000 events.
pub const MIN_FREE_BYTES: u64 = 64 << 20;

/// The train and station a committed change concerns.
#[derive(Debug, Clone)]
pub struct Touched {
    /// The train, if any.
    pub train: Option<String>,
    /// The station, if any.
    pub station: Option<String>,
}

/// The URL with any password replaced, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}://{user}:***@{}", &url[..s], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// A failed migration's message with what to do, where a step is known to stop on data the
/// previous release allowed.
fn upgrade_hint(e: &str) -> String {
    let lower = e.to_lowercase();
    if lower.contains("migration 3") && (lower.contains("unique") || lower.contains("duplicate")) {
        format!(
            "{e}; the upgrade to one party per (registry, namespace) stopped, and changed nothing: two parties of the previous release share a registry and namespace. Find them (`route-service station list`, `route-service creator list`), remove one (`route-service station remove ID`), then start again"
        )
    } else {
        e.to_string()
    }
}

impl Db {
    /// Opens (creating a SQLite file if missing) and migrates the database at `url`.
    pub async fn open(url: &str) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let open_err = |e: &dyn std::fmt::Display| DbError::Open {
            url: redact(url),
            detail: e.to_string(),
        };
        let mut file = None;
        let (backend, url) = if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.trim_start_matches("//");
            let bare = path.split('?').next().unwrap_or(path);
            not_another_file(bare).map_err(|e| open_err(&e))?;
            file = Some(std::path::PathBuf::from(bare));
            let sep = if path.contains('?') { '&' } else { '?' };
            (Backend::Sqlite, format!("sqlite://{path}{sep}mode=rwc"))
        } else {
            (Backend::Postgres, url.to_string())
        };
        let mut opts =
            AnyPoolOptions::new().max_connections(if backend == Backend::Sqlite { 8 } else { 16 });
        if backend == Backend::Sqlite {
            // WAL lets readers (feeds, long-polls) run beside the one writer; the busy timeout
            // queues writers instead of failing them (5 s: far above any of our transactions).
            opts = opts.after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    Ok(())
                })
            });
        }
        let pool = opts.connect(&url).await.map_err(|e| open_err(&e))?;
        let migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("migrations/postgres"),
        };
        migrator
            .run(&pool)
            .await
            .map_err(|e| open_err(&upgrade_hint(&e.to_string())))?;
        Ok(Self {
            pool,
            backend,
            changed: Arc::new(Notify::new()),
            // A feed that falls this far behind re-reads the log (`Lagged`), losing nothing.
            touched: tokio::sync::broadcast::channel(4096).0,
            file,
        })
    }

    /// Creates the empty PostgreSQL database `name` on the server of `base` (a `postgres://`
    /// URL) and returns its URL: tests and the benchmark give each run its own database.
    pub async fn create_database(base: &str, name: &str) -> Result<String, DbError> {
        sqlx::any::install_default_drivers();
        let open_err = |e: &dyn std::fmt::Display| DbError::Open {
            url: redact(base),
            detail: e.to_string(),
        };
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(open_err(&format!("database name `{name}`: use [a-z0-9_]")));
        }
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(base)
            .await
            .map_err(|e| open_err(&e))?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await?;
        pool.close().await;
        let (server, _) = base
            .rsplit_once('/')
            .ok_or_else(|| open_err(&"no database in the URL"))?;
        Ok(format!("{server}/{name}"))
    }

    /// Begins a transaction that will write. On SQLite it is `BEGIN IMMEDIATE`: the write lock
    /// is taken at the start (waiting up to the busy timeout), so a transaction that reads
    /// before it writes never fails on the upgrade. A deferred one did: in WAL mode a reader
    /// whose snapshot is older than another connection's commit gets `SQLITE_BUSY` at its
    /// first write at once, with no wait (CI saw "database is locked" accepting a key while
    /// the same station's `last_seen` was being written).
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, DbError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for health checks.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Resolves when this process appends an event (or is woken spuriously).
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    pub(crate) fn wake(&self) {
        self.changed.notify_waiters();
    }

    /// Announces a committed change about `train` and `station`, and wakes the movers.
    pub(crate) fn touch(&self, train: Option<&str>, station: Option<&str>) {
        let _ = self.touched.send(Touched {
            train: train.map(str::to_string),
            station: station.map(str::to_string),
        });
        self.wake();
    }

    /// Changes as they are committed by this process.
    pub fn touches(&self) -> tokio::sync::broadcast::Receiver<Touched> {
        self.touched.subscribe()
    }

    /// Whether the database answers and takes a write (one row, committed: a database that
    /// reads but cannot write, on a full disk or a read-only mount, is not ready).
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("UPDATE probe SET at = $1 WHERE id = 1")
            .bind(crate::clock::now_ms())
            .execute(&self.pool)
            .await?;
        if let Some(free) = self.free_bytes() {
            if free < MIN_FREE_BYTES {
                return Err(DbError::Invalid(format!(
                    "the database's file system has {} MiB free (under {} MiB): writes that need space will fail; free space or move the database",
                    free >> 20,
                    MIN_FREE_BYTES >> 20
                )));
            }
        }
        Ok(())
    }

    /// Free bytes on the SQLite file's file system (for an unprivileged writer).
    fn free_bytes(&self) -> Option<u64> {
        let dir = self.file.as_ref()?.parent()?;
        let dir = if dir.as_os_str().is_empty() {
            std::path::Path::new(".")
        } else {
            dir
        };
        let st = rustix::fs::statvfs(dir).ok()?;
        Some(st.f_bavail.saturating_mul(st.f_frsize))
    }

    /// Closes the pool (waits for connections in use).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Refuses a file that exists and is not an SQLite database: the pool would retry it for its
/// whole acquire timeout (30 s) and then say only "timed out".
fn not_another_file(path: &str) -> Result<(), String> {
    use std::io::Read;
    let mut head = [0u8; 16];
    let n = match std::fs::File::open(path) {
        Ok(mut f) => f.read(&mut head).map_err(|e| format!("{path}: {e}"))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("{path}: {e}")),
    };
    if n == 0 || head == *b"SQLite format 3\0" {
        Ok(())
    } else {
        Err(format!(
            "{path} is not an SQLite database (it does not begin with `SQLite format 3`): name the service's database file, or move this file away and a new database is made there"
        ))
    }
}

/// Waits until a change `wanted` accepts is announced on `rx` (a lagged receiver counts: it
/// may have missed one), or `max` passes (other replicas' changes are not announced here).
pub async fn until_touched(
    rx: &mut tokio::sync::broadcast::Receiver<Touched>,
    wanted: impl Fn(&Touched) -> bool,
    max: std::time::Duration,
) {
    use tokio::sync::broadcast::error::RecvError;
    let wait = async {
        loop {
            match rx.recv().await {
                Ok(t) if wanted(&t) => return,
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => return,
                Err(RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    };
    let _ = tokio::time::timeout(max, wait).await;
}

/// Reads a text column as one of the wire's types (an enum, an id, a digest), checked.
pub(crate) fn parse_col<T>(row: &AnyRow, col: &str) -> Result<T, DbError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    use sqlx::Row;
    let s: String = row.try_get(col)?;
    s.parse()
        .map_err(|e: T::Err| DbError::Corrupt(format!("{col}: {e}")))
}

/// Reads a nullable text column as one of the wire's types, checked.
pub(crate) fn parse_opt<T>(row: &AnyRow, col: &str) -> Result<Option<T>, DbError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    use sqlx::Row;
    row.try_get::<Option<String>, _>(col)?
        .map(|s| {
            s.parse()
                .map_err(|e: T::Err| DbError::Corrupt(format!("{col}: {e}")))
        })
        .transpose()
}

/// Maps a unique-key violation to `Conflict(what)`.
pub(crate) fn conflict(e: sqlx::Error, what: impl FnOnce() -> String) -> DbError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => DbError::Conflict(what()),
        _ => DbError::Query(e),
    }
}
