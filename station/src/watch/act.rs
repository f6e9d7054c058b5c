//! The watcher's inbox read: every item is parsed, planned ([`super::plan`]) and acted on
//! against the [`RouteService`]: reports still owed, approvals the rules allow, inspections for
//! the queue, runs up to the concurrency; runs whose train left are cancelled.

use super::jobs::{Inspecting, Running};
use super::plan::{self, Action, Item, Situation, Stop};
use super::{inspect, RouteService, Runner, Status, WatchError, Watcher};
use crate::audit::RecordKind;
use route_wire::{Digest, HopState, ReportStatus, TrainId};
use train_image::{Credentials, Registry, RegistryOptions};

impl<S: RouteService> Watcher<S> {
    /// Reads the inbox and acts on every item.
    pub(super) async fn resync<'a, R: Runner>(
        &mut self,
        runner: &'a R,
        runs: &mut Running<'a>,
        inspections: &mut Inspecting<'a>,
    ) -> Result<(), WatchError> {
        self.take_accepted_key().await;
        let inbox = self.req.client.inbox(&self.req.station).await?;
        let listed: Vec<Stop> = inbox
            .items
            .iter()
            .map(|i| Stop {
                train: i.train.clone(),
                index: i.index,
            })
            .collect();
        for (k, j) in self.jobs.iter_mut() {
            if !listed.contains(k) && !j.dropped {
                tracing::warn!(stop = %k, "the train left this station's inbox (cancelled or failed elsewhere); its run is stopped");
                j.dropped = true;
                j.cancel.cancel();
            }
        }
        let waiting: Vec<TrainId> = inbox
            .items
            .iter()
            .filter(|i| i.state == HopState::AwaitingApproval)
            .map(|i| i.train.clone())
            .collect();
        for raw in inbox.items {
            let (train, index) = (raw.train.clone(), raw.index);
            let r = match Item::parse(raw, &self.req.config.watch.registries) {
                Ok(item) => self.act(runner, item, runs, inspections).await,
                Err(why) => {
                    let stop = Stop { train, index };
                    tracing::warn!(%stop, "{why}");
                    self.report(
                        &stop,
                        ReportStatus::Failed,
                        Some(format!("the station cannot use this inbox item: {why}")),
                        None,
                    )
                    .await
                }
            };
            if let Err(e) = r {
                if e.is_fatal() {
                    return Err(e);
                }
                tracing::warn!(error = %e, "acting on the inbox");
            }
        }
        if let Err(e) = self.state.prune(&waiting) {
            tracing::warn!(error = %e, "pruning the watch state");
        }
        Ok(())
    }

    /// Plans `item` and does it.
    pub(super) async fn act<'a, R: Runner>(
        &mut self,
        runner: &'a R,
        item: Item,
        runs: &mut Running<'a>,
        inspections: &mut Inspecting<'a>,
    ) -> Result<(), WatchError> {
        let stop = item.stop();
        let situation = Situation {
            cfg: &self.req.config.watch,
            station: &self.req.station,
            in_hand: self.jobs.contains_key(&stop),
            running: self.jobs.len(),
            stopping: self.stopping,
            inspected: self.state.inspection(item.train(), &item.digest).is_some()
                || self.inspecting.contains(item.train()),
        };
        // Only a run asks the audit log (a crash between push and report: it knows).
        let pushed = if plan::may_run(&item) && !situation.in_hand {
            self.audit
                .verify(self.key.public())?
                .iter()
                .rev()
                .find(|r| {
                    r.decision == RecordKind::Pushed
                        && r.digest_in.as_deref() == Some(item.digest.as_str())
                })
                .and_then(|r| r.digest_out.as_deref().and_then(|d| Digest::parse(d).ok()))
        } else {
            None
        };
        let action = plan::plan(&item, self.state.get(&stop), pushed.as_ref(), situation);
        match action {
            Action::Nothing => Ok(()),
            Action::ReportDone(d) => self.report(&stop, ReportStatus::Done, None, Some(d)).await,
            Action::ReportFailed(reason) => {
                self.report(&stop, ReportStatus::Failed, Some(reason), None)
                    .await
            }
            Action::GiveUp(reason) => self.fail(&stop, &item.digest, reason).await,
            Action::Approve(why) => {
                tracing::info!(train = %item.train(), %why, "approved");
                self.req
                    .client
                    .decide(item.train(), true, Some(why))
                    .await?;
                Ok(())
            }
            Action::Inspect => {
                tracing::info!(train = %item.train(), creator = %item.raw.creator, "waits for its operator: `station queue`, then `station approve` or `station reject`");
                self.inspecting.push(item.train().clone());
                let reg = self.registry(&item);
                let (cfg, tmp) = (self.req.config.clone(), self.req.tmp.clone());
                inspections.push(super::jobs::supervised_inspection(
                    item.train().clone(),
                    async move { inspect::inspect(&reg, &item.image, &cfg, &tmp).await },
                ));
                Ok(())
            }
            Action::AlreadyPushed(out) => {
                tracing::warn!(%stop, pushed = %out, "already ran and pushed here (the audit log says so); reporting it done");
                self.state.set(
                    &stop,
                    &item.digest,
                    Status::Pushed {
                        digest: out.clone(),
                    },
                )?;
                self.report(&stop, ReportStatus::Done, None, Some(out))
                    .await
            }
            Action::Start => {
                self.state.set(&stop, &item.digest, Status::Running)?;
                runs.push(self.start(runner, item));
                Ok(())
            }
        }
    }

    /// After `station keys rotate`, the next key is taken into use as soon as an admin has
    /// accepted it (one request per resync, only while a next key exists).
    async fn take_accepted_key(&mut self) {
        if !super::next_key_path(&self.req.key_path).exists() {
            return;
        }
        match super::key_in_use(&self.req, &self.key, &self.audit).await {
            Ok((key, _)) => self.key = key,
            Err(e) => tracing::warn!(error = %e, "checking the station key"),
        }
    }

    /// Registry access for `item`'s registries: the station logs in with its id and API key
    /// (the service's token auth); other registries as configured.
    pub(super) fn registry(&self, item: &Item) -> Registry {
        Registry::new(RegistryOptions {
            insecure: self.req.config.registry.insecure.clone(),
            credentials: self.credentials(item),
            token_realms: self.req.config.registry.token_realms.clone(),
            ca_certs: self.req.config.tls.certs.clone(),
            ..Default::default()
        })
    }

    pub(super) fn credentials(&self, item: &Item) -> Vec<(String, Credentials)> {
        let mut hosts = vec![
            item.image.registry().to_string(),
            item.push_to.registry().to_string(),
        ];
        hosts.dedup();
        hosts
            .into_iter()
            .map(|h| {
                (
                    h,
                    Credentials::Basic {
                        username: self.req.station.to_string(),
                        password: self.req.api_key.clone(),
                    },
                )
            })
            .collect()
    }

    /// Records the stop as failed for good, then reports it with `reason`.
    pub(super) async fn fail(
        &mut self,
        stop: &Stop,
        digest: &Digest,
        reason: String,
    ) -> Result<(), WatchError> {
        let status = Status::Failed {
            reason: reason.clone(),
        };
        self.state.set(stop, digest, status)?;
        self.report(stop, ReportStatus::Failed, Some(reason), None)
            .await
    }

    /// Sends a report; a refusal because the train is no longer here (409) settles it too.
    pub(super) async fn report(
        &mut self,
        stop: &Stop,
        status: ReportStatus,
        reason: Option<String>,
        digest: Option<Digest>,
    ) -> Result<(), WatchError> {
        match self
            .req
            .client
            .report(&stop.train, status, reason, digest)
            .await
        {
            Ok(()) => self.state.reported(stop)?,
            Err(e) if e.status() == Some(409) => {
                tracing::warn!(%stop, error = %e, "the service no longer needs this report");
                self.state.reported(stop)?;
            }
            Err(e) => {
                tracing::warn!(%stop, error = %e, "report not delivered; sent again at the next inbox read")
            }
        }
        Ok(())
    }
}
