//! Decoding the text fields of a legacy configuration (the native one decodes its own, typed,
//! when it is parsed: `native::fields`).

use crate::error::Rejection;
use crate::keys::PublicKey;

/// Decodes a hex field of the configuration, naming it in the error. Only lowercase is
/// accepted (both formats write it): otherwise a byte of the file could change (`a` → `A`)
/// while every signature still verifies.
pub(crate) fn unhex(field: &str, v: &str) -> std::result::Result<Vec<u8>, Rejection> {
    if v.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(Rejection::ConfigSchema(format!(
            "{field} must be lowercase hex"
        )));
    }
    hex::decode(v).map_err(|_| Rejection::ConfigSchema(format!("{field} is not hex")))
}

/// Decodes a hex field that must hold exactly `n` bytes.
pub(crate) fn unhex_n(field: &str, v: &str, n: usize) -> std::result::Result<Vec<u8>, Rejection> {
    let b = unhex(field, v)?;
    if b.len() != n {
        return Err(Rejection::ConfigSchema(format!(
            "{field} must be {n} bytes, is {}",
            b.len()
        )));
    }
    Ok(b)
}

/// Parses a public key field (PEM, or hex of PEM).
pub(crate) fn parse_key(field: &str, v: &str) -> std::result::Result<PublicKey, Rejection> {
    crate::keys::public_key_from_text(v.as_bytes(), field)
        .map_err(|e| Rejection::ConfigSchema(e.to_string()))
}
