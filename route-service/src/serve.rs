//! Everything started together: the database (migrated), the movers with their
//! reconciliation pass, and the HTTP API; stopped together on the token. On stop the listener
//! closes, SSE feeds and long-polls end, moves in hand get a grace period to finish and are
//! otherwise released for another replica, and the pool is closed.

use crate::api::{self, AppState};
use crate::config::Config;
use crate::db::{Db, DbError};
use crate::mover::Mover;
use crate::token::TokenIssuer;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use tokio_util::sync::CancellationToken;
use train_image::{Registry, RegistryOptions};

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The database could not be opened.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The address could not be bound.
    #[error("listening on {addr}: {detail}; is another process using it? (`listen` in the configuration)")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        detail: String,
    },
    /// Scratch space for submissions could not be made.
    #[error("scratch directory: {0}")]
    Scratch(std::io::Error),
    /// The token signing key could not be read.
    #[error(transparent)]
    Token(#[from] crate::token::TokenError),
    /// The configured connection cap does not fit under the file limit.
    #[error(transparent)]
    Capacity(#[from] crate::capacity::CapacityError),
    /// The server failed.
    #[error("HTTP server: {0}")]
    Http(std::io::Error),
}

/// The Prometheus recorder: one per process (the `metrics` facade is global).
pub fn metrics_handle() -> PrometheusHandle {
    static H: OnceLock<PrometheusHandle> = OnceLock::new();
    H.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Another recorder may be installed already (tests): then this handle renders nothing.
        if metrics::set_global_recorder(recorder).is_ok() {
            crate::metrics::register();
        }
        handle
    })
    .clone()
}

/// A replica's name in leases: `host-pid-suffix`, the suffix 8 random hex digits (two replicas
/// on one host differ, and so does a restarted one). Hex, never base64url: operators and tests
/// read the pid as the second field from the right, and base64url may hold a `-`.
fn owner() -> String {
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_else(|_| "host".into());
    let mut suffix = [0u8; 4];
    aws_lc_rs::rand::fill(&mut suffix).expect("the system RNG works");
    format!(
        "{}-{}-{}",
        host.trim(),
        std::process::id(),
        hex::encode(suffix)
    )
}

/// A bound, ready service.
pub struct Service {
    addr: SocketAddr,
    listener: tokio::net::TcpListener,
    state: AppState,
    /// Connections served at once ([`crate::capacity::connection_cap`]).
    max_connections: usize,
    _work: tempfile::TempDir,
}

impl Service {
    /// Opens the database, binds `cfg.listen` and prepares the movers; nothing runs yet.
    pub async fn bind(cfg: Config) -> Result<Self, ServeError> {
        // Before anything is opened: a cap the file limit cannot hold stops the start.
        let max_connections =
            crate::capacity::connection_cap(cfg.max_connections, crate::capacity::file_limit())?;
        let db = Db::open(&cfg.database).await?;
        let tokens = cfg
            .token
            .clone()
            .map(TokenIssuer::new)
            .transpose()?
            .map(Arc::new);
        let token_registries: Vec<String> = cfg
            .registries
            .iter()
            .filter(|r| r.token_service.is_some())
            .map(|r| r.address.clone())
            .collect();
        let reg = Registry::new(RegistryOptions {
            ca_certs: cfg.ca_certs.clone(),
            insecure: cfg
                .registries
                .iter()
                .filter(|r| r.insecure)
                .map(|r| r.address.clone())
                .collect(),
            // Registries that take its tokens: the movers sign their own, per move, and hold
            // no password (there is none to harvest).
            minters: match &tokens {
                Some(t) => cfg
                    .registries
                    .iter()
                    .filter_map(|r| {
                        Some(train_image::Minter {
                            registry: r.address.clone(),
                            minter: Arc::new(crate::token::MoverTokens::new(
                                t.clone(),
                                r.token_service.clone()?,
                            )),
                        })
                    })
                    .collect(),
                None => Vec::new(),
            },
            // Others (Harbor): the account configured for that registry, sent to it and to
            // its configured token realm only.
            credentials: cfg
                .registries
                .iter()
                .filter_map(|r| Some((r.address.clone(), r.credentials.clone()?)))
                .collect(),
            token_realms: cfg
                .registries
                .iter()
                .filter_map(|r| r.token_realm.clone())
                .collect(),
        });
        let listener = tokio::net::TcpListener::bind(&cfg.listen)
            .await
            .map_err(|e| ServeError::Bind {
                addr: cfg.listen.clone(),
                detail: e.to_string(),
            })?;
        let addr = listener.local_addr().map_err(ServeError::Http)?;
        // Submissions are unpacked (ciphertext only) in a private directory removed at exit.
        let work = tempfile::Builder::new()
            .prefix("route-service-")
            .tempdir()
            .map_err(ServeError::Scratch)?;
        let mover = Mover::new(
            db.clone(),
            reg.clone(),
            cfg.mover.clone(),
            owner(),
            token_registries,
        );
        let streams = api::streams::Streams::new(cfg.max_streams_per_principal);
        let state = AppState {
            db,
            mover,
            reg,
            cfg: Arc::new(cfg),
            metrics: metrics_handle(),
            work: work.path().to_path_buf(),
            stop: CancellationToken::new(),
            tokens,
            streams,
        };
        Ok(Self {
            addr,
            listener,
            state,
            max_connections,
            _work: work,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `stop`, then shuts down gracefully.
    pub async fn run(self, stop: CancellationToken) -> Result<(), ServeError> {
        let mut state = self.state;
        state.stop = stop.clone();
        let movers = tokio::spawn(state.mover.clone().run(stop.clone()));
        let db = state.db.clone();
        let limits = pht_web::listen::Limits {
            max_connections: self.max_connections,
            header_timeout: std::time::Duration::from_secs(state.cfg.header_timeout_secs),
            on_refused: || metrics::counter!(crate::metrics::CONNECTIONS_REFUSED).increment(1),
        };
        let app = api::router(state, crate::ui::router());
        tracing::info!(addr = %self.addr, max_connections = self.max_connections, "route service listening");
        pht_web::listen::serve(self.listener, app, limits, stop.clone()).await;
        stop.cancel();
        let _ = movers.await;
        db.close().await;
        tracing::info!("route service stopped");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_lease_owner_names_the_pid_second_from_the_right() {
        // 200 names: a base64url suffix held a `-` in about one name in eight.
        for _ in 0..200 {
            let name = super::owner();
            let pid: u32 = name.rsplit('-').nth(1).unwrap().parse().unwrap();
            assert_eq!(pid, std::process::id(), "{name}");
        }
    }
}
