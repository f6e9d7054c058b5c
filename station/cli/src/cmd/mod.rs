//! One file per subcommand.

pub mod audit_verify;
pub mod run;

use station::run::Decision;

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
