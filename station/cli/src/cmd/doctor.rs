//! `station doctor`: prints one line per precondition; exit 0 only when none failed.

use super::Ended;
use crate::cli::DoctorArgs;
use anyhow::Result;
use station::config::StationConfig;
use station::doctor::{diagnose, Inputs, Outcome};
use station::output::escape;

const WIDTH: usize = 20;

/// One check's line; a text of several lines (a TOML error with its caret) continues indented
/// under it.
fn line(mark: &str, name: &str, text: &str) {
    let indent = format!("\n{:<5} {:<WIDTH$} ", "", "");
    let text = escape(text.trim_end()).replace('\n', &indent);
    pht_term::outln!("{mark:<5} {name:<WIDTH$} {text}");
}

/// The cluster's checks, in place of the Docker host's.
#[cfg(feature = "kubernetes")]
async fn cluster(cfg: &StationConfig) -> Vec<station::doctor::Check> {
    station_k8s::doctor::checks(cfg.engine.kubernetes.as_ref()).await
}

#[cfg(not(feature = "kubernetes"))]
async fn cluster(_: &StationConfig) -> Vec<station::doctor::Check> {
    vec![station::doctor::Check::failed(
        "kubernetes",
        "[engine] kind = \"kubernetes\", but this station binary was built without the Kubernetes engine",
        "build it with `cargo build --release -p station-cli --features kubernetes`",
    )]
}

/// Runs the checks and prints them.
pub async fn run(a: DoctorArgs) -> Result<Ended> {
    let cfg = match StationConfig::load(&a.config) {
        Ok(c) => c,
        Err(e) => {
            line("FAIL", "configuration", &e.to_string());
            pht_term::outln!(
                "{:<5} {:<WIDTH$} → fix the file, then run station doctor again",
                "",
                ""
            );
            anyhow::bail!("the configuration {} does not load", a.config.display());
        }
    };
    line(
        "ok",
        "configuration",
        &format!(
            "{} (station {})",
            a.config.display(),
            cfg.station.id.as_deref().unwrap_or("without an id")
        ),
    );
    let tmp = std::env::temp_dir();
    let mut checks = diagnose(&Inputs { cfg: &cfg, tmp }).await;
    if cfg.engine.kind == station::config::EngineKind::Kubernetes {
        checks.extend(cluster(&cfg).await);
    }
    let mut failed = 0;
    for c in &checks {
        match &c.outcome {
            Outcome::Ok(found) => line("ok", c.name, found),
            Outcome::Skipped(why) => line("skip", c.name, why),
            Outcome::Failed { problem, fix } => {
                failed += 1;
                line("FAIL", c.name, problem);
                pht_term::outln!("{:<5} {:<WIDTH$} → {}", "", "", escape(fix));
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} checks failed", checks.len() + 1);
    }
    pht_term::outln!("all {} checks passed", checks.len() + 1);
    Ok(Ended::Ok)
}
