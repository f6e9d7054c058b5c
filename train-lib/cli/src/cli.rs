//! The `train` command's arguments (clap), apart from what each subcommand does (`cmd/`).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use train_image as image;

pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  error: a file, key or argument could not be used (nothing was changed)
  2  usage error
  3  rejected: the train failed a check (the message names it; the directory is unchanged),
     or an image failed a layer, digest or lineage check
  5  status --follow: the train failed or was cancelled (the reason is printed)
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
pub struct Cli {
    /// Name of an environment variable holding the password of an encrypted PKCS#8 key.
    #[arg(long, global = true, value_name = "VAR")]
    pub key_password_env: Option<String>,
    /// More log output on stderr (-v info, -vv debug). Secrets are never logged.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// A PEM file of CA certificates to trust besides the system store, for the route service,
    /// registries and token realms (a consortium's own CA). The system store is the default:
    /// add the CA there (update-ca-certificates) and no option is needed.
    #[arg(long, global = true, value_name = "FILE", env = "PHT_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Generate an RSA key pair: D/NAME.key.pem (PKCS#8, mode 0600) and D/NAME.pub.pem (SPKI).
    Keygen(KeygenArgs),
    /// Create an encrypted train directory, ready for its first station.
    ///
    /// Example: train create --files ./algo --entrypoint main.py --creator-id alice
    ///   --creator-key alice.key.pem --station s1=s1.pub.pem --station s2=s2.pub.pem --out ./train
    Create(CreateArgs),
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
    /// digests: the train's base layers start with exactly the master's (any others are read
    /// and may not touch the train paths). The configuration is read first and the layers
    /// unpack only to what it signs; a blob not matching its digest is a rejection (3).
    Verify(VerifyArgs),
    /// Decrypt the results for the creator into OUT (a new directory), after checking the chain.
    ///
    /// TRAIN is a train directory, an image reference (the final image of the route), or, with
    /// --route-service, a train id: the finished train is found in your results repository.
    ///
    /// Example: train results t1 --route-service https://routes.example.org --key alice.key.pem --out ./t1
    Results(ResultsArgs),
    /// Submit a built train image (pushed to your submissions repository) to the route service.
    ///
    /// The route is read from the image's signed configuration; the service verifies the
    /// image (signatures, lineage, the route's keys against the registered stations) before it
    /// accepts it, and then moves it from station to station.
    ///
    /// Example: train submit reg:5000/alice/submissions:t1 --route-service https://routes.example.org
    Submit(SubmitArgs),
    /// Where a submitted train is: every stop's state, waiting for approval, running, moved,
    /// finished, or failed and why. --follow prints its events live until it ends.
    ///
    /// Example: train status t1 --route-service https://routes.example.org --follow
    Status(StatusArgs),
}

/// How the route service is reached, as a creator. The API key comes from --api-key-file,
/// PHT_API_KEY_FILE or PHT_API_KEY, never from an argument (`ps` shows those); under the
/// service's registry token auth it is also your registry password.
#[derive(Args, Clone, Default)]
pub struct RouteArgs {
    /// The route service's URL.
    #[arg(long = "route-service", value_name = "URL", env = "PHT_ROUTE_SERVICE")]
    pub url: Option<String>,
    /// Your id at the route service (default: --creator-id where there is one).
    #[arg(long = "as", value_name = "ID", env = "PHT_CREATOR_ID")]
    pub principal: Option<String>,
    /// A file holding your API key (mode 0600).
    #[arg(long, value_name = "FILE", env = "PHT_API_KEY_FILE")]
    pub api_key_file: Option<PathBuf>,
    /// Allow a plain http:// route service on another machine (your API key then crosses the
    /// network in clear). Without it such a URL is refused before anything is sent; http://
    /// on this machine (127.0.0.1, localhost) needs no option.
    #[arg(long, env = "PHT_PLAIN_HTTP")]
    pub plain_http: bool,
}

/// Arguments of `submit`.
#[derive(Args)]
pub struct SubmitArgs {
    /// The pushed train image (registry/namespace/submissions:tag or @sha256:…).
    #[arg(value_name = "REF")]
    pub image: String,
    #[command(flatten)]
    pub route: RouteArgs,
    #[command(flatten)]
    pub reg: RegistryArgs,
    /// Print the service's JSON view of the train.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `status`.
#[derive(Args)]
pub struct StatusArgs {
    /// The train id.
    #[arg(value_name = "ID")]
    pub id: String,
    #[command(flatten)]
    pub route: RouteArgs,
    /// Print events as they happen until the train finishes, fails or is cancelled (exit 0
    /// finished, 5 failed or cancelled).
    #[arg(long)]
    pub follow: bool,
    /// Print the service's JSON view of the train.
    #[arg(long)]
    pub json: bool,
}

/// Train images in registries.
#[derive(Subcommand)]
pub enum ImageCmd {
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
    Build(BuildArgs),
    /// Copy an image to another repository or registry, unchanged (same manifest digest).
    ///
    /// Blobs the target has are skipped, blobs in another repository of the same registry are
    /// mounted, the rest are streamed across (never held whole in memory).
    Copy(CopyArgs),
}

/// How registries are reached. Credentials come from ~/.docker/config.json (and its credential
/// helpers) or PHT_REGISTRY_USERNAME/PHT_REGISTRY_PASSWORD; they are never printed.
#[derive(Args, Clone, Default)]
pub struct RegistryArgs {
    /// A registry (host:port) to speak plain HTTP to although it is not on loopback. Repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    pub insecure: Vec<String>,
    /// A token realm (URL) your registry credentials may be sent to when a registry's
    /// challenge names it; a realm on the registry's own host needs none, the route service's
    /// (`<route service>/v1/registry-token`) is added when one is configured. Credentials are
    /// never sent to a realm that is not named here. Repeatable, or comma-separated.
    #[arg(
        long = "token-realm",
        value_name = "URL",
        env = "PHT_TOKEN_REALMS",
        value_delimiter = ','
    )]
    pub token_realms: Vec<String>,
}

impl RegistryArgs {
    /// Registry access with these options.
    pub fn registry(&self) -> image::Registry {
        image::Registry::new(image::RegistryOptions {
            insecure: self.insecure.clone(),
            token_realms: self.token_realms.clone(),
            ca_certs: crate::tls::ca_certs(),
            ..Default::default()
        })
    }
}

#[derive(Args)]
pub struct StepArgs {
    /// The train directory.
    pub dir: PathBuf,
    /// This station's id on the route.
    #[arg(long, env = "STATION_ID")]
    pub station: String,
    /// This station's private key (PEM). Without it, RSA_STATION_PRIVATE_KEY (hex of PEM) is used.
    #[arg(long, env = "STATION_PRIVATE_KEY_PATH")]
    pub key: Option<PathBuf>,
    /// JSON trust file of pinned creator, builder and station keys:
    /// {"creators":[{"id":"…","key":"sha256:…"}],"builders":["sha256:…"],"stations":[{"id":"…","key":"sha256:…"}]}
    #[arg(long, value_name = "FILE")]
    pub trust: Option<PathBuf>,
    /// Print a JSON summary.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `keygen`.
#[derive(Args)]
pub struct KeygenArgs {
    /// Base name of the two files.
    pub name: String,
    /// Directory to write them to.
    #[arg(long, default_value = ".")]
    pub out_dir: PathBuf,
    /// Modulus size: 2048, 3072 or 4096.
    #[arg(long, default_value_t = 3072)]
    pub bits: usize,
}

/// Arguments of `create`.
#[derive(Args)]
pub struct CreateArgs {
    /// Directory of train files (becomes pht_train/). A top-level query.json is the query.
    #[arg(long, value_name = "SRC")]
    pub files: PathBuf,
    /// The file the image runs, relative to SRC.
    #[arg(long, value_name = "REL")]
    pub entrypoint: String,
    /// The creator's id.
    #[arg(long, value_name = "ID")]
    pub creator_id: String,
    /// The creator's private key (PEM).
    #[arg(long, value_name = "KEY")]
    pub creator_key: PathBuf,
    /// A route station, in visiting order: ID=PUBLIC_KEY.pem, or ID alone with --route-service
    /// (its key is fetched from the service). Repeat for each stop.
    #[arg(long = "station", value_name = "ID[=PUB.pem]", required = true)]
    pub stations: Vec<String>,
    /// With --route-service: the fingerprint a fetched station key must have (ID=sha256:…, as
    /// the station's operator gave it to you). Repeatable.
    #[arg(long = "pin", value_name = "ID=FINGERPRINT")]
    pub pins: Vec<String>,
    #[command(flatten)]
    pub route: RouteArgs,
    /// A query.json to ship with the train.
    #[arg(long, value_name = "FILE")]
    pub query: Option<PathBuf>,
    /// Train format.
    #[arg(long, default_value = "native", value_parser = ["native", "legacy"])]
    pub format: String,
    /// The builder's private key (required for legacy, optional countersignature for native).
    #[arg(long, value_name = "KEY")]
    pub builder_key: Option<PathBuf>,
    /// Master image: `repo:tag` for legacy's source, a digest for native (signed).
    #[arg(long, value_name = "REF")]
    pub master_image: Option<String>,
    /// Train id (random when absent).
    #[arg(long)]
    pub train_id: Option<String>,
    /// Proposal id (the train id when absent).
    #[arg(long)]
    pub proposal_id: Option<String>,
    /// Output directory (must not exist, or be empty).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Arguments of `verify`.
#[derive(Args)]
pub struct VerifyArgs {
    /// The train directory or image reference.
    #[arg(value_name = "TRAIN")]
    pub dir: PathBuf,
    /// The master image the train must be built on (image references only).
    #[arg(long, value_name = "REF")]
    pub master: Option<String>,
    #[command(flatten)]
    pub reg: RegistryArgs,
    /// Print a JSON report (for CI).
    #[arg(long)]
    pub json: bool,
    /// JSON trust file of pinned keys.
    #[arg(long, value_name = "FILE")]
    pub trust: Option<PathBuf>,
}

/// Arguments of `results`.
#[derive(Args)]
pub struct ResultsArgs {
    /// The train directory, image reference, or (with --route-service) train id.
    #[arg(value_name = "TRAIN")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub reg: RegistryArgs,
    #[command(flatten)]
    pub route: RouteArgs,
    /// The creator's private key.
    #[arg(long)]
    pub key: PathBuf,
    /// Output directory (must not exist, or be empty).
    #[arg(long)]
    pub out: PathBuf,
    /// JSON trust file of pinned keys.
    #[arg(long, value_name = "FILE")]
    pub trust: Option<PathBuf>,
    /// Print a JSON summary.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `build`.
#[derive(Args)]
pub struct BuildArgs {
    /// The train directory (as written by `train create`).
    pub dir: PathBuf,
    /// The master image.
    #[arg(long, value_name = "REF")]
    pub master: String,
    /// Where to push the train image.
    #[arg(long, value_name = "REF")]
    pub tag: String,
    /// The entrypoint file under pht_train (native trains name it in their configuration).
    #[arg(long, value_name = "REL")]
    pub entrypoint: Option<String>,
    /// The creator's key, to record the master digest in a native train's signed configuration.
    #[arg(long, value_name = "KEY")]
    pub creator_key: Option<PathBuf>,
    /// The builder's key, when the native train carries a builder countersignature.
    #[arg(long, value_name = "KEY")]
    pub builder_key: Option<PathBuf>,
    #[command(flatten)]
    pub reg: RegistryArgs,
    /// Print a JSON summary.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `copy`.
#[derive(Args)]
pub struct CopyArgs {
    /// Source image.
    #[arg(value_name = "SRC")]
    pub from: String,
    /// Target (a tag).
    #[arg(value_name = "DST")]
    pub to: String,
    #[command(flatten)]
    pub reg: RegistryArgs,
    /// Print a JSON summary.
    #[arg(long)]
    pub json: bool,
}
