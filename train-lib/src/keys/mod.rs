//! RSA keys: loading every encoding the PHT ecosystem uses, fingerprints, and the RSA operations
//! both formats need. Private key material never leaves this module in plaintext form except
//! through aws-lc-rs handles, and `Debug` never prints it.

mod pem;
mod trust;

pub use pem::{
    decode_public_key_text as public_key_from_text, encode_private_pkcs8_pem, encode_public_pem,
};
pub use trust::{KeyRole, TrustError, TrustStore};

use aws_lc_rs::digest;
use aws_lc_rs::rsa::{
    KeyPair, KeySize, OaepAlgorithm, OaepPrivateDecryptingKey, OaepPublicEncryptingKey,
    PrivateDecryptingKey, PublicEncryptingKey,
};
use aws_lc_rs::signature::{self, KeyPair as _, RsaPssSaltLength, UnparsedPublicKey};
use std::fmt;
use std::path::Path;
use zeroize::Zeroizing;

/// Errors from loading or using keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key file could not be read.
    #[error("cannot read key file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The text is not a PEM (or hex-wrapped PEM) key of a supported kind.
    #[error("{what} is not a supported key: {detail}")]
    Format {
        /// Where the key came from.
        what: String,
        /// What is wrong.
        detail: String,
    },
    /// The key is encrypted and no password was given, or the password is wrong.
    #[error("{what} is an encrypted PKCS#8 key: {detail} (pass the password with --key-password-env VAR)")]
    Password {
        /// Where the key came from.
        what: String,
        /// What is wrong.
        detail: String,
    },
    /// The variable that should hold a key's password is not set.
    #[error("key password variable {0} is not set")]
    PasswordVariable(String),
    /// RSA key generation or an RSA operation failed.
    #[error("RSA operation failed: {0}")]
    Crypto(&'static str),
}

/// The password in the variable `var`, if one is named (kept in zeroized memory).
fn password_from_env(var: Option<&str>) -> Result<Option<Zeroizing<Vec<u8>>>, KeyError> {
    var.map(|v| {
        std::env::var(v)
            .map(|p| Zeroizing::new(p.into_bytes()))
            .map_err(|_| KeyError::PasswordVariable(v.to_string()))
    })
    .transpose()
}

/// An RSA public key, held as its SubjectPublicKeyInfo DER.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    spki: Vec<u8>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

/// Length in bytes of every symmetric key (AES-256).
pub const SYM_KEY_LEN: usize = 32;

/// A 256-bit symmetric key that is wiped from memory when dropped.
pub type SymKey = Zeroizing<[u8; SYM_KEY_LEN]>;

/// Draws a fresh random symmetric key from aws-lc's generator, which this workspace builds to be
/// seeded by the kernel (`.cargo/config.toml`).
pub fn random_sym_key() -> SymKey {
    let mut k = Zeroizing::new([0u8; SYM_KEY_LEN]);
    aws_lc_rs::rand::fill(&mut k[..]).expect("system RNG");
    k
}

/// Random bytes from the system RNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    aws_lc_rs::rand::fill(&mut b).expect("system RNG");
    b
}

impl PublicKey {
    /// Builds a key from SPKI DER, checking that it parses as RSA.
    pub fn from_spki_der(spki: &[u8]) -> Result<Self, KeyError> {
        PublicEncryptingKey::from_der(spki).map_err(|e| KeyError::Format {
            what: "public key".into(),
            detail: format!("not an RSA SubjectPublicKeyInfo ({e})"),
        })?;
        Ok(Self {
            spki: spki.to_vec(),
        })
    }

    /// The SPKI DER bytes.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// `sha256:` followed by the hex SHA-256 of the SPKI DER: the name of this key in native trains.
    pub fn fingerprint(&self) -> String {
        format!(
            "sha256:{}",
            hex::encode(digest::digest(&digest::SHA256, &self.spki))
        )
    }

    /// The key as SPKI PEM text (`BEGIN PUBLIC KEY`).
    pub fn to_pem(&self) -> String {
        encode_public_pem(&self.spki)
    }

    /// Wraps a symmetric key with RSA-OAEP.
    pub fn oaep_wrap(
        &self,
        alg: &'static OaepAlgorithm,
        key: &[u8],
        label: Option<&[u8]>,
    ) -> Result<Vec<u8>, KeyError> {
        let pk = PublicEncryptingKey::from_der(&self.spki)
            .map_err(|_| KeyError::Crypto("public key"))?;
        let oaep = OaepPublicEncryptingKey::new(pk).map_err(|_| KeyError::Crypto("OAEP key"))?;
        let mut out = vec![0u8; oaep.ciphertext_size()];
        let n = oaep
            .encrypt(alg, key, &mut out, label)
            .map_err(|_| KeyError::Crypto("OAEP encrypt"))?
            .len();
        out.truncate(n);
        Ok(out)
    }

    /// Verifies an RSA PKCS#1 v1.5 signature with SHA-512 over `msg`.
    pub fn verify_pkcs1_sha512(&self, msg: &[u8], sig: &[u8]) -> bool {
        UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA512, &self.spki)
            .verify(msg, sig)
            .is_ok()
    }

    /// Verifies an RSA-PSS (MGF1-SHA-512, maximum salt) signature over a 64-byte value taken as a
    /// prehashed SHA-512 digest, as PHT-meDIC signs results and route stops.
    pub fn verify_pss_prehashed_sha512(&self, digest64: &[u8], sig: &[u8]) -> bool {
        static PSS_MAX: signature::RsaParameters =
            signature::RSA_PSS_2048_8192_SHA512.with_pss_salt_length(RsaPssSaltLength::Max);
        let Ok(d) = digest::Digest::import_less_safe(digest64, &digest::SHA512) else {
            return false;
        };
        UnparsedPublicKey::new(&PSS_MAX, &self.spki)
            .verify_digest(&d, sig)
            .is_ok()
    }

    /// Verifies an RSA-PSS SHA-256 (salt = 32) signature over `msg`: the native format's signature.
    pub fn verify_pss_sha256(&self, msg: &[u8], sig: &[u8]) -> bool {
        UnparsedPublicKey::new(&signature::RSA_PSS_2048_8192_SHA256, &self.spki)
            .verify(msg, sig)
            .is_ok()
    }
}

/// An RSA private key. `Debug` shows only the public fingerprint.
pub struct PrivateKey {
    pair: KeyPair,
    decrypt: OaepPrivateDecryptingKey,
    public: PublicKey,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PrivateKey(<redacted>, public {})",
            self.public.fingerprint()
        )
    }
}

impl PrivateKey {
    fn from_pkcs8_der(der: &[u8], what: &str) -> Result<Self, KeyError> {
        let pair = KeyPair::from_pkcs8(der).map_err(|e| KeyError::Format {
            what: what.into(),
            detail: format!("PKCS#8 RSA key rejected ({e})"),
        })?;
        Self::from_pair(pair, what)
    }

    fn from_pkcs1_der(der: &[u8], what: &str) -> Result<Self, KeyError> {
        let pair = KeyPair::from_der(der).map_err(|e| KeyError::Format {
            what: what.into(),
            detail: format!("PKCS#1 RSA key rejected ({e})"),
        })?;
        Self::from_pair(pair, what)
    }

    fn from_pair(pair: KeyPair, what: &str) -> Result<Self, KeyError> {
        use aws_lc_rs::encoding::AsDer;
        let pkcs8 = pair
            .as_der()
            .map_err(|_| KeyError::Crypto("export PKCS#8"))?;
        let dec =
            PrivateDecryptingKey::from_pkcs8(pkcs8.as_ref()).map_err(|e| KeyError::Format {
                what: what.into(),
                detail: format!("key cannot decrypt ({e})"),
            })?;
        let decrypt =
            OaepPrivateDecryptingKey::new(dec).map_err(|_| KeyError::Crypto("OAEP key"))?;
        let spki = pair
            .public_key()
            .as_der()
            .map_err(|_| KeyError::Crypto("export SPKI"))?;
        let public = PublicKey {
            spki: spki.as_ref().to_vec(),
        };
        Ok(Self {
            pair,
            decrypt,
            public,
        })
    }

    /// Generates a new key of `bits` (2048, 3072 or 4096).
    pub fn generate(bits: usize) -> Result<Self, KeyError> {
        let size = match bits {
            2048 => KeySize::Rsa2048,
            3072 => KeySize::Rsa3072,
            4096 => KeySize::Rsa4096,
            _ => {
                return Err(KeyError::Format {
                    what: format!("--bits {bits}"),
                    detail: "key size must be 2048, 3072 or 4096".into(),
                })
            }
        };
        let pair = KeyPair::generate(size).map_err(|_| KeyError::Crypto("generate"))?;
        Self::from_pair(pair, "generated key")
    }

    /// Loads a private key from a file: PKCS#1, PKCS#8 or encrypted PKCS#8 PEM, or hex of any of them.
    pub fn from_file(path: &Path, password: Option<&[u8]>) -> Result<Self, KeyError> {
        let text = Zeroizing::new(std::fs::read(path).map_err(|source| KeyError::Read {
            path: path.display().to_string(),
            source,
        })?);
        Self::from_text(&text, password, &path.display().to_string())
    }

    /// Loads a private key from a file, the password (for an encrypted key) from the
    /// environment variable named `password_env`: the one way both binaries load keys.
    pub fn from_file_with_password_env(
        path: &Path,
        password_env: Option<&str>,
    ) -> Result<Self, KeyError> {
        let pw = password_from_env(password_env)?;
        Self::from_file(path, pw.as_deref().map(|p| &p[..]))
    }

    /// [`PrivateKey::from_text`] with the password from the variable named `password_env`.
    pub fn from_text_with_password_env(
        text: &[u8],
        password_env: Option<&str>,
        what: &str,
    ) -> Result<Self, KeyError> {
        let pw = password_from_env(password_env)?;
        Self::from_text(text, pw.as_deref().map(|p| &p[..]), what)
    }

    /// Loads a private key from PEM text or hex of PEM text (as in `RSA_STATION_PRIVATE_KEY`).
    pub fn from_text(text: &[u8], password: Option<&[u8]>, what: &str) -> Result<Self, KeyError> {
        let (label, der) = pem::decode_pem_or_hex(text, what)?;
        match label.as_str() {
            "PRIVATE KEY" => Self::from_pkcs8_der(&der, what),
            "RSA PRIVATE KEY" => Self::from_pkcs1_der(&der, what),
            "ENCRYPTED PRIVATE KEY" => {
                let pw = password.ok_or_else(|| KeyError::Password {
                    what: what.into(),
                    detail: "no password given".into(),
                })?;
                let plain = pem::decrypt_pkcs8(&der, pw, what)?;
                Self::from_pkcs8_der(&plain, what)
            }
            other => Err(KeyError::Format {
                what: what.into(),
                detail: format!("PEM label `{other}` is not a private key"),
            }),
        }
    }

    /// The matching public key.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The key as unencrypted PKCS#8 PEM, for `train keygen`.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        use aws_lc_rs::encoding::AsDer;
        let der = self
            .pair
            .as_der()
            .map_err(|_| KeyError::Crypto("export PKCS#8"))?;
        Ok(encode_private_pkcs8_pem(der.as_ref()))
    }

    /// Unwraps an RSA-OAEP wrapped symmetric key of exactly 32 bytes.
    pub fn oaep_unwrap(
        &self,
        alg: &'static OaepAlgorithm,
        wrapped: &[u8],
        label: Option<&[u8]>,
    ) -> Result<SymKey, KeyError> {
        let mut out = Zeroizing::new(vec![0u8; self.decrypt.min_output_size()]);
        let plain = self
            .decrypt
            .decrypt(alg, wrapped, &mut out, label)
            .map_err(|_| KeyError::Crypto("OAEP decrypt"))?;
        if plain.len() != SYM_KEY_LEN {
            return Err(KeyError::Crypto("wrapped key is not 32 bytes"));
        }
        let mut k = Zeroizing::new([0u8; SYM_KEY_LEN]);
        k.copy_from_slice(plain);
        Ok(k)
    }

    /// RSA PKCS#1 v1.5 with SHA-512 over `msg` (PHT-meDIC creator and builder signatures).
    pub fn sign_pkcs1_sha512(&self, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.pair
            .sign(&signature::RSA_PKCS1_SHA512, &rng, msg, &mut sig)
            .map_err(|_| KeyError::Crypto("PKCS#1 v1.5 sign"))?;
        Ok(sig)
    }

    /// RSA-PSS (MGF1-SHA-512, maximum salt) over a 64-byte value used as a prehashed SHA-512 digest.
    pub fn sign_pss_prehashed_sha512(&self, digest64: &[u8]) -> Result<Vec<u8>, KeyError> {
        static PSS_MAX: signature::RsaSignatureEncoding =
            signature::RSA_PSS_SHA512.with_pss_salt_length(RsaPssSaltLength::Max);
        let d = digest::Digest::import_less_safe(digest64, &digest::SHA512)
            .map_err(|_| KeyError::Crypto("digest is not 64 bytes"))?;
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign_digest(&PSS_MAX, &d, &mut sig)
            .map_err(|_| KeyError::Crypto("PSS sign"))?;
        Ok(sig)
    }

    /// RSA-PSS SHA-256 (salt = 32) over `msg`: the native format's signature.
    pub fn sign_pss_sha256(&self, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.pair
            .sign(&signature::RSA_PSS_SHA256, &rng, msg, &mut sig)
            .map_err(|_| KeyError::Crypto("PSS sign"))?;
        Ok(sig)
    }
}

/// Loads a public key from a file (SPKI or PKCS#1 PEM, or hex of either).
pub fn public_key_from_file(path: &Path) -> Result<PublicKey, KeyError> {
    let text = Zeroizing::new(std::fs::read(path).map_err(|source| KeyError::Read {
        path: path.display().to_string(),
        source,
    })?);
    public_key_from_text(&text, &path.display().to_string())
}
