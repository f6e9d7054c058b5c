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
//!
//! A station or creator is granted only on the registry it is registered on (the `service`
//! asked for is that registry's `token_service`): the same namespace on another registry is
//! someone else's. Names that are not canonical repository paths (`master/../x`, `A/b`,
//! `a//b`) are granted nothing, whatever prefix they seem to match.
//!
//! What was asked and not granted is left out of the token, so the registry refuses the
//! operation itself. The movers have no account and no password: the service signs its own
//! short-lived token for exactly the move in hand ([`MoverTokens`]), so nothing a registry or
//! its operator sees is worth anything elsewhere.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{KeyPair, RsaKeyPair, RSA_PKCS1_SHA256};
use base64::Engine;
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

/// The subject of the movers' own tokens.
pub const MOVER_SUBJECT: &str = "pht-route-service";

/// Who asks for a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grantee {
    /// A station: its namespace and the `token_service` of its registry.
    Station {
        /// Its namespace.
        namespace: String,
        /// Its registry's `token_service`.
        service: String,
    },
    /// A creator: its namespace and the `token_service` of its registry.
    Creator {
        /// Its namespace.
        namespace: String,
        /// Its registry's `token_service`.
        service: String,
    },
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

/// Whether `name` is a repository path as distribution spells it: components of lower-case
/// letters and digits, joined inside by `.`, `_`, `__` or runs of `-`, separated by single
/// `/`; at most 255 bytes. Anything else (`..`, `//`, upper case, a trailing `/`) is refused
/// rather than compared: a registry that normalised it would serve another repository than
/// the one granted.
pub fn is_canonical_repository(name: &str) -> bool {
    fn component(c: &str) -> bool {
        let b = c.as_bytes();
        let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
        if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
            return false;
        }
        let mut i = 0;
        while i < b.len() {
            if alnum(b[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && !alnum(b[i]) {
                i += 1;
            }
            let sep = &c[start..i];
            if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
                return false;
            }
        }
        true
    }
    name.len() <= 255 && name.split('/').all(component)
}

/// What `who` may do to `repo` at the registry whose `token_service` is `service`.
pub fn allowed(
    who: &Grantee,
    service: &str,
    repo: &str,
    public_pull: &[String],
) -> Vec<&'static str> {
    if !is_canonical_repository(repo) {
        return Vec::new();
    }
    let public = public_pull.iter().any(|p| under(p, repo));
    let mut a: Vec<&'static str> = match who {
        Grantee::Station {
            namespace,
            service: s,
        } if s == service => {
            if repo == format!("{namespace}/inbox") {
                vec!["pull"]
            } else if repo == format!("{namespace}/outbox") {
                vec!["pull", "push"]
            } else {
                Vec::new()
            }
        }
        Grantee::Creator {
            namespace,
            service: s,
        } if s == service => {
            if repo == format!("{namespace}/submissions") {
                vec!["pull", "push"]
            } else if repo == format!("{namespace}/results") {
                vec!["pull"]
            } else {
                Vec::new()
            }
        }
        _ => Vec::new(),
    };
    if public && !a.contains(&"pull") {
        a.push("pull");
    }
    a
}

/// Grants the requested scopes at the registry `service` as far as `who` may have them
/// (repository scopes only).
pub fn grant(
    who: &Grantee,
    service: &str,
    requested: &[Access],
    public_pull: &[String],
) -> Vec<Access> {
    requested
        .iter()
        .filter(|r| r.kind == "repository")
        .filter_map(|r| {
            let ok = allowed(who, service, &r.name, public_pull);
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
        Ok(Self { key, kid, cfg })
    }

    /// The key id registries look the signing certificate up by.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The repository prefixes anyone may pull.
    pub fn public_pull(&self) -> &[String] {
        &self.cfg.public_pull
    }

    /// A signed token for `subject` at registry `audience` with `access`.
    pub fn issue(
        &self,
        subject: &str,
        audience: &str,
        access: &[Access],
    ) -> Result<String, TokenError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
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

/// The movers' tokens for one registry: signed in process for exactly the scopes a move's
/// request was challenged for (a pull, a push, a mount's pull beside its push, a delete), at
/// that registry only, for canonical repository names only.
pub struct MoverTokens {
    issuer: std::sync::Arc<TokenIssuer>,
    service: String,
}

impl MoverTokens {
    /// Tokens for the registry whose `token_service` is `service`.
    pub fn new(issuer: std::sync::Arc<TokenIssuer>, service: String) -> Self {
        Self { issuer, service }
    }
}

impl train_image::TokenMinter for MoverTokens {
    fn mint(&self, service: &str, scopes: &[String]) -> Result<String, String> {
        if service != self.service {
            return Err(format!(
                "the registry's challenge names the service `{}`, not its configured `{}`: no token",
                service.escape_debug(),
                self.service
            ));
        }
        let access: Vec<Access> = scopes
            .iter()
            .filter_map(|s| parse_scope(s))
            .filter(|a| a.kind == "repository" && is_canonical_repository(&a.name))
            .map(|mut a| {
                a.actions
                    .retain(|x| matches!(x.as_str(), "pull" | "push" | "delete"));
                a
            })
            .filter(|a| !a.actions.is_empty())
            .collect();
        self.issuer
            .issue(MOVER_SUBJECT, &self.service, &access)
            .map_err(|e| e.to_string())
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
        let st = Grantee::Station {
            namespace: "st-1".into(),
            service: "registry-a".into(),
        };
        let public = vec!["master".to_string()];
        let ask = |scope: &str| vec![parse_scope(scope).unwrap()];
        let at_a = |who: &Grantee, scope: &str| grant(who, "registry-a", &ask(scope), &public);
        assert_eq!(
            at_a(&st, "repository:st-1/inbox:pull,push")[0].actions,
            ["pull"]
        );
        assert_eq!(
            at_a(&st, "repository:st-1/outbox:pull,push")[0].actions,
            ["pull", "push"]
        );
        assert!(at_a(&st, "repository:st-2/outbox:pull,push").is_empty());
        assert!(at_a(&st, "repository:st-1/outbox-evil:push").is_empty());
        assert_eq!(
            at_a(&st, "repository:master/busybox:pull,push")[0].actions,
            ["pull"]
        );
        assert!(
            at_a(&st, "repository:masterful/x:pull").is_empty(),
            "whole segments"
        );
        let cr = Grantee::Creator {
            namespace: "alice".into(),
            service: "registry-a".into(),
        };
        assert_eq!(
            at_a(&cr, "repository:alice/results:pull,push")[0].actions,
            ["pull"]
        );
        assert!(at_a(&cr, "repository:bob/results:pull").is_empty());
        assert!(at_a(&Grantee::Anonymous, "repository:st-1/inbox:pull").is_empty());
        assert!(at_a(&st, "registry:catalog:*").is_empty());
    }

    #[test]
    fn a_party_is_granted_nothing_of_its_own_on_another_registry() {
        // Hole 2: a station got push on its namespace at every registry.
        let st = Grantee::Station {
            namespace: "st-1".into(),
            service: "registry-a".into(),
        };
        let ask = vec![parse_scope("repository:st-1/outbox:pull,push").unwrap()];
        assert!(grant(&st, "registry-b", &ask, &[]).is_empty());
        let public = vec!["master".to_string()];
        let pull = vec![parse_scope("repository:master/base:pull").unwrap()];
        assert_eq!(
            grant(&st, "registry-b", &pull, &public)[0].actions,
            ["pull"]
        );
    }

    #[test]
    fn names_that_are_not_canonical_are_granted_nothing() {
        let public = vec!["master".to_string()];
        for name in [
            "master/../st-2/outbox",
            "master/./x",
            "master//x",
            "master/",
            "Master/x",
            "master/x-",
            "master/x..y",
            "master/x___y",
            "master/x%2fy",
        ] {
            assert!(!is_canonical_repository(name), "{name}");
            let ask = vec![parse_scope(&format!("repository:{name}:pull")).unwrap()];
            assert!(
                grant(&Grantee::Anonymous, "registry-a", &ask, &public).is_empty(),
                "{name}"
            );
        }
        for name in ["master/x", "a/b.c/d_e/f__g/h--i", "st-1/outbox", "0/1"] {
            assert!(is_canonical_repository(name), "{name}");
        }
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
