//! Request and response bodies.

use crate::ids::{CreatorId, Digest, StationId, TrainId};
use crate::states::{Approval, Format, HopState, Liveness, TrainState};
use serde::{Deserialize, Serialize};

/// `POST /v1/trains`: a built train image, pushed to the creator's submissions repository, and
/// the route its configuration signs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubmitTrain {
    /// `registry/namespace/submissions:tag` (or `@sha256:…`); the service pins its digest.
    pub image: String,
    /// Station ids, in order; must equal the route the train's creator signed.
    pub route: Vec<StationId>,
}

/// A train with its hops and history.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrainView {
    /// The train id (its configuration's).
    pub id: TrainId,
    /// The creator who submitted it.
    pub creator: CreatorId,
    /// Its format, kept along the route.
    pub format: Format,
    /// Station ids in order.
    pub route: Vec<StationId>,
    /// Where it is.
    pub state: TrainState,
    /// Index of the open hop (`route.len()` is the move to the creator), if any.
    pub current_hop: Option<usize>,
    /// Manifest digests of every state it passed through, the submitted one first.
    pub states: Vec<Digest>,
    /// One entry per route stop, plus the final move to the creator.
    pub hops: Vec<HopView>,
    /// Why it failed, was cancelled or was refused, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Where the finished train is (`registry/namespace/results:<id>`), once finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
    /// The train's events, oldest first (only in `GET /v1/trains/{id}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<EventView>,
}

/// One hop.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HopView {
    /// Position: `0..route.len()` are stations, `route.len()` the move to the creator.
    pub index: usize,
    /// The station, or `None` for the move to the creator.
    pub station: Option<StationId>,
    /// The hop's state.
    pub state: HopState,
    /// The pinned image moved (`repository@sha256:…`), once known.
    pub source: Option<String>,
    /// Where it goes (`registry/namespace/inbox:<train>`).
    pub target: String,
    /// Move attempts so far.
    pub attempts: i64,
    /// The last move or station error.
    pub last_error: Option<String>,
    /// Unix milliseconds after which the hop expires.
    pub deadline: Option<i64>,
    /// The replica moving it now (`host-pid-nonce`), while `copying`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mover: Option<String>,
}

/// `GET /v1/trains`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrainList {
    /// The trains the caller may see, newest first.
    pub trains: Vec<TrainView>,
}

/// One event of a train's or a station's history (and of its SSE feed, where `id` is the
/// `Last-Event-ID`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventView {
    /// Increasing id, unique in the deployment.
    pub id: i64,
    /// The train, if the event is about one.
    pub train: Option<TrainId>,
    /// The station, if the event is about one.
    pub station: Option<StationId>,
    /// What happened.
    pub kind: crate::EventKind,
    /// Details for people.
    pub detail: String,
    /// Unix milliseconds.
    pub at: i64,
}

/// `GET /v1/stations/{id}/inbox`: what waits at a station.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Inbox {
    /// Oldest first.
    pub items: Vec<InboxItem>,
    /// The station's own repositories (`registry/namespace/inbox` and `…/outbox`), so that it
    /// can check its registry access before any train comes (`station doctor`). Absent from
    /// services older than this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repositories: Option<StationRepositories>,
}

/// Where a station's trains arrive and where it pushes them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StationRepositories {
    /// `registry/namespace/inbox`.
    pub inbox: String,
    /// `registry/namespace/outbox`.
    pub outbox: String,
}

/// A train in a station's inbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InboxItem {
    /// The train.
    pub train: TrainId,
    /// Its creator.
    pub creator: CreatorId,
    /// Its format.
    pub format: Format,
    /// Its whole route.
    pub route: Vec<StationId>,
    /// This station's position on it.
    pub index: usize,
    /// The hop's state (`delivered`, `awaiting_approval`, `approved` or `running`).
    pub state: HopState,
    /// What to pull, pinned: `registry/namespace/inbox@sha256:…`.
    pub image: String,
    /// Where to push the next state: `registry/namespace/outbox:<train>`.
    pub push_to: String,
}

/// `POST /v1/trains/{id}/reports`: a station's report on its hop.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StationReport {
    /// What happened.
    pub status: ReportStatus,
    /// Why, for `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The digest pushed to the outbox, for `done`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
}

/// What a station reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReportStatus {
    /// The image was pulled.
    Pulled,
    /// The container runs.
    Running,
    /// The station refused or the train failed; nothing was pushed.
    Failed,
    /// The next state was pushed to the outbox.
    Done,
    /// The station stopped the run (its watcher was stopped) before it finished; nothing was
    /// pushed and the train stays at the station, to run when the station is back.
    Interrupted,
}

/// `POST /v1/trains/{id}/approve` and `/reject`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Decision {
    /// Why (required to reject; the creator sees it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A station as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StationView {
    /// Its id.
    pub id: StationId,
    /// Its registry (`host:port`).
    pub registry: String,
    /// Its namespace there (inbox and outbox live under it).
    pub namespace: String,
    /// `sha256:` fingerprint of its public key.
    pub fingerprint: String,
    /// How it takes trains.
    pub approval: Approval,
    /// Whether it polls.
    pub liveness: Liveness,
    /// Unix milliseconds of its last poll.
    pub last_seen: Option<i64>,
}

/// `GET /v1/stations/{id}/key`: what a creator needs to put a station on a route.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StationKey {
    /// The station.
    pub id: StationId,
    /// Its RSA public key, PEM (SubjectPublicKeyInfo).
    pub public_key: String,
    /// `sha256:` of the key's DER, as `train keygen` prints it.
    pub fingerprint: String,
    /// A new key the station proposed (`station keys rotate`) that no admin has accepted yet:
    /// trains are still built and checked against `fingerprint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_fingerprint: Option<String>,
}

/// `POST /v1/stations/{id}/key`: a station proposes its next public key; an admin accepts it
/// (`route-service station accept-key ID --fingerprint …`) after comparing the fingerprint with
/// what the station's operator told them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyProposal {
    /// The new RSA public key, PEM (SubjectPublicKeyInfo).
    pub public_key: String,
}

/// `POST /v1/stations/{id}/key/accept` (admin): the proposed key becomes the station's, if its
/// fingerprint is this one (what the station's operator gave the admin out of band).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyAcceptance {
    /// `sha256:…` of the proposed key, as `station keys show` prints it.
    pub fingerprint: String,
}

/// `PUT /v1/stations/{id}/approval`: how the station takes trains, set by the station itself
/// (its watcher, from its configuration): approval is the hospital's own decision.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApprovalSetting {
    /// `auto` or `manual`.
    pub approval: Approval,
}

/// A creator as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatorView {
    /// Its id.
    pub id: CreatorId,
    /// `sha256:` fingerprint of its public key.
    pub fingerprint: String,
    /// Its registry (`host:port`).
    pub registry: String,
    /// Its namespace (submissions and results live under it).
    pub namespace: String,
}

/// A registry notification as the service recorded it (`GET /v1/notifications`, admins).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotificationView {
    /// The registry that sent it (`host:port`, as configured).
    pub registry: String,
    /// What the registry identifies the event by.
    pub event_key: String,
    /// When it arrived (ms since the epoch, UTC).
    pub received_at: i64,
    /// The repository pushed (`namespace/outbox`), when recorded.
    pub repository: Option<String>,
    /// The tag pushed (the train), when recorded.
    pub tag: Option<String>,
    /// The manifest digest announced (or what the registry sent instead), when recorded.
    pub digest: Option<String>,
    /// Who pushed, as the registry says.
    pub actor: Option<String>,
    /// What the service made of it: `accepted: …`, `duplicate: …`, `ignored: …`, `failed: …`;
    /// none while its check runs (or for records of releases before the log).
    pub outcome: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_ignore_fields_they_do_not_know() {
        let d = format!("sha256:{}", "0".repeat(64));
        let item: StationReport =
            serde_json::from_str(&format!(r#"{{"status":"done","digest":"{d}","future":1}}"#))
                .unwrap();
        assert_eq!(item.status, ReportStatus::Done);
        // A digest is checked where it is read.
        let bad =
            serde_json::from_str::<StationReport>(r#"{"status":"done","digest":"sha256:00"}"#);
        assert!(bad
            .unwrap_err()
            .to_string()
            .contains("digest \"sha256:00\""));
        let bad = serde_json::from_str::<StationReport>(r#"{"status":"exploded"}"#);
        assert!(bad.is_err());
    }
}
