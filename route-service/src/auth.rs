//! API keys: random 256-bit tokens, printed once at creation and stored only as a keyed
//! SHA-256 (a key is high-entropy, so a slow password hash buys nothing), compared in
//! constant time. A request names its principal: `Authorization: ApiKey <id> <key>`.

use aws_lc_rs::{digest, rand::SecureRandom};
use base64::Engine;
use route_wire::{PrincipalId, Role, API_KEY_SCHEME};

/// Why a request is not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("no Authorization header; send `Authorization: ApiKey <your-id> <your-key>`")]
    Missing,
    /// Not `ApiKey <id> <key>`.
    #[error("the Authorization header is not `ApiKey <id> <key>`")]
    Malformed,
    /// Unknown principal or wrong key (one message for both: no principal enumeration).
    #[error("unknown principal or wrong API key; ask an admin for a new key (`route-service station rotate-key`)")]
    Unknown,
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Its id.
    pub id: PrincipalId,
    /// Its role.
    pub role: Role,
}

/// A new API key: 32 random bytes, URL-safe base64 with a `pht_` prefix (so that secret
/// scanners can find leaked ones).
pub fn new_key() -> String {
    let mut b = [0u8; 32];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("the system RNG works");
    format!(
        "pht_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    )
}

/// The stored form of `key` for principal `id`: SHA-256 over a domain tag, the id and the key,
/// so a hash copied to another principal's row does not verify.
pub fn key_hash(id: &str, key: &str) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"pht-route-service api-key v1\0");
    ctx.update(id.as_bytes());
    ctx.update(b"\0");
    ctx.update(key.as_bytes());
    format!("sha256:{}", hex::encode(ctx.finish().as_ref()))
}

/// Whether `key` matches `stored`, in time independent of where they differ.
pub fn key_matches(id: &str, key: &str, stored: &str) -> bool {
    let h = key_hash(id, key);
    h.len() == stored.len() && constant_eq(h.as_bytes(), stored.as_bytes())
}

/// Constant-time equality of two byte strings of equal length (false for unequal lengths).
pub fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Splits `ApiKey <id> <key>`.
pub fn parse_header(value: Option<&str>) -> Result<(&str, &str), AuthError> {
    let v = value.ok_or(AuthError::Missing)?;
    let mut parts = v.split_ascii_whitespace();
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(s), Some(id), Some(key), None) if s == API_KEY_SCHEME => Ok((id, key)),
        _ => Err(AuthError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_verifies_only_for_its_principal() {
        let k = new_key();
        assert!(k.len() >= 4 + 43, "{k}");
        let h = key_hash("st-1", &k);
        assert!(key_matches("st-1", &k, &h));
        assert!(!key_matches("st-2", &k, &h));
        assert!(!key_matches("st-1", &new_key(), &h));
        assert!(!key_matches("st-1", &k, "removed"));
        assert_ne!(new_key(), k);
    }

    #[test]
    fn headers_other_than_apikey_id_key_are_refused() {
        assert_eq!(parse_header(Some("ApiKey a b")), Ok(("a", "b")));
        assert_eq!(parse_header(None), Err(AuthError::Missing));
        for bad in ["Bearer a b", "ApiKey a", "ApiKey a b c", "apikey a b"] {
            assert_eq!(parse_header(Some(bad)), Err(AuthError::Malformed), "{bad}");
        }
    }
}
