//! `station queue`: the trains waiting for this station's approval, from the route service,
//! with what the watcher read of each (entrypoint, files, signature problems).

use super::service::Ctx;
use super::Ended;
use crate::cli::QueueArgs;
use anyhow::Result;
use route_wire::HopState;
use serde_json::json;
use station::output::escape;
use station::watch::plan::Item;
use station::watch::State;
use std::time::Duration;

/// Prints the queue.
pub async fn run(a: QueueArgs) -> Result<Ended> {
    let ctx = Ctx::load(&a.service)?;
    let inbox = ctx.client()?.inbox(&ctx.station, Duration::ZERO).await?;
    // Read beside a running watcher (no lock taken); nothing yet if it has not looked.
    let inspected = State::peek(&ctx.cfg.watch.state_dir).unwrap_or_default();
    let waiting: Vec<Item> = inbox
        .items
        .into_iter()
        .filter(|i| i.state == HopState::AwaitingApproval)
        .filter_map(|i| {
            Item::parse(i, &ctx.cfg.watch.registries)
                .map_err(|e| eprintln!("skipped: {e}"))
                .ok()
        })
        .collect();
    let inspection = |i: &Item| {
        inspected
            .iter()
            .find(|(t, x)| i.train() == t && x.digest == i.digest)
            .map(|(_, x)| x)
    };
    if a.json {
        let v: Vec<_> = waiting
            .iter()
            .map(|i| {
                let r = &i.raw;
                json!({"train": r.train, "creator": r.creator, "format": r.format, "route": r.route,
                       "stop": r.index, "image": r.image,
                       "inspection": inspection(i)})
            })
            .collect();
        pht_term::outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(Ended::Ok);
    }
    if waiting.is_empty() {
        pht_term::outln!("no train waits for approval at {}", ctx.station);
        return Ok(Ended::Ok);
    }
    for i in &waiting {
        let r = &i.raw;
        pht_term::outln!(
            "train {}  (creator {}, {} format)",
            r.train,
            r.creator,
            r.format
        );
        let route: Vec<&str> = r.route.iter().map(|s| s.as_str()).collect();
        pht_term::outln!(
            "  route:      {} (this is stop {})",
            route.join(" → "),
            r.index + 1
        );
        pht_term::outln!("  image:      {}", i.image);
        match inspection(i) {
            Some(x) => {
                pht_term::outln!(
                    "  entrypoint: {}",
                    escape(x.entrypoint.as_deref().unwrap_or("(none recorded)"))
                );
                pht_term::outln!("  files to review ({}):", x.files.len());
                for (f, size) in &x.files {
                    pht_term::outln!("    {} ({size} bytes, encrypted in the image)", escape(f));
                }
                for p in &x.problems {
                    pht_term::outln!("  PROBLEM:    {}", escape(p));
                }
            }
            None => pht_term::outln!(
                "  (not read yet: `station watch` reads waiting trains for review)"
            ),
        }
        pht_term::outln!(
            "  decide:     station approve {0}   |   station reject {0} --reason \"…\"",
            r.train
        );
    }
    Ok(Ended::Ok)
}
