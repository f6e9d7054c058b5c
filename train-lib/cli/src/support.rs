//! What several subcommands share: keys, trust files, reports, the async runtime, reading
//! train images into a private temporary directory.

use crate::cli::{Cli, RegistryArgs, StepArgs};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use train_image::{self as image, ImageRef};
use train_lib::keys::{PrivateKey, TrustStore};
use train_lib::StepReport;
use zeroize::Zeroizing;

/// A private key, its password from `--key-password-env`.
pub fn load_key(path: &Path, cli: &Cli) -> Result<PrivateKey> {
    Ok(PrivateKey::from_file_with_password_env(
        path,
        cli.key_password_env.as_deref(),
    )?)
}

/// The station's key: `--key`, or `RSA_STATION_PRIVATE_KEY` (hex of PEM, as PHT-meDIC passes it).
pub fn station_key(args: &StepArgs, cli: &Cli) -> Result<PrivateKey> {
    if let Some(p) = &args.key {
        return load_key(p, cli);
    }
    let hexed = Zeroizing::new(std::env::var("RSA_STATION_PRIVATE_KEY").map_err(|_| {
        anyhow::anyhow!("no station key: pass --key, or set STATION_PRIVATE_KEY_PATH or RSA_STATION_PRIVATE_KEY")
    })?);
    Ok(PrivateKey::from_text_with_password_env(
        hexed.as_bytes(),
        cli.key_password_env.as_deref(),
        "RSA_STATION_PRIVATE_KEY",
    )?)
}

/// The trust file, or no pins.
pub fn trust(path: &Option<PathBuf>) -> Result<TrustStore> {
    Ok(match path {
        Some(p) => TrustStore::from_file(p)?,
        None => TrustStore::default(),
    })
}

/// Prints a step's report, as text or JSON.
pub fn print_step(what: &str, r: &StepReport, json: bool) {
    if json {
        pht_term::outln!(
            "{}",
            serde_json::to_string_pretty(r).expect("report serialises")
        );
    } else {
        pht_term::outln!(
            "{what}: {} train {} at {} (stop {}): {} train files, {} result files, {} bytes",
            r.format,
            r.train_id,
            r.station,
            r.index,
            r.train_files,
            r.result_files,
            r.bytes
        );
    }
}

/// The async runtime the registry operations run on.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// An existing path is a directory; anything else must be an image reference.
pub fn as_image(arg: &Path) -> Result<Option<ImageRef>> {
    if arg.exists() {
        return Ok(None);
    }
    let s = arg
        .to_str()
        .context("the argument is neither a directory nor an image reference")?;
    Ok(Some(s.parse().with_context(|| {
        format!("{s}: no such directory, and not an image reference")
    })?))
}

/// How `train` reads images: progress bars, the default caps, never cancelled (a signal ends
/// the process; its temporary directory holds no plaintext).
pub fn pull_options<'a>(
    bars: &'a pht_term::Bars,
    cancel: &'a tokio_util::sync::CancellationToken,
) -> image::PullOptions<'a> {
    image::PullOptions {
        reporter: bars,
        limits: image::ReadLimits::default(),
        cancel,
    }
}

/// Pulls an image's /opt into a private temporary directory (removed when the guard drops).
pub fn pull_image(r: &ImageRef, reg: &RegistryArgs) -> Result<(tempfile::TempDir, PathBuf)> {
    let (work, pulled) = pull_with(&runtime()?, &reg.registry(), r)?;
    Ok((work, pulled.dir))
}

/// [`pull_image`] through `registry` (one with its own credentials), on `rt`.
pub fn pull_with(
    rt: &tokio::runtime::Runtime,
    registry: &image::Registry,
    r: &ImageRef,
) -> Result<(tempfile::TempDir, image::PulledTrain)> {
    let work = tempfile::Builder::new().prefix("pht-train-").tempdir()?;
    let (bars, cancel) = (
        pht_term::Bars::default(),
        tokio_util::sync::CancellationToken::new(),
    );
    let pulled = rt.block_on(image::pull_train(
        registry,
        r,
        work.path(),
        pull_options(&bars, &cancel),
    ))?;
    Ok((work, pulled))
}
