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
    println!("{mark:<5} {name:<WIDTH$} {text}");
}

/// Runs the checks and prints them.
pub async fn run(a: DoctorArgs) -> Result<Ended> {
    let cfg = match StationConfig::load(&a.config) {
        Ok(c) => c,
        Err(e) => {
            line("FAIL", "configuration", &e.to_string());
            println!(
                "{:<5} {:<WIDTH$} → fix the file, then run station doctor again",
                "", ""
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
    let checks = diagnose(&Inputs { cfg: &cfg, tmp }).await;
    let mut failed = 0;
    for c in &checks {
        match &c.outcome {
            Outcome::Ok(found) => line("ok", c.name, found),
            Outcome::Skipped(why) => line("skip", c.name, why),
            Outcome::Failed { problem, fix } => {
                failed += 1;
                line("FAIL", c.name, problem);
                println!("{:<5} {:<WIDTH$} → {}", "", "", escape(fix));
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} checks failed", checks.len() + 1);
    }
    println!("all {} checks passed", checks.len() + 1);
    Ok(Ended::Ok)
}
