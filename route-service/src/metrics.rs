//! Every series `/metrics` exposes, named once, described and registered at start with zero:
//! Prometheus practice is that a series exists before its first event, so that `rate()` and
//! absence alerts work before the first train (a `/metrics` that was empty until something
//! happened hid a dead mover behind "no data").

use metrics::{describe_counter, describe_histogram, Unit};

/// Requests refused with 403.
pub const API_DENIED: &str = "route_api_denied_total";
/// Connections closed at accept: `max_connections` were being served.
pub const CONNECTIONS_REFUSED: &str = "route_connections_refused_total";
/// Event feeds and long-polls refused: the principal held `max_streams_per_principal`.
pub const STREAMS_REFUSED: &str = "route_streams_refused_total";
/// Requests refused with 401.
pub const API_UNAUTHENTICATED: &str = "route_api_unauthenticated_total";
/// Failed logins, by `via` (`api_key`, `registry_login`) and `principal` (`known`: a right id
/// with a wrong key; `unknown`). Alert on its rate: someone is guessing.
pub const LOGIN_FAILURES: &str = "route_login_failures_total";
/// Events recorded, by `kind`.
pub const EVENTS: &str = "route_events_total";
/// Layer bytes the movers sent (same-registry moves mount instead: 0).
pub const MOVE_BYTES_SENT: &str = "route_move_bytes_sent_total";
/// Blobs the movers mounted instead of sending.
pub const MOVE_BLOBS_MOUNTED: &str = "route_move_blobs_mounted_total";
/// Move attempts that failed (each is retried until `max_attempts`).
pub const MOVE_FAILURES: &str = "route_move_failures_total";
/// Duration of a move, claim to record.
pub const MOVE_SECONDS: &str = "route_move_seconds";
/// Registry notifications refused for a wrong or missing secret.
pub const NOTIFICATIONS_REFUSED: &str = "route_notifications_refused_total";
/// Time to take a notification (record and answer).
pub const NOTIFICATION_SECONDS: &str = "route_notification_seconds";
/// Pushes announced by notifications, by `outcome`.
pub const NOTIFIED_PUSHES: &str = "route_notified_pushes_total";
/// Pushes found by reconciliation (their notification was lost).
pub const RECONCILED_PUSHES: &str = "route_reconciled_pushes_total";
/// Time to verify a submission.
pub const SUBMIT_VERIFY_SECONDS: &str = "route_submit_verify_seconds";

/// The outcomes of [`NOTIFIED_PUSHES`].
pub const PUSH_OUTCOMES: &[&str] = &["accepted", "duplicate", "ignored"];

/// Describes every series and registers it at zero; call once, after the recorder is installed.
pub fn register() {
    let counters: &[(&str, &str)] = &[
        (API_DENIED, "requests refused with 403"),
        (API_UNAUTHENTICATED, "requests refused with 401"),
        (
            CONNECTIONS_REFUSED,
            "connections closed at accept (max_connections served)",
        ),
        (
            STREAMS_REFUSED,
            "feeds and long-polls refused (max_streams_per_principal held)",
        ),
        (
            MOVE_BYTES_SENT,
            "layer bytes sent by moves (same-registry moves mount: 0)",
        ),
        (MOVE_BLOBS_MOUNTED, "blobs mounted by moves instead of sent"),
        (MOVE_FAILURES, "move attempts that failed"),
        (
            NOTIFICATIONS_REFUSED,
            "registry notifications refused (wrong or missing secret)",
        ),
        (
            RECONCILED_PUSHES,
            "pushes found by reconciliation (notification lost)",
        ),
    ];
    for (name, help) in counters {
        describe_counter!(*name, *help);
        metrics::counter!(*name).increment(0);
    }
    describe_counter!(
        LOGIN_FAILURES,
        "failed logins, by way and whether the id was known"
    );
    for via in ["api_key", "registry_login"] {
        for principal in ["known", "unknown"] {
            metrics::counter!(LOGIN_FAILURES, "via" => via, "principal" => principal).increment(0);
        }
    }
    describe_counter!(EVENTS, "events recorded, by kind");
    for kind in route_wire::EventKind::ALL {
        metrics::counter!(EVENTS, "kind" => kind.as_str()).increment(0);
    }
    describe_counter!(
        NOTIFIED_PUSHES,
        "pushes announced by notifications, by outcome"
    );
    for outcome in PUSH_OUTCOMES {
        metrics::counter!(NOTIFIED_PUSHES, "outcome" => *outcome).increment(0);
    }
    for (name, help) in [
        (MOVE_SECONDS, "duration of a move, claim to record"),
        (NOTIFICATION_SECONDS, "time to take a registry notification"),
        (SUBMIT_VERIFY_SECONDS, "time to verify a submission"),
    ] {
        describe_histogram!(name, Unit::Seconds, help);
        // A histogram with no sample yet: registered, so its series render from the start.
        let _ = metrics::histogram!(name);
    }
}
