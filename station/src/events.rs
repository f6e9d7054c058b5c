//! What a run tells its caller while it goes: step messages, the train's output (already
//! escaped and capped) and transfer progress. The `station` binary prints them to stderr; a
//! daemon running many jobs routes them to `tracing`, tagged with each job's run id.

use std::io::Write;
use train_image::{Reporter, Silent};

/// Milestones of a run, for a caller that reports them (the watcher tells the route service).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The train image is pulled and pinned.
    Pulled,
    /// Pre-run passed; the container is about to start.
    Running,
}

/// Where a run's events go.
pub trait Events: Send + Sync {
    /// A milestone (default: nothing; messages already say it for people).
    fn stage(&self, _run_id: &str, _stage: Stage) {}
    /// A step's message (`pulling …`, `pre-run: …`), escaped.
    fn step(&self, run_id: &str, message: &str);
    /// A warning (not a failure of the run), escaped.
    fn warn(&self, run_id: &str, message: &str);
    /// A line the train printed, escaped.
    fn train_output(&self, run_id: &str, line: &str);
    /// Progress of pulls and pushes.
    fn transfers(&self) -> &dyn Reporter;
}

/// Messages and train output on stderr (the `station` binary); `quiet` keeps only the train's
/// output and warnings, which an operator should always see.
pub struct Stderr {
    quiet: bool,
    transfers: Box<dyn Reporter>,
}

impl Stderr {
    /// Prints to stderr, with `transfers` drawing progress (bars in a terminal).
    pub fn new(quiet: bool, transfers: Box<dyn Reporter>) -> Self {
        Self { quiet, transfers }
    }
}

impl Events for Stderr {
    fn step(&self, _: &str, message: &str) {
        if !self.quiet {
            let _ = writeln!(std::io::stderr(), "{message}");
        }
    }
    fn warn(&self, _: &str, message: &str) {
        let _ = writeln!(std::io::stderr(), "warning: {message}");
    }
    fn train_output(&self, _: &str, line: &str) {
        let _ = writeln!(std::io::stderr(), "  [train] {line}");
    }
    fn transfers(&self) -> &dyn Reporter {
        self.transfers.as_ref()
    }
}

/// Events as `tracing` records with the run id, for a process that runs many jobs.
#[derive(Debug, Default)]
pub struct Tracing;

impl Events for Tracing {
    fn step(&self, run_id: &str, message: &str) {
        tracing::info!(run = run_id, "{message}");
    }
    fn warn(&self, run_id: &str, message: &str) {
        tracing::warn!(run = run_id, "{message}");
    }
    fn train_output(&self, run_id: &str, line: &str) {
        tracing::info!(run = run_id, train = true, "{line}");
    }
    fn transfers(&self) -> &dyn Reporter {
        &Silent
    }
}
