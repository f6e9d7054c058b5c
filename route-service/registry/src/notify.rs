//! Registry notification bodies: CNCF distribution's envelope (2.8 sends
//! `application/vnd.docker.distribution.events.v1+json`, 3.x `…v2+json`; both the same JSON)
//! and Harbor's webhook (`PUSH_ARTIFACT`). Both become [`Push`]es of tagged manifests; blob
//! pushes, pulls and deletes are dropped here.

use route_wire::{BadValue, Digest, TrainId};
use serde::Deserialize;

/// Why a notification body was refused (answered 400).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// Not the JSON the registry kind sends.
    #[error("not a {kind} notification: {detail}")]
    Body {
        /// `distribution` or `harbor`.
        kind: &'static str,
        /// The parser's message.
        detail: String,
    },
}

/// A manifest pushed into a repository under a tag that is a train id (pushes under other
/// tags are no train's and are dropped here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// What the registry identifies the event by (distribution's event id; Harbor's
    /// repository, digest and tag), for deduplication.
    pub key: String,
    /// `namespace/outbox`, without the registry.
    pub repository: String,
    /// The tag pushed: the train.
    pub tag: TrainId,
    /// The manifest digest, or what the registry sent instead of one (the train's history
    /// says so: a registry that announces nonsense is worth seeing).
    pub digest: Result<Digest, BadValue>,
    /// Who pushed (the registry's authenticated user), when it says.
    pub actor: Option<String>,
}

const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
];

// The envelopes as far as the service reads them (other fields are ignored); their schemas
// are the request bodies of the OpenAPI document.

/// CNCF distribution's notification envelope.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DistributionEnvelope {
    /// The events, in the registry's order.
    events: Vec<DistributionEvent>,
}

/// One distribution event.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DistributionEvent {
    /// The registry's id of the event (redeliveries keep it).
    id: String,
    /// `push`, `pull`, `delete`, … (only `push` of a tagged manifest counts).
    action: String,
    /// What the event is about.
    target: DistributionTarget,
    /// Who did it, as the registry authenticated them.
    #[serde(default)]
    actor: Option<DistributionActor>,
}

/// The target of a distribution event.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DistributionTarget {
    /// The media type (manifests count; blobs do not).
    #[serde(rename = "mediaType", default)]
    media_type: String,
    /// Its digest.
    #[serde(default)]
    digest: String,
    /// The repository, without the registry.
    repository: String,
    /// The tag pushed, if any.
    #[serde(default)]
    tag: Option<String>,
}

/// The actor of a distribution event.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DistributionActor {
    /// The authenticated user name.
    #[serde(default)]
    name: Option<String>,
}

/// The tagged manifest pushes in a distribution envelope.
pub fn distribution(body: &[u8]) -> Result<Vec<Push>, NotifyError> {
    let env: DistributionEnvelope =
        serde_json::from_slice(body).map_err(|e| NotifyError::Body {
            kind: "distribution",
            detail: e.to_string(),
        })?;
    Ok(env
        .events
        .into_iter()
        .filter(|e| e.action == "push" && MANIFEST_TYPES.contains(&e.target.media_type.as_str()))
        .filter_map(|e| {
            let tag = TrainId::parse(e.target.tag.as_deref()?).ok()?;
            Some(Push {
                key: format!("distribution:{}", e.id),
                repository: e.target.repository,
                tag,
                digest: Digest::parse(&e.target.digest),
                actor: e.actor.and_then(|a| a.name).filter(|n| !n.is_empty()),
            })
        })
        .collect())
}

/// Harbor's webhook payload.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HarborHook {
    /// The event type (only `PUSH_ARTIFACT` counts).
    #[serde(rename = "type")]
    kind: String,
    /// Who did it (a robot account).
    #[serde(default)]
    operator: Option<String>,
    /// What it is about.
    event_data: HarborData,
}

/// The data of a Harbor event.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HarborData {
    /// The artifacts.
    resources: Vec<HarborResource>,
    /// Their repository.
    repository: HarborRepo,
}

/// One artifact of a Harbor event.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HarborResource {
    /// Its digest.
    digest: String,
    /// The tag pushed, if any.
    #[serde(default)]
    tag: Option<String>,
}

/// The repository of a Harbor event.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HarborRepo {
    /// `project/repository`.
    repo_full_name: String,
}

/// The pushes in a Harbor webhook (other event types give none).
pub fn harbor(body: &[u8]) -> Result<Vec<Push>, NotifyError> {
    let h: HarborHook = serde_json::from_slice(body).map_err(|e| NotifyError::Body {
        kind: "harbor",
        detail: e.to_string(),
    })?;
    if h.kind != "PUSH_ARTIFACT" {
        return Ok(Vec::new());
    }
    let repo = h.event_data.repository.repo_full_name;
    Ok(h.event_data
        .resources
        .into_iter()
        .filter_map(|r| {
            let tag = TrainId::parse(r.tag.as_deref()?).ok()?;
            Some(Push {
                key: format!("harbor:{repo}@{}:{tag}", r.digest),
                repository: repo.clone(),
                tag,
                digest: Digest::parse(&r.digest),
                actor: h.operator.clone(),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distribution_envelopes_give_tagged_manifest_pushes_only() {
        let body = br#"{"events":[
          {"id":"e1","action":"push","target":{"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
           "digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","repository":"st-1/outbox","tag":"t1"},"actor":{"name":"st-1"}},
          {"id":"e2","action":"push","target":{"mediaType":"application/octet-stream","digest":"sha256:bb","repository":"st-1/outbox"}},
          {"id":"e3","action":"pull","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:cc","repository":"st-1/outbox","tag":"t1"}},
          {"id":"e4","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:dd","repository":"st-1/outbox"}}
        ]}"#;
        let p = distribution(body).unwrap();
        assert_eq!(
            p,
            vec![Push {
                key: "distribution:e1".into(),
                repository: "st-1/outbox".into(),
                tag: "t1".parse().unwrap(),
                digest: Digest::parse(&format!("sha256:{}", "a".repeat(64))),
                actor: Some("st-1".into()),
            }]
        );
        assert!(distribution(b"{\"events\": 3}").is_err());
    }

    #[test]
    fn harbor_push_artifact_is_read_and_other_types_are_not() {
        let body = br#"{"type":"PUSH_ARTIFACT","occur_at":1,"operator":"robot$st-1",
          "event_data":{"resources":[{"digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","tag":"t1","resource_url":"h/st-1/outbox:t1"}],
          "repository":{"name":"outbox","namespace":"st-1","repo_full_name":"st-1/outbox","repo_type":"private"}}}"#;
        let p = harbor(body).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(
            p[0].key,
            format!("harbor:st-1/outbox@sha256:{}:t1", "a".repeat(64))
        );
        assert_eq!(p[0].actor.as_deref(), Some("robot$st-1"));
        let pull = String::from_utf8_lossy(body).replace("PUSH_ARTIFACT", "PULL_ARTIFACT");
        assert!(harbor(pull.as_bytes()).unwrap().is_empty());
    }
}
