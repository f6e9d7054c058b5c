//! One file per subcommand.

pub mod audit_verify;
pub mod decide;
pub mod doctor;
pub mod engine;
pub mod k8s;
pub mod keys;
pub mod queue;
pub mod run;
pub mod service;
pub mod trust;
pub mod watch;

use station::run::Decision;
use tokio_util::sync::CancellationToken;

/// What a command ended with: success, or a decision and its message.
pub enum Ended {
    /// Exit 0.
    Ok,
    /// The decision (its exit code) and what to print.
    Failed(Decision, String),
}

/// A private key, its password from the variable named `password_env`.
pub fn load_key(
    path: &std::path::Path,
    password_env: Option<&str>,
) -> anyhow::Result<train_lib::keys::PrivateKey> {
    Ok(train_lib::keys::PrivateKey::from_file_with_password_env(
        path,
        password_env,
    )?)
}

/// Cancels `cancel` at the first SIGINT or SIGTERM; exits at the second.
pub async fn on_signals(cancel: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    let mut seen = 0;
    loop {
        let sig = tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        seen += 1;
        if seen == 1 {
            eprintln!("{sig}: stopping; removing the container and the decrypted train first …");
            cancel.cancel();
        } else {
            eprintln!(
                "{sig} again: exiting now; the next start of the station removes what is left"
            );
            std::process::exit(1);
        }
    }
}
