//! Who gets which credentials. A registry's `WWW-Authenticate` challenge is an answer of a
//! party that may be hostile: it names a token `realm`, and a client that sends its
//! credentials there hands them to whoever the registry names (a hostile registry operator
//! harvested the route service's mover password that way, and a hostile route service a
//! station's API key by naming its own host in an inbox item). So:
//!
//! - credentials go as HTTP Basic only to the registry they were configured for (the host
//!   this request goes to), and to a Bearer realm only when that realm is configured
//!   ([`RegistryOptions::token_realms`](crate::RegistryOptions)) or is the registry's own
//!   origin, never over plain HTTP to a host that is neither on loopback nor declared
//!   insecure;
//! - a registry whose tokens this process can sign itself (the route service, for the
//!   registries it issues tokens for) gets a token minted here for exactly the scopes in hand,
//!   and no credentials go anywhere;
//! - without credentials a realm is asked anonymously (nothing to leak);
//! - token requests follow no redirect and read at most 64 KiB within 30 s.
//!
//! Headers are cached per (registry, repository, operation) for their lifetime; the cache is
//! bounded (it grew without a bound under `route-bench --token`: +67 MiB for 5,000 moves).

use super::challenge::{parse_challenge, Challenge};
use oci_client::secrets::RegistryAuth;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Signs registry tokens in process (the route service for the registries it issues for).
pub trait TokenMinter: Send + Sync {
    /// A bearer token for the registry `service` granting `scopes`
    /// (`repository:<name>:<actions>`), valid for at least a minute.
    fn mint(&self, service: &str, scopes: &[String]) -> Result<String, String>;
}

/// A [`TokenMinter`] for one registry (`host:port`).
#[derive(Clone)]
pub struct Minter {
    /// `host:port` of the registry whose tokens it signs.
    pub registry: String,
    /// The signer.
    pub minter: Arc<dyn TokenMinter>,
}

impl std::fmt::Debug for Minter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Minter({})", self.registry)
    }
}

/// How long a cached header is used: tokens live 300 s at our issuer and 60 s by default at
/// others (the distribution token spec's default `expires_in`); 50 s is inside both.
const HEADER_TTL: Duration = Duration::from_secs(50);
/// Cached headers: one per repository and operation in use. 4,096 covers 1,000 stations'
/// inbox and outbox with room; past it the expired go, then all.
const CACHE_MAX: usize = 4096;
/// A token response is a few KiB.
const TOKEN_CAP: usize = 64 << 10;
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);

/// Answers challenges by the policy above.
pub(crate) struct Authorizer {
    client: reqwest::Client,
    realms: Vec<reqwest::Url>,
    insecure: Vec<String>,
    minters: Vec<Minter>,
    cache: Mutex<HashMap<String, (Option<String>, Instant)>>,
}

use train_lib::net::explain;
/// Whether `host` (`name[:port]`) is on this machine.
pub(crate) use train_lib::net::is_loopback_host;

/// A client builder that trusts the system's CAs and `ca_certs` (PEM, one certificate each);
/// `HTTPS_PROXY`/`NO_PROXY` are honoured as reqwest does by default.
pub(crate) fn trusting(ca_certs: &[Vec<u8>]) -> Result<reqwest::ClientBuilder, String> {
    let mut b = reqwest::Client::builder();
    for pem in ca_certs {
        let c = reqwest::Certificate::from_pem(pem)
            .map_err(|e| format!("a configured CA certificate: {e}"))?;
        b = b.add_root_certificate(c);
    }
    Ok(b)
}

fn host_port(u: &reqwest::Url) -> String {
    match (u.host_str(), u.port_or_known_default()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => String::new(),
    }
}

impl Authorizer {
    pub(crate) fn new(
        realms: &[String],
        insecure: &[String],
        minters: &[Minter],
        ca_certs: &[Vec<u8>],
    ) -> Result<Self, String> {
        Self::with_timeout(realms, insecure, minters, ca_certs, TOKEN_TIMEOUT)
    }

    /// As [`Authorizer::new`], token requests ending after `timeout` (tests use a second).
    fn with_timeout(
        realms: &[String],
        insecure: &[String],
        minters: &[Minter],
        ca_certs: &[Vec<u8>],
        timeout: Duration,
    ) -> Result<Self, String> {
        let client = trusting(ca_certs)?
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .build()
            .map_err(|e| e.to_string())?;
        let realms = realms
            .iter()
            .map(|r| reqwest::Url::parse(r).map_err(|e| format!("token realm `{r}`: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            client,
            realms,
            insecure: insecure.to_vec(),
            minters: minters.to_vec(),
            cache: Mutex::default(),
        })
    }

    /// The cached header for `key`, while fresh.
    pub(crate) fn cached(&self, key: &str) -> Option<Option<String>> {
        let cache = self.cache.lock().expect("not poisoned");
        cache
            .get(key)
            .filter(|(_, at)| at.elapsed() < HEADER_TTL)
            .map(|(h, _)| h.clone())
    }

    pub(crate) fn remember(&self, key: &str, header: Option<String>) {
        let mut cache = self.cache.lock().expect("not poisoned");
        if cache.len() >= CACHE_MAX {
            cache.retain(|_, (_, at)| at.elapsed() < HEADER_TTL);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(key.to_string(), (header, Instant::now()));
    }

    /// How many headers are cached (for the bound's test).
    #[cfg(test)]
    pub(crate) fn cache_len(&self) -> usize {
        self.cache.lock().expect("not poisoned").len()
    }

    /// Whether credentials may follow `realm` from `registry` (`host:port`).
    fn realm_allowed(&self, registry: &str, realm: &reqwest::Url) -> Result<(), String> {
        let hp = host_port(realm);
        let configured = self.realms.iter().any(|r| {
            r.scheme() == realm.scheme() && host_port(r) == hp && r.path() == realm.path()
        });
        let own = hp == registry
            || realm.host_str().is_some_and(|h| h == registry)
            || realm.authority() == registry;
        if !configured && !own {
            return Err(format!(
                "the registry {registry} sends its clients to the token realm {}, which is neither configured nor the registry itself: the credentials were not sent (if that realm is right, configure it as a token realm)",
                realm.as_str().escape_debug()
            ));
        }
        if realm.scheme() != "https"
            && !is_loopback_host(&hp)
            && !self
                .insecure
                .iter()
                .any(|i| *i == hp || Some(i.as_str()) == realm.host_str())
        {
            return Err(format!(
                "the token realm {} is plain HTTP on another machine: the credentials were not sent (use HTTPS, or declare the host insecure)",
                realm.as_str().escape_debug()
            ));
        }
        Ok(())
    }

    /// The `Authorization` header answering `challenge` from `registry` (`host:port`) with
    /// `creds`; `scopes`: what to ask for (the challenge's own when `None`).
    pub(crate) async fn answer(
        &self,
        registry: &str,
        creds: &RegistryAuth,
        challenge: &str,
        scopes: Option<&[String]>,
    ) -> Result<Option<String>, String> {
        use base64::Engine;
        let basic = match creds {
            RegistryAuth::Basic(u, p) => {
                Some(base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")))
            }
            _ => None,
        };
        let (realm, service, asked) = match parse_challenge(challenge) {
            // Basic goes to the registry this request was sent to: the one configured.
            Challenge::Basic => return Ok(basic.map(|b| format!("Basic {b}"))),
            Challenge::Other => return Ok(None),
            Challenge::Bearer {
                realm,
                service,
                scopes,
            } => (realm, service, scopes),
        };
        let scopes: Vec<String> = scopes.map(<[String]>::to_vec).unwrap_or(asked);
        if let Some(m) = self.minters.iter().find(|m| m.registry == registry) {
            let service = service.as_deref().unwrap_or(registry);
            return m
                .minter
                .mint(service, &scopes)
                .map(|t| Some(format!("Bearer {t}")));
        }
        let mut url = reqwest::Url::parse(&realm)
            .map_err(|e| format!("token realm `{}`: {e}", realm.escape_debug()))?;
        if basic.is_some() {
            self.realm_allowed(registry, &url)?;
        }
        if let Some(v) = &service {
            url.query_pairs_mut().append_pair("service", v);
        }
        for scope in &scopes {
            url.query_pairs_mut().append_pair("scope", scope);
        }
        let mut req = self.client.get(url);
        if let Some(b) = basic {
            req = req.header(reqwest::header::AUTHORIZATION, format!("Basic {b}"));
        }
        let mut resp = req
            .send()
            .await
            .map_err(|e| format!("token request: {}", explain(&e)))?;
        if !resp.status().is_success() {
            return Err(format!("the token service answered {}", resp.status()));
        }
        let mut bytes = Vec::new();
        while let Some(c) = resp
            .chunk()
            .await
            .map_err(|e| format!("token response: {e}"))?
        {
            bytes.extend_from_slice(&c);
            if bytes.len() > TOKEN_CAP {
                return Err("the token response is over 64 KiB; refused".into());
            }
        }
        let body: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| format!("token response: {e}"))?;
        let token = body["token"]
            .as_str()
            .or(body["access_token"].as_str())
            .ok_or("the token response holds no token")?;
        Ok(Some(format!("Bearer {token}")))
    }

    /// The header for `scopes` on `registry`, asking the registry's `/v2/` for its challenge
    /// (cached under `key`).
    pub(crate) async fn header_for(
        &self,
        base: &str,
        registry: &str,
        creds: &RegistryAuth,
        key: &str,
        scopes: &[String],
    ) -> Result<Option<String>, String> {
        if let Some(h) = self.cached(key) {
            return Ok(h);
        }
        let resp = self
            .client
            .get(format!("{base}/v2/"))
            .send()
            .await
            .map_err(|e| format!("registry {registry}: {}", explain(&e)))?;
        let header = match resp
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
        {
            Some(c) => {
                let c = c.to_string();
                self.answer(registry, creds, &c, Some(scopes)).await?
            }
            None => None,
        };
        self.remember(key, header.clone());
        Ok(header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl TokenMinter for Fixed {
        fn mint(&self, service: &str, scopes: &[String]) -> Result<String, String> {
            Ok(format!("{service}|{}", scopes.join(" ")))
        }
    }

    fn creds() -> RegistryAuth {
        RegistryAuth::Basic("st-1".into(), "pht_secret".into())
    }

    #[tokio::test]
    async fn credentials_never_follow_a_realm_that_is_not_configured() {
        let a = Authorizer::new(
            &["https://routes.example.org/v1/registry-token".into()],
            &[],
            &[],
            &[],
        )
        .unwrap();
        for realm in [
            "https://evil.example.org/v1/registry-token",
            // The configured host with another path or port is another realm.
            "https://routes.example.org/steal",
            "https://routes.example.org:8443/v1/registry-token",
            "http://routes.example.org/v1/registry-token",
        ] {
            let ch = format!(r#"Bearer realm="{realm}",service="reg",scope="repository:a/b:pull""#);
            let e = a
                .answer("reg.example.org:5000", &creds(), &ch, None)
                .await
                .unwrap_err();
            assert!(e.contains("the credentials were not sent"), "{realm}: {e}");
        }
        // The registry's own origin is as trusted as the registry, but not over plain HTTP
        // to another machine.
        let ch = r#"Bearer realm="http://reg.example.org:5000/token",service="reg""#;
        let e = a
            .answer("reg.example.org:5000", &creds(), ch, None)
            .await
            .unwrap_err();
        assert!(e.contains("plain HTTP"), "{e}");
    }

    #[tokio::test]
    async fn a_minted_registry_gets_its_token_without_any_request() {
        let m = Minter {
            registry: "127.0.0.1:5000".into(),
            minter: Arc::new(Fixed),
        };
        let a = Authorizer::new(&[], &[], &[m], &[]).unwrap();
        // The realm is never contacted (it does not exist).
        let ch = r#"Bearer realm="http://127.0.0.1:1/nowhere",service="registry-0",scope="repository:x/inbox:pull,push repository:y/outbox:pull""#;
        let h = a
            .answer("127.0.0.1:5000", &RegistryAuth::Anonymous, ch, None)
            .await
            .unwrap();
        assert_eq!(
            h.as_deref(),
            Some("Bearer registry-0|repository:x/inbox:pull,push repository:y/outbox:pull")
        );
    }

    /// A token service on loopback that answers every request with `reply` (raw HTTP, `None`:
    /// never answers); returns its `host:port` and the count of connections it took.
    async fn token_service(
        reply: Option<&str>,
        endless: bool,
    ) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let taken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = taken.clone();
        let reply: Option<Arc<str>> = reply.map(Arc::from);
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = l.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let reply = reply.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = sock.read(&mut buf).await;
                    let Some(head) = reply else {
                        // Holds the connection open without a byte.
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        return;
                    };
                    if sock.write_all(head.as_bytes()).await.is_err() || !endless {
                        return;
                    }
                    let chunk = format!("{:x}\r\n{}\r\n", 4096, " ".repeat(4096));
                    while sock.write_all(chunk.as_bytes()).await.is_ok() {}
                });
            }
        });
        (addr, taken)
    }

    fn challenge(addr: &str) -> String {
        format!(r#"Bearer realm="http://{addr}/token",service="reg",scope="repository:a/b:pull""#)
    }

    #[tokio::test]
    async fn a_token_response_that_never_ends_is_refused_at_64_kib() {
        let (addr, _) = token_service(
            Some("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"),
            true,
        )
        .await;
        let a = Authorizer::new(&[], &[], &[], &[]).unwrap();
        let e = a
            .answer(&addr, &creds(), &challenge(&addr), None)
            .await
            .unwrap_err();
        assert_eq!(e, "the token response is over 64 KiB; refused");
    }

    #[tokio::test]
    async fn a_token_service_s_redirect_is_not_followed_with_the_credentials() {
        // Where the redirect points: must never be contacted.
        let (elsewhere, contacted) = token_service(Some("HTTP/1.1 200 OK\r\n\r\n"), false).await;
        let head = format!(
            "HTTP/1.1 302 Found\r\nLocation: http://{elsewhere}/steal\r\nContent-Length: 0\r\n\r\n"
        );
        let (addr, asked) = token_service(Some(&head), false).await;
        let a = Authorizer::new(&[], &[], &[], &[]).unwrap();
        let e = a
            .answer(&addr, &creds(), &challenge(&addr), None)
            .await
            .unwrap_err();
        assert_eq!(e, "the token service answered 302 Found");
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(contacted.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_token_service_that_never_answers_is_given_up_on() {
        let (addr, _) = token_service(None, false).await;
        let a = Authorizer::with_timeout(&[], &[], &[], &[], Duration::from_secs(1)).unwrap();
        let started = Instant::now();
        let e = a
            .answer(&addr, &creds(), &challenge(&addr), None)
            .await
            .unwrap_err();
        assert!(
            e.starts_with("token request: ") && e.contains("timed out"),
            "{e}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn the_header_cache_is_bounded() {
        let a = Authorizer::new(&[], &[], &[], &[]).unwrap();
        for i in 0..(CACHE_MAX * 3) {
            a.remember(&format!("k{i}"), Some("Bearer x".into()));
        }
        assert!(a.cache_len() <= CACHE_MAX);
        assert_eq!(
            a.cached(&format!("k{}", CACHE_MAX * 3 - 1)),
            Some(Some("Bearer x".into()))
        );
    }

    #[test]
    fn loopback_hosts() {
        for (h, want) in [
            ("127.0.0.1:5000", true),
            ("localhost:80", true),
            ("[::1]:5000", true),
            ("10.0.0.1:5000", false),
            ("reg.example.org", false),
        ] {
            assert_eq!(is_loopback_host(h), want, "{h}");
        }
    }
}
