//! The `route-service` command's arguments.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

pub const EXIT_CODES: &str = "\
Exit codes:
  0  done (serve: stopped cleanly on SIGTERM or Ctrl-C)
  1  error: configuration, database, registry or listening address trouble
  2  usage error

Environment: every flag of `serve` also reads ROUTE_SERVICE_<FLAG> (e.g. ROUTE_SERVICE_DATABASE);
RUST_LOG sets the log filter (default info).";

/// The PHT route service: keeps every train's route and moves train images from station to
/// station, between registries, as each station finishes. It never holds a key that can
/// decrypt a train.
#[derive(Parser)]
#[command(name = "route-service", version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Run the service: the HTTP API, registry notification endpoints and the movers.
    ///
    /// Migrations run at start. SIGTERM (or Ctrl-C) stops taking work, ends feeds and
    /// long-polls, finishes or releases the moves in hand, and exits 0.
    ///
    /// Example: route-service serve --config /etc/pht/route-service.toml
    Serve(ServeArgs),
    /// Register an administrator; its API key is printed once.
    #[command(subcommand)]
    Admin(AdminCmd),
    /// Stations: register, list, remove, rotate their API key, accept their new public key.
    #[command(subcommand)]
    Station(StationCmd),
    /// Creators: register, list.
    #[command(subcommand)]
    Creator(CreatorCmd),
    /// Print the OpenAPI document (JSON) and exit.
    Openapi,
    /// Ask a running service whether it is ready (GET /readyz); exit 0 when it answers 200.
    ///
    /// For container health checks: the service's image has no shell and no curl.
    ///
    /// Example: route-service probe --url http://127.0.0.1:8080/readyz
    Probe(ProbeArgs),
}

#[derive(Args)]
pub struct ProbeArgs {
    /// `http://HOST:PORT/PATH` (plain HTTP: the probe runs beside the service).
    #[arg(long, default_value = "http://127.0.0.1:8080/readyz")]
    pub url: String,
    /// Seconds before it counts as not ready.
    #[arg(long, default_value_t = 5)]
    pub timeout_secs: u64,
}

/// Where the database is, for the administration commands.
#[derive(Args, Clone)]
pub struct DbArgs {
    /// The service configuration (its `database` is used).
    #[arg(long, env = "ROUTE_SERVICE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// `sqlite:PATH` or `postgres://…` (overrides the configuration's).
    #[arg(long, env = "ROUTE_SERVICE_DATABASE", value_name = "URL")]
    pub database: Option<String>,
}

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// `host:port` to listen on (overrides the configuration's `listen`).
    #[arg(long, env = "ROUTE_SERVICE_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Seconds between reconciliation passes (overrides `mover.reconcile_secs`).
    #[arg(long, env = "ROUTE_SERVICE_RECONCILE_SECS", value_name = "SECS")]
    pub reconcile_secs: Option<u64>,
    /// Seconds a claimed move stays this replica's (overrides `mover.lease_secs`).
    #[arg(long, env = "ROUTE_SERVICE_LEASE_SECS", value_name = "SECS")]
    pub lease_secs: Option<u64>,
}

#[derive(Subcommand)]
pub enum AdminCmd {
    /// Register administrator ID and print its API key (shown once).
    Add {
        /// The id.
        id: route_wire::PrincipalId,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// Where a station or creator lives and its key.
#[derive(Args)]
pub struct PartyArgs {
    /// Its registry, `host[:port]`.
    #[arg(long)]
    pub registry: String,
    /// Its namespace there (default: the id). Stations: the service delivers to
    /// NAMESPACE/inbox and takes NAMESPACE/outbox. Creators: they push to
    /// NAMESPACE/submissions; finished trains arrive in NAMESPACE/results.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Its public key (PEM, as `train keygen` writes it).
    #[arg(long, value_name = "PEM")]
    pub public_key: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ApprovalArg {
    /// Every delivered train may run.
    Auto,
    /// The station's operator approves each train.
    Manual,
}

#[derive(Subcommand)]
pub enum StationCmd {
    /// Register a station and print its API key (shown once).
    ///
    /// Example: route-service station add hospital-a --registry reg.example.org
    ///   --namespace hospital-a --public-key hospital-a.pub.pem --approval manual
    Add {
        /// The station's id (as trains' routes name it).
        id: route_wire::PrincipalId,
        #[command(flatten)]
        party: PartyArgs,
        /// How it takes trains.
        #[arg(long, value_enum, default_value = "auto")]
        approval: ApprovalArg,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List stations with their fingerprints and whether they poll.
    List {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Remove a station: its API key stops working at once.
    Remove {
        /// The station.
        id: route_wire::PrincipalId,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Give a station a new API key (printed once); the old one stops working at once.
    RotateKey {
        /// The station.
        id: route_wire::PrincipalId,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Accept the public key a station proposed with `station keys rotate`.
    ///
    /// Compare the fingerprint with the one the station's operator gives you out of band
    /// (`station keys show`); a different one is refused. New trains are then built and checked
    /// against the new key; trains built for the old key fail at that station with a message
    /// naming both fingerprints.
    ///
    /// Example: route-service station accept-key hospital-a --fingerprint sha256:4f…
    AcceptKey {
        /// The station.
        id: route_wire::PrincipalId,
        /// The fingerprint the station's operator confirmed.
        #[arg(long, value_name = "sha256:…")]
        fingerprint: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand)]
pub enum CreatorCmd {
    /// Register a creator and print its API key (shown once).
    ///
    /// Example: route-service creator add alice --registry reg.example.org --namespace alice
    ///   --public-key alice.pub.pem
    Add {
        /// The creator's id (as its trains' configurations name it).
        id: route_wire::PrincipalId,
        #[command(flatten)]
        party: PartyArgs,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List creators.
    List {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
    },
}
