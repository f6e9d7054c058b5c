//! `station`: runs Personal Health Trains at a station.

mod audit;
mod config;
mod engine;
#[cfg(test)]
mod fake;
mod results;
mod run;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use train_lib::image::ImageRef;
use train_lib::keys::PrivateKey;
use zeroize::Zeroizing;

const EXIT_CODES: &str = "\
Exit codes:
  0  the train ran and its next image was pushed (audit verify: the log is intact)
  1  error: registry, engine, file or key trouble (nothing was pushed)
  2  usage error
  3  rejected: a policy, protocol or image check failed (nothing ran, nothing was pushed);
     audit verify: the log was edited or truncated
  4  the train failed: non-zero exit, timeout, or results it may not leave (nothing was pushed)";

/// A Personal Health Train station: verifies a train image, runs it isolated on local data,
/// encrypts its results for the route and its creator, and sends it on.
#[derive(Parser)]
#[command(name = "station", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Pull a train image, verify and decrypt it, run it, post-run, push the next image.
    ///
    /// Steps: resolve REF to a digest (used for everything after); read /opt from its layers
    /// (links, devices, duplicates and paths outside the train paths are refused); apply the
    /// station policy (allowed master images and creators, pinned keys); pre-run into a private
    /// temporary directory; run the container with no network, a read-only root filesystem, a
    /// tmpfs /tmp, no capabilities, no-new-privileges, a non-root user and the configured
    /// limits, with each --data path mounted read-only at /opt/train_data/<name>; take
    /// /opt/pht_results out; post-run; push the base layers plus one new train layer.
    ///
    /// On any failure nothing is pushed, the container and every decrypted byte are removed,
    /// and the exit code says why.
    ///
    /// Example: station run 127.0.0.1:5001/trains/t1:hospital-a --station hospital-a
    ///   --key hospital-a.key.pem --data /srv/cohort.csv --config station.toml
    Run {
        /// The train image (registry/repo:tag or registry/repo@sha256:…).
        #[arg(value_name = "REF")]
        reference: String,
        /// This station's id on the route (or [station] id in the config, or STATION_ID).
        #[arg(long, env = "STATION_ID")]
        station: Option<String>,
        /// This station's private key (or [station] key, or STATION_PRIVATE_KEY_PATH).
        #[arg(long, env = "STATION_PRIVATE_KEY_PATH")]
        key: Option<PathBuf>,
        /// Where to push the next image (default: the same repository, tagged with the next
        /// station's id, or `done` after the last stop).
        #[arg(long, value_name = "REF")]
        push: Option<String>,
        /// Local data for the train, mounted read-only at /opt/train_data/<name>. Repeatable.
        #[arg(long, value_name = "PATH")]
        data: Vec<PathBuf>,
        /// Station configuration (TOML): identity, policy, limits, registries, audit log.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Name of an environment variable holding the key's password.
        #[arg(long, value_name = "VAR")]
        key_password_env: Option<String>,
        /// A registry (host:port) to speak plain HTTP to although it is not on loopback
        /// (added to [registry] insecure). Repeatable.
        #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
        insecure: Vec<String>,
        /// Print a JSON summary on stdout (progress and messages stay on stderr).
        #[arg(long)]
        json: bool,
        /// No progress bars or messages.
        #[arg(long, short)]
        quiet: bool,
    },
    /// The station's audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Check the hash chain of the audit log and its head signed with the station key.
    Verify {
        /// The log (default: [audit] log from --config).
        #[arg(value_name = "LOG")]
        log: Option<PathBuf>,
        /// Station configuration, for the log path and the key.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The station's public key (PEM); or its private key via --key / the config.
        #[arg(long, value_name = "PUB.pem")]
        public_key: Option<PathBuf>,
        /// The station's private key (only its public half is used).
        #[arg(long, value_name = "KEY")]
        key: Option<PathBuf>,
    },
}

fn load_key(path: &Path, password_env: Option<&str>) -> Result<PrivateKey> {
    let pw = match password_env {
        Some(v) => Some(Zeroizing::new(
            std::env::var(v)
                .with_context(|| format!("key password variable {v} is not set"))?
                .into_bytes(),
        )),
        None => None,
    };
    Ok(PrivateKey::from_file(path, pw.as_deref().map(|p| &p[..]))?)
}

async fn main_run(cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Run {
            reference,
            station,
            key,
            push,
            data,
            config,
            key_password_env,
            insecure,
            json,
            quiet,
        } => {
            let mut cfg = match &config {
                Some(p) => config::StationConfig::load(p)?,
                None => config::StationConfig::default(),
            };
            cfg.registry.insecure.extend(insecure);
            let station = station.or_else(|| cfg.station.id.clone()).context(
                "no station id: pass --station, set STATION_ID, or [station] id in the config",
            )?;
            let key_path = key
                .or_else(|| cfg.station.key.clone())
                .context("no station key: pass --key, set STATION_PRIVATE_KEY_PATH, or [station] key in the config")?;
            let pw_env = key_password_env.or_else(|| cfg.station.key_password_env.clone());
            let key = load_key(&key_path, pw_env.as_deref())?;
            let reference: ImageRef = reference.parse()?;
            let push = push.map(|p| p.parse::<ImageRef>()).transpose()?;
            let req = run::RunRequest {
                reference,
                station,
                key: Arc::new(key),
                push,
                data,
                config: cfg,
                quiet: quiet || json,
            };
            let mut summary = run::Summary::default();
            let (audit_log, audit_key) = (req.config.audit.log.clone(), req.key.clone());
            // On Ctrl-C or SIGTERM the run is dropped (its private directory with it) and its
            // container removed; nothing is pushed. The audit log says so.
            let interrupt = tokio::select! {
                out = run::run(req, &mut summary) => Err(out),
                sig = interrupted() => Ok(sig),
            };
            let out = match interrupt {
                Err(out) => out,
                Ok(sig) => {
                    if let Ok(engine) = engine::Engine::connect() {
                        let _ = engine.remove_own().await;
                    }
                    let why = format!("interrupted by {sig}; the container and the decrypted train were removed, nothing was pushed");
                    summary.decision = "interrupted".into();
                    summary.reason = Some(why.clone());
                    if let Some(log) = &audit_log {
                        let mut r = audit::record(&summary.station);
                        r.train_id = summary.train_id.clone();
                        r.digest_in = summary.digest_in.clone();
                        r.decision = "interrupted".into();
                        r.reason = Some(why.clone());
                        audit::append(log, &audit_key, r).with_context(|| {
                            format!("appending to the audit log {}", log.display())
                        })?;
                    }
                    Err(anyhow::anyhow!(why))
                }
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else if out.is_ok() {
                println!(
                    "pushed {} ({:.2} s: pull {:.2}, pre-run {:.2}, run {:.2}, post-run {:.2}, push {:.2})",
                    summary.pushed_to.as_deref().unwrap_or("?"),
                    summary.seconds.total,
                    summary.seconds.pull,
                    summary.seconds.pre_run,
                    summary.seconds.run,
                    summary.seconds.post_run,
                    summary.seconds.push
                );
            }
            out
        }
        Cmd::Audit(AuditCmd::Verify {
            log,
            config,
            public_key,
            key,
        }) => {
            let cfg = match &config {
                Some(p) => config::StationConfig::load(p)?,
                None => config::StationConfig::default(),
            };
            let log = log
                .or(cfg.audit.log.clone())
                .context("no log: pass LOG or --config with [audit] log")?;
            let public = match (public_key, key.or(cfg.station.key.clone())) {
                (Some(p), _) => train_lib::keys::public_key_from_file(&p)?,
                (None, Some(k)) => load_key(&k, cfg.station.key_password_env.as_deref())?
                    .public()
                    .clone(),
                (None, None) => anyhow::bail!(
                    "pass --public-key or --key (the head is signed with the station key)"
                ),
            };
            match audit::verify(&log, &public) {
                Ok(n) => {
                    println!(
                        "{}: {n} records, chain and signed head intact",
                        log.display()
                    );
                    Ok(())
                }
                Err(e) => Err(run::Rejected(format!("{e:#}")).into()),
            }
        }
    }
}

async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(main_run(cli.cmd)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<run::Rejected>().is_some() {
                eprintln!("nothing was run or pushed");
                ExitCode::from(3)
            } else if e.downcast_ref::<run::TrainFailed>().is_some() {
                eprintln!("nothing was pushed; the container and the decrypted train were removed");
                ExitCode::from(4)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
