//! The registry token issuer: for CNCF distribution configured with `auth: token`, the route
//! service signs the bearer tokens (RS256 JWTs, `kid` = the libtrust key id distribution
//! derives from the certificate in its `rootcertbundle`) and grants least privilege:
//!
//! | principal | repository                          | actions          |
//! |-----------|-------------------------------------|------------------|
//! | station   | `<ns>/inbox`                        | pull             |
//! | station   | `<ns>/outbox`                       | pull, push       |
//! | creator   | `<ns>/submissions`                  | pull, push       |
//! | creator   | `<ns>/results`                      | pull             |
//! | anyone    | a `public_pull` prefix (masters)    | pull             |
//! | mover     | every repository                    | pull, push, delete |
//!
//! What was asked and not granted is left out of the token, so the registry refuses the
//! operation itself. The mover is the service's own account; its password is derived from the
//! signing key, so every replica that can sign also knows it and nothing else does.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{KeyPair, RsaKeyPair, RSA_PKCS1_SHA256};
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Errors of the token issuer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The signing key could not be read.
    #[error("token signing key {path}: {detail}")]
    Key {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// Signing failed.
    #[error("token signing failed")]
    Sign,
}

/// `[token]` of the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// The RSA private key (PKCS#8 PEM) whose certificate the registries trust
    /// (`auth.token.rootcertbundle`).
    pub key_file: PathBuf,
    /// `iss` of the tokens; the registries' `auth.token.issuer`.
    #[serde(default = "default_issuer")]
    pub issuer: String,
    /// Token lifetime (distribution asks again when it runs out).
    #[serde(default = "default_lifetime")]
    pub lifetime_secs: u64,
    /// Repository prefixes every authenticated principal may pull (master images), matched
    /// by whole path segments.
    #[serde(default)]
    pub public_pull: Vec<String>,
}

fn default_issuer() -> String {
    "pht-route-service".into()
}
fn default_lifetime() -> u64 {
    300
}

/// The user name of the service's own registry account.
pub const MOVER_ACCOUNT: &str = "pht-route-service";

/// Who asks for a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grantee {
    /// The service's movers.
    Mover,
    /// A station with its namespace.
    Station(String),
    /// A creator with its namespace.
    Creator(String),
    /// No or unknown credentials: public pulls only.
    Anonymous,
}

/// One `access` entry of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Access {
    /// `repository`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The repository.
    pub name: String,
    /// Granted actions.
    pub actions: Vec<String>,
}

/// Parses `repository:ns/outbox:pull,push` (names may not contain `:` except a registry
/// port, which scopes never carry).
pub fn parse_scope(scope: &str) -> Option<Access> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    Some(Access {
        kind: kind.to_string(),
        name: name.to_string(),
        actions: actions
            .split(',')
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

fn under(prefix: &str, repo: &str) -> bool {
    let p = prefix.trim_end_matches('/');
    repo == p || repo.strip_prefix(p).is_some_and(|r| r.starts_with('/'))
}

/// What `who` may do to `repo`.
pub fn allowed(who: &Grantee, repo: &str, public_pull: &[String]) -> Vec<&'static str> {
    let public = public_pull.iter().any(|p| under(p, repo));
    let mut a: Vec<&'static str> = match who {
        Grantee::Mover => return vec!["pull", "push", "delete", "*"],
        Grantee::Station(ns) if repo == format!("{ns}/inbox") => vec!["pull"],
        Grantee::Station(ns) if repo == format!("{ns}/outbox") => vec!["pull", "push"],
        Grantee::Creator(ns) if repo == format!("{ns}/submissions") => vec!["pull", "push"],
        Grantee::Creator(ns) if repo == format!("{ns}/results") => vec!["pull"],
        _ => Vec::new(),
    };
    if public && !a.contains(&"pull") {
        a.push("pull");
    }
    a
}

/// Grants the requested scopes as far as `who` may have them (repository scopes only).
pub fn grant(who: &Grantee, requested: &[Access], public_pull: &[String]) -> Vec<Access> {
    requested
        .iter()
        .filter(|r| r.kind == "repository")
        .filter_map(|r| {
            let ok = allowed(who, &r.name, public_pull);
            let actions: Vec<String> = r
                .actions
                .iter()
                .filter(|a| ok.contains(&a.as_str()))
                .cloned()
                .collect();
            (!actions.is_empty()).then(|| Access {
                kind: r.kind.clone(),
                name: r.name.clone(),
                actions,
            })
        })
        .collect()
}

/// The signer.
pub struct TokenIssuer {
    key: RsaKeyPair,
    kid: String,
    cfg: TokenConfig,
    mover_password: SecretString,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenIssuer(kid {})", self.kid)
    }
}

/// distribution's (libtrust's) key id: base32 of the first 240 bits of SHA-256 over the
/// SubjectPublicKeyInfo, in groups of four joined by `:`.
pub fn libtrust_kid(spki_der: &[u8]) -> String {
    let h = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, spki_der);
    let b32 = base32(&h.as_ref()[..30]);
    b32.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect::<Vec<_>>()
        .join(":")
}

fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in data {
        buf = (buf << 8) | b as u32;
        bits += 8;
        while bits >= 5 {
            out.push(ALPHABET[((buf >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

impl TokenIssuer {
    /// Reads the signing key of `cfg`.
    pub fn new(cfg: TokenConfig) -> Result<Self, TokenError> {
        let err = |detail: String| TokenError::Key {
            path: cfg.key_file.display().to_string(),
            detail,
        };
        let der = read_pkcs8(&cfg.key_file).map_err(err)?;
        let key =
            RsaKeyPair::from_pkcs8(&der).map_err(|e| err(format!("not an RSA PKCS#8 key: {e}")))?;
        let spki = key
            .public_key()
            .as_der()
            .map_err(|_| err("cannot encode its public key".into()))?;
        let kid = libtrust_kid(spki.as_ref());
        // The mover's password: a keyed hash of the signing key, the same on every replica.
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        ctx.update(b"pht-route-service mover password v1\0");
        ctx.update(&der);
        let mover_password = SecretString::from(hex::encode(ctx.finish().as_ref()));
        Ok(Self {
            key,
            kid,
            cfg,
            mover_password,
        })
    }

    /// The key id registries look the signing certificate up by.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The repository prefixes anyone may pull.
    pub fn public_pull(&self) -> &[String] {
        &self.cfg.public_pull
    }

    /// Whether `password` is the mover's.
    pub fn is_mover_password(&self, password: &str) -> bool {
        crate::auth::constant_eq(
            self.mover_password.expose_secret().as_bytes(),
            password.as_bytes(),
        )
    }

    /// The service's own registry credentials.
    pub fn mover_credentials(&self) -> train_image::Credentials {
        train_image::Credentials::Basic {
            username: MOVER_ACCOUNT.into(),
            password: self.mover_password.clone(),
        }
    }

    /// A signed token for `subject` at registry `audience` with `access`.
    pub fn issue(
        &self,
        subject: &str,
        audience: &str,
        access: &[Access],
    ) -> Result<String, TokenError> {
        let now = crate::clock::now_ms() / 1000;
        let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "kid": self.kid});
        let mut jti = [0u8; 16];
        aws_lc_rs::rand::fill(&mut jti).map_err(|_| TokenError::Sign)?;
        let claims = serde_json::json!({
            "iss": self.cfg.issuer,
            "sub": subject,
            "aud": audience,
            "exp": now + self.cfg.lifetime_secs as i64,
            "nbf": now - 10,
            "iat": now,
            "jti": hex::encode(jti),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let mut sig = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                signing_input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| TokenError::Sign)?;
        Ok(format!("{signing_input}.{}", b64(&sig)))
    }

    /// The configured lifetime.
    pub fn lifetime_secs(&self) -> u64 {
        self.cfg.lifetime_secs
    }
}

fn read_pkcs8(path: &Path) -> Result<Vec<u8>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let begin = "-----BEGIN PRIVATE KEY-----";
    let end = "-----END PRIVATE KEY-----";
    let (Some(b), Some(e)) = (text.find(begin), text.find(end)) else {
        return Err(
            "not a PKCS#8 PEM (BEGIN PRIVATE KEY); convert it with `openssl pkcs8 -topk8 -nocrypt`"
                .into(),
        );
    };
    let body: String = text[b + begin.len()..e].split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| format!("PEM body: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stations_and_creators_get_only_their_own_repositories() {
        let st = Grantee::Station("st-1".into());
        let public = vec!["master".to_string()];
        let ask = |scope: &str| vec![parse_scope(scope).unwrap()];
        assert_eq!(
            grant(&st, &ask("repository:st-1/inbox:pull,push"), &public)[0].actions,
            ["pull"]
        );
        assert_eq!(
            grant(&st, &ask("repository:st-1/outbox:pull,push"), &public)[0].actions,
            ["pull", "push"]
        );
        assert!(grant(&st, &ask("repository:st-2/outbox:pull,push"), &public).is_empty());
        assert!(grant(&st, &ask("repository:st-1/outbox-evil:push"), &public).is_empty());
        assert_eq!(
            grant(&st, &ask("repository:master/busybox:pull,push"), &public)[0].actions,
            ["pull"]
        );
        assert!(
            grant(&st, &ask("repository:masterful/x:pull"), &public).is_empty(),
            "whole segments"
        );
        let cr = Grantee::Creator("alice".into());
        assert_eq!(
            grant(&cr, &ask("repository:alice/results:pull,push"), &public)[0].actions,
            ["pull"]
        );
        assert!(grant(&cr, &ask("repository:bob/results:pull"), &public).is_empty());
        assert!(grant(
            &Grantee::Anonymous,
            &ask("repository:st-1/inbox:pull"),
            &public
        )
        .is_empty());
        assert!(grant(&st, &ask("registry:catalog:*"), &public).is_empty());
    }

    #[test]
    fn the_key_id_is_libtrusts() {
        // libtrust's format: 12 groups of 4 base32 characters.
        let kid = libtrust_kid(b"any spki");
        assert_eq!(kid.len(), 12 * 4 + 11);
        assert!(kid.split(':').all(|g| g.len() == 4
            && g.bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))));
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
    }
}
