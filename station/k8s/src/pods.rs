//! Waiting for a pod, as the API server tells it: list, then watch from the list's version;
//! a watch that ends or answers 410 Gone (its version compacted away, routine on a busy
//! cluster) is followed by a fresh list, so no change is missed and none waits forever.

use crate::errors::{call, is_status, Ctx};
use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use station::engine::EngineError;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What a look at a pod decided.
pub enum Seen<T> {
    /// Done: this.
    Done(T),
    /// Not yet.
    Wait,
}

/// How long one watch request lasts before it is renewed (the API server's own cap is 30 min;
/// a short one bounds how long a lost connection goes unnoticed).
const WATCH_SECS: u32 = 60;

/// Waits until `decide` says done for the pod `name`, at most `limit`; `None` when `cancel`
/// fired or the limit passed.
pub async fn wait_for<T>(
    pods: &Api<Pod>,
    name: &str,
    limit: Duration,
    cancel: &CancellationToken,
    mut decide: impl FnMut(&Pod) -> Result<Seen<T>, EngineError>,
) -> Result<Option<T>, EngineError> {
    let fields = format!("metadata.name={name}");
    let run = async {
        loop {
            let list = pods
                .list(&ListParams::default().fields(&fields))
                .await
                .ctx(|| format!("listing pod {name}"))?;
            if let Some(p) = list.items.first() {
                if let Seen::Done(t) = decide(p)? {
                    return Ok(t);
                }
            }
            let version = list.metadata.resource_version.unwrap_or_default();
            let wp = WatchParams::default().fields(&fields).timeout(WATCH_SECS);
            let mut events = pods
                .watch(&wp, &version)
                .await
                .ctx(|| format!("watching pod {name}"))?
                .boxed();
            loop {
                let ev = match events.try_next().await {
                    Ok(Some(ev)) => ev,
                    // Ended (its timeout) or broken: list again.
                    Ok(None) => break,
                    Err(e) if is_status(&e, 410) => break,
                    Err(e) => return Err(e).ctx(|| format!("watching pod {name}")),
                };
                match ev {
                    WatchEvent::Added(p) | WatchEvent::Modified(p) => {
                        if let Seen::Done(t) = decide(&p)? {
                            return Ok(t);
                        }
                    }
                    WatchEvent::Deleted(_) => {
                        return Err(call(
                            format!("waiting for pod {name}"),
                            "it was deleted by someone else (an admin, an eviction)",
                        ))
                    }
                    // The version the watch began at is gone: list again.
                    WatchEvent::Error(e) if e.code == 410 => break,
                    WatchEvent::Error(e) => {
                        return Err(call(
                            format!("watching pod {name}"),
                            format!("{} ({})", e.message, e.code),
                        ))
                    }
                    WatchEvent::Bookmark(_) => {}
                }
            }
        }
    };
    tokio::select! {
        r = tokio::time::timeout(limit, run) => match r {
            Ok(r) => r.map(Some),
            Err(_) => Ok(None),
        },
        () = cancel.cancelled() => Ok(None),
    }
}

/// Why a container cannot start, when the reason means it never will on its own: a pull that
/// fails, a configuration the kubelet cannot make.
pub fn stuck(p: &Pod) -> Option<String> {
    let statuses = p.status.as_ref()?.container_statuses.as_ref()?;
    statuses.iter().find_map(|c| {
        let w = c.state.as_ref()?.waiting.as_ref()?;
        let reason = w.reason.as_deref()?;
        matches!(
            reason,
            "ImagePullBackOff"
                | "ErrImagePull"
                | "InvalidImageName"
                | "CreateContainerConfigError"
                | "CreateContainerError"
        )
        .then(|| format!("{reason}: {}", w.message.as_deref().unwrap_or("")))
    })
}

/// The pod's phase (`Pending` when unset).
pub fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}
