//! The one path every hop transition takes: the guarded write built from the state machine
//! ([`Step::guard`](crate::machine::Step::guard)), then the step's event, then the train's
//! state, all in the caller's transaction (begun by [`Db::begin_write`](super::Db), which
//! holds SQLite's write lock from the start, so it never fails half-way on a lock upgrade). On
//! PostgreSQL the guarded write's row lock makes a concurrent twin see the new state and match nothing. A
//! transition that matches nothing writes nothing and says why, in one shape: [`NotApplied`].

use super::events::{append, NewEvent};
use super::trains::refresh;
use super::DbError;
use crate::clock::now_ms;
use crate::machine::Step;
use route_wire::EventKind;
use sqlx::Row;

/// Why a step did not apply; nothing was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotApplied {
    /// The step.
    pub step: Step,
    /// Why, for the caller (the API answers 409 with it).
    pub reason: String,
}

impl std::fmt::Display for NotApplied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// What a step did: `Ok` when it applied, else why not.
pub type Applied<T = ()> = Result<T, NotApplied>;

/// Which hops of the train a transition is about.
#[derive(Debug, Clone, Copy)]
pub(super) enum Which<'a> {
    /// The hop at this index.
    Hop(i64),
    /// The hop of this station.
    Station(&'a str),
    /// Every hop the step applies to (a cancellation).
    All,
}

/// A value bound into a statement.
#[derive(Debug, Clone, Copy)]
pub(super) enum Val<'a> {
    Int(i64),
    Text(&'a str),
    OptText(Option<&'a str>),
}

/// `column = expression`: a bound value, or SQL with `?` for each of its bound values.
#[derive(Debug, Clone)]
pub(super) enum Expr<'a> {
    Val(Val<'a>),
    Sql(&'static str, Vec<Val<'a>>),
}

/// One transition of hops of one train.
#[derive(Debug, Clone)]
pub(super) struct Transition<'a> {
    pub step: Step,
    pub train: &'a str,
    pub which: Which<'a>,
    /// Columns set besides `state` and `updated_at`.
    pub set: Vec<(&'static str, Expr<'a>)>,
    /// Conditions besides the step's guard: `column = value`, or SQL with `?` placeholders.
    pub when: Vec<Expr<'a>>,
    /// The event's station and detail (the kind is the step's); `None`: the caller records it
    /// elsewhere (a second hop of the same step) or the step has none.
    pub event: Option<(Option<&'a str>, String)>,
    /// A reason the train keeps (why it failed or was cancelled).
    pub reason: Option<&'a str>,
}

impl<'a> Transition<'a> {
    /// `step` on `which` hops of `train`, recorded with `detail` about `station`.
    pub fn new(step: Step, train: &'a str, which: Which<'a>) -> Self {
        Self {
            step,
            train,
            which,
            set: Vec::new(),
            when: Vec::new(),
            event: None,
            reason: None,
        }
    }

    pub fn set(mut self, col: &'static str, v: Val<'a>) -> Self {
        self.set.push((col, Expr::Val(v)));
        self
    }

    pub fn set_sql(mut self, col: &'static str, sql: &'static str, binds: Vec<Val<'a>>) -> Self {
        self.set.push((col, Expr::Sql(sql, binds)));
        self
    }

    pub fn when_sql(mut self, sql: &'static str, binds: Vec<Val<'a>>) -> Self {
        self.when.push(Expr::Sql(sql, binds));
        self
    }

    pub fn lease(self, owner: &'a str) -> Self {
        self.when_sql("lease_owner = ?", vec![Val::Text(owner)])
    }

    pub fn event(mut self, station: Option<&'a str>, detail: String) -> Self {
        self.event = Some((station, detail));
        self
    }

    pub fn reason(mut self, reason: &'a str) -> Self {
        self.reason = Some(reason);
        self
    }
}

/// SQL with `$n` for each `?` of `sql`, numbering from `next`.
fn number(sql: &str, next: &mut usize) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    for c in sql.chars() {
        if c == '?' {
            out.push_str(&format!("${next}"));
            *next += 1;
        } else {
            out.push(c);
        }
    }
    out
}

/// Applies `t`: returns the indices of the hops it changed (empty: it did not apply, and
/// nothing was written).
pub(super) async fn apply(
    conn: &mut sqlx::AnyConnection,
    t: &Transition<'_>,
) -> Result<Vec<i64>, DbError> {
    let rule = t.step.rule();
    let mut binds: Vec<Val<'_>> = Vec::new();
    let mut n = 1;
    let state = match rule.to {
        Some(s) => format!("'{}'", s.as_str()),
        None => "state".into(),
    };
    let mut sql = format!(
        "UPDATE hops SET state = {state}, updated_at = {}",
        number("?", &mut n)
    );
    let now = now_ms();
    binds.push(Val::Int(now));
    for (col, e) in &t.set {
        match e {
            Expr::Val(v) => {
                sql.push_str(&format!(", {col} = {}", number("?", &mut n)));
                binds.push(*v);
            }
            Expr::Sql(s, vs) => {
                sql.push_str(&format!(", {col} = {}", number(s, &mut n)));
                binds.extend(vs.iter().copied());
            }
        }
    }
    sql.push_str(&format!(
        " WHERE train_id = {} AND {}",
        number("?", &mut n),
        t.step.guard()
    ));
    binds.push(Val::Text(t.train));
    match t.which {
        Which::Hop(i) => {
            sql.push_str(&format!(" AND idx = {}", number("?", &mut n)));
            binds.push(Val::Int(i));
        }
        Which::Station(s) => {
            sql.push_str(&format!(" AND station = {}", number("?", &mut n)));
            binds.push(Val::Text(s));
        }
        Which::All => {}
    }
    for e in &t.when {
        match e {
            Expr::Val(v) => {
                sql.push_str(&format!(" AND {}", number("?", &mut n)));
                binds.push(*v);
            }
            Expr::Sql(s, vs) => {
                sql.push_str(&format!(" AND ({})", number(s, &mut n)));
                binds.extend(vs.iter().copied());
            }
        }
    }
    sql.push_str(" RETURNING idx");
    let mut q = sqlx::query(&sql);
    for b in &binds {
        q = match *b {
            Val::Int(i) => q.bind(i),
            Val::Text(s) => q.bind(s),
            Val::OptText(s) => q.bind(s),
        };
    }
    let rows = q.fetch_all(&mut *conn).await?;
    let changed = rows
        .iter()
        .map(|r| r.try_get::<i64, _>("idx"))
        .collect::<Result<Vec<_>, _>>()?;
    if changed.is_empty() {
        return Ok(changed);
    }
    if let (Some(kind), Some((station, detail))) = (rule.event, &t.event) {
        record(conn, kind, t.train, *station, detail.clone()).await?;
    }
    refresh(conn, t.train, t.reason).await?;
    Ok(changed)
}

/// Appends an event of `kind` about `train` (and `station`).
pub(super) async fn record(
    conn: &mut sqlx::AnyConnection,
    kind: EventKind,
    train: &str,
    station: Option<&str>,
    detail: String,
) -> Result<(), DbError> {
    append(
        conn,
        &NewEvent {
            train: Some(train),
            station,
            kind,
            detail,
        },
    )
    .await
}

/// Why `step` on `which` hops of `train` did not apply, as the caller tells it: the train is
/// unknown, not at that station, or in a state the step does not apply in.
pub(super) async fn why_not(
    conn: &mut sqlx::AnyConnection,
    step: Step,
    train: &str,
    which: Which<'_>,
) -> Result<NotApplied, DbError> {
    let known = sqlx::query("SELECT 1 AS x FROM trains WHERE id = $1")
        .bind(train)
        .fetch_optional(&mut *conn)
        .await?
        .is_some();
    let reason = if !known {
        format!("no train `{train}`")
    } else {
        match which {
            Which::Station(s) => {
                let open = sqlx::query(&format!(
                    "SELECT state FROM hops WHERE train_id = $1 AND station = $2 AND {}",
                    crate::machine::in_list(crate::machine::at_station())
                ))
                .bind(train)
                .bind(s)
                .fetch_optional(&mut *conn)
                .await?;
                match open {
                    Some(r) => format!(
                        "train {train} is {} at {s}; `{}` does not apply",
                        r.try_get::<String, _>("state")?,
                        step.name()
                    ),
                    None => format!("train {train} is not at {s}"),
                }
            }
            Which::Hop(i) => {
                let state = sqlx::query("SELECT state FROM hops WHERE train_id = $1 AND idx = $2")
                    .bind(train)
                    .bind(i)
                    .fetch_optional(&mut *conn)
                    .await?
                    .map(|r| r.try_get::<String, _>("state"))
                    .transpose()?
                    .unwrap_or_else(|| "absent".into());
                format!(
                    "hop {i} of train {train} is {state}; `{}` does not apply",
                    step.name()
                )
            }
            Which::All => format!("train {train} has no hop `{}` applies to", step.name()),
        }
    };
    Ok(NotApplied { step, reason })
}
