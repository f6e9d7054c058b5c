//! The hop state machine, in one place: every [`Step`] that moves a hop, the states it applies
//! in, the state it leads to and the event that records it. The database's guards
//! (`UPDATE hops … WHERE state IN (…)`) are built from this table ([`Step::guard`]), the
//! sets the rest of the service asks about ([`at_station`], [`may_push`], [`is_open`]) are
//! derived from it, and so is the diagram in `docs/architecture.md` ([`mermaid`]; a test
//! fails when the two differ).
//!
//! A hop is one stop of a train's route (the move into a station's inbox and the station's
//! run there) or the final move into the creator's results.

use route_wire::EventKind;
use route_wire::HopState::{self, *};

/// What moves a hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// A mover claims a due move, or one whose lease ran out (another replica died).
    Claim,
    /// A stopping replica gives a claimed move back untouched.
    Release,
    /// The copy is in the station's inbox.
    Deliver,
    /// The copy is in the inbox of a station that approves by hand.
    DeliverForApproval,
    /// The copy is in the creator's results: the train is finished.
    Finish,
    /// A move attempt failed; it is tried again after a back-off.
    MoveRetry,
    /// A move ran out of attempts.
    MoveFail,
    /// The previous station pushed: this hop's source is pinned and it may move (part of
    /// [`Step::Push`], which records it).
    Ready,
    /// The station whose turn it is pushed the next state.
    Push,
    /// The station reports it pulled the train (the state stays).
    Pulled,
    /// The station reports it runs the train.
    Run,
    /// The station reports the train failed (the train fails with its reason).
    StationFail,
    /// The station stopped the run before it finished (auto approval: delivered again).
    Interrupt,
    /// The station stopped the run before it finished (manual approval: approved again).
    InterruptApproved,
    /// The station's operator approves.
    Approve,
    /// The station's operator rejects (the train fails with the reason).
    Reject,
    /// The station did not push before the deadline.
    Expire,
    /// The creator or an admin cancels the train: every open hop.
    Cancel,
    /// An admin makes a failed or expired hop move again.
    Retry,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The states the step applies in.
    pub from: &'static [HopState],
    /// The state it leads to; `None`: the state stays.
    pub to: Option<HopState>,
    /// The event that records it; `None` for [`Step::Ready`], which [`Step::Push`] records.
    pub event: Option<EventKind>,
    /// Who takes it, for the diagram.
    pub by: &'static str,
}

const AT_STATION: &[HopState] = &[Delivered, AwaitingApproval, Approved, Running];
const MAY_PUSH: &[HopState] = &[Delivered, Approved, Running];
const OPEN: &[HopState] = &[
    WaitingPush,
    Detected,
    Copying,
    Delivered,
    AwaitingApproval,
    Approved,
    Running,
];

impl Step {
    /// Every step, in the order of a hop's life.
    pub const ALL: &'static [Step] = &[
        Step::Ready,
        Step::Claim,
        Step::Release,
        Step::MoveRetry,
        Step::MoveFail,
        Step::Deliver,
        Step::DeliverForApproval,
        Step::Finish,
        Step::Approve,
        Step::Reject,
        Step::Pulled,
        Step::Run,
        Step::Interrupt,
        Step::InterruptApproved,
        Step::Push,
        Step::StationFail,
        Step::Expire,
        Step::Cancel,
        Step::Retry,
    ];

    /// The step's row of the table.
    pub fn rule(self) -> Rule {
        let r = |from, to, event, by| Rule {
            from,
            to,
            event,
            by,
        };
        use EventKind as E;
        match self {
            Step::Ready => r(&[WaitingPush], Some(Detected), None, "push"),
            Step::Claim => r(
                &[Detected, Copying],
                Some(Copying),
                Some(E::Moving),
                "mover",
            ),
            Step::Release => r(&[Copying], Some(Detected), Some(E::MoveReleased), "mover"),
            Step::MoveRetry => r(&[Copying], Some(Detected), Some(E::MoveRetry), "mover"),
            Step::MoveFail => r(&[Copying], Some(Failed), Some(E::Failed), "mover"),
            Step::Deliver => r(&[Copying], Some(Delivered), Some(E::Delivered), "mover"),
            Step::DeliverForApproval => r(
                &[Copying],
                Some(AwaitingApproval),
                Some(E::Delivered),
                "mover",
            ),
            Step::Finish => r(&[Copying], Some(Done), Some(E::Finished), "mover"),
            Step::Approve => r(
                &[AwaitingApproval],
                Some(Approved),
                Some(E::Approved),
                "operator",
            ),
            Step::Reject => r(
                &[AwaitingApproval, Delivered, Approved],
                Some(Failed),
                Some(E::Rejected),
                "operator",
            ),
            Step::Pulled => r(MAY_PUSH, None, Some(E::Pulled), "station"),
            Step::Run => r(MAY_PUSH, Some(Running), Some(E::Running), "station"),
            Step::Interrupt => r(MAY_PUSH, Some(Delivered), Some(E::Interrupted), "station"),
            Step::InterruptApproved => r(MAY_PUSH, Some(Approved), Some(E::Interrupted), "station"),
            Step::Push => r(MAY_PUSH, Some(Done), Some(E::Pushed), "station"),
            Step::StationFail => r(AT_STATION, Some(Failed), Some(E::Failed), "station"),
            Step::Expire => r(AT_STATION, Some(Expired), Some(E::Expired), "deadline"),
            Step::Cancel => r(OPEN, Some(Cancelled), Some(E::Cancelled), "creator, admin"),
            Step::Retry => r(
                &[Failed, Expired],
                Some(Detected),
                Some(E::Retried),
                "admin",
            ),
        }
    }

    /// The states the step applies in.
    pub fn from(self) -> &'static [HopState] {
        self.rule().from
    }

    /// The state the step leads to from `s`.
    pub fn to(self, s: HopState) -> HopState {
        self.rule().to.unwrap_or(s)
    }

    /// The event that records the step, if it records one itself.
    pub fn event(self) -> Option<EventKind> {
        self.rule().event
    }

    /// Whether the step applies in state `s`.
    pub fn applies_in(self, s: HopState) -> bool {
        self.from().contains(&s)
    }

    /// The SQL guard `state IN ('…', …)` of the step (names from [`HopState::as_str`], which
    /// are SQL-safe: lower-case letters and `_`).
    pub fn guard(self) -> String {
        in_list(self.from())
    }

    /// The step's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Step::Claim => "claim",
            Step::Release => "release",
            Step::Deliver => "deliver",
            Step::DeliverForApproval => "deliver for approval",
            Step::Finish => "finish",
            Step::MoveRetry => "move retry",
            Step::MoveFail => "move failure",
            Step::Ready => "ready",
            Step::Push => "push",
            Step::Pulled => "pulled",
            Step::Run => "running",
            Step::StationFail => "failed",
            Step::Interrupt | Step::InterruptApproved => "interrupted",
            Step::Approve => "approve",
            Step::Reject => "reject",
            Step::Expire => "expire",
            Step::Cancel => "cancel",
            Step::Retry => "retry",
        }
    }
}

/// `state IN ('a', 'b')` for `states`.
pub fn in_list(states: &[HopState]) -> String {
    let names: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
    format!("state IN ({})", names.join(", "))
}

/// The states in which the train is at its station (in its inbox): those a deadline expires.
pub fn at_station() -> &'static [HopState] {
    Step::Expire.from()
}

/// The states in which the station may push its next state.
pub fn may_push() -> &'static [HopState] {
    Step::Push.from()
}

/// Whether a hop in `s` is still open: cancelling the train would end it.
pub fn is_open(s: HopState) -> bool {
    Step::Cancel.applies_in(s)
}

/// Whether no step leads out of `s`.
pub fn is_terminal(s: HopState) -> bool {
    !Step::ALL.iter().any(|t| t.applies_in(s))
}

/// The machine as a Mermaid state diagram (`docs/architecture.md` holds it; a test compares).
pub fn mermaid() -> String {
    let mut out = String::from(
        "stateDiagram-v2\n    [*] --> waiting_push\n    [*] --> detected: first hop\n",
    );
    for &step in Step::ALL {
        let r = step.rule();
        for &from in r.from {
            let to = step.to(from);
            let event = r
                .event
                .map_or_else(|| "(pushed)".to_string(), |e| e.as_str().to_string());
            out.push_str(&format!(
                "    {} --> {}: {} ({}) / {event}\n",
                from.as_str(),
                to.as_str(),
                step.name(),
                r.by
            ));
        }
    }
    for s in HopState::ALL.iter().filter(|s| is_terminal(**s)) {
        out.push_str(&format!("    {} --> [*]\n", s.as_str()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_is_reached_and_every_open_state_can_be_left() {
        for s in HopState::ALL {
            let reached = *s == WaitingPush
                || *s == Detected
                || Step::ALL
                    .iter()
                    .any(|t| t.from().iter().any(|f| t.to(*f) == *s));
            assert!(reached, "{s} is never reached");
            if is_open(*s) {
                assert!(!is_terminal(*s), "{s} is open but nothing leaves it");
            }
        }
        assert_eq!(
            HopState::ALL
                .iter()
                .filter(|s| is_terminal(**s))
                .collect::<Vec<_>>(),
            [&Done, &Cancelled]
        );
    }

    #[test]
    fn the_derived_sets_are_the_ones_the_service_used() {
        assert_eq!(
            at_station(),
            [Delivered, AwaitingApproval, Approved, Running]
        );
        assert_eq!(may_push(), [Delivered, Approved, Running]);
        assert_eq!(
            Step::Push.guard(),
            "state IN ('delivered', 'approved', 'running')"
        );
        for s in [Failed, Expired, Done, Cancelled] {
            assert!(!is_open(s), "{s}");
        }
    }

    #[test]
    fn every_step_but_ready_records_its_own_event() {
        for s in Step::ALL {
            assert_eq!(s.event().is_none(), *s == Step::Ready, "{s:?}");
        }
    }

    #[test]
    fn the_diagram_in_the_architecture_document_is_this_machine() {
        let doc = include_str!("../../docs/architecture.md");
        let want = mermaid();
        assert!(
            doc.contains(&format!("```mermaid\n{want}```")),
            "docs/architecture.md does not hold the machine's diagram; replace its mermaid block with:\n```mermaid\n{want}```"
        );
    }
}
