//! PEM and hex-of-PEM decoding, PKCS#1 public key wrapping, encrypted PKCS#8.

use super::{KeyError, PublicKey};
use pkcs8::der::pem::{self, LineEnding};
use zeroize::Zeroizing;

/// Accepts PEM text, or the lowercase/uppercase hex of PEM text (configs and
/// `RSA_STATION_PRIVATE_KEY` carry keys that way). Returns the label and the DER.
pub(super) fn decode_pem_or_hex(
    text: &[u8],
    what: &str,
) -> Result<(String, Zeroizing<Vec<u8>>), KeyError> {
    let trimmed = trim_ascii(text);
    let unhexed;
    let pem_text: &[u8] = if !trimmed.is_empty() && trimmed.iter().all(u8::is_ascii_hexdigit) {
        unhexed = Zeroizing::new(hex::decode(trimmed).map_err(|e| KeyError::Format {
            what: what.into(),
            detail: format!("looks like hex but does not decode ({e})"),
        })?);
        trim_ascii(&unhexed)
    } else {
        trimmed
    };
    if !pem_text.starts_with(b"-----BEGIN ") {
        return Err(KeyError::Format {
            what: what.into(),
            detail: "expected a PEM block (-----BEGIN ...) or hex of one".into(),
        });
    }
    if pem_text.windows(10).any(|w| w == b"Proc-Type:") {
        return Err(KeyError::Format {
            what: what.into(),
            detail: "legacy OpenSSL-encrypted PEM is not supported; convert it with \
                     `openssl pkcs8 -topk8 -v2 aes-256-cbc`"
                .into(),
        });
    }
    // pem-rfc7468 is strict about line endings at the end; normalise to one trailing newline.
    let mut owned = Zeroizing::new(pem_text.to_vec());
    owned.push(b'\n');
    let (label, der) = pem::decode_vec(&owned).map_err(|e| KeyError::Format {
        what: what.into(),
        detail: format!("malformed PEM ({e})"),
    })?;
    Ok((label.to_string(), Zeroizing::new(der)))
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

/// Decrypts an `ENCRYPTED PRIVATE KEY` (PBES2) into PKCS#8 DER.
pub(super) fn decrypt_pkcs8(
    der: &[u8],
    password: &[u8],
    what: &str,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der).map_err(|e| KeyError::Format {
        what: what.into(),
        detail: format!("malformed encrypted PKCS#8 ({e})"),
    })?;
    let doc = info.decrypt(password).map_err(|e| KeyError::Password {
        what: what.into(),
        detail: format!("decryption failed, wrong password? ({e})"),
    })?;
    Ok(Zeroizing::new(doc.as_bytes().to_vec()))
}

/// Loads a public key from PEM text or hex of PEM text (configs carry keys that way): SPKI
/// (`PUBLIC KEY`) or PKCS#1 (`RSA PUBLIC KEY`). Exported as `keys::public_key_from_text`.
pub fn decode_public_key_text(text: &[u8], what: &str) -> Result<PublicKey, KeyError> {
    let (label, der) = decode_pem_or_hex(text, what)?;
    let spki = match label.as_str() {
        "PUBLIC KEY" => der.to_vec(),
        "RSA PUBLIC KEY" => pkcs1_public_to_spki(&der),
        other => {
            return Err(KeyError::Format {
                what: what.into(),
                detail: format!("PEM label `{other}` is not a public key"),
            })
        }
    };
    PublicKey::from_spki_der(&spki).map_err(|_| KeyError::Format {
        what: what.into(),
        detail: "not an RSA public key".into(),
    })
}

/// SubjectPublicKeyInfo { AlgorithmIdentifier { rsaEncryption, NULL }, BIT STRING { RSAPublicKey } }.
fn pkcs1_public_to_spki(pkcs1: &[u8]) -> Vec<u8> {
    const ALG_ID: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bit_string = vec![0x00];
    bit_string.extend_from_slice(pkcs1);
    let mut body = ALG_ID.to_vec();
    body.extend(der_tlv(0x03, &bit_string));
    der_tlv(0x30, &body)
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// SPKI DER as `BEGIN PUBLIC KEY` PEM text.
pub fn encode_public_pem(spki: &[u8]) -> String {
    pem::encode_string("PUBLIC KEY", LineEnding::LF, spki).expect("PEM encoding of DER")
}

/// PKCS#8 DER as `BEGIN PRIVATE KEY` PEM text, wiped on drop.
pub fn encode_private_pkcs8_pem(der: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(pem::encode_string("PRIVATE KEY", LineEnding::LF, der).expect("PEM encoding"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkcs1_public_key_is_wrapped_into_the_same_spki() {
        let key = crate::keys::PrivateKey::generate(2048).unwrap();
        let spki = key.public().spki_der();
        // SPKI = SEQ { algid(15) , BIT STRING { 0, RSAPublicKey } }: peel it to get PKCS#1.
        let (hdr, rest) = spki.split_at(4);
        assert_eq!(hdr[0], 0x30);
        let bit = &rest[15..];
        let inner = &bit[5..];
        assert_eq!(pkcs1_public_to_spki(inner), spki);
        let pem = pem::encode_string("RSA PUBLIC KEY", LineEnding::LF, inner).unwrap();
        let back = decode_public_key_text(pem.as_bytes(), "test").unwrap();
        assert_eq!(back.spki_der(), spki);
        let hexed = hex::encode(pem.as_bytes());
        assert_eq!(
            decode_public_key_text(hexed.as_bytes(), "t")
                .unwrap()
                .spki_der(),
            spki
        );
    }

    #[test]
    fn rejects_garbage_and_private_labels_as_public() {
        assert!(matches!(
            decode_public_key_text(b"hello", "t"),
            Err(KeyError::Format { .. })
        ));
        let key = crate::keys::PrivateKey::generate(2048).unwrap();
        let pem = key.to_pkcs8_pem().unwrap();
        assert!(matches!(
            decode_public_key_text(pem.as_bytes(), "t"),
            Err(KeyError::Format { .. })
        ));
    }
}
