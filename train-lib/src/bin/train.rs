//! `train`: create, verify, pre-run, post-run and read Personal Health Trains.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use train_lib::image::{self, ImageRef};
use train_lib::keys::{public_key_from_file, PrivateKey, PublicKey, TrustStore};
use train_lib::{CreateSpec, Format, ProtocolError, Station, StepReport, TrainDir};
use zeroize::Zeroizing;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  error: a file, key or argument could not be used (nothing was changed)
  2  usage error
  3  rejected: the train failed a check (the message names it; the directory is unchanged),
     or an image failed a layer, digest or lineage check
  130  stopped by SIGINT/SIGTERM while pre-run rewrote files in place: every file was
     put back first (at any other moment a signal ends the process at once: 128 + signal)";

/// Personal Health Train: trains are encrypted algorithm directories that visit stations.
///
/// A train directory is an image's /opt: train_config.json, pht_train/ (the algorithm, encrypted
/// at rest) and pht_results/. Two formats: `native` (authenticated, the default) and `legacy`
/// (PHT-meDIC 2.0.5, byte-compatible). The format is detected from the directory.
///
/// A station runs: `train pre-run DIR` (verify, decrypt) → the algorithm → `train post-run DIR`
/// (hash, sign, re-encrypt for every participant). The creator ends with `train results`.
#[derive(Parser)]
#[command(name = "train", version, after_help = EXIT_CODES)]
struct Cli {
    /// Name of an environment variable holding the password of an encrypted PKCS#8 key.
    #[arg(long, global = true, value_name = "VAR")]
    key_password_env: Option<String>,
    /// More log output on stderr (-v info, -vv debug). Secrets are never logged.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate an RSA key pair: D/NAME.key.pem (PKCS#8, mode 0600) and D/NAME.pub.pem (SPKI).
    Keygen {
        /// Base name of the two files.
        name: String,
        /// Directory to write them to.
        #[arg(long, default_value = ".")]
        out_dir: PathBuf,
        /// Modulus size: 2048, 3072 or 4096.
        #[arg(long, default_value_t = 3072)]
        bits: usize,
    },
    /// Create an encrypted train directory, ready for its first station.
    ///
    /// Example: train create --files ./algo --entrypoint main.py --creator-id alice
    ///   --creator-key alice.key.pem --station s1=s1.pub.pem --station s2=s2.pub.pem --out ./train
    Create {
        /// Directory of train files (becomes pht_train/). A top-level query.json is the query.
        #[arg(long, value_name = "SRC")]
        files: PathBuf,
        /// The file the image runs, relative to SRC.
        #[arg(long, value_name = "REL")]
        entrypoint: String,
        /// The creator's id.
        #[arg(long, value_name = "ID")]
        creator_id: String,
        /// The creator's private key (PEM).
        #[arg(long, value_name = "KEY")]
        creator_key: PathBuf,
        /// A route station, in visiting order: ID=PUBLIC_KEY.pem. Repeat for each stop.
        #[arg(long = "station", value_name = "ID=PUB.pem", required = true)]
        stations: Vec<String>,
        /// A query.json to ship with the train.
        #[arg(long, value_name = "FILE")]
        query: Option<PathBuf>,
        /// Train format.
        #[arg(long, default_value = "native", value_parser = ["native", "legacy"])]
        format: String,
        /// The builder's private key (required for legacy, optional countersignature for native).
        #[arg(long, value_name = "KEY")]
        builder_key: Option<PathBuf>,
        /// Master image: `repo:tag` for legacy's source, a digest for native (signed).
        #[arg(long, value_name = "REF")]
        master_image: Option<String>,
        /// Train id (random when absent).
        #[arg(long)]
        train_id: Option<String>,
        /// Proposal id (the train id when absent).
        #[arg(long)]
        proposal_id: Option<String>,
        /// Output directory (must not exist, or be empty).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Verify and decrypt DIR in place for this station. DIR is unchanged on any failure.
    PreRun(StepArgs),
    /// Train images: build one on a master image, copy one between registries.
    #[command(subcommand)]
    Image(ImageCmd),
    /// Hash, sign, re-encrypt and rewrap DIR in place after the run.
    PostRun(StepArgs),
    /// Run every check that needs no private key; non-zero exit if any fails.
    ///
    /// TRAIN is a train directory or an image reference (registry/repo:tag or @sha256:…). For an
    /// image, its /opt is read from the registry's layers (links, devices, duplicates, paths
    /// outside the train paths are refused) and, with --master, its lineage is checked by layer
    /// digests: the train's base layers are exactly the master's.
    Verify {
        /// The train directory or image reference.
        #[arg(value_name = "TRAIN")]
        dir: PathBuf,
        /// The master image the train must be built on (image references only).
        #[arg(long, value_name = "REF")]
        master: Option<String>,
        #[command(flatten)]
        reg: RegistryArgs,
        /// Print a JSON report (for CI).
        #[arg(long)]
        json: bool,
        /// JSON trust file of pinned keys.
        #[arg(long, value_name = "FILE")]
        trust: Option<PathBuf>,
    },
    /// Decrypt the results for the creator into OUT (a new directory), after checking the chain.
    ///
    /// TRAIN is a train directory or an image reference (the final image of the route).
    Results {
        /// The train directory or image reference.
        #[arg(value_name = "TRAIN")]
        dir: PathBuf,
        #[command(flatten)]
        reg: RegistryArgs,
        /// The creator's private key.
        #[arg(long)]
        key: PathBuf,
        /// Output directory (must not exist, or be empty).
        #[arg(long)]
        out: PathBuf,
        /// JSON trust file of pinned keys.
        #[arg(long, value_name = "FILE")]
        trust: Option<PathBuf>,
        /// Print a JSON summary.
        #[arg(long)]
        json: bool,
    },
}

/// Train images in registries.
#[derive(Subcommand)]
enum ImageCmd {
    /// Build a train image from a train directory on a master image, and push it.
    ///
    /// The image is the master's layers plus one deterministic layer holding /opt; its CMD is
    /// the entrypoint file under /opt/pht_train (the master's ENTRYPOINT is the interpreter); its
    /// labels record the master digest and the train id. For native trains the master digest is
    /// also in the creator-signed configuration: either the train was created with
    /// --master-image DIGEST, or pass --creator-key here to record and re-sign it.
    ///
    /// Example: train image build ./train --master 127.0.0.1:5001/master/python:3.11
    ///   --tag 127.0.0.1:5001/trains/t1:hospital-a
    Build {
        /// The train directory (as written by `train create`).
        dir: PathBuf,
        /// The master image.
        #[arg(long, value_name = "REF")]
        master: String,
        /// Where to push the train image.
        #[arg(long, value_name = "REF")]
        tag: String,
        /// The entrypoint file under pht_train (native trains name it in their configuration).
        #[arg(long, value_name = "REL")]
        entrypoint: Option<String>,
        /// The creator's key, to record the master digest in a native train's signed configuration.
        #[arg(long, value_name = "KEY")]
        creator_key: Option<PathBuf>,
        /// The builder's key, when the native train carries a builder countersignature.
        #[arg(long, value_name = "KEY")]
        builder_key: Option<PathBuf>,
        #[command(flatten)]
        reg: RegistryArgs,
        /// Print a JSON summary.
        #[arg(long)]
        json: bool,
    },
    /// Copy an image to another repository or registry, unchanged (same manifest digest).
    ///
    /// Blobs the target has are skipped, blobs in another repository of the same registry are
    /// mounted, the rest are streamed across (never held whole in memory).
    Copy {
        /// Source image.
        #[arg(value_name = "SRC")]
        from: String,
        /// Target (a tag).
        #[arg(value_name = "DST")]
        to: String,
        #[command(flatten)]
        reg: RegistryArgs,
        /// Print a JSON summary.
        #[arg(long)]
        json: bool,
    },
}

/// How registries are reached. Credentials come from ~/.docker/config.json (and its credential
/// helpers) or PHT_REGISTRY_USERNAME/PHT_REGISTRY_PASSWORD; they are never printed.
#[derive(Args, Clone, Default)]
struct RegistryArgs {
    /// A registry (host:port) to speak plain HTTP to although it is not on loopback. Repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    insecure: Vec<String>,
}

impl RegistryArgs {
    fn registry(&self) -> image::Registry {
        image::Registry::new(image::RegistryOptions {
            insecure: self.insecure.clone(),
        })
    }
}

#[derive(Args)]
struct StepArgs {
    /// The train directory.
    dir: PathBuf,
    /// This station's id on the route.
    #[arg(long, env = "STATION_ID")]
    station: String,
    /// This station's private key (PEM). Without it, RSA_STATION_PRIVATE_KEY (hex of PEM) is used.
    #[arg(long, env = "STATION_PRIVATE_KEY_PATH")]
    key: Option<PathBuf>,
    /// JSON trust file of pinned creator, builder and station keys:
    /// {"creators":[{"id":"…","key":"sha256:…"}],"builders":["sha256:…"],"stations":[{"id":"…","key":"sha256:…"}]}
    #[arg(long, value_name = "FILE")]
    trust: Option<PathBuf>,
    /// Print a JSON summary.
    #[arg(long)]
    json: bool,
}

fn password(cli: &Cli) -> Result<Option<Zeroizing<Vec<u8>>>> {
    match &cli.key_password_env {
        None => Ok(None),
        Some(var) => {
            let v = std::env::var(var)
                .with_context(|| format!("--key-password-env: variable {var} is not set"))?;
            Ok(Some(Zeroizing::new(v.into_bytes())))
        }
    }
}

fn load_key(path: &Path, cli: &Cli) -> Result<PrivateKey> {
    let pw = password(cli)?;
    Ok(PrivateKey::from_file(path, pw.as_deref().map(|p| &p[..]))?)
}

fn station_key(args: &StepArgs, cli: &Cli) -> Result<PrivateKey> {
    if let Some(p) = &args.key {
        return load_key(p, cli);
    }
    let hexed = Zeroizing::new(std::env::var("RSA_STATION_PRIVATE_KEY").map_err(|_| {
        anyhow::anyhow!("no station key: pass --key, or set STATION_PRIVATE_KEY_PATH or RSA_STATION_PRIVATE_KEY")
    })?);
    let pw = password(cli)?;
    Ok(PrivateKey::from_text(
        hexed.as_bytes(),
        pw.as_deref().map(|p| &p[..]),
        "RSA_STATION_PRIVATE_KEY",
    )?)
}

fn trust(path: &Option<PathBuf>) -> Result<TrustStore> {
    Ok(match path {
        Some(p) => TrustStore::from_file(p)?,
        None => TrustStore::default(),
    })
}

fn print_step(what: &str, r: &StepReport, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(r).expect("report serialises")
        );
    } else {
        println!(
            "{what}: {} train {} at {} (stop {}): {} train files, {} result files, {} bytes",
            r.format, r.train_id, r.station, r.index, r.train_files, r.result_files, r.bytes
        );
    }
}

fn run(cli: &Cli) -> Result<()> {
    match &cli.cmd {
        Cmd::Keygen {
            name,
            out_dir,
            bits,
        } => {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let key = PrivateKey::generate(*bits)?;
            std::fs::create_dir_all(out_dir)
                .with_context(|| format!("creating {}", out_dir.display()))?;
            let priv_path = out_dir.join(format!("{name}.key.pem"));
            let pub_path = out_dir.join(format!("{name}.pub.pem"));
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&priv_path)
                .with_context(|| format!("creating {} (it must not exist)", priv_path.display()))?;
            f.write_all(key.to_pkcs8_pem()?.as_bytes())?;
            std::fs::write(&pub_path, key.public().to_pem())
                .with_context(|| format!("writing {}", pub_path.display()))?;
            println!(
                "{}\n{}\n{}",
                priv_path.display(),
                pub_path.display(),
                key.public().fingerprint()
            );
        }
        Cmd::Create {
            files,
            entrypoint,
            creator_id,
            creator_key,
            stations,
            query,
            format,
            builder_key,
            master_image,
            train_id,
            proposal_id,
            out,
        } => {
            let creator = load_key(creator_key, cli)?;
            let builder = builder_key.as_ref().map(|p| load_key(p, cli)).transpose()?;
            let mut route: Vec<(String, PublicKey)> = Vec::new();
            for s in stations {
                let (id, path) = s
                    .split_once('=')
                    .with_context(|| format!("--station `{s}`: expected ID=PUBLIC_KEY.pem"))?;
                route.push((id.to_string(), public_key_from_file(Path::new(path))?));
            }
            let spec = CreateSpec {
                files,
                entrypoint,
                creator_id,
                creator_key: &creator,
                stations: route,
                query: query.as_deref(),
                builder_key: builder.as_ref(),
                train_id: train_id.clone(),
                proposal_id: proposal_id.clone(),
                master_image: master_image.clone(),
            };
            let format: Format = format.parse().map_err(anyhow::Error::msg)?;
            let r = train_lib::create(&spec, format, out)?;
            print_step("created", &r, false);
        }
        Cmd::Image(ImageCmd::Build {
            dir,
            master,
            tag,
            entrypoint,
            creator_key,
            builder_key,
            reg,
            json,
        }) => {
            let master: ImageRef = master.parse()?;
            let tag: ImageRef = tag.parse()?;
            let registry = reg.registry();
            let rt = runtime()?;
            let pinned = rt.block_on(registry.resolve(&master))?;
            let train = TrainDir::open(dir)?;
            let entry = match (train.format(), entrypoint) {
                (Format::Native, given) => {
                    let signed = train_lib::native::steps::entrypoint(dir)?;
                    if given.as_ref().is_some_and(|g| *g != signed) {
                        anyhow::bail!(
                            "--entrypoint {} differs from the signed entrypoint {signed}",
                            given.as_ref().unwrap()
                        );
                    }
                    match train_lib::native::steps::master_image(dir)? {
                        Some(d) if d == pinned.digest => {}
                        Some(d) => anyhow::bail!(
                            "the train's creator signed master image {d}, but {master} is {}; build on that master, or recreate the train",
                            pinned.digest
                        ),
                        None => {
                            let ck = creator_key.as_ref().with_context(|| {
                                "this native train has no signed master image: pass --creator-key to record it, or create the train with --master-image DIGEST"
                            })?;
                            let ck = load_key(ck, cli)?;
                            let bk = builder_key.as_ref().map(|p| load_key(p, cli)).transpose()?;
                            train_lib::native::steps::record_master_image(dir, &pinned.digest, &ck, bk.as_ref())?;
                        }
                    }
                    signed
                }
                (_, Some(e)) => e.clone(),
                (_, None) => anyhow::bail!(
                    "legacy trains do not name their entrypoint: pass --entrypoint REL"
                ),
            };
            train_lib::tree::check_rel_path(&entry).map_err(ProtocolError::from)?;
            let train_id = TrainDir::open(dir)?
                .verify(&TrustStore::default())?
                .train_id;
            let cmd = vec![format!("/opt/pht_train/{entry}")];
            let rep = rt.block_on(image::build_train_image(
                &registry,
                dir,
                &pinned,
                &tag,
                cmd,
                &[(image::LABEL_TRAIN_ID, &train_id)],
                &image::Bars::default(),
            ))?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&rep)?);
            } else {
                println!(
                    "pushed {}@{} (on master {}, {} blobs sent, {} bytes)",
                    tag, rep.digest, pinned.digest, rep.sent, rep.bytes_sent
                );
            }
        }
        Cmd::Image(ImageCmd::Copy {
            from,
            to,
            reg,
            json,
        }) => {
            let from: ImageRef = from.parse()?;
            let to: ImageRef = to.parse()?;
            let registry = reg.registry();
            let rt = runtime()?;
            let pinned = rt.block_on(registry.resolve(&from))?;
            let rep = rt.block_on(image::copy_image(
                &registry,
                &pinned,
                &to,
                &image::Bars::default(),
            ))?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&rep)?);
            } else {
                println!(
                    "copied {from} to {to}@{} ({} blobs sent, {} mounted, {} already there; {} bytes)",
                    rep.digest, rep.sent, rep.mounted, rep.skipped, rep.bytes_sent
                );
            }
        }
        Cmd::PreRun(a) | Cmd::PostRun(a) => {
            let key = station_key(a, cli)?;
            let trust = trust(&a.trust)?;
            let st = Station {
                id: &a.station,
                key: &key,
                trust: &trust,
            };
            let dir = TrainDir::open(&a.dir)?;
            let (what, r) = if matches!(cli.cmd, Cmd::PreRun(_)) {
                ("pre-run", dir.pre_run(&st)?)
            } else {
                ("post-run", dir.post_run(&st)?)
            };
            print_step(what, &r, a.json);
        }
        Cmd::Verify {
            dir,
            master,
            reg,
            json,
            trust: t,
        } => {
            let trust = trust(t)?;
            let mut image_checks = None;
            let (_work, dir) = match as_image(dir)? {
                None => {
                    if master.is_some() {
                        anyhow::bail!("--master applies to image references, not directories");
                    }
                    (None, dir.clone())
                }
                Some(r) => {
                    let (work, pulled, checks) = verify_image(&r, master.as_deref(), reg)?;
                    image_checks = Some(checks);
                    (Some(work), pulled)
                }
            };
            let mut rep = TrainDir::open(&dir)?.verify(&trust)?;
            if let Some(checks) = image_checks {
                let proto = std::mem::take(&mut rep.checks);
                rep.checks = checks;
                rep.checks.extend(proto);
            }
            if *json {
                let mut v = serde_json::to_value(&rep)?;
                v["ok"] = rep.ok().into();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!(
                    "{} train {} — route: {} — {} stops done",
                    rep.format,
                    rep.train_id,
                    rep.route.join(" → "),
                    rep.stops_done
                );
                for c in &rep.checks {
                    println!(
                        "  [{}] {}: {}",
                        if c.ok { " ok " } else { "FAIL" },
                        c.name,
                        c.detail
                    );
                }
            }
            if !rep.ok() {
                let failed: Vec<_> = rep
                    .checks
                    .iter()
                    .filter(|c| !c.ok)
                    .map(|c| c.name.as_str())
                    .collect();
                return Err(
                    ProtocolError::Rejected(train_lib::Rejection::WrongState(format!(
                        "verification failed: {}",
                        failed.join(", ")
                    )))
                    .into(),
                );
            }
        }
        Cmd::Results {
            dir,
            reg,
            key,
            out,
            trust: t,
            json,
        } => {
            let key = load_key(key, cli)?;
            let trust = trust(t)?;
            let (_work, dir) = match as_image(dir)? {
                None => (None, dir.clone()),
                Some(r) => {
                    let (work, d) = pull_image(&r, reg)?;
                    (Some(work), d)
                }
            };
            let r = TrainDir::open(&dir)?.results(&key, &trust, out)?;
            print_step(&format!("results written to {}", out.display()), &r, *json);
        }
    }
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// An existing path is a directory; anything else must be an image reference.
fn as_image(arg: &Path) -> Result<Option<ImageRef>> {
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
fn pull_options<'a>(
    bars: &'a image::Bars,
    cancel: &'a tokio_util::sync::CancellationToken,
) -> image::PullOptions<'a> {
    image::PullOptions {
        reporter: bars,
        limits: image::ReadLimits::default(),
        cancel,
    }
}

/// Pulls an image's /opt into a private temporary directory (removed when the guard drops).
fn pull_image(r: &ImageRef, reg: &RegistryArgs) -> Result<(tempfile::TempDir, PathBuf)> {
    let work = tempfile::Builder::new().prefix("pht-train-").tempdir()?;
    let (bars, cancel) = (
        image::Bars::default(),
        tokio_util::sync::CancellationToken::new(),
    );
    let pulled = runtime()?.block_on(image::pull_train(
        &reg.registry(),
        r,
        work.path(),
        pull_options(&bars, &cancel),
    ))?;
    let dir = pulled.dir.clone();
    Ok((work, dir))
}

fn verify_image(
    r: &ImageRef,
    master: Option<&str>,
    reg: &RegistryArgs,
) -> Result<(tempfile::TempDir, PathBuf, Vec<train_lib::common::Check>)> {
    use train_lib::common::Check;
    let registry = reg.registry();
    let rt = runtime()?;
    let work = tempfile::Builder::new().prefix("pht-train-").tempdir()?;
    let (bars, cancel) = (
        image::Bars::default(),
        tokio_util::sync::CancellationToken::new(),
    );
    let pulled = rt.block_on(image::pull_train(
        &registry,
        r,
        work.path(),
        pull_options(&bars, &cancel),
    ))?;
    let mut checks = vec![Check {
        name: "image layers".into(),
        ok: true,
        detail: format!(
            "{}: {} base layers, {} train layer(s) touching only the train paths",
            pulled.pinned.digest,
            pulled.base_count,
            pulled.pinned.manifest.layers.len() - pulled.base_count
        ),
    }];
    let labelled = pulled.config.label(image::LABEL_MASTER).map(String::from);
    let mut proven = 0;
    if let Ok(Some(signed)) = train_lib::native::steps::master_image(&pulled.dir) {
        let ok = labelled.as_deref() == Some(signed.as_str());
        checks.push(Check {
            name: "signed master image".into(),
            ok,
            detail: if ok {
                signed
            } else {
                format!("the creator signed {signed} but the image is labelled {labelled:?}")
            },
        });
    }
    match master {
        None => checks.push(Check {
            name: "lineage".into(),
            ok: true,
            detail: "not checked (pass --master REF)".into(),
        }),
        Some(m) => {
            let m: ImageRef = m.parse()?;
            let pinned = rt.block_on(registry.resolve(&m))?;
            let cfg = rt.block_on(registry.config(&pinned))?;
            let (ok, detail) = match image::lineage(&pulled, &pinned, &cfg) {
                Ok(l) => {
                    proven = l.master_layers;
                    (
                        true,
                        format!(
                            "the train's base layers are exactly the {} layers of {} ({})",
                            l.master_layers, m, pinned.digest
                        ),
                    )
                }
                Err(e) => (false, e.to_string()),
            };
            checks.push(Check {
                name: "lineage".into(),
                ok,
                detail,
            });
        }
    }
    // Base layers not proven to be the master's must not touch the train paths.
    let (ok, detail) = match rt.block_on(image::scan_base_layers(
        &registry,
        &pulled,
        proven,
        work.path(),
        pull_options(&bars, &cancel),
    )) {
        Ok(n) => (
            true,
            format!("{n} base layer(s) not proven to be the master's read; none touches the train paths"),
        ),
        Err(e) => (false, e.to_string()),
    };
    checks.push(Check {
        name: "base layers".into(),
        ok,
        detail,
    });
    let dir = pulled.dir.clone();
    Ok((work, dir, checks))
}

/// SIGINT and SIGTERM end the process at once, as by default, unless a pre-run is
/// rewriting files in place: then it is asked to put every file back first, and exits 130.
fn stop_on_signals() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    std::thread::spawn(move || {
        for sig in signals.forever() {
            if train_lib::cancel::request() {
                std::process::exit(128 + sig);
            }
            eprintln!("stopping: putting the decrypted files back first …");
        }
    });
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| level.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    stop_on_signals();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e)
            if matches!(
                e.downcast_ref::<ProtocolError>(),
                Some(ProtocolError::Cancelled)
            ) =>
        {
            eprintln!("stopped: {e:#}");
            ExitCode::from(130)
        }
        Err(e) => {
            let rejected = e
                .downcast_ref::<ProtocolError>()
                .and_then(ProtocolError::rejection)
                .is_some()
                || e.downcast_ref::<image::ImageError>()
                    .is_some_and(image::ImageError::is_rejection);
            eprintln!("error: {e:#}");
            if rejected {
                eprintln!("the train directory was left unchanged");
                ExitCode::from(3)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
