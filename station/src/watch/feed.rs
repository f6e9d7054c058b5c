//! The station's event feed as a wake-up signal: the watcher reads its inbox whenever the
//! service records something at the station, and on a timer besides, so a feed that drops
//! never loses a train. Reconnects back off from 1 s to 60 s and resume after the last event
//! seen (`Last-Event-ID`).

use route_wire::client::Client;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Follows the feed of `station` until `stop`, waking `wake` at each event.
pub async fn follow(
    client: Client,
    station: route_wire::StationId,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    let path = format!("/v1/stations/{station}/events");
    let mut last = 0;
    let mut backoff = Backoff::default();
    while !stop.is_cancelled() {
        let broke = tokio::select! {
            _ = stop.cancelled() => return,
            r = read(&client, &path, &mut last, &wake, &mut backoff) => r,
        };
        let pause = backoff.pause();
        tracing::warn!(error = %broke, retry_in_secs = pause.as_secs(), "station feed");
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        // A reconnect may have missed nothing (resumed), but the inbox is read anyway.
        wake.notify_one();
    }
}

async fn read(
    client: &Client,
    path: &str,
    last: &mut i64,
    wake: &Notify,
    backoff: &mut Backoff,
) -> String {
    let mut s = match client.events(path, *last).await {
        Ok(s) => s,
        Err(e) => return e.to_string(),
    };
    backoff.reset();
    loop {
        match s.next().await {
            Ok(_) => {
                *last = s.last_id();
                wake.notify_one();
            }
            Err(e) => return e.to_string(),
        }
    }
}

/// Exponential backoff with jitter, 1 s to 60 s: many stations reconnecting after a service
/// restart do not arrive at once.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    /// The pause before the next attempt.
    pub fn pause(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let base = 1u64 << self.failures.min(7).saturating_sub(1);
        let jitter = u64::from(train_lib::keys::random_bytes::<1>()[0]) * base * 4; // ≤ base s
        Duration::from_millis((base * 1000 + jitter).min(60_000))
    }

    /// After a success.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_minute_and_resets() {
        let mut b = Backoff::default();
        let first = b.pause();
        assert!(
            first >= Duration::from_secs(1) && first < Duration::from_secs(3),
            "{first:?}"
        );
        for _ in 0..10 {
            b.pause();
        }
        assert_eq!(b.pause(), Duration::from_secs(60));
        b.reset();
        assert!(b.pause() < Duration::from_secs(3));
    }
}
