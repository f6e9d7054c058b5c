//! The `station` command's arguments (clap), apart from what each subcommand does (`cmd/`).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

pub const EXIT_CODES: &str = "\
Exit codes:
  0  the train ran and its next image was pushed (audit verify: the log is intact)
  1  error: registry, engine, file or key trouble; or interrupted (nothing was pushed)
  2  usage error
  3  rejected: a policy, protocol or image check failed (nothing ran, nothing was pushed);
     audit verify: the log was edited or truncated
  4  the train failed: non-zero exit, timeout, or results it may not leave (nothing was pushed)";

/// A Personal Health Train station: verifies a train image, runs it isolated on local data,
/// encrypts its results for the route and its creator, and sends it on.
#[derive(Parser)]
#[command(name = "station", version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Pull a train image, verify and decrypt it, run it, post-run, push the next image.
    ///
    /// Steps: remove what earlier runs that did not finish left; resolve REF to a digest (used
    /// for everything after); read /opt from its layers, the configuration first and only what
    /// it signs (links, devices, duplicates and paths outside the train paths are refused);
    /// refuse a train this station already ran (any encoding of it; the audit log) or is
    /// running; apply the station policy (allowed master images and creators, pinned keys; a
    /// train whose master nobody signed, as every legacy train, runs only on a master
    /// [policy] allowed_masters names); pre-run into a private work directory; run the
    /// container with no network, a read-only root filesystem, a tmpfs /tmp, no capabilities,
    /// no-new-privileges, a non-root user, the configured limits and /opt a filesystem of
    /// limits.disk_mib, with each --data path mounted read-only at /opt/train_data/<name>;
    /// take /opt/pht_results out; post-run; push the base layers plus one new train layer.
    ///
    /// On any failure nothing is pushed, the container, its disk and every decrypted byte are
    /// removed, and the exit code says why. Ctrl-C or SIGTERM stops the run cleanly (a second
    /// one exits at once; the next start cleans up). Needs root on the engine's host.
    ///
    /// Example: station run 127.0.0.1:5001/trains/t1:hospital-a --station hospital-a
    ///   --key hospital-a.key.pem --data /srv/cohort.csv --config station.toml
    Run(RunArgs),
    /// The station's audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
}

#[derive(Subcommand)]
pub enum AuditCmd {
    /// Check the hash chain of the audit log and its head signed with the station key.
    Verify(VerifyArgs),
}

/// Arguments of `run`.
#[derive(Args)]
pub struct RunArgs {
    /// The train image (registry/repo:tag or registry/repo@sha256:…).
    #[arg(value_name = "REF")]
    pub reference: String,
    /// This station's id on the route (or [station] id in the config, or STATION_ID).
    #[arg(long, env = "STATION_ID")]
    pub station: Option<String>,
    /// This station's private key (or [station] key, or STATION_PRIVATE_KEY_PATH).
    #[arg(long, env = "STATION_PRIVATE_KEY_PATH")]
    pub key: Option<PathBuf>,
    /// Where to push the next image (default: the same repository, tagged with the next
    /// station's id, or `done` after the last stop).
    #[arg(long, value_name = "REF")]
    pub push: Option<String>,
    /// Local data for the train, mounted read-only at /opt/train_data/<name>. Repeatable.
    #[arg(long, value_name = "PATH")]
    pub data: Vec<PathBuf>,
    /// Station configuration (TOML): identity, policy, limits, registries, audit log.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Name of an environment variable holding the key's password.
    #[arg(long, value_name = "VAR")]
    pub key_password_env: Option<String>,
    /// A registry (host:port) to speak plain HTTP to although it is not on loopback
    /// (added to [registry] insecure). Repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    pub insecure: Vec<String>,
    /// Print a JSON summary on stdout (progress and messages stay on stderr).
    #[arg(long)]
    pub json: bool,
    /// No progress bars or messages.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Arguments of `verify`.
#[derive(Args)]
pub struct VerifyArgs {
    /// The log (default: [audit] log from --config).
    #[arg(value_name = "LOG")]
    pub log: Option<PathBuf>,
    /// Station configuration, for the log path and the key.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The station's public key (PEM); or its private key via --key / the config.
    #[arg(long, value_name = "PUB.pem")]
    pub public_key: Option<PathBuf>,
    /// The station's private key (only its public half is used).
    #[arg(long, value_name = "KEY")]
    pub key: Option<PathBuf>,
}
