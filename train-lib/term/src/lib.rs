//! Terminal output for the binaries, `train`, `station` and `route-service` (only binaries
//! depend on this crate): progress bars on stderr for pulls and pushes, hidden when stderr is
//! not a terminal, the logging set-up they share, and standard output that a reader closing
//! it early (`| head`) does not crash ([`out`]).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod out;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use train_image::{Progress, Reporter};

/// Bars drawn with `indicatif`.
#[derive(Clone)]
pub struct Bars {
    multi: MultiProgress,
}

impl Default for Bars {
    fn default() -> Self {
        Self {
            multi: MultiProgress::new(),
        }
    }
}

struct Bar(ProgressBar);

impl Progress for Bar {
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
    fn finish(&self) {
        self.0.finish();
    }
    fn clone_box(&self) -> Box<dyn Progress> {
        Box::new(Bar(self.0.clone()))
    }
}

impl Reporter for Bars {
    fn task(&self, what: &str, total: u64) -> Box<dyn Progress> {
        // A size not known in advance (a layer written while it is pushed) gets a spinner.
        let (pb, template) = if total == 0 {
            (
                ProgressBar::new_spinner(),
                "{spinner} {msg:26} {bytes:>10} {binary_bytes_per_sec:>12} {elapsed}",
            )
        } else {
            (
                ProgressBar::new(total),
                "{msg:28} {bar:30} {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} {eta}",
            )
        };
        let pb = self.multi.add(pb);
        pb.set_style(ProgressStyle::with_template(template).expect("valid template"));
        pb.set_message(what.to_string());
        Box::new(Bar(pb))
    }
}

/// Logging for the binaries, set up the one way: to stderr, filtered by `RUST_LOG` (else
/// `default_filter`), with colour codes only on a terminal, so that logs in files and journals
/// stay plain text.
pub fn init_logging(default_filter: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                // The TLS verifier logs a refused certificate at ERROR in its own words; the
                // error that follows says it with what to do (`train_lib::net::explain`).
                format!("{default_filter},rustls_platform_verifier=off").into()
            }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
