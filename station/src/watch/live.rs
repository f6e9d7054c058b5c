//! What the station's dashboard shows of runs: those in hand, with their steps and the train's
//! output as they come, and the last ones that ended. In memory only and bounded: a run keeps
//! its last [`MAX_LINES`] lines of at most [`MAX_LINE`] bytes each, and only the last
//! [`MAX_ENDED`] ended runs are kept (the audit log is the lasting record). Lines arrive
//! escaped by the run's output filter, as on the terminal; pages escape them again for HTML.

use super::plan::Stop;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Lines a run keeps (the oldest go first). 1,000 lines is several screens, and 1,000 ×
/// 4 KiB × (concurrency + 20 ended) stays a few tens of MiB at worst.
pub const MAX_LINES: usize = 1_000;
/// Bytes a line keeps.
pub const MAX_LINE: usize = 4_096;
/// Ended runs kept.
pub const MAX_ENDED: usize = 20;

/// Which kind a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// A step of the pipeline (`pulling …`, `pre-run: …`).
    Step,
    /// A warning.
    Warn,
    /// A line the train printed.
    Train,
}

/// One run, as the dashboard shows it.
#[derive(Debug, Clone)]
pub struct RunView {
    /// The train stop (`train#index` when shown).
    pub stop: Stop,
    /// The image it runs, by digest.
    pub image: String,
    /// When it started (ms since the epoch).
    pub started_ms: u64,
    /// Its latest stage, in words.
    pub stage: String,
    /// Its lines, oldest first.
    pub lines: VecDeque<(LineKind, String)>,
    /// Lines dropped from the front to keep [`MAX_LINES`].
    pub dropped: u64,
    /// How it ended, if it has: when, whether it pushed, and what happened.
    pub ended: Option<Ended>,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Ended {
    /// When (ms since the epoch).
    pub at_ms: u64,
    /// Whether it pushed its results.
    pub pushed: bool,
    /// What happened, in words.
    pub outcome: String,
}

/// The runs the dashboard shows, shared between the watcher (which writes) and the pages.
#[derive(Debug, Default)]
pub struct LiveRuns {
    runs: Mutex<VecDeque<RunView>>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn cut(s: &str) -> String {
    if s.len() <= MAX_LINE {
        return s.to_string();
    }
    let mut end = MAX_LINE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} …", &s[..end])
}

impl LiveRuns {
    /// A run of `stop` started on `image`.
    pub fn started(&self, stop: &Stop, image: &str) {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        // A run again of the same stop replaces the one shown.
        runs.retain(|r| r.stop != *stop);
        runs.push_front(RunView {
            stop: stop.clone(),
            image: image.to_string(),
            started_ms: now_ms(),
            stage: "starting".into(),
            lines: VecDeque::new(),
            dropped: 0,
            ended: None,
        });
    }

    fn with(&self, stop: &Stop, f: impl FnOnce(&mut RunView)) {
        // Called for every line a train prints: compared by value, nothing formatted.
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = runs.iter_mut().find(|r| r.stop == *stop) {
            f(r);
        }
    }

    /// The run of `stop` reached `stage` (in words).
    pub fn stage(&self, stop: &Stop, stage: &str) {
        self.with(stop, |r| r.stage = stage.to_string());
    }

    /// The run of `stop` said `line` (already escaped for a terminal).
    pub fn line(&self, stop: &Stop, kind: LineKind, line: &str) {
        self.with(stop, |r| {
            if r.lines.len() == MAX_LINES {
                r.lines.pop_front();
                r.dropped += 1;
            }
            r.lines.push_back((kind, cut(line)));
        });
    }

    /// The run of `stop` ended.
    pub fn ended(&self, stop: &Stop, pushed: bool, outcome: &str) {
        self.with(stop, |r| {
            r.stage = if pushed { "pushed" } else { "ended" }.into();
            r.ended = Some(Ended {
                at_ms: now_ms(),
                pushed,
                outcome: cut(outcome),
            });
        });
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        if runs.iter().filter(|r| r.ended.is_some()).count() > MAX_ENDED {
            // The oldest ended run goes (runs are newest first).
            if let Some(i) = runs.iter().rposition(|r| r.ended.is_some()) {
                runs.remove(i);
            }
        }
    }

    /// The runs, newest first.
    pub fn snapshot(&self) -> Vec<RunView> {
        let runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        runs.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stop(t: &str) -> Stop {
        Stop {
            train: t.parse().unwrap(),
            index: 0,
        }
    }

    #[test]
    fn lines_and_ended_runs_are_bounded() {
        let live = LiveRuns::default();
        live.started(&stop("t0"), "img");
        for i in 0..MAX_LINES + 5 {
            live.line(&stop("t0"), LineKind::Train, &format!("line {i}"));
        }
        live.line(&stop("t0"), LineKind::Train, &"é".repeat(MAX_LINE));
        let r = &live.snapshot()[0];
        assert_eq!(r.lines.len(), MAX_LINES);
        assert_eq!(r.dropped, 6);
        assert_eq!(r.lines[0].1, "line 6");
        assert!(r.lines.back().unwrap().1.len() <= MAX_LINE + 4);
        for i in 0..MAX_ENDED + 3 {
            let s = stop(&format!("t{}", i + 1));
            live.started(&s, "img");
            live.ended(&s, true, "pushed");
        }
        let all = live.snapshot();
        assert_eq!(all.iter().filter(|r| r.ended.is_some()).count(), MAX_ENDED);
        // The run in hand stays, however many end after it.
        assert!(all
            .iter()
            .any(|r| r.stop.to_string() == "t0#0" && r.ended.is_none()));
        assert_eq!(all[0].stop.to_string(), format!("t{}#0", MAX_ENDED + 3));
    }
}
