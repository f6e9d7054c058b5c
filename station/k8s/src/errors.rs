//! The API server's answers as the station's neutral [`EngineError`]: unreachable (the watcher
//! does not count that run against the train), forbidden (RBAC: the deployment's fault, with
//! what to apply), or a failed call with the server's own message.

use kube::Error as K;
use station::engine::EngineError;

/// The engine's name in messages.
pub const ENGINE: &str = "Kubernetes API server";

const HINT: &str = "check the kubeconfig ([engine.kubernetes] context) and that the cluster is up (`kubectl get --raw /readyz`)";

/// `.ctx(|| what)` on an API call.
pub trait Ctx<T> {
    /// The error says what was asked.
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, EngineError>;
}

impl<T> Ctx<T> for Result<T, K> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, EngineError> {
        self.map_err(|e| neutral(what(), e))
    }
}

/// Whether `e` is the API server's `code` (409 Conflict, 404 Not Found, 410 Gone, …).
pub fn is_status(e: &K, code: u16) -> bool {
    matches!(e, K::Api(s) if s.code == code)
}

/// `e`, having asked `what`, in the station's words.
pub fn neutral(what: String, e: K) -> EngineError {
    match e {
        K::Api(s) if s.code == 403 => EngineError::Forbidden {
            what,
            detail: s.message.clone(),
        },
        K::Api(s) => EngineError::Call {
            what,
            detail: format!("{} ({} {})", s.message, s.code, s.reason),
        },
        K::HyperError(_) | K::Service(_) | K::InferConfig(_) => EngineError::Unreachable {
            engine: ENGINE,
            detail: format!("{what}: {e}"),
            hint: HINT,
        },
        other => EngineError::Call {
            what,
            detail: other.to_string(),
        },
    }
}

/// A failure of the engine's own making, with what was being done.
pub fn call(what: impl Into<String>, detail: impl Into<String>) -> EngineError {
    EngineError::Call {
        what: what.into(),
        detail: detail.into(),
    }
}
