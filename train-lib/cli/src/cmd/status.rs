//! `train status`: where a train is, from the route service; `--follow` prints its events as
//! they happen (the SSE feed, resumed after a dropped connection) until it ends.

use super::route;
use crate::cli::StatusArgs;
use crate::support::runtime;
use anyhow::Result;
use route_wire::client::Client;
use route_wire::{EventKind, EventView, HopState, TrainId, TrainState, TrainView};
use std::time::Duration;
use train_lib::text::escape;

/// The train failed or was cancelled (exit 5).
#[derive(Debug, thiserror::Error)]
#[error("train {id} {state}: {reason}")]
pub struct TrainEnded {
    id: TrainId,
    state: TrainState,
    reason: String,
}

/// Prints the train's state, and follows it with `--follow`.
pub fn run(a: &StatusArgs) -> Result<()> {
    let client = route::required(&a.route, None)?;
    let rt = runtime()?;
    let id: TrainId =
        a.id.parse()
            .map_err(|e| anyhow::anyhow!("{e}: give the id `train submit` printed"))?;
    let v = rt.block_on(client.train(&id))?;
    if a.json && !a.follow {
        pht_term::outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    print_view(&v);
    if !a.follow {
        return Ok(());
    }
    let last = v.events.last().map_or(0, |e| e.id);
    let v = if ended(v.state) {
        v
    } else {
        rt.block_on(follow(&client, &id, last))?
    };
    pht_term::outln!();
    print_view(&v);
    match v.state {
        TrainState::Finished => {
            pht_term::outln!(
                "finished: train results {} --route-service {} --key CREATOR.key.pem --out DIR",
                v.id,
                client.base()
            );
            Ok(())
        }
        state => Err(TrainEnded {
            id: v.id,
            state,
            reason: v.reason.unwrap_or_else(|| "no reason recorded".into()),
        }
        .into()),
    }
}

fn ended(s: TrainState) -> bool {
    matches!(
        s,
        TrainState::Finished | TrainState::Failed | TrainState::Cancelled
    )
}

/// Prints events until the train ends; reconnects (1 s → 30 s) resume after the last event.
async fn follow(client: &Client, id: &TrainId, mut last: i64) -> Result<TrainView> {
    let mut pause = Duration::from_secs(1);
    loop {
        match client.train_events(id, last).await {
            Ok(mut s) => loop {
                match s.next().await {
                    Ok(e) => {
                        last = s.last_id();
                        print_event(&e);
                        pause = Duration::from_secs(1);
                        if matches!(
                            e.kind,
                            EventKind::Finished
                                | EventKind::Failed
                                | EventKind::Cancelled
                                | EventKind::Rejected
                                | EventKind::Expired
                        ) {
                            let v = client.train(id).await?;
                            if ended(v.state) {
                                return Ok(v);
                            }
                        }
                    }
                    Err(e) => {
                        eprintln!("  (feed: {e}; reconnecting)");
                        break;
                    }
                }
            },
            Err(e) if e.transient() => eprintln!("  ({e}; retrying in {} s)", pause.as_secs()),
            Err(e) => return Err(e.into()),
        }
        // The train may have ended while the feed was down.
        if let Ok(v) = client.train(id).await {
            if ended(v.state) {
                return Ok(v);
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(30));
    }
}

fn clock(ms: i64) -> String {
    let s = (ms / 1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn print_event(e: &EventView) {
    pht_term::outln!(
        "  {} UTC  {:<18} {}",
        clock(e.at),
        e.kind,
        escape(&e.detail)
    );
}

fn hop_word(h: HopState) -> &'static str {
    match h {
        HopState::WaitingPush => "waiting for the previous stop",
        HopState::Detected | HopState::Copying => "moving",
        HopState::Delivered => "delivered",
        HopState::AwaitingApproval => "waiting for approval",
        HopState::Approved => "approved",
        HopState::Running => "running",
        HopState::Done => "done",
        HopState::Failed => "FAILED",
        HopState::Cancelled => "cancelled",
        HopState::Expired => "EXPIRED",
    }
}

fn print_view(v: &TrainView) {
    pht_term::outln!(
        "train {} ({}, by {}): {}",
        v.id,
        v.format,
        v.creator,
        v.state
    );
    for h in &v.hops {
        let here = if v.current_hop == Some(h.index) {
            "→"
        } else {
            " "
        };
        let who = h
            .station
            .as_ref()
            .map_or_else(|| format!("{} (results)", v.creator), |s| s.to_string());
        let mut line = format!(
            " {here} {}. {:<20} {}",
            h.index + 1,
            escape(&who),
            hop_word(h.state)
        );
        if h.attempts > 1 {
            line.push_str(&format!(" (attempt {})", h.attempts));
        }
        if let Some(e) = &h.last_error {
            if matches!(h.state, HopState::Failed | HopState::Expired) {
                line.push_str(&format!(": {}", escape(e)));
            }
        }
        pht_term::outln!("{line}");
    }
    if let Some(r) = &v.reason {
        pht_term::outln!("   reason: {}", escape(r));
    }
    if let Some(r) = &v.results {
        pht_term::outln!("   results: {r}");
    }
}
