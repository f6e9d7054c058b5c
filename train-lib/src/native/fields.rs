//! The typed fields of a native configuration: bytes written as lowercase hex and public keys
//! written as SPKI PEM, decoded once when the configuration is parsed and serialised back to
//! exactly the text they came from (the configuration must be its own canonical form, so any
//! other spelling of the same value is refused as `NonCanonicalConfig`).
//!
//! Hex must be lowercase: otherwise a byte of the file could change (`a` → `A`) while every
//! signature still verified.

use crate::keys::{public_key_from_text, PublicKey};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

fn decode_hex<E: serde::de::Error>(s: &str) -> Result<Vec<u8>, E> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(E::custom("hex must be lowercase"));
    }
    hex::decode(s).map_err(|_| E::custom(format!("`{}` is not hex", s.escape_debug())))
}

/// Exactly `N` bytes, as `2N` lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hex<const N: usize>(pub [u8; N]);

impl<const N: usize> fmt::Debug for Hex<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl<const N: usize> Serialize for Hex<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de, const N: usize> Deserialize<'de> for Hex<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let v = decode_hex::<D::Error>(&s)?;
        let n = v.len();
        v.try_into()
            .map(Hex)
            .map_err(|_| D::Error::custom(format!("must be {N} bytes, is {n}")))
    }
}

/// Any number of bytes (a signature, a wrapped key), as lowercase hex.
#[derive(Clone, PartialEq, Eq)]
pub struct HexBytes(pub Vec<u8>);

impl fmt::Debug for HexBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl Serialize for HexBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        decode_hex::<D::Error>(&s).map(HexBytes)
    }
}

/// A SHA-256 that a directory entry does not have: `""` for none.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MaybeHash(pub Option<[u8; 32]>);

impl fmt::Debug for MaybeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.map(hex::encode).unwrap_or_default())
    }
}

impl Serialize for MaybeHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.map(hex::encode).unwrap_or_default())
    }
}

impl<'de> Deserialize<'de> for MaybeHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() {
            return Ok(MaybeHash(None));
        }
        let v = decode_hex::<D::Error>(&s)?;
        let n = v.len();
        v.try_into()
            .map(|a| MaybeHash(Some(a)))
            .map_err(|_| D::Error::custom(format!("must be 32 bytes, is {n}")))
    }
}

/// A public key, as SPKI PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct Pem(pub PublicKey);

impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.fingerprint())
    }
}

impl Serialize for Pem {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_pem())
    }
}

impl<'de> Deserialize<'de> for Pem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        public_key_from_text(s.as_bytes(), "public key")
            .map(Pem)
            .map_err(|e| D::Error::custom(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_and_sized() {
        let h: Hex<2> = serde_json::from_str("\"ab01\"").unwrap();
        assert_eq!(h.0, [0xab, 1]);
        assert_eq!(serde_json::to_string(&h).unwrap(), "\"ab01\"");
        let e = serde_json::from_str::<Hex<2>>("\"AB01\"").unwrap_err();
        assert!(e.to_string().contains("lowercase"), "{e}");
        let e = serde_json::from_str::<Hex<2>>("\"ab\"").unwrap_err();
        assert!(e.to_string().contains("must be 2 bytes"), "{e}");
        let m: MaybeHash = serde_json::from_str("\"\"").unwrap();
        assert_eq!(m.0, None);
        assert_eq!(serde_json::to_string(&m).unwrap(), "\"\"");
    }
}
