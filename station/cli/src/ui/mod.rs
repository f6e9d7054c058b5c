//! The station's own dashboard, `station watch --ui 127.0.0.1:PORT`: the inbox with the review
//! pane and approve / reject, runs in progress with their output as it comes, past runs, the
//! audit log with its verification, and health (what `station doctor` checks). Served by the
//! watcher's process, on loopback unless `--ui-remote` says otherwise, with its own sign-in.
//!
//! Sign-in is with the station's API key (the one in `[watch] api_key_file`): whoever holds it
//! can already approve and reject with `station approve`, so the dashboard gives no one more
//! than the key does. Sessions live in this process's memory (a restart signs everyone out),
//! as SHA-256 hashes of their cookies. Pages are server-rendered (maud), guarded like the route
//! service's (`pht_web::guard`): a strict CSP, CSRF tokens on every form, the origin checked on
//! every POST. Every action also works without JavaScript; the one script only refreshes the
//! runs in progress.

mod audit;
mod health;
mod inbox;
mod page;
mod runs;
mod session;

use axum::routing::{get, post};
use axum::Router;
use route_wire::client::Client;
use route_wire::StationId;
use secrecy::SecretString;
use station::config::StationConfig;
use station::watch::live::LiveRuns;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What the pages read and act with.
pub struct Ui {
    /// This station.
    pub station: StationId,
    /// The route service, as this station.
    pub client: Client,
    /// The station's configuration.
    pub cfg: StationConfig,
    /// The watcher's runs.
    pub live: Arc<LiveRuns>,
    /// The station's API key: the sign-in's secret.
    pub api_key: SecretString,
    /// The station key's file (its public half verifies the audit log's signed head).
    pub key_path: PathBuf,
    /// The work area (`$TMPDIR`), for the health checks.
    pub tmp: PathBuf,
    sessions: session::Sessions,
    health: health::Cache,
    /// The station key's public half, as last read (see `audit::read`).
    audit_key: std::sync::Mutex<Option<train_lib::keys::PublicKey>>,
}

impl Ui {
    /// The dashboard's state.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        station: StationId,
        client: Client,
        cfg: StationConfig,
        live: Arc<LiveRuns>,
        api_key: SecretString,
        key_path: PathBuf,
        tmp: PathBuf,
    ) -> Self {
        Self {
            station,
            client,
            cfg,
            live,
            api_key,
            key_path,
            tmp,
            sessions: Default::default(),
            health: Default::default(),
            audit_key: Default::default(),
        }
    }
}

type St = Arc<Ui>;

/// The dashboard's routes.
pub fn router(ui: St) -> Router {
    Router::new()
        .route("/", get(inbox::page))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/trains/{id}/approve", post(inbox::approve))
        .route("/trains/{id}/reject", post(inbox::reject))
        .route("/runs", get(runs::page))
        .route("/runs/live", get(runs::fragment))
        .route("/history", get(audit::history))
        .route("/audit", get(audit::log))
        .route("/health", get(health::page).post(health::again))
        .route("/static/ui.css", get(pht_web::assets::css))
        .route("/static/station.js", get(js))
        .layer(axum::middleware::map_response(
            pht_web::guard::security_headers,
        ))
        .with_state(ui)
}

async fn js() -> impl axum::response::IntoResponse {
    pht_web::assets::script(include_str!("static/station.js"))
}

/// Why the dashboard cannot listen.
pub fn check_addr(addr: SocketAddr, remote: bool) -> anyhow::Result<()> {
    if !addr.ip().is_loopback() && !remote {
        anyhow::bail!(
            "--ui {addr} is not a loopback address: the dashboard speaks plain HTTP and signs in with the station's API key. Serve it on 127.0.0.1 and reach it by an SSH tunnel, or put a TLS reverse proxy in front and pass --ui-remote"
        );
    }
    Ok(())
}

/// Serves the dashboard on `listener` until `stop`. Few people use it at once: 32
/// connections, 10 s to send a request's headers.
pub async fn serve(listener: tokio::net::TcpListener, ui: St, stop: CancellationToken) {
    let limits = pht_web::listen::Limits {
        max_connections: 32,
        header_timeout: Duration::from_secs(10),
        on_refused: || {
            tracing::warn!("station dashboard: a connection over the cap of 32 was closed")
        },
    };
    pht_web::listen::serve(listener, router(ui), limits, stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dashboard_stays_on_loopback_unless_told_otherwise() {
        assert!(check_addr("127.0.0.1:8470".parse().unwrap(), false).is_ok());
        assert!(check_addr("[::1]:8470".parse().unwrap(), false).is_ok());
        let e = check_addr("0.0.0.0:8470".parse().unwrap(), false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not a loopback address") && e.contains("--ui-remote"),
            "{e}"
        );
        assert!(check_addr("192.0.2.2:8470".parse().unwrap(), false).is_err());
        assert!(check_addr("192.0.2.2:8470".parse().unwrap(), true).is_ok());
    }
}
