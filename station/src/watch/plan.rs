//! What the watcher does with one inbox item, decided without doing it: from the item, what
//! the watcher's state file says of it, the audit log's word on whether it already ran here,
//! and the watcher's own situation. [`super::act`] carries the decision out.

pub use super::item::{Item, Stop};

use super::approval::auto_approval;
use super::state::{Entry, Status};
use super::WatchSection;
use route_wire::{Digest, HopState, StationId};

/// What to do with an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing now: a run is in hand, everything owed was reported, the item is not for now
    /// (the watcher stops, or runs as many as it may), or it waits for an inspection.
    Nothing,
    /// The push is recorded here; the service has not got the `done` report yet.
    ReportDone(Digest),
    /// The failure is recorded here; the service has not got the `failed` report yet.
    ReportFailed(String),
    /// Runs kept ending in trouble that was not the train's: fail it with why.
    GiveUp(String),
    /// The station's rules approve it without its operator.
    Approve(String),
    /// It waits for the operator: read it for the review queue.
    Inspect,
    /// The audit log says this exact image ran and was pushed here (a crash between push and
    /// report): report it done, run nothing.
    AlreadyPushed(Digest),
    /// Run it.
    Start,
}

/// The watcher's situation when it decides.
#[derive(Debug, Clone, Copy)]
pub struct Situation<'a> {
    /// The `[watch]` settings.
    pub cfg: &'a WatchSection,
    /// The station.
    pub station: &'a StationId,
    /// A run of this stop is in hand.
    pub in_hand: bool,
    /// Runs in hand.
    pub running: usize,
    /// The watcher is stopping: no new work.
    pub stopping: bool,
    /// An inspection of this train is made or being made.
    pub inspected: bool,
}

/// Decides what to do with `item`. `entry`: the state file's entry for its stop (any digest);
/// `pushed`: what the audit log says this station pushed for this image, when it was asked.
pub fn plan(
    item: &Item,
    entry: Option<&Entry>,
    pushed: Option<&Digest>,
    s: Situation<'_>,
) -> Action {
    if s.in_hand {
        return Action::Nothing;
    }
    if let Some(e) = entry.filter(|e| e.digest_in == item.digest) {
        match (&e.status, e.reported) {
            (Status::Pushed { digest }, false) => return Action::ReportDone(digest.clone()),
            (Status::Failed { reason }, false) => return Action::ReportFailed(reason.clone()),
            // Reported: the service moves on; nothing more to do here.
            (Status::Pushed { .. } | Status::Failed { .. }, true) => return Action::Nothing,
            _ if e.attempts >= s.cfg.max_attempts => {
                let why = e
                    .last_error
                    .as_deref()
                    .map(|w| format!("; the last: {w}"))
                    .unwrap_or_default();
                return Action::GiveUp(format!(
                    "gave up after {} runs at {} that ended in registry or engine trouble, a station failure or with the station stopping{why}",
                    e.attempts, s.station
                ));
            }
            _ => {}
        }
    }
    match item.raw.state {
        HopState::AwaitingApproval => match auto_approval(s.cfg, item) {
            Some(why) => Action::Approve(why),
            None if s.inspected => Action::Nothing,
            None => Action::Inspect,
        },
        HopState::Delivered | HopState::Approved | HopState::Running => {
            if s.stopping || s.running >= s.cfg.concurrency {
                Action::Nothing
            } else if let Some(d) = pushed {
                Action::AlreadyPushed(d.clone())
            } else {
                Action::Start
            }
        }
        // The service lists only what is at the station; anything else is not ours to act on.
        _ => Action::Nothing,
    }
}

/// Whether deciding about `item` needs the audit log's word (only a run would ask it).
pub fn may_run(item: &Item) -> bool {
    matches!(
        item.raw.state,
        HopState::Delivered | HopState::Approved | HopState::Running
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use route_wire::{Approval, Format, InboxItem};

    fn d(c: char) -> Digest {
        Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
    }

    fn item(state: HopState, creator: &str) -> Item {
        Item::parse(
            InboxItem {
                train: "t1".parse().unwrap(),
                creator: creator.parse().unwrap(),
                format: Format::Native,
                route: vec!["s1".parse().unwrap()],
                index: 0,
                state,
                image: format!("127.0.0.1:5000/s1/inbox@{}", d('a')),
                push_to: "127.0.0.1:5000/s1/outbox:t1".into(),
            },
            &["127.0.0.1:5000".into()],
        )
        .unwrap()
    }

    fn entry(status: Status, reported: bool, attempts: u32) -> Entry {
        Entry {
            status,
            digest_in: d('a'),
            attempts,
            reported,
            updated: 0,
            last_error: Some("registry down".into()),
        }
    }

    fn cfg(approval: Approval) -> WatchSection {
        WatchSection {
            approval,
            max_attempts: 3,
            concurrency: 2,
            auto_approve_creators: vec!["trusted".parse().unwrap()],
            ..WatchSection::default()
        }
    }

    fn at<'a>(cfg: &'a WatchSection, station: &'a StationId) -> Situation<'a> {
        Situation {
            cfg,
            station,
            in_hand: false,
            running: 0,
            stopping: false,
            inspected: false,
        }
    }

    #[test]
    fn what_is_owed_is_reported_and_what_was_reported_is_left() {
        let (c, st) = (cfg(Approval::Auto), "s1".parse().unwrap());
        let i = item(HopState::Delivered, "alice");
        let pushed = entry(Status::Pushed { digest: d('b') }, false, 1);
        assert_eq!(
            plan(&i, Some(&pushed), None, at(&c, &st)),
            Action::ReportDone(d('b'))
        );
        let failed = entry(
            Status::Failed {
                reason: "exit 1".into(),
            },
            false,
            1,
        );
        assert_eq!(
            plan(&i, Some(&failed), None, at(&c, &st)),
            Action::ReportFailed("exit 1".into())
        );
        for reported in [
            entry(Status::Pushed { digest: d('b') }, true, 1),
            entry(Status::Failed { reason: "x".into() }, true, 1),
        ] {
            assert_eq!(
                plan(&i, Some(&reported), None, at(&c, &st)),
                Action::Nothing
            );
        }
        // An entry of another image of the same stop (a retried hop) does not count.
        let mut other = pushed.clone();
        other.digest_in = d('c');
        assert_eq!(plan(&i, Some(&other), None, at(&c, &st)), Action::Start);
    }

    #[test]
    fn runs_that_keep_failing_are_given_up_with_the_last_error() {
        let (c, st) = (cfg(Approval::Auto), "s1".parse().unwrap());
        let i = item(HopState::Delivered, "alice");
        let e = entry(Status::Interrupted, false, 3);
        match plan(&i, Some(&e), None, at(&c, &st)) {
            Action::GiveUp(why) => assert!(
                why.contains("gave up after 3 runs at s1") && why.contains("registry down"),
                "{why}"
            ),
            a => panic!("{a:?}"),
        }
        let e = entry(Status::Interrupted, false, 2);
        assert_eq!(plan(&i, Some(&e), None, at(&c, &st)), Action::Start);
    }

    #[test]
    fn waiting_trains_are_approved_by_the_rules_or_inspected_once() {
        let st = "s1".parse().unwrap();
        let auto = cfg(Approval::Auto);
        let manual = cfg(Approval::Manual);
        let waiting = item(HopState::AwaitingApproval, "alice");
        assert!(matches!(
            plan(&waiting, None, None, at(&auto, &st)),
            Action::Approve(_)
        ));
        assert_eq!(
            plan(&waiting, None, None, at(&manual, &st)),
            Action::Inspect
        );
        let mut s = at(&manual, &st);
        s.inspected = true;
        assert_eq!(plan(&waiting, None, None, s), Action::Nothing);
        let trusted = item(HopState::AwaitingApproval, "trusted");
        match plan(&trusted, None, None, at(&manual, &st)) {
            Action::Approve(why) => assert!(why.contains("auto_approve_creators"), "{why}"),
            a => panic!("{a:?}"),
        }
    }

    #[test]
    fn runs_start_only_when_there_is_room_and_nothing_ran_before() {
        let (c, st) = (cfg(Approval::Auto), "s1".parse().unwrap());
        for state in [HopState::Delivered, HopState::Approved, HopState::Running] {
            let i = item(state, "alice");
            assert_eq!(plan(&i, None, None, at(&c, &st)), Action::Start);
            assert_eq!(
                plan(&i, None, Some(&d('e')), at(&c, &st)),
                Action::AlreadyPushed(d('e'))
            );
            let mut s = at(&c, &st);
            s.in_hand = true;
            assert_eq!(plan(&i, None, None, s), Action::Nothing, "in hand");
            let mut s = at(&c, &st);
            s.running = 2;
            assert_eq!(plan(&i, None, None, s), Action::Nothing, "full");
            let mut s = at(&c, &st);
            s.stopping = true;
            assert_eq!(plan(&i, None, None, s), Action::Nothing, "stopping");
        }
        let i = item(HopState::Done, "alice");
        assert_eq!(plan(&i, None, None, at(&c, &st)), Action::Nothing);
    }
}
