//! `station`: runs Personal Health Trains at a station.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use station::{audit, config, engine, output, run};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use train_lib::image::ImageRef;
use train_lib::keys::PrivateKey;
use zeroize::Zeroizing;

const EXIT_CODES: &str = "\
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

/// What a command ended with: the exit code and, on failure, the message.
enum Ended {
    Ok,
    Failed(run::Decision, String),
}

async fn main_run(cmd: Cmd) -> Result<Ended> {
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
            let engine = engine::Engine::connect()?;
            // Ctrl-C or SIGTERM cancels the job: it stops at its next step (an engine call in
            // flight is waited for), removes its container, volume, disk and work directory,
            // and records `interrupted`. A second signal exits at once; the next start of the
            // station removes what that left.
            let cancel = CancellationToken::new();
            let watcher = tokio::spawn(on_signals(cancel.clone()));
            let mut summary = run::Summary::default();
            let out = run::run(&engine, &req, &cancel, &mut summary).await;
            watcher.abort();
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
            Ok(match out {
                Ok(()) => Ended::Ok,
                Err(e) => Ended::Failed(e.decision(), format!("{e:#}")),
            })
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
            Ok(match audit::AuditLog::new(&log).verify(&public) {
                Ok(records) => {
                    println!(
                        "{}: {} records, chain and signed head intact",
                        log.display(),
                        records.len()
                    );
                    Ended::Ok
                }
                Err(e) => Ended::Failed(run::Decision::Rejected, format!("rejected: {e:#}")),
            })
        }
    }
}

/// Cancels `cancel` at the first SIGINT or SIGTERM; exits at the second.
async fn on_signals(cancel: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    let mut seen = 0;
    loop {
        let sig = tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        seen += 1;
        if seen == 1 {
            eprintln!("{sig}: stopping; removing the container and the decrypted train first …");
            cancel.cancel();
        } else {
            eprintln!(
                "{sig} again: exiting now; the next start of the station removes what is left"
            );
            std::process::exit(1);
        }
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
        Ok(Ended::Ok) => ExitCode::SUCCESS,
        Ok(Ended::Failed(decision, msg)) => {
            eprintln!("error: {}", output::escape(&msg));
            match decision {
                run::Decision::Rejected => eprintln!("nothing was run or pushed"),
                run::Decision::TrainFailed => eprintln!(
                    "nothing was pushed; the container and the decrypted train were removed"
                ),
                _ => {}
            }
            ExitCode::from(decision.exit_code())
        }
        Err(e) => {
            eprintln!("error: {}", output::escape(&format!("{e:#}")));
            ExitCode::from(1)
        }
    }
}
