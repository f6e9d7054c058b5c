//! The accept loop. `axum::serve` has no header-read timeout and no connection cap: 1,100
//! half-sent requests (at a 1,024 file limit) stopped `accept`, and every API, notification
//! and token call then timed out. Here each connection is served by hyper with a header-read
//! timeout (which also closes a keep-alive connection idle between requests), and at most
//! `max_connections` are served at once; one more is closed at accept and counted.
//!
//! TLS and slow-body limits are the reverse proxy's (see the README's deployment section).

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// How the loop serves.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time to send a request's headers (or, idle, to start the next request).
    pub header_timeout: Duration,
    /// Called for each connection closed at accept because all slots were taken (a counter).
    pub on_refused: fn(),
}

/// How long a shutdown waits for connections in progress.
const DRAIN: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` until `stop`, then lets connections finish (up to 30 s).
pub async fn serve(listener: TcpListener, app: Router, limits: Limits, stop: CancellationToken) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            a = listener.accept() => a,
        };
        let sock = match accepted {
            Ok((sock, _)) => sock,
            Err(e) => {
                // EMFILE and friends: wait for connections to close rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            (limits.on_refused)();
            drop(sock);
            continue;
        };
        let _ = sock.set_nodelay(true);
        let svc = TowerToHyperService::new(app.clone());
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut b = hyper::server::conn::http1::Builder::new();
            b.timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .keep_alive(true);
            let conn = b.serve_connection(TokioIo::new(sock), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(DRAIN, conn).await;
                }
            }
            drop(slot);
        });
    }
    // Every slot back: every connection ended (or the drain's time ran out).
    let _ = tokio::time::timeout(DRAIN, slots.acquire_many(limits.max_connections as u32)).await;
}
