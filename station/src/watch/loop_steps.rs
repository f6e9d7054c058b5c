//! The watcher's steps: read the inbox and act on it, start runs, report milestones and ends.

use super::*;

impl Watcher {
    /// Reads the inbox and acts on every item: reports still owed, approvals the rules allow,
    /// inspections for the queue, runs up to the concurrency; runs whose train left are
    /// cancelled.
    pub(super) async fn resync<'a, E: ContainerEngine>(
        &mut self,
        engine: &'a E,
        runs: &mut Running<'a>,
        inspections: &mut Inspecting<'a>,
    ) -> Result<(), ClientError> {
        self.take_accepted_key().await;
        let inbox = self
            .req
            .client
            .inbox(&self.req.station, Duration::ZERO)
            .await?;
        let listed: Vec<String> = inbox
            .items
            .iter()
            .map(|i| state::key(&i.train, i.index))
            .collect();
        for (k, j) in self.jobs.iter_mut() {
            if !listed.contains(k) && !j.dropped {
                tracing::warn!(stop = %k, "the train left this station's inbox (cancelled or failed elsewhere); its run is stopped");
                j.dropped = true;
                j.cancel.cancel();
            }
        }
        let waiting: Vec<String> = inbox
            .items
            .iter()
            .filter(|i| i.state == HopState::AwaitingApproval)
            .map(|i| i.train.clone())
            .collect();
        for item in inbox.items {
            if let Err(e) = self.act(engine, item, runs, inspections).await {
                tracing::warn!(error = %e, "acting on the inbox");
            }
        }
        if let Err(e) = self.state.prune(&waiting) {
            tracing::warn!(error = %e, "pruning the watch state");
        }
        Ok(())
    }

    async fn act<'a, E: ContainerEngine>(
        &mut self,
        engine: &'a E,
        item: InboxItem,
        runs: &mut Running<'a>,
        inspections: &mut Inspecting<'a>,
    ) -> Result<(), WatchError> {
        let key = state::key(&item.train, item.index);
        let digest = item.digest().to_string();
        if self.jobs.contains_key(&key) {
            return Ok(());
        }
        if let Some(e) = self
            .state
            .get(&key)
            .filter(|e| e.digest_in == digest)
            .cloned()
        {
            match (&e.status, e.reported) {
                (Status::Pushed { digest }, false) => {
                    let d = digest.clone();
                    return self
                        .report(&key, &item.train, ReportStatus::Done, None, Some(d))
                        .await;
                }
                (Status::Failed { reason }, false) => {
                    let r = reason.clone();
                    return self
                        .report(&key, &item.train, ReportStatus::Failed, Some(r), None)
                        .await;
                }
                // Reported: the service moves on; nothing more to do here.
                (Status::Pushed { .. } | Status::Failed { .. }, true) => return Ok(()),
                _ if e.attempts >= self.req.config.watch.max_attempts => {
                    let reason = format!(
                        "gave up after {} runs at {} that ended in registry or engine trouble or with the station stopping; the station's log says why",
                        e.attempts, self.req.station
                    );
                    return self.fail(&key, &digest, &item.train, reason).await;
                }
                _ => {}
            }
        }
        match item.state {
            HopState::AwaitingApproval => {
                if let Some(why) = auto_approval(&self.req.config.watch, &item) {
                    tracing::info!(train = %item.train, %why, "approved");
                    self.req.client.decide(&item.train, true, Some(why)).await?;
                } else if self.state.inspection(&item.train, &digest).is_none()
                    && !self.inspecting.contains(&item.train)
                {
                    tracing::info!(train = %item.train, creator = %item.creator, "waits for its operator: `station queue`, then `station approve` or `station reject`");
                    self.inspecting.push(item.train.clone());
                    let reg = self.registry(&item);
                    let (cfg, tmp, image) = (
                        self.req.config.clone(),
                        self.req.tmp.clone(),
                        item.image.clone(),
                    );
                    let train = item.train.clone();
                    inspections.push(Box::pin(async move {
                        (train, inspect::inspect(&reg, &image, &cfg, &tmp).await)
                    }));
                }
            }
            HopState::Delivered | HopState::Approved | HopState::Running => {
                if self.stopping || self.jobs.len() >= self.req.config.watch.concurrency {
                    return Ok(());
                }
                // A crash between push and report: the audit log knows; nothing runs twice.
                let records = self.audit.verify(self.key.public())?;
                if let Some(r) = records.iter().rev().find(|r| {
                    r.decision == Decision::Pushed.as_str()
                        && r.digest_in.as_deref() == Some(&digest)
                }) {
                    let out = r.digest_out.clone().unwrap_or_default();
                    tracing::warn!(stop = %key, pushed = %out, "already ran and pushed here (audit record {}); reporting it done", r.seq);
                    self.state.set(
                        &key,
                        &digest,
                        Status::Pushed {
                            digest: out.clone(),
                        },
                    )?;
                    return self
                        .report(&key, &item.train, ReportStatus::Done, None, Some(out))
                        .await;
                }
                self.state.set(&key, &digest, Status::Running)?;
                runs.push(self.start(engine, key, item));
            }
            _ => {}
        }
        Ok(())
    }

    /// After `station keys rotate`, the next key is taken into use as soon as an admin has
    /// accepted it (one request per resync, only while a next key exists).
    async fn take_accepted_key(&mut self) {
        if !next_key_path(&self.req.key_path).exists() {
            return;
        }
        match key_in_use(&self.req, &self.key, &self.audit).await {
            Ok((key, _)) => self.key = key,
            Err(e) => tracing::warn!(error = %e, "checking the station key"),
        }
    }

    /// Registry access for `item`'s registries: the station logs in with its id and API key
    /// (the service's token auth); other registries as configured.
    fn registry(&self, item: &InboxItem) -> Registry {
        Registry::new(RegistryOptions {
            insecure: self.req.config.registry.insecure.clone(),
            credentials: self.credentials(item),
        })
    }

    fn credentials(&self, item: &InboxItem) -> Vec<(String, Credentials)> {
        let mut hosts: Vec<String> = [&item.image, &item.push_to]
            .iter()
            .filter_map(|r| r.split_once('/').map(|(h, _)| h.to_string()))
            .collect();
        hosts.dedup();
        hosts
            .into_iter()
            .map(|h| {
                (
                    h,
                    Credentials::Basic {
                        username: self.req.station.clone(),
                        password: self.req.api_key.clone(),
                    },
                )
            })
            .collect()
    }

    fn start<'a, E: ContainerEngine>(
        &mut self,
        engine: &'a E,
        key: String,
        item: InboxItem,
    ) -> Pin<Box<dyn Future<Output = RunEnd> + 'a>> {
        let cancel = CancellationToken::new();
        self.jobs.insert(
            key.clone(),
            Job {
                cancel: cancel.clone(),
                dropped: false,
            },
        );
        tracing::info!(stop = %key, image = %item.image, "running");
        let w = &self.req.config.watch;
        let req = (|| {
            Ok::<_, String>(run::RunRequest {
                reference: item.image.parse().map_err(|e| format!("{e}"))?,
                station: self.req.station.clone(),
                key: self.key.clone(),
                push: Some(item.push_to.parse().map_err(|e| format!("{e}"))?),
                data: w.data.clone(),
                config: self.req.config.clone(),
                events: Arc::new(JobEvents {
                    key: key.clone(),
                    milestones: self.milestones.clone(),
                }),
                tmp: self.req.tmp.clone(),
                credentials: self.credentials(&item),
            })
        })();
        Box::pin(async move {
            let mut summary = Summary::default();
            let out = match req {
                Ok(req) => run::run(engine, &req, &cancel, &mut summary).await,
                Err(e) => Err(Failure::Rejected(format!(
                    "the service gave an unusable image reference: {e}"
                ))),
            };
            (key, item, summary, out)
        })
    }

    /// Reports a run's milestone (best effort: the end is what counts).
    pub(super) async fn milestone(&mut self, key: &str, stage: Stage) {
        let Some(train) = key.rsplit_once('#').map(|(t, _)| t.to_string()) else {
            return;
        };
        let status = match stage {
            Stage::Pulled => ReportStatus::Pulled,
            Stage::Running => ReportStatus::Running,
        };
        if let Err(e) = self.req.client.report(&train, status, None, None).await {
            tracing::warn!(error = %e, stop = %key, "reporting {status:?}");
        }
    }

    /// A run ended: record it, then report it.
    pub(super) async fn finish(
        &mut self,
        (key, item, summary, out): RunEnd,
    ) -> Result<(), WatchError> {
        let job = self.jobs.remove(&key);
        let digest = item.digest().to_string();
        let dropped = job.is_some_and(|j| j.dropped);
        match out {
            Ok(()) => {
                let d = summary.digest_out.clone().unwrap_or_default();
                tracing::info!(stop = %key, pushed = %d, seconds = summary.seconds.total, "pushed");
                self.state
                    .set(&key, &digest, Status::Pushed { digest: d.clone() })?;
                self.report(&key, &item.train, ReportStatus::Done, None, Some(d))
                    .await
            }
            Err(f) if dropped => {
                tracing::info!(stop = %key, "stopped: {f}");
                self.state.set(
                    &key,
                    &digest,
                    Status::Failed {
                        reason: f.to_string(),
                    },
                )?;
                self.state.reported(&key)?;
                Ok(())
            }
            Err(f) => match f.decision() {
                Decision::Interrupted => {
                    tracing::warn!(stop = %key, "interrupted: {f}");
                    self.state.set(&key, &digest, Status::Interrupted)?;
                    self.report(&key, &item.train, ReportStatus::Interrupted, None, None)
                        .await
                }
                Decision::Error => {
                    // Registry or engine trouble: run again at the next resync, up to
                    // max_attempts (counted in the state).
                    tracing::warn!(stop = %key, "run failed, will try again: {f}");
                    self.state.set(&key, &digest, Status::Interrupted)?;
                    Ok(())
                }
                _ => {
                    let reason = self.explain(f.to_string());
                    tracing::warn!(stop = %key, decision = f.decision().as_str(), "{reason}");
                    self.fail(&key, &digest, &item.train, reason).await
                }
            },
        }
    }

    /// A train built for this station's key from before a rotation fails pre-run with the
    /// protocol's "does not match the route's public key" (train-lib's `WrongStationKey`);
    /// the creator is told why and what to do.
    fn explain(&self, reason: String) -> String {
        let mut prev = self.req.key_path.as_os_str().to_owned();
        prev.push(".previous");
        if reason.contains("does not match the route's public key") && PathBuf::from(prev).exists()
        {
            format!(
                "{reason}: {} rotated its key (now {}); this train was built for the key before. Rebuild it with the station's new key (`train create --route-service …` fetches it) and submit it again",
                self.req.station,
                self.key.public().fingerprint()
            )
        } else {
            reason
        }
    }

    /// An inspection for the queue ended.
    pub(super) fn inspected(
        &mut self,
        train: String,
        out: Result<Inspection, String>,
    ) -> Result<(), WatchError> {
        self.inspecting.retain(|t| *t != train);
        match out {
            Ok(i) => self.state.inspected(&train, i)?,
            Err(e) => tracing::warn!(%train, error = %e, "reading the waiting train for review"),
        }
        Ok(())
    }

    /// Records the stop as failed for good, then reports it with `reason`.
    async fn fail(
        &mut self,
        key: &str,
        digest: &str,
        train: &str,
        reason: String,
    ) -> Result<(), WatchError> {
        let status = Status::Failed {
            reason: reason.clone(),
        };
        self.state.set(key, digest, status)?;
        self.report(key, train, ReportStatus::Failed, Some(reason), None)
            .await
    }

    /// Sends a report; a refusal because the train is no longer here (409) settles it too.
    async fn report(
        &mut self,
        key: &str,
        train: &str,
        status: ReportStatus,
        reason: Option<String>,
        digest: Option<String>,
    ) -> Result<(), WatchError> {
        match self.req.client.report(train, status, reason, digest).await {
            Ok(_) => self.state.reported(key)?,
            Err(e) if e.status() == Some(409) => {
                tracing::warn!(stop = %key, error = %e, "the service no longer needs this report");
                self.state.reported(key)?;
            }
            Err(e) => {
                tracing::warn!(stop = %key, error = %e, "report not delivered; sent again at the next inbox read")
            }
        }
        Ok(())
    }
}
