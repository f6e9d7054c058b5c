//! `train pre-run` and `train post-run`: a station's two protocol steps on a directory.

use crate::cli::{Cli, StepArgs};
use crate::support::{print_step, station_key, trust};
use anyhow::Result;
use train_lib::{Station, TrainDir};

/// Which step.
#[derive(Clone, Copy)]
pub enum Step {
    /// Verify and decrypt.
    Pre,
    /// Hash, sign, re-encrypt, rewrap.
    Post,
}

/// Runs `step` on `a.dir` as station `a.station`.
pub fn run(step: Step, a: &StepArgs, cli: &Cli) -> Result<()> {
    let key = station_key(a, cli)?;
    let trust = trust(&a.trust)?;
    let st = Station {
        id: &a.station,
        key: &key,
        trust: &trust,
    };
    let dir = TrainDir::open(&a.dir)?;
    let (what, r) = match step {
        Step::Pre => ("pre-run", dir.pre_run(&st)?),
        Step::Post => ("post-run", dir.post_run(&st)?),
    };
    print_step(what, &r, a.json);
    Ok(())
}
