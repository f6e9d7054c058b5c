//! The CA certificates `--ca-file` names, read once at start and used by every client the
//! command makes (route service, registries, token realms).

use anyhow::Context;

/// The CA certificates of `--ca-file`, read once at start ([`load_ca_file`]).
static CA_CERTS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();

/// Reads `--ca-file` (if given) before any command runs: a bad file fails at once, with its
/// name, not at the first connection.
pub fn load_ca_file(path: Option<&std::path::Path>) -> anyhow::Result<()> {
    let certs = match path {
        Some(p) => train_lib::net::read_ca_file(p).context("--ca-file")?,
        None => Vec::new(),
    };
    let _ = CA_CERTS.set(certs);
    Ok(())
}

/// The certificates `--ca-file` named (none without it).
pub fn ca_certs() -> Vec<Vec<u8>> {
    CA_CERTS.get().cloned().unwrap_or_default()
}
