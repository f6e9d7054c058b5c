//! `train results`: the creator's decrypted results, from a directory or a final image.

use crate::cli::{Cli, ResultsArgs};
use crate::support::{as_image, load_key, print_step, pull_image, trust};
use anyhow::Result;
use train_lib::TrainDir;

/// Decrypts the results of `a.dir` into `a.out`.
pub fn run(a: &ResultsArgs, cli: &Cli) -> Result<()> {
    let key = load_key(&a.key, cli)?;
    let trust = trust(&a.trust)?;
    let (_work, dir) = match as_image(&a.dir)? {
        None => (None, a.dir.clone()),
        Some(r) => {
            let (work, d) = pull_image(&r, &a.reg)?;
            (Some(work), d)
        }
    };
    let r = TrainDir::open(&dir)?.results(&key, &trust, &a.out)?;
    print_step(
        &format!("results written to {}", a.out.display()),
        &r,
        a.json,
    );
    Ok(())
}
