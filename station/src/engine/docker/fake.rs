//! A fake of Docker's API for the unit tests of the container's life: it records every call,
//! keeps what is uploaded and answers with a configured exit and results archive.

use super::api::{ContainerSpec, DockerApi, Exit};
use crate::engine::{EngineError, Leftover, OutputSink};
use bytes::Bytes;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub struct Fake {
    pub exit: Exit,
    pub results: Vec<u8>,
    /// What the train "prints".
    pub output: Vec<u8>,
    pub calls: Mutex<Vec<&'static str>>,
    pub uploaded: Mutex<Vec<u8>>,
    pub spec: Mutex<Option<ContainerSpec>>,
    pub leftovers: Mutex<Vec<Leftover>>,
    pub removed: Mutex<Vec<String>>,
    /// What `oom_killed` answers.
    pub oom: bool,
}

impl Fake {
    pub fn new(exit: Exit, results: Vec<u8>) -> Self {
        Self {
            exit,
            results,
            output: Vec::new(),
            calls: Mutex::default(),
            uploaded: Mutex::default(),
            spec: Mutex::default(),
            leftovers: Mutex::default(),
            removed: Mutex::default(),
            oom: false,
        }
    }
    fn call(&self, c: &'static str) {
        self.calls.lock().unwrap().push(c);
    }
    pub fn calls(&self) -> Vec<&'static str> {
        self.calls.lock().unwrap().clone()
    }
}

type Result<T> = std::result::Result<T, EngineError>;

impl DockerApi for Fake {
    async fn ensure_image(&self, _: &str, _: &str) -> Result<()> {
        self.call("ensure_image");
        Ok(())
    }
    async fn create_volume(&self, _: &str, _: &str, _: &[(String, String)]) -> Result<()> {
        self.call("create_volume");
        Ok(())
    }
    async fn remove_volume(&self, name: &str) -> Result<()> {
        self.call("remove_volume");
        self.removed.lock().unwrap().push(name.to_string());
        Ok(())
    }
    async fn create(&self, spec: &ContainerSpec) -> Result<String> {
        self.call("create");
        *self.spec.lock().unwrap() = Some(spec.clone());
        Ok("fake-id".into())
    }
    async fn upload(
        &self,
        _: &str,
        _: &str,
        mut tar: tokio::sync::mpsc::Receiver<Bytes>,
    ) -> Result<()> {
        self.call("upload");
        while let Some(b) = tar.recv().await {
            self.uploaded.lock().unwrap().extend_from_slice(&b);
        }
        Ok(())
    }
    async fn start(&self, _: &str) -> Result<()> {
        self.call("start");
        Ok(())
    }
    async fn wait(
        &self,
        _: &str,
        _: Duration,
        output: OutputSink,
        cancel: &CancellationToken,
    ) -> Result<Exit> {
        self.call("wait");
        output(&self.output);
        if self.exit == Exit::Cancelled {
            // A run that only ends when its job is cancelled.
            cancel.cancelled().await;
        }
        Ok(self.exit)
    }
    async fn download(&self, _: &str, _: &str, dest: &Path, cap: u64) -> Result<u64> {
        self.call("download");
        if self.results.len() as u64 > cap {
            return Err(EngineError::results_limit(cap));
        }
        std::fs::write(dest, &self.results).map_err(|source| EngineError::Io {
            what: "writing the results".into(),
            source,
        })?;
        Ok(self.results.len() as u64)
    }
    async fn oom_killed(&self, _: &str) -> Result<bool> {
        self.call("oom_killed");
        Ok(self.oom)
    }
    async fn remove(&self, id: &str) -> Result<()> {
        self.call("remove");
        self.removed.lock().unwrap().push(id.to_string());
        Ok(())
    }
    async fn leftovers(&self, _: &str, _: &str) -> Result<Vec<Leftover>> {
        self.call("leftovers");
        Ok(self.leftovers.lock().unwrap().clone())
    }
}
