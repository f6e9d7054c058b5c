//! The kinds of event the route service records: a train's history, the feeds' `event:` names.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! kinds {
    ($($(#[$m:meta])* $v:ident = $s:literal),+ $(,)?) => {
        /// What happened; each hop transition records its own (the service's state machine
        /// names which), the rest are about a submission, a push or a station.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum EventKind {
            $($(#[$m])* $v,)+
            /// A kind this client does not know (a newer service). Never sent.
            #[serde(other, skip_serializing)]
            Unknown,
        }

        impl EventKind {
            /// Every kind the service records, in declaration order.
            pub const ALL: &'static [EventKind] = &[$(EventKind::$v),+];

            /// The wire (and database) name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(EventKind::$v => $s,)+
                    EventKind::Unknown => "unknown",
                }
            }

            /// The kind named `s` (`Unknown` for a name this build does not know).
            pub fn parse(s: &str) -> Self {
                match s {
                    $($s => EventKind::$v,)+
                    _ => EventKind::Unknown,
                }
            }
        }
    };
}

kinds!(
    /// A verified submission was accepted.
    Submitted = "submitted",
    /// A mover claimed a move (a new attempt, or one taken over after a lease ran out).
    Moving = "moving",
    /// A mover gave a move back untouched (its replica is stopping).
    MoveReleased = "move_released",
    /// Delivered to a station's inbox.
    Delivered = "delivered",
    /// Delivered to a station that approves by hand; its operator decides.
    AwaitingApproval = "awaiting_approval",
    /// The station's operator approved the train.
    Approved = "approved",
    /// The station's operator rejected the train (the train fails).
    Rejected = "rejected",
    /// The station pulled the train.
    Pulled = "pulled",
    /// The station runs the train.
    Running = "running",
    /// The station stopped the run before it finished; it runs again.
    Interrupted = "interrupted",
    /// The station whose turn it was pushed the next state.
    Pushed = "pushed",
    /// A push that does not count, with why.
    PushIgnored = "push_ignored",
    /// A move attempt failed; it is tried again.
    MoveRetry = "move_retry",
    /// The train failed: moves ran out of attempts, or the station failed it.
    Failed = "failed",
    /// The station did not push before the hop's deadline.
    Expired = "expired",
    /// Cancelled by its creator or an admin.
    Cancelled = "cancelled",
    /// An admin made a failed hop move again.
    Retried = "retried",
    /// Delivered to its creator's results.
    Finished = "finished",
    /// A station proposed its next key.
    KeyProposed = "key_proposed",
    /// An admin accepted a station's new key.
    KeyRotated = "key_rotated",
    /// A station set how it takes trains.
    ApprovalSet = "approval_set",
);

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_unknown_ones_still_read() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), *k);
            assert_eq!(
                serde_json::to_string(k).unwrap(),
                format!("\"{}\"", k.as_str())
            );
        }
        let k: EventKind = serde_json::from_str("\"teleported\"").unwrap();
        assert_eq!(k, EventKind::Unknown);
        assert_eq!(EventKind::parse("teleported"), EventKind::Unknown);
    }
}
