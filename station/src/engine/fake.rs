//! A fake engine for the unit tests of the pipeline and the sweep: it reads `/opt` as an engine
//! would, records what it was asked, and answers with a configured end and results archive.

use super::{End, EngineError, Leftover, OptStream, OutputSink, Ran, TrainEngine, TrainJob};
use std::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// What the fake was asked to run.
#[derive(Debug, Clone)]
pub struct Asked {
    pub image: String,
    pub cmd: Vec<String>,
    pub env: Vec<(String, String)>,
    pub labels: Vec<(String, String)>,
}

pub struct FakeEngine {
    pub end: End,
    pub results: Vec<u8>,
    /// What the train "prints".
    pub output: Vec<u8>,
    /// Whether it started a train (only after a complete `/opt` and no cancellation).
    pub started: Mutex<bool>,
    pub opt: Mutex<Vec<u8>>,
    pub asked: Mutex<Option<Asked>>,
    pub leftovers: Mutex<Vec<Leftover>>,
    pub removed: Mutex<Vec<String>>,
}

impl FakeEngine {
    pub fn new(end: End, results: Vec<u8>) -> Self {
        Self {
            end,
            results,
            output: Vec::new(),
            started: Mutex::default(),
            opt: Mutex::default(),
            asked: Mutex::default(),
            leftovers: Mutex::default(),
            removed: Mutex::default(),
        }
    }
    pub fn started(&self) -> bool {
        *self.started.lock().unwrap()
    }
}

impl TrainEngine for FakeEngine {
    async fn run(
        &self,
        job: &TrainJob<'_>,
        mut opt: OptStream,
        output: OutputSink,
        cancel: &CancellationToken,
    ) -> Result<Ran, EngineError> {
        *self.asked.lock().unwrap() = Some(Asked {
            image: job.image.into(),
            cmd: job.cmd.to_vec(),
            env: job.env.clone(),
            labels: job.labels.clone(),
        });
        while let Some(b) = opt.recv().await {
            self.opt.lock().unwrap().extend_from_slice(&b);
        }
        let ran = |end| Ran {
            end,
            results_bytes: None,
            disk: None,
        };
        if cancel.is_cancelled() {
            return Ok(ran(End::Cancelled));
        }
        *self.started.lock().unwrap() = true;
        output(&self.output);
        if self.end == End::Cancelled {
            // A run that only ends when its job is cancelled.
            cancel.cancelled().await;
        }
        if self.end != End::Exited(0) {
            return Ok(ran(self.end));
        }
        if self.results.len() as u64 > job.limits.results_bytes {
            return Err(EngineError::results_limit(job.limits.results_bytes));
        }
        std::fs::write(job.results, &self.results).map_err(|source| EngineError::Io {
            what: "writing the results".into(),
            source,
        })?;
        Ok(Ran {
            end: self.end,
            results_bytes: Some(self.results.len() as u64),
            disk: None,
        })
    }

    async fn leftovers(&self, _: &str, _: &str) -> Result<Vec<Leftover>, EngineError> {
        Ok(self.leftovers.lock().unwrap().clone())
    }

    async fn remove_leftover(&self, l: &Leftover) -> Result<(), EngineError> {
        self.removed.lock().unwrap().push(l.id.clone());
        Ok(())
    }
}
