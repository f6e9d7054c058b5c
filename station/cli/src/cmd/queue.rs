//! `station queue`: the trains waiting for this station's approval, from the route service,
//! with what the watcher read of each (entrypoint, files, signature problems).

use super::service::Ctx;
use super::Ended;
use crate::cli::QueueArgs;
use anyhow::Result;
use route_wire::HopState;
use serde_json::json;
use station::output::escape;
use station::watch::State;
use std::time::Duration;

/// Prints the queue.
pub async fn run(a: QueueArgs) -> Result<Ended> {
    let ctx = Ctx::load(&a.service)?;
    let inbox = ctx.client()?.inbox(&ctx.station, Duration::ZERO).await?;
    // Read beside a running watcher (no lock taken); nothing yet if it has not looked.
    let inspected = State::peek(&ctx.cfg.watch.state_dir).unwrap_or_default();
    let waiting: Vec<_> = inbox
        .items
        .iter()
        .filter(|i| i.state == HopState::AwaitingApproval)
        .collect();
    if a.json {
        let v: Vec<_> = waiting
            .iter()
            .map(|i| {
                let d = i.digest();
                let insp = inspected
                    .iter()
                    .find(|(t, x)| *t == i.train && x.digest == d);
                json!({"train": i.train, "creator": i.creator, "format": i.format, "route": i.route,
                       "stop": i.index, "image": i.image,
                       "inspection": insp.map(|(_, x)| x)})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(Ended::Ok);
    }
    if waiting.is_empty() {
        println!("no train waits for approval at {}", ctx.station);
        return Ok(Ended::Ok);
    }
    for i in waiting {
        let d = i.digest();
        println!(
            "train {}  (creator {}, {} format)",
            i.train, i.creator, i.format
        );
        println!(
            "  route:      {} (this is stop {})",
            i.route.join(" → "),
            i.index + 1
        );
        println!("  image:      {}", i.image);
        match inspected
            .iter()
            .find(|(t, x)| *t == i.train && x.digest == d)
        {
            Some((_, x)) => {
                println!(
                    "  entrypoint: {}",
                    escape(x.entrypoint.as_deref().unwrap_or("(none recorded)"))
                );
                println!("  files to review ({}):", x.files.len());
                for (f, size) in &x.files {
                    println!("    {} ({size} bytes, encrypted in the image)", escape(f));
                }
                for p in &x.problems {
                    println!("  PROBLEM:    {}", escape(p));
                }
            }
            None => println!("  (not read yet: `station watch` reads waiting trains for review)"),
        }
        println!(
            "  decide:     station approve {0}   |   station reject {0} --reason \"…\"",
            i.train
        );
    }
    Ok(Ended::Ok)
}
