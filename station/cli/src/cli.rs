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
    /// Run trains the route service delivers, as a daemon that connects outbound only.
    ///
    /// Follows the station's event feed and reads its inbox on every event and every
    /// [watch] resync_secs (a dropped feed loses nothing); approves what [watch] allows;
    /// runs each approved train as `station run` does (same checks, isolation, audit log and
    /// cleanup), pushing to the station's outbox; reports pulled, running, done (with the
    /// pushed digest) or failed (with the reason). At start it checks that the service holds
    /// this station's public key, removes what a crashed watcher left, and runs its
    /// unfinished trains again; a train already pushed (per the audit log) is never run twice.
    /// SIGTERM or Ctrl-C: no new work, runs in hand are stopped and reported `interrupted`
    /// (nothing is pushed for them); they run again when the watcher is back.
    ///
    /// The API key comes from [watch] api_key_file, STATION_API_KEY_FILE or STATION_API_KEY,
    /// never from an argument. Logs go to stderr (RUST_LOG=debug for more); no key or
    /// decrypted byte is ever logged.
    ///
    /// Example: station watch --config /etc/pht/station.toml --route-service https://routes.example.org
    Watch(WatchArgs),
    /// List the trains waiting for this station's approval, with what a reviewer should read.
    Queue(QueueArgs),
    /// Approve a train waiting for this station (works while `station watch` runs).
    Approve(DecideArgs),
    /// Reject a train waiting for this station; its creator sees the reason.
    Reject(DecideArgs),
    /// The station's key pair: create it, show it (with what the other side runs), rotate it.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// The keys this station pins for creators, builders and other stations (pre-run
    /// enforces them): the trust file [policy] trust names.
    #[command(subcommand)]
    Trust(TrustCmd),
    /// The station's audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Check every precondition of this station, each line `ok` or what is wrong and what to
    /// do; exit 0 only when all pass.
    ///
    /// In order: the configuration; the key (readable, private, its fingerprint); the route
    /// service (reachable, the API key accepted); whether the service holds this station's
    /// key; the station's registry (its inbox readable and its outbox writable with the
    /// service's token: an upload is opened and cancelled); the clock against the service's
    /// (within 60 s); the Docker engine and its API version; loop devices and ext4 for the
    /// train's disk (an image is attached and removed); the work area ($TMPDIR: local, not
    /// writable by others, room for a run); the audit log (it verifies). A check that needs
    /// one that failed is skipped and says so. Nothing is left behind. Needs what `station
    /// watch` needs (root on the engine's host), so run it as the service's user.
    ///
    /// Example: station doctor --config /etc/pht/station.toml
    Doctor(DoctorArgs),
    /// A Kubernetes station ([engine] kind = "kubernetes"; a binary built with the cargo
    /// feature `kubernetes`).
    #[command(subcommand)]
    K8s(K8sCmd),
}

/// `station k8s …`.
#[derive(Subcommand)]
pub enum K8sCmd {
    /// Print what a cluster admin applies once, as one JSON List: the namespace (Pod Security
    /// `restricted`, enforced), a deny-all NetworkPolicy (ingress and egress), the station's
    /// ServiceAccount, and a Role with only the verbs the station uses, bound to it.
    ///
    /// Example: station k8s manifests --namespace pht-hospital-a | kubectl apply -f -
    Manifests(K8sManifestsArgs),
}

/// Arguments of `k8s manifests`.
#[derive(Args)]
pub struct K8sManifestsArgs {
    /// The namespace trains run in ([engine.kubernetes] namespace).
    #[arg(long, value_name = "NAME")]
    pub namespace: String,
}

/// Arguments of `doctor`.
#[derive(Args)]
pub struct DoctorArgs {
    /// Station configuration (TOML), as `station watch` is given.
    #[arg(long, value_name = "FILE", env = "STATION_CONFIG")]
    pub config: PathBuf,
}

/// Where the station's configuration is and how the route service is reached.
#[derive(Args, Clone)]
pub struct ServiceArgs {
    /// Station configuration (TOML): [station], [watch], [policy], [limits], [audit].
    #[arg(long, value_name = "FILE", env = "STATION_CONFIG")]
    pub config: Option<PathBuf>,
    /// The route service's URL (or [watch] route_service).
    #[arg(long, value_name = "URL", env = "STATION_ROUTE_SERVICE")]
    pub route_service: Option<String>,
    /// This station's id (or [station] id, or STATION_ID).
    #[arg(long, env = "STATION_ID")]
    pub station: Option<String>,
}

/// Arguments of `watch`.
#[derive(Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub service: ServiceArgs,
    /// Trains run at once (or [watch] concurrency; default 1).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Local data for every train (added to [watch] data). Repeatable.
    #[arg(long, value_name = "PATH")]
    pub data: Vec<PathBuf>,
    /// Serve the station's dashboard at ADDR (default 127.0.0.1:8470): the inbox with the
    /// review pane and approve / reject, runs with their output, past runs, the audit log,
    /// health. Sign in with the station's API key. Loopback only unless --ui-remote.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8470")]
    pub ui: Option<std::net::SocketAddr>,
    /// Let --ui listen on an address other than loopback: only behind a TLS reverse proxy
    /// (the dashboard speaks plain HTTP and takes the station's API key at sign-in).
    #[arg(long, requires = "ui")]
    pub ui_remote: bool,
}

/// Arguments of `queue`.
#[derive(Args)]
pub struct QueueArgs {
    #[command(flatten)]
    pub service: ServiceArgs,
    /// JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `approve` and `reject`.
#[derive(Args)]
pub struct DecideArgs {
    /// The train's id (as `station queue` lists it).
    #[arg(value_name = "TRAIN")]
    pub train: route_wire::TrainId,
    /// Why (required to reject: the creator sees it).
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub service: ServiceArgs,
}

#[derive(Subcommand)]
pub enum KeysCmd {
    /// Create the station's key pair at [station] key (or --key); an existing key is reused
    /// unless --force.
    Create(KeysArgs),
    /// Print the public key, its fingerprint and the commands the other parties run with it.
    Show(KeysArgs),
    /// Propose a new key to the route service; an admin accepts it by fingerprint.
    ///
    /// Writes the new key beside the current one (KEY.next) and sends its public half. Once
    /// an admin has run `route-service station accept-key`, `station watch` takes it into use
    /// (the old key is kept as KEY.previous and the audit log is handed over to the new key).
    /// Trains built for the old key then fail here with a message naming both keys; their
    /// creators rebuild them with the new one.
    Rotate(RotateArgs),
}

/// Arguments of the `keys` commands.
#[derive(Args)]
pub struct KeysArgs {
    /// The private key file (or [station] key, or STATION_PRIVATE_KEY_PATH).
    #[arg(long, env = "STATION_PRIVATE_KEY_PATH")]
    pub key: Option<PathBuf>,
    /// Replace an existing key (create only). Trains built for the old key can no longer run here.
    #[arg(long)]
    pub force: bool,
    /// Modulus size for a new key: 2048, 3072 or 4096.
    #[arg(long, default_value_t = 3072)]
    pub bits: usize,
    #[command(flatten)]
    pub service: ServiceArgs,
}

/// Arguments of `keys rotate`.
#[derive(Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub keys: KeysArgs,
    /// Propose the current key instead of a new one (the service holds a wrong key).
    #[arg(long)]
    pub reuse: bool,
}

#[derive(Subcommand)]
pub enum TrustCmd {
    /// Pin a key: ROLE is creator, builder or station; KEY a public key file or a sha256:
    /// fingerprint. Replaces an earlier pin of that id.
    ///
    /// Example: station trust add creator alice alice.pub.pem
    Add(TrustAddArgs),
    /// List the pins.
    List(TrustFileArgs),
    /// Remove a pin.
    Remove(TrustRemoveArgs),
}

/// Which trust file.
#[derive(Args)]
pub struct TrustFileArgs {
    /// The trust file (or [policy] trust of --config).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Station configuration naming the trust file.
    #[arg(long, value_name = "FILE", env = "STATION_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Arguments of `trust add`.
#[derive(Args)]
pub struct TrustAddArgs {
    /// creator, builder or station.
    #[arg(value_parser = station::trust_file::ROLES)]
    pub role: String,
    /// The id (as routes and train configurations name it; a name for builders).
    pub id: String,
    /// A public key (PEM) file or a sha256: fingerprint.
    #[arg(value_name = "PUB.pem|FINGERPRINT")]
    pub key: String,
    #[command(flatten)]
    pub file: TrustFileArgs,
}

/// Arguments of `trust remove`.
#[derive(Args)]
pub struct TrustRemoveArgs {
    /// creator, builder or station.
    #[arg(value_parser = station::trust_file::ROLES)]
    pub role: String,
    /// The id.
    pub id: String,
    #[command(flatten)]
    pub file: TrustFileArgs,
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
