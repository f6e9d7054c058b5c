//! The states of trains and hops, and the small enums of the model.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

macro_rules! names {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $v),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$v),+];
            /// The wire (and database) name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok($name::$v),)+
                    _ => Err(format!(
                        "`{s}` is not a {}; one of: {}",
                        stringify!($name),
                        [$($s),+].join(", ")
                    )),
                }
            }
        }
    };
}

names!(
    /// Where a train is.
    TrainState {
        /// Accepted; the first move has not started.
        Submitted = "submitted",
        /// Being moved between registries.
        InTransit = "in_transit",
        /// In a station's inbox (maybe waiting for approval).
        AtStation = "at_station",
        /// A station reported it running.
        Running = "running",
        /// Delivered to the creator's results repository.
        Finished = "finished",
        /// A hop failed for good (see its last error).
        Failed = "failed",
        /// Cancelled by its creator or an admin.
        Cancelled = "cancelled",
    }
);

names!(
    /// One hop of a train: the move into a station's inbox (or the creator's results) and, for a
    /// station, its run there until it pushes the next state to its outbox.
    HopState {
        /// Waiting for the previous station to push to its outbox.
        WaitingPush = "waiting_push",
        /// The source digest is pinned; a mover will copy it.
        Detected = "detected",
        /// A mover holds the lease and copies it.
        Copying = "copying",
        /// In the station's inbox (or, for the last hop, the creator's results).
        Delivered = "delivered",
        /// In the inbox of a station with manual approval; its operator has not decided.
        AwaitingApproval = "awaiting_approval",
        /// Approved by the station's operator.
        Approved = "approved",
        /// The station reported it running.
        Running = "running",
        /// The station pushed the next state (or, for the last hop, delivered to the creator).
        Done = "done",
        /// Failed for good: the station refused or failed it, or moves ran out of attempts.
        Failed = "failed",
        /// The train was cancelled while this hop was open.
        Cancelled = "cancelled",
        /// The hop's deadline passed.
        Expired = "expired",
    }
);

names!(
    /// The two train formats.
    Format {
        /// PHT-meDIC's `pht-train-container-library` 2.0.5 trains.
        Legacy = "legacy",
        /// The authenticated native format.
        Native = "native",
    }
);

names!(
    /// How a station takes trains delivered to it.
    Approval {
        /// Every delivered train may run.
        Auto = "auto",
        /// Its operator approves or rejects each train.
        Manual = "manual",
    }
);

names!(
    /// Whether a station polled recently.
    Liveness {
        /// Never polled.
        NeverSeen = "never_seen",
        /// Polled within the service's offline threshold.
        Online = "online",
        /// Polled before, not recently.
        Offline = "offline",
    }
);

names!(
    /// Who calls the API.
    Role {
        /// The consortium's administrators: everything.
        Admin = "admin",
        /// A train author: its own trains.
        Creator = "creator",
        /// A station: the trains whose current hop is its own.
        Station = "station",
    }
);

impl HopState {
    /// States in which the train sits in a station's inbox and the station may push its next
    /// state (awaiting approval is not one: nothing may run before the operator decides).
    pub fn station_may_push(self) -> bool {
        matches!(
            self,
            HopState::Delivered | HopState::Approved | HopState::Running
        )
    }

    /// States that end a hop.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            HopState::Done | HopState::Failed | HopState::Cancelled | HopState::Expired
        )
    }
}

impl TrainState {
    /// States a train does not leave.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TrainState::Finished | TrainState::Failed | TrainState::Cancelled
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_and_json() {
        for s in HopState::ALL {
            assert_eq!(s.as_str().parse::<HopState>().unwrap(), *s);
            let j = serde_json::to_string(s).unwrap();
            assert_eq!(j, format!("\"{}\"", s.as_str()));
        }
        for s in TrainState::ALL {
            assert_eq!(s.as_str().parse::<TrainState>().unwrap(), *s);
        }
        let e = "sideways".parse::<Approval>().unwrap_err();
        assert!(e.contains("auto, manual"), "{e}");
    }
}
