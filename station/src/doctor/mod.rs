//! `station doctor`: every precondition a station depends on, each checked for real (a key
//! read, a call the service must accept, an upload the registry must open, a loop device
//! attached) and answered with `ok` and what was found, or with what is wrong and what to do.
//! Checks that depend on an earlier one that failed are skipped, saying which.

mod host;
mod service;

use crate::config::StationConfig;
use std::path::PathBuf;
use std::time::Duration;

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It holds; what was found.
    Ok(String),
    /// It does not: what is wrong and what to do.
    Failed {
        /// What is wrong.
        problem: String,
        /// What to do.
        fix: String,
    },
    /// Not checked: why (an earlier check failed, or it does not apply).
    Skipped(String),
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// What it found.
    pub outcome: Outcome,
}

impl Check {
    /// It passed, with what it found.
    pub fn ok(name: &'static str, found: impl Into<String>) -> Self {
        Self {
            name,
            outcome: Outcome::Ok(found.into()),
        }
    }
    /// It failed: what is wrong and what to do.
    pub fn failed(name: &'static str, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name,
            outcome: Outcome::Failed {
                problem: problem.into(),
                fix: fix.into(),
            },
        }
    }
    /// Not checked, and why.
    pub fn skipped(name: &'static str, why: impl Into<String>) -> Self {
        Self {
            name,
            outcome: Outcome::Skipped(why.into()),
        }
    }
    /// Whether it failed.
    pub fn is_failed(&self) -> bool {
        matches!(self.outcome, Outcome::Failed { .. })
    }
}

/// What the checks look at.
pub struct Inputs<'a> {
    /// The station's configuration (loaded: a configuration that does not load is the
    /// binary's first line).
    pub cfg: &'a StationConfig,
    /// The work area (`$TMPDIR`): where runs decrypt trains and make their disks.
    pub tmp: PathBuf,
}

/// The largest clock difference to the route service that passes. Audit records, leases and
/// event times are compared across machines; NTP keeps hosts within milliseconds, so a minute
/// off is a host without time synchronisation.
pub const MAX_SKEW: Duration = Duration::from_secs(60);

/// Runs every check, in order.
pub async fn diagnose(inp: &Inputs<'_>) -> Vec<Check> {
    let mut out = Vec::new();
    let key = host::key(inp.cfg, &mut out);
    service::checks(inp.cfg, key.as_ref(), &mut out).await;
    // A Kubernetes station's engine and disks are the cluster's: the binary that has the
    // engine adds those checks (station_k8s::doctor).
    if inp.cfg.engine.kind == crate::config::EngineKind::Docker {
        host::engine(&mut out).await;
        host::disk_bound(inp, &mut out);
    }
    host::work_area(inp, &mut out);
    host::audit(inp.cfg, key.as_ref(), &mut out);
    out
}

/// The clock check's verdict on a difference of `skew` (service minus station).
pub fn judge_skew(skew: f64) -> Check {
    let name = "clock";
    if skew.abs() <= MAX_SKEW.as_secs_f64() {
        Check::ok(
            name,
            format!("within {:.0} s of the route service's", skew.abs().max(1.0)),
        )
    } else {
        Check::failed(
            name,
            format!(
                "this host's clock is {:.0} s {} the route service's",
                skew.abs(),
                if skew > 0.0 { "behind" } else { "ahead of" }
            ),
            "synchronise it (`timedatectl set-ntp true`, or chrony/ntpd against the hospital's time server)",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_a_minute_off_fails_and_says_which_way() {
        assert!(!judge_skew(0.0).is_failed());
        assert!(!judge_skew(-59.0).is_failed());
        let behind = judge_skew(3600.0);
        let ahead = judge_skew(-90.0);
        assert!(behind.is_failed() && ahead.is_failed());
        let Outcome::Failed { problem, fix } = behind.outcome else {
            unreachable!()
        };
        assert!(problem.contains("3600 s behind"), "{problem}");
        assert!(fix.contains("timedatectl"), "{fix}");
        let Outcome::Failed { problem, .. } = ahead.outcome else {
            unreachable!()
        };
        assert!(problem.contains("90 s ahead of"), "{problem}");
    }
}
