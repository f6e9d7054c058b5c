//! Pushes into outboxes, however they were learned of: a registry notification, a station's
//! `done` report (checked against the registry), or the reconciliation pass. One rule decides
//! for all three ([`crate::db::Db::station_pushed`]), after the state pushed has proved to carry
//! the signature of the station whose turn it is ([`super::signed`]); every push ignored is
//! logged with why.

use super::{MoveError, Mover};
use crate::db::{Applied, NewEvent, NotApplied, Pushed, StationRow};
use crate::machine::Step;
use crate::notify::Push;
use route_wire::{Digest, Repo, TrainId};
use train_image::{ImageRef, LABEL_TRAIN_ID};

/// What became of a push: applied (new or a duplicate of the recorded one), or ignored with
/// why.
pub type PushOutcome = Applied<Pushed>;

fn ignored(reason: String) -> PushOutcome {
    Err(NotApplied {
        step: Step::Push,
        reason,
    })
}

/// How a push was learned of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushSource {
    /// A registry notification.
    Notification,
    /// The station's `done` report.
    Report,
    /// The reconciliation pass.
    Reconciliation,
}

impl PushSource {
    fn as_str(self) -> &'static str {
        match self {
            PushSource::Notification => "notification",
            PushSource::Report => "station report",
            PushSource::Reconciliation => "reconciliation",
        }
    }
}

impl Mover {
    /// A push a notification from the registry at `registry` announced.
    pub async fn notified_push(&self, registry: &str, p: &Push) -> Result<PushOutcome, MoveError> {
        let outcome = self.classify(registry, p).await?;
        self.note_ignored(&p.tag, None, &outcome).await;
        metrics::counter!(
            crate::metrics::NOTIFIED_PUSHES,
            "outcome" => match outcome {
                Ok(Pushed::New) => "accepted",
                Ok(Pushed::Duplicate) => "duplicate",
                Err(_) => "ignored",
            }
        )
        .increment(1);
        if let Err(why) = &outcome {
            tracing::info!(registry, repository = %p.repository, tag = %p.tag, actor = ?p.actor, "push ignored: {why}");
        }
        Ok(outcome)
    }

    async fn classify(&self, registry: &str, p: &Push) -> Result<PushOutcome, MoveError> {
        let ns = match route_wire::split_repository(&p.repository) {
            Some((ns, Repo::Outbox)) => ns,
            Some((_, Repo::Inbox | Repo::Results)) => {
                return Ok(ignored("a delivery (the service's own write)".into()))
            }
            Some((_, Repo::Submissions)) | None => {
                return Ok(ignored(format!("{} is not an outbox", p.repository)))
            }
        };
        let Some(station) = self.db.station_by_namespace(registry, ns).await? else {
            return Ok(ignored(format!(
                "no station has the namespace {ns} on {registry}"
            )));
        };
        // With token auth the registry vouches for the actor: only the station itself may
        // have pushed into its outbox (its token allows nothing else).
        if self.token_registries.iter().any(|r| r == registry)
            && p.actor.as_deref() != Some(&station.id)
        {
            return Ok(ignored(format!(
                "pushed by {} into the outbox of {}; only the station itself counts",
                p.actor.as_deref().unwrap_or("an anonymous client"),
                station.id
            )));
        }
        let digest = match &p.digest {
            Ok(d) => d,
            Err(bad) => {
                return Ok(ignored(format!(
                    "a notification announced `{}`, which is not a sha256 digest",
                    bad.value.escape_debug()
                )))
            }
        };
        // A notification is a hint, never evidence: what counts is what the registry holds
        // under the outbox tag now, and it must be the digest announced.
        let outcome = self
            .check_outbox(&p.tag, &station, Some(digest), PushSource::Notification)
            .await?
            .unwrap_or_else(|| {
                ignored(format!(
                    "a notification announced {} but the outbox of {} holds nothing for train {}",
                    digest, station.id, p.tag
                ))
            });
        Ok(outcome)
    }

    async fn note_ignored(&self, train: &str, station: Option<&str>, outcome: &PushOutcome) {
        if let Err(why) = outcome {
            if matches!(self.db.train(train).await, Ok(Some(_))) {
                let _ = self
                    .db
                    .event(NewEvent {
                        train: Some(train),
                        station,
                        kind: route_wire::EventKind::PushIgnored,
                        detail: why.reason.clone(),
                    })
                    .await;
            }
        }
    }

    /// Looks at `station`'s outbox for `train` and takes what is there as its push (a report
    /// or reconciliation). `expect`: the digest the station reported, which must be what the
    /// registry holds. `None` when the outbox has nothing for the train.
    pub async fn check_outbox(
        &self,
        train: &TrainId,
        station: &StationRow,
        expect: Option<&Digest>,
        how: PushSource,
    ) -> Result<Option<PushOutcome>, MoveError> {
        let outbox = ImageRef::tagged(
            &station.registry,
            &route_wire::repository(&station.namespace, Repo::Outbox),
            train,
        )?;
        // An announced digest is looked up by digest: distribution notifies a manifest push
        // before it links the tag (the tag answered 404 for 70 of 500 pushes in the
        // benchmark). Without one (reconciliation), the train's tag says what is there.
        let r = match expect {
            Some(d) => outbox.with_digest(d),
            None => outbox,
        };
        let Some(p) = self.reg.try_resolve(&r).await? else {
            return Ok(None);
        };
        // A consistency check, not a boundary (labels are unsigned; the next station verifies
        // the signed train): an image labelled as another train is not this train's state.
        let cfg = self.reg.config(&p).await?;
        if let Some(other) = cfg.label(LABEL_TRAIN_ID).filter(|l| *l != train.as_str()) {
            return Ok(Some(ignored(format!(
                "the image pushed as train {train} is labelled train {other}"
            ))));
        }
        // The hop whose turn it is; none when the push is out of turn. A state already recorded
        // is a duplicate or a replay, which the state machine names as such.
        let turn = match self.db.is_state_of(train, &p.digest).await? {
            true => None,
            false => self.db.turn_of(train, &station.id).await?,
        };
        if let Some(idx) = turn {
            if let Err(why) = self.signed_by_turn(train, station, idx, &p).await? {
                let outcome = ignored(why);
                // Reconciliation looks every pass; it would record the same reason each time.
                if how == PushSource::Report {
                    self.note_ignored(train, Some(&station.id), &outcome).await;
                }
                return Ok(Some(outcome));
            }
        }
        let outcome = self
            .db
            .station_pushed(train, &station.id, &p.reference, how.as_str())
            .await?;
        if how == PushSource::Report {
            self.note_ignored(train, Some(&station.id), &outcome).await;
        }
        Ok(Some(outcome))
    }
}
