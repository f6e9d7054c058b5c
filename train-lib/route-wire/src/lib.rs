//! The route service's wire types: the JSON bodies of its HTTP API, shared by the service, the
//! station's watcher and the creator's commands. Nothing here does I/O; the station and the
//! service depend on this crate and never on each other.
//!
//! Every enum serialises in `snake_case`; unknown fields are ignored by readers so that the
//! service can add fields without breaking older stations.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "client")]
pub mod client;
mod errors;
mod events;
mod ids;
mod states;
mod views;

pub use errors::{ApiError, ErrorCode};
pub use events::EventKind;
pub use ids::{
    BadValue, CreatorId, Digest, PrincipalId, StationId, TrainId, ID_PATTERN, MAX_ID_LEN,
};
pub use states::{Approval, Format, HopState, Liveness, Role, TrainState};
pub use views::{
    ApprovalSetting, CreatorView, Decision, EventView, HopView, Inbox, InboxItem, KeyAcceptance,
    KeyProposal, NotificationView, ReportStatus, StationKey, StationReport, StationRepositories,
    StationView, SubmitTrain, TrainList, TrainView,
};

/// The API's path prefix.
pub const API_PREFIX: &str = "/v1";

/// The `Authorization` scheme of API keys: `Authorization: ApiKey <principal-id> <key>`.
pub const API_KEY_SCHEME: &str = "ApiKey";

/// The longest long-poll the service holds a request for, in seconds; a longer `?wait=` is cut
/// to this (proxies commonly close idle requests at 60 s).
pub const MAX_WAIT_SECS: u64 = 55;

/// The repository of a station's (or a creator's) inbox, outbox, submissions and results, under
/// its namespace.
pub fn repository(namespace: &str, which: Repo) -> String {
    format!("{namespace}/{}", which.as_str())
}

/// The repositories every party has under its namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repo {
    /// Where the service delivers trains to a station.
    Inbox,
    /// Where a station pushes the train after its run.
    Outbox,
    /// Where a creator pushes a built train before submitting it.
    Submissions,
    /// Where the service delivers finished trains to their creator.
    Results,
}

/// The namespace and kind of a party's repository (`ns/outbox`): the inverse of
/// [`repository`]; `None` for any other repository.
pub fn split_repository(repo: &str) -> Option<(&str, Repo)> {
    let (ns, last) = repo.rsplit_once('/')?;
    let which = [Repo::Inbox, Repo::Outbox, Repo::Submissions, Repo::Results]
        .into_iter()
        .find(|r| r.as_str() == last)?;
    (!ns.is_empty()).then_some((ns, which))
}

impl Repo {
    /// The repository's last path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            Repo::Inbox => "inbox",
            Repo::Outbox => "outbox",
            Repo::Submissions => "submissions",
            Repo::Results => "results",
        }
    }
}
