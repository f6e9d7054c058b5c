//! `station approve` and `station reject`: the operator's decision on a waiting train. They go
//! straight to the route service, so they work whether or not `station watch` runs.

use super::service::Ctx;
use super::Ended;
use crate::cli::DecideArgs;
use anyhow::{bail, Result};

/// Approves (`approve`) or rejects `a.train`.
pub async fn run(a: DecideArgs, approve: bool) -> Result<Ended> {
    let ctx = Ctx::load(&a.service)?;
    if !approve && a.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        bail!("a rejection needs --reason \"…\": the train's creator sees it");
    }
    let v = ctx
        .client()?
        .decide(&a.train, approve, a.reason.clone())
        .await?;
    pht_term::outln!(
        "train {} {} at {}; it is now {}",
        a.train,
        if approve { "approved" } else { "rejected" },
        ctx.station,
        v.state
    );
    Ok(Ended::Ok)
}
