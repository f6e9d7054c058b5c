//! Manifests fetched with a cap. `oci-client` reads a manifest response into memory whole,
//! whatever its length: a registry that streamed a manifest without end drove `train verify`
//! to 2.2 GB and an abort. Manifests are fetched here instead, with reqwest (the client
//! `oci-client` itself is built on), and read only up to a cap; tokens come from
//! [`crate::auth`], for these requests and, seeded into its cache, for `oci-client`'s.

use super::auth::{Authorizer, Minter};
use super::{ImageError, ImageRef};
use oci_client::secrets::RegistryAuth;
use oci_client::RegistryOperation;
use train_lib::net::explain;

/// A plain HTTP client for capped reads; its [`Authorizer`] decides what credentials go where
/// and caches the `Authorization` header each repository needed (so a run asks for a token
/// once, not per request).
pub(crate) struct CappedHttp {
    pub(crate) client: reqwest::Client,
    pub(crate) authz: Authorizer,
}

fn scope(r: &ImageRef, op: RegistryOperation) -> String {
    match op {
        RegistryOperation::Pull => format!("repository:{}:pull", r.repository()),
        RegistryOperation::Push => format!("repository:{}:pull,push", r.repository()),
    }
}

pub(crate) fn challenge_of(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

impl CappedHttp {
    pub(crate) fn new(
        realms: &[String],
        insecure: &[String],
        minters: &[Minter],
        ca_certs: &[Vec<u8>],
    ) -> Result<Self, ImageError> {
        let setup = |reason: String| ImageError::Registry {
            registry: String::new(),
            what: "HTTP client setup".into(),
            reason,
        };
        // A registry that redirects a manifest read elsewhere (blob storage does, manifests
        // do not) gets no credentials there: reqwest drops `Authorization` across hosts.
        let client = super::auth::trusting(ca_certs)
            .map_err(setup)?
            .connect_timeout(std::time::Duration::from_secs(30))
            .read_timeout(std::time::Duration::from_secs(120))
            .build()
            .map_err(|e| setup(e.to_string()))?;
        Ok(Self {
            client,
            authz: Authorizer::new(realms, insecure, minters, ca_certs).map_err(setup)?,
        })
    }

    /// The header for `op` on `r` (cached), for seeding `oci-client`.
    pub(crate) async fn header_for(
        &self,
        creds: &RegistryAuth,
        r: &ImageRef,
        scheme: &str,
        op: RegistryOperation,
    ) -> Result<Option<String>, ImageError> {
        let registry = r.inner().resolve_registry().to_string();
        let key = format!("{registry}/{} {op:?}", r.repository());
        self.authz
            .header_for(
                &format!("{scheme}://{registry}"),
                &registry,
                creds,
                &key,
                &[scope(r, op)],
            )
            .await
            .map_err(|reason| ImageError::Registry {
                registry: r.registry().to_string(),
                what: format!("authentication for {r}"),
                reason,
            })
    }

    /// GETs `r`'s manifest (by digest or tag) over `scheme`, reading at most `cap` bytes.
    pub(crate) async fn manifest(
        &self,
        auth: &RegistryAuth,
        r: &ImageRef,
        scheme: &str,
        accept: &[&str],
        cap: u64,
    ) -> Result<Vec<u8>, ImageError> {
        let registry = r.inner().resolve_registry().to_string();
        let reference = r.digest().or(r.tag()).unwrap_or("latest");
        let url = format!(
            "{scheme}://{registry}/v2/{}/manifests/{reference}",
            r.repository()
        );
        let err = |reason: String| ImageError::Registry {
            registry: r.registry().to_string(),
            what: format!("manifest pull ({r})"),
            reason,
        };
        let key = format!(
            "{registry}/{} {:?}",
            r.repository(),
            RegistryOperation::Pull
        );
        let mut header = self.authz.cached(&key).flatten();
        for attempt in 0..2 {
            let mut req = self
                .client
                .get(&url)
                .header(reqwest::header::ACCEPT, accept.join(", "));
            if let Some(h) = &header {
                req = req.header(reqwest::header::AUTHORIZATION, h);
            }
            let mut resp = req.send().await.map_err(|e| err(explain(&e)))?;
            let status = resp.status();
            if status == reqwest::StatusCode::UNAUTHORIZED && attempt == 0 {
                let Some(challenge) = challenge_of(&resp) else {
                    break;
                };
                header = self
                    .authz
                    .answer(
                        &registry,
                        auth,
                        &challenge,
                        Some(&[scope(r, RegistryOperation::Pull)]),
                    )
                    .await
                    .map_err(err)?;
                self.authz.remember(&key, header.clone());
                continue;
            }
            if !status.is_success() {
                // The registry's error document, for the message (distribution's codes such as
                // MANIFEST_UNKNOWN are what callers look for); a few KiB of it at most.
                let body = read_capped(&mut resp, 4096, true).await.unwrap_or_default();
                return Err(err(format!(
                    "{status}: {}",
                    String::from_utf8_lossy(&body).trim()
                )));
            }
            let body = read_capped(&mut resp, cap, false)
                .await
                .map_err(|e| match e {
                    Capped::Over => ImageError::Limit {
                        what: format!("manifest of {r}"),
                        detail: format!(
                            "longer than {cap} bytes, more than any image manifest needs; refused"
                        ),
                    },
                    Capped::Net(e) => err(e),
                })?;
            return Ok(body);
        }
        Err(err(
            "the registry refused the credentials (401 after authenticating)".into(),
        ))
    }
}

impl CappedHttp {
    /// DELETEs the manifest `r` names by digest. `Ok(false)` when the registry does not allow
    /// deletes (405) or no longer has it (404): removing a source tag is a courtesy.
    pub(crate) async fn delete_manifest(
        &self,
        auth: &RegistryAuth,
        r: &ImageRef,
        scheme: &str,
    ) -> Result<bool, ImageError> {
        let registry = r.inner().resolve_registry().to_string();
        let digest = r.digest().unwrap_or_default();
        let url = format!(
            "{scheme}://{registry}/v2/{}/manifests/{digest}",
            r.repository()
        );
        let err = |reason: String| ImageError::Registry {
            registry: r.registry().to_string(),
            what: format!("manifest delete ({r})"),
            reason,
        };
        // The challenge names the scope a delete needs (`delete`, beyond push).
        let (resp, _) = self
            .answering_challenge(&registry, auth, &err, &|| self.client.delete(&url))
            .await?;
        let status = resp.status();
        match status.as_u16() {
            200..=299 => Ok(true),
            404 | 405 => Ok(false),
            _ => Err(err(status.to_string())),
        }
    }

    /// Sends the request `make` builds; a 401 is answered once, for the scopes its challenge
    /// names, and the request sent again with the header obtained. The last answer and that
    /// header; an error when the registry sent no challenge to answer.
    pub(crate) async fn answering_challenge(
        &self,
        registry: &str,
        auth: &RegistryAuth,
        err: &(dyn Fn(String) -> ImageError + Sync),
        make: &(dyn Fn() -> reqwest::RequestBuilder + Sync),
    ) -> Result<(reqwest::Response, Option<String>), ImageError> {
        let mut header: Option<String> = None;
        for attempt in 0..2 {
            let mut req = make();
            if let Some(h) = &header {
                req = req.header(reqwest::header::AUTHORIZATION, h);
            }
            let resp = req.send().await.map_err(|e| err(explain(&e)))?;
            if resp.status() == reqwest::StatusCode::UNAUTHORIZED && attempt == 0 {
                let Some(challenge) = challenge_of(&resp) else {
                    break;
                };
                header = self
                    .authz
                    .answer(registry, auth, &challenge, None)
                    .await
                    .map_err(err)?;
                continue;
            }
            return Ok((resp, header));
        }
        Err(err("the registry refused the credentials".into()))
    }
}

impl CappedHttp {
    /// Mounts blob `digest` of `from` into `to` (one registry): `Ok(true)` when the registry
    /// answers 201. A mount needs `pull` on the source and `push` on the target in one token;
    /// `oci-client` asks for the target's scope only, so under token auth every mount was
    /// refused (`401 insufficient scope`) and every layer was sent again. The registry's
    /// challenge names both scopes, and is answered as it stands. `Ok(false)` when the registry
    /// declines (202: it opened an ordinary upload instead, cancelled here) or the credentials
    /// do not reach the source (the caller then sends the blob if it can read it).
    pub(crate) async fn mount(
        &self,
        auth: &RegistryAuth,
        to: &ImageRef,
        from: &ImageRef,
        digest: &str,
        scheme: &str,
    ) -> Result<bool, ImageError> {
        let registry = to.inner().resolve_registry().to_string();
        let base = format!("{scheme}://{registry}");
        let url = reqwest::Url::parse_with_params(
            &format!("{base}/v2/{}/blobs/uploads/", to.repository()),
            &[("mount", digest), ("from", from.repository())],
        )
        .map_err(|e| mount_err(to, e.to_string()))?;
        // One token per (target, source) pair: a move mounts all its layers with one request
        // to the token service, not one per layer.
        let key = format!(
            "mount {registry}/{} <- {}",
            to.repository(),
            from.repository()
        );
        let mut header = self.authz.cached(&key).flatten();
        for attempt in 0..2 {
            let mut req = self.client.post(url.clone());
            if let Some(h) = &header {
                req = req.header(reqwest::header::AUTHORIZATION, h);
            }
            let resp = req
                .header(reqwest::header::CONTENT_LENGTH, "0")
                .send()
                .await
                .map_err(|e| mount_err(to, explain(&e)))?;
            let status = resp.status();
            if status == reqwest::StatusCode::UNAUTHORIZED && attempt == 0 {
                let Some(challenge) = challenge_of(&resp) else {
                    return Ok(false);
                };
                header = self
                    .authz
                    .answer(&registry, auth, &challenge, None)
                    .await
                    .map_err(|e| mount_err(to, e))?;
                self.authz.remember(&key, header.clone());
                continue;
            }
            match status.as_u16() {
                201 => return Ok(true),
                202 => {
                    // An upload session the registry opened instead; left open it would hold
                    // the registry's state until its purge. Cancelled on the same registry only.
                    if let Some(loc) = resp
                        .headers()
                        .get(reqwest::header::LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|l| url.join(l).ok())
                        .filter(|l| l.origin() == url.origin())
                    {
                        let mut del = self.client.delete(loc);
                        if let Some(h) = &header {
                            del = del.header(reqwest::header::AUTHORIZATION, h);
                        }
                        let _ = del.send().await;
                    }
                    return Ok(false);
                }
                _ => return Ok(false),
            }
        }
        Ok(false)
    }
}

fn mount_err(to: &ImageRef, reason: String) -> ImageError {
    ImageError::Registry {
        registry: to.registry().to_string(),
        what: format!("blob mount into {to}"),
        reason,
    }
}

enum Capped {
    Over,
    Net(String),
}

/// Reads a response body up to `cap` bytes; more is `Over` (or, with `truncate`, cut off).
async fn read_capped(
    resp: &mut reqwest::Response,
    cap: u64,
    truncate: bool,
) -> Result<Vec<u8>, Capped> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| Capped::Net(e.to_string()))? {
        if (body.len() + chunk.len()) as u64 > cap {
            if truncate {
                let room = cap as usize - body.len();
                body.extend_from_slice(&chunk[..room]);
                return Ok(body);
            }
            return Err(Capped::Over);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
