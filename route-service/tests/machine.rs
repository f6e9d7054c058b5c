//! The hop state machine under random interleavings of everything that moves a train: two
//! movers claiming (with leases that run out), delivering, failing and giving back moves;
//! stations pushing (their own state, a replay, out of turn), reporting, being approved or
//! rejected; cancels, retries and deadlines; and pairs of these at the same moment. On SQLite
//! always, and on PostgreSQL when `PHT_TEST_POSTGRES_URL` is set (`.ci/run` sets it).
//!
//! After every event the whole database is read and held to the machine's invariants:
//! - every hop that changed did so by a step of `route_service::machine` (or stood still);
//! - nothing leaves a terminal state (`done`, `cancelled`);
//! - a train's states only grow (earlier digests never change or vanish);
//! - a step that applied appended its event, one that did not apply changed nothing;
//! - a hop is delivered at most once between two retries of its train.

use proptest::prelude::*;
use route_service::db::{Claimed, Db, NewCreator, NewStation, NewTrain};
use route_service::machine::{is_terminal, Step};
use route_wire::{Approval, Digest, EventKind, Format, HopState};
use sqlx::Row;
use std::collections::{BTreeMap, HashMap};
use train_image::ImageRef;

const TRAINS: usize = 3;

/// A valid digest named by `label`.
fn dg(label: &str) -> Digest {
    let h = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, label.as_bytes());
    Digest::parse(&format!("sha256:{}", hex::encode(h.as_ref()))).unwrap()
}

/// One thing that happens.
#[derive(Debug, Clone)]
enum Ev {
    /// Mover `m` claims a move with a lease that has run out at once (`expired`) or not.
    Claim { m: usize, expired: bool },
    /// Mover `m` delivers its oldest claimed move.
    Complete { m: usize },
    /// Mover `m`'s oldest move failed (`give_up`: out of attempts).
    Fail { m: usize, give_up: bool },
    /// Mover `m` gives its oldest move back.
    Release { m: usize },
    /// Station `s` of train `t` pushes: a new digest, the train's last state (a replay), or
    /// its first.
    Push { t: usize, s: usize, which: u8 },
    /// Station `s` of train `t` reports or decides `step`.
    Station { t: usize, s: usize, step: Step },
    /// Train `t` is cancelled.
    Cancel { t: usize },
    /// Train `t` is retried.
    Retry { t: usize },
    /// Deadlines are checked.
    Expire,
    /// Two at once.
    Both(Box<Ev>, Box<Ev>),
}

fn station_steps() -> impl Strategy<Value = Step> {
    prop_oneof![
        Just(Step::Pulled),
        Just(Step::Run),
        Just(Step::StationFail),
        Just(Step::Interrupt),
        Just(Step::InterruptApproved),
        Just(Step::Approve),
        Just(Step::Reject),
    ]
}

fn one() -> impl Strategy<Value = Ev> {
    prop_oneof![
        4 => (0..2usize, prop::bool::weighted(0.2)).prop_map(|(m, expired)| Ev::Claim { m, expired }),
        4 => (0..2usize).prop_map(|m| Ev::Complete { m }),
        1 => (0..2usize, any::<bool>()).prop_map(|(m, give_up)| Ev::Fail { m, give_up }),
        1 => (0..2usize).prop_map(|m| Ev::Release { m }),
        4 => (0..TRAINS, 0..2usize, 0..3u8).prop_map(|(t, s, which)| Ev::Push { t, s, which }),
        3 => (0..TRAINS, 0..2usize, station_steps()).prop_map(|(t, s, step)| Ev::Station { t, s, step }),
        1 => (0..TRAINS).prop_map(|t| Ev::Cancel { t }),
        1 => (0..TRAINS).prop_map(|t| Ev::Retry { t }),
        1 => Just(Ev::Expire),
    ]
}

fn event() -> impl Strategy<Value = Ev> {
    prop_oneof![
        8 => one(),
        2 => (one(), one()).prop_map(|(a, b)| Ev::Both(Box::new(a), Box::new(b))),
    ]
}

/// Everything the invariants look at.
#[derive(Debug, Clone, PartialEq, Default)]
struct Snapshot {
    hops: BTreeMap<(String, i64), HopState>,
    states: BTreeMap<String, Vec<String>>,
    events: Vec<(i64, Option<String>, Option<String>, EventKind)>,
}

async fn snapshot(db: &Db) -> Snapshot {
    let mut s = Snapshot::default();
    for r in sqlx::query("SELECT train_id, idx, state FROM hops")
        .fetch_all(db.pool())
        .await
        .unwrap()
    {
        let state: String = r.get("state");
        s.hops
            .insert((r.get("train_id"), r.get("idx")), state.parse().unwrap());
    }
    for r in sqlx::query("SELECT train_id, digest FROM train_states ORDER BY train_id, seq")
        .fetch_all(db.pool())
        .await
        .unwrap()
    {
        s.states
            .entry(r.get("train_id"))
            .or_default()
            .push(r.get("digest"));
    }
    for r in sqlx::query("SELECT id, train_id, station, kind FROM events ORDER BY id")
        .fetch_all(db.pool())
        .await
        .unwrap()
    {
        let kind: String = r.get("kind");
        s.events.push((
            r.get("id"),
            r.get("train_id"),
            r.get("station"),
            EventKind::parse(&kind),
        ));
    }
    s
}

/// The world of one case: its trains with their routes, the movers' claims, digests pushed.
struct World {
    db: Db,
    trains: Vec<(String, Vec<String>)>,
    claims: [Vec<Claimed>; 2],
    pushes: HashMap<usize, usize>,
}

async fn world(db: Db, tag: &str) -> World {
    let creator = format!("c-{tag}");
    db.add_creator(
        &NewCreator {
            id: creator.parse().unwrap(),
            registry: "r:1".into(),
            namespace: creator.clone(),
            public_key: "pem".into(),
            fingerprint: "sha256:00".into(),
        },
        "h",
    )
    .await
    .unwrap();
    let stations: Vec<String> = (0..2).map(|i| format!("s{i}-{tag}")).collect();
    for (i, s) in stations.iter().enumerate() {
        db.add_station(
            &NewStation {
                id: s.parse().unwrap(),
                registry: "r:1".into(),
                namespace: s.clone(),
                public_key: "pem".into(),
                fingerprint: "sha256:00".into(),
                approval: if i == 0 {
                    Approval::Auto
                } else {
                    Approval::Manual
                },
            },
            "h",
        )
        .await
        .unwrap();
    }
    let mut trains = Vec::new();
    for t in 0..TRAINS {
        let id = format!("t{t}-{tag}");
        // Train 1 goes the other way round; train 2's deadline has always passed.
        let route: Vec<String> = if t == 1 {
            stations.iter().rev().cloned().collect()
        } else {
            stations.clone()
        };
        let mut targets: Vec<_> = route
            .iter()
            .map(|s| {
                (
                    Some(s.parse().unwrap()),
                    format!("r:1/{s}/inbox:{id}").parse().unwrap(),
                )
            })
            .collect();
        targets.push((None, format!("r:1/{creator}/results:{id}").parse().unwrap()));
        db.create_train(
            &NewTrain {
                id: id.parse().unwrap(),
                creator: creator.parse().unwrap(),
                format: Format::Native,
                route: route.iter().map(|s| s.parse().unwrap()).collect(),
                digest: dg(&format!("{id}-0")),
                source: format!("r:1/{creator}/submissions@{}", dg(&format!("{id}-0")))
                    .parse()
                    .unwrap(),
                targets,
                detail: "test".into(),
            },
            if t == 2 { -1 } else { 3_600_000 },
        )
        .await
        .unwrap();
        trains.push((id, route));
    }
    World {
        db,
        trains,
        claims: [Vec::new(), Vec::new()],
        pushes: HashMap::new(),
    }
}

/// What an event did: the steps that applied (their events must be in the log) and whether
/// anything at all may have changed.
#[derive(Default)]
struct Did {
    applied: Vec<Step>,
}

impl World {
    async fn run(&mut self, ev: &Ev) -> Did {
        let mut did = Did::default();
        match ev {
            Ev::Both(a, b) => {
                // Two at once, each on a clone of the world's handles; claims made are kept.
                let (mut wa, mut wb) = (self.fork(), self.fork());
                let (da, db) = tokio::join!(Box::pin(wa.run(a)), Box::pin(wb.run(b)));
                self.join(wa);
                self.join(wb);
                did.applied.extend(da.applied);
                did.applied.extend(db.applied);
            }
            Ev::Claim { m, expired } => {
                let lease = if *expired { -1 } else { 60_000 };
                if let Some(c) = self.db.claim_move(&format!("m{m}"), lease).await.unwrap() {
                    did.applied.push(Step::Claim);
                    self.claims[*m].push(c);
                }
            }
            Ev::Complete { m } => {
                if let Some(c) = self.claims[*m].first().cloned() {
                    self.claims[*m].remove(0);
                    let approval = match &c.station {
                        Some(s) => self.db.station(s).await.unwrap().map(|s| s.approval),
                        None => None,
                    };
                    let r = self
                        .db
                        .complete_move(&c, &format!("m{m}"), approval, "moved")
                        .await
                        .unwrap();
                    if r.is_ok() {
                        did.applied.push(match (&c.station, approval) {
                            (None, _) => Step::Finish,
                            (Some(_), Some(Approval::Manual)) => Step::DeliverForApproval,
                            _ => Step::Deliver,
                        });
                    }
                }
            }
            Ev::Fail { m, give_up } => {
                if let Some(c) = self.claims[*m].first().cloned() {
                    self.claims[*m].remove(0);
                    let max = if *give_up { 1 } else { 100 };
                    let r = self
                        .db
                        .fail_move(&c, &format!("m{m}"), "registry down", max)
                        .await
                        .unwrap();
                    if r.is_ok() {
                        did.applied.push(if *give_up {
                            Step::MoveFail
                        } else {
                            Step::MoveRetry
                        });
                    }
                }
            }
            Ev::Release { m } => {
                if let Some(c) = self.claims[*m].first().cloned() {
                    self.claims[*m].remove(0);
                    if self
                        .db
                        .release_move(&c, &format!("m{m}"))
                        .await
                        .unwrap()
                        .is_ok()
                    {
                        did.applied.push(Step::Release);
                    }
                }
            }
            Ev::Push { t, s, which } => {
                let (train, route) = self.trains[*t].clone();
                let n = self.pushes.entry(*t).or_default();
                let label = match which {
                    0 => {
                        *n += 1;
                        format!("{train}-{n}")
                    }
                    1 => format!("{train}-{n}"),
                    _ => format!("{train}-0"),
                };
                let pushed: ImageRef = format!("r:1/o/outbox@{}", dg(&label)).parse().unwrap();
                let r = self
                    .db
                    .station_pushed(&train, &route[*s], &pushed, "test")
                    .await
                    .unwrap();
                if r == Ok(route_service::db::Pushed::New) {
                    did.applied.push(Step::Push);
                }
            }
            Ev::Station { t, s, step } => {
                let (train, route) = self.trains[*t].clone();
                let r = self
                    .db
                    .station_step(&train, &route[*s], *step, format!("{step:?}"))
                    .await
                    .unwrap();
                if r.is_ok() {
                    did.applied.push(*step);
                }
            }
            Ev::Cancel { t } => {
                let train = self.trains[*t].0.clone();
                if self.db.cancel_train(&train, "admin").await.unwrap().is_ok() {
                    did.applied.push(Step::Cancel);
                }
            }
            Ev::Retry { t } => {
                let train = self.trains[*t].0.clone();
                if self.db.retry_train(&train, "admin").await.unwrap().is_ok() {
                    did.applied.push(Step::Retry);
                }
            }
            Ev::Expire => {
                for _ in 0..self.db.expire_hops().await.unwrap() {
                    did.applied.push(Step::Expire);
                }
            }
        }
        did
    }

    fn fork(&self) -> World {
        World {
            db: self.db.clone(),
            trains: self.trains.clone(),
            claims: [self.claims[0].clone(), self.claims[1].clone()],
            pushes: self.pushes.clone(),
        }
    }

    /// Takes over what a fork did: claims it made or used, digests it counted.
    fn join(&mut self, f: World) {
        for m in 0..2 {
            let before = &self.claims[m];
            let gone: Vec<_> = before
                .iter()
                .filter(|c| !f.claims[m].iter().any(|d| same(c, d)))
                .cloned()
                .collect();
            let new: Vec<_> = f.claims[m]
                .iter()
                .filter(|d| !before.iter().any(|c| same(c, d)))
                .cloned()
                .collect();
            self.claims[m].retain(|c| !gone.iter().any(|g| same(c, g)));
            self.claims[m].extend(new);
        }
        for (t, n) in f.pushes {
            let e = self.pushes.entry(t).or_default();
            *e = (*e).max(n);
        }
    }
}

fn same(a: &Claimed, b: &Claimed) -> bool {
    (a.train.as_str(), a.idx, a.attempts) == (b.train.as_str(), b.idx, b.attempts)
}

/// The invariants between `before` and `after` an event that applied `did`.
fn check(before: &Snapshot, after: &Snapshot, did: &Did, ev: &Ev) -> Result<(), String> {
    for (k, prev) in &before.hops {
        let now = after.hops[k];
        if now == *prev {
            continue;
        }
        if is_terminal(*prev) {
            return Err(format!(
                "{k:?} left the terminal state {prev} for {now} ({ev:?})"
            ));
        }
        // Two events run at once may both apply to one hop: its state then moved two steps
        // between the snapshots (awaiting_approval → approved → done).
        let one = |from: HopState| -> Vec<HopState> {
            Step::ALL
                .iter()
                .filter(|s| s.applies_in(from))
                .map(|s| s.to(from))
                .collect()
        };
        let mut reach = one(*prev);
        if matches!(ev, Ev::Both(..)) {
            let second: Vec<HopState> = reach.iter().flat_map(|m| one(*m)).collect();
            reach.extend(second);
        }
        if !reach.contains(&now) {
            return Err(format!(
                "{k:?} went {prev} → {now}: no step of the machine does that ({ev:?})"
            ));
        }
    }
    for (t, prev) in &before.states {
        let now = after.states.get(t).cloned().unwrap_or_default();
        if now.len() < prev.len() || now[..prev.len()] != prev[..] {
            return Err(format!(
                "the states of {t} went from {prev:?} to {now:?} ({ev:?})"
            ));
        }
    }
    let new: Vec<EventKind> = after.events[before.events.len()..]
        .iter()
        .map(|e| e.3)
        .collect();
    if did.applied.is_empty() && (before.hops != after.hops || !new.is_empty()) {
        return Err(format!(
            "nothing applied, yet hops or events changed: {new:?} ({ev:?})"
        ));
    }
    for step in &did.applied {
        let kind = step
            .event()
            .expect("the steps taken here record their own events");
        if !new.contains(&kind) {
            return Err(format!(
                "{step:?} applied without its `{kind}` event: {new:?} ({ev:?})"
            ));
        }
    }
    // At most one delivery per hop between two retries of its train.
    let mut seen: HashMap<(Option<String>, Option<String>), u32> = HashMap::new();
    for (_, train, station, kind) in &after.events {
        match kind {
            EventKind::Retried => seen.retain(|(t, _), _| t != train),
            EventKind::Delivered | EventKind::Finished => {
                let n = seen.entry((train.clone(), station.clone())).or_default();
                *n += 1;
                if *n > 1 {
                    return Err(format!(
                        "{train:?} was delivered twice to {station:?} without a retry between ({ev:?})"
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

async fn databases(case: u32) -> Vec<Db> {
    let dir = std::env::temp_dir().join(format!("machine-{}-{case}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut v = vec![Db::open(&format!("sqlite:{}", dir.join("m.db").display()))
        .await
        .unwrap()];
    if let Ok(base) = std::env::var("PHT_TEST_POSTGRES_URL") {
        let name = format!("state_machine_{}_{case}", std::process::id());
        let url = Db::create_database(&base, &name).await.unwrap();
        v.push(Db::open(&url).await.unwrap());
    }
    v
}

proptest! {
    // 24 cases of up to 60 events on each database: about 40 s on this 2-core host with
    // PostgreSQL; every event reads the whole (small) database back.
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn random_interleavings_keep_the_machines_invariants(events in prop::collection::vec(event(), 1..60)) {
        static CASE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let case = CASE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let outcome: Result<(), String> = rt.block_on(async {
            for db in databases(case).await {
                let mut w = world(db.clone(), &format!("{case}")).await;
                let mut before = snapshot(&db).await;
                for ev in &events {
                    let did = w.run(ev).await;
                    let after = snapshot(&db).await;
                    check(&before, &after, &did, ev)?;
                    before = after;
                }
                db.close().await;
            }
            Ok(())
        });
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }
}
