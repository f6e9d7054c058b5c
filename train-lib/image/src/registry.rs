//! A thin layer over `oci-client`: one client per registry, plain HTTP only for loopback or
//! explicitly insecure registries, credentials from Docker's configuration, every manifest and
//! blob checked against the digest it was asked for.

use super::assemble::{Descriptor, Manifest};
use super::error::io_err;
use super::http::CappedHttp;
use super::progress::Progress;
use super::{Credentials, ImageError, ImageRef};
use aws_lc_rs::digest::{digest, SHA256};
use futures_util::{StreamExt, TryStreamExt};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::{
    IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE,
    OCI_IMAGE_MEDIA_TYPE,
};
use oci_client::secrets::RegistryAuth;
use oci_client::token_cache::{RegistryToken, RegistryTokenType};
use oci_client::Client;
use oci_client::RegistryOperation;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Registries (`host:port`) spoken to over plain HTTP although not on loopback.
    pub insecure: Vec<String>,
    /// Credentials per registry (`host:port`) that take precedence over the environment and
    /// Docker's configuration: a service that holds its own account (the route service's
    /// mover) uses this.
    pub credentials: Vec<(String, Credentials)>,
    /// Token realms (URLs) credentials may be sent to when a registry's challenge names them,
    /// beyond the registry's own origin (see [`crate::auth`]).
    pub token_realms: Vec<String>,
    /// Registries whose tokens this process signs itself: no credentials are sent to them.
    pub minters: Vec<crate::Minter>,
    /// CA certificates (PEM, one each: [`train_lib::net::read_ca_file`]) trusted besides the
    /// system's, for registries and token realms a consortium's own CA signs.
    pub ca_certs: Vec<Vec<u8>>,
}

/// An image resolved to its manifest digest; every later read uses the digest.
#[derive(Debug, Clone)]
pub struct Pinned {
    /// The reference as given.
    pub given: ImageRef,
    /// The same repository `@digest`.
    pub reference: ImageRef,
    /// `sha256:…` of the manifest bytes.
    pub digest: String,
    /// The manifest.
    pub manifest: Manifest,
}

/// Registry access shared by the operations of one run.
#[derive(Clone)]
pub struct Registry {
    opts: RegistryOptions,
    clients: Arc<Mutex<HashMap<String, (Client, RegistryAuth)>>>,
    http: Arc<std::sync::OnceLock<CappedHttp>>,
}

/// The largest manifest or image configuration read: the largest seen in the wild (multi-arch
/// indexes, configurations with long histories) are around 100 KiB; 4 MiB leaves room and
/// bounds what a hostile registry can make a station hold.
pub const METADATA_CAP: u64 = 4 << 20;

const ACCEPT: &[&str] = &[
    IMAGE_MANIFEST_MEDIA_TYPE,
    OCI_IMAGE_MEDIA_TYPE,
    IMAGE_MANIFEST_LIST_MEDIA_TYPE,
    OCI_IMAGE_INDEX_MEDIA_TYPE,
];

/// Chunks a blob copy's download may run ahead of its upload.
const COPY_AHEAD: usize = 64;

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(digest(&SHA256, bytes).as_ref()))
}

impl Registry {
    /// Registry access with `opts`.
    pub fn new(opts: RegistryOptions) -> Self {
        Self {
            opts,
            clients: Arc::default(),
            http: Arc::default(),
        }
    }

    fn err(r: &ImageRef, what: &str, e: impl std::fmt::Display) -> ImageError {
        let reason = e.to_string();
        ImageError::Registry {
            registry: r.registry().to_string(),
            what: format!("{what} ({})", r),
            reason: match train_lib::net::tls_hint(&reason) {
                Some(hint) => format!("{reason}. {hint}"),
                None => reason,
            },
        }
    }

    /// The client for `r`'s registry, its token cache seeded for `op` on `r`'s repository.
    pub(crate) async fn client(
        &self,
        r: &ImageRef,
        op: RegistryOperation,
    ) -> Result<Client, ImageError> {
        let (c, auth) = self.client_and_auth(r).await?;
        let (http, scheme) = self.capped(r)?;
        let token = match http.header_for(&auth, r, scheme, op).await? {
            Some(h) => match h.split_once(' ') {
                Some(("Bearer", t)) => RegistryTokenType::Bearer(RegistryToken::Token {
                    token: t.to_string(),
                }),
                _ => match &auth {
                    RegistryAuth::Basic(u, p) => RegistryTokenType::Basic(u.clone(), p.clone()),
                    _ => return Ok(c),
                },
            },
            None => return Ok(c),
        };
        c.tokens.insert(r.inner(), op, token).await;
        Ok(c)
    }

    /// One client per registry, holding its credentials (read once).
    pub(crate) async fn client_and_auth(
        &self,
        r: &ImageRef,
    ) -> Result<(Client, RegistryAuth), ImageError> {
        let reg = r.registry().to_string();
        if let Some(c) = self.clients.lock().expect("not poisoned").get(&reg) {
            return Ok(c.clone());
        }
        let plain = self.plain(r);
        let config = ClientConfig {
            protocol: if plain {
                ClientProtocol::HttpsExcept(vec![reg.clone()])
            } else {
                ClientProtocol::Https
            },
            // One PUT per blob: distribution answers chunked PATCHes slowly (measured 25×).
            use_monolithic_push: true,
            extra_root_certificates: self
                .opts
                .ca_certs
                .iter()
                .map(|pem| oci_client::client::Certificate {
                    encoding: oci_client::client::CertificateEncoding::Pem,
                    data: pem.clone(),
                })
                .collect(),
            ..Default::default()
        };
        let client = Client::try_from(config).map_err(|e| Self::err(r, "client setup", e))?;
        let auth = match self.opts.credentials.iter().find(|(r, _)| *r == reg) {
            Some((_, c)) => c.to_auth(),
            None if self.opts.minters.iter().any(|m| m.registry == reg) => RegistryAuth::Anonymous,
            None => Credentials::for_registry(&reg)?.to_auth(),
        };
        // oci-client would answer a challenge by sending these to whatever realm it names:
        // it holds none, and gets its tokens from `auth` (seeded before each operation).
        client
            .store_auth_if_needed(&reg, &RegistryAuth::Anonymous)
            .await;
        self.clients
            .lock()
            .expect("not poisoned")
            .insert(reg, (client.clone(), auth.clone()));
        Ok((client, auth))
    }

    fn plain(&self, r: &ImageRef) -> bool {
        r.is_loopback() || self.opts.insecure.iter().any(|i| i == r.registry())
    }

    /// The capped HTTP client (made once) and the scheme for `r`.
    pub(crate) fn capped(&self, r: &ImageRef) -> Result<(&CappedHttp, &'static str), ImageError> {
        let http = match self.http.get() {
            Some(h) => h,
            None => {
                let h = CappedHttp::new(
                    &self.opts.token_realms,
                    &self.opts.insecure,
                    &self.opts.minters,
                    &self.opts.ca_certs,
                )?;
                self.http.get_or_init(|| h)
            }
        };
        Ok((http, if self.plain(r) { "http" } else { "https" }))
    }

    /// Resolves `r` to its manifest digest (checked against the bytes when `r` names a digest).
    /// The manifest is read up to [`METADATA_CAP`] bytes.
    pub async fn resolve(&self, r: &ImageRef) -> Result<Pinned, ImageError> {
        let (_, auth) = self.client_and_auth(r).await?;
        let (http, scheme) = self.capped(r)?;
        let raw = http
            .manifest(&auth, r, scheme, ACCEPT, METADATA_CAP)
            .await?;
        let actual = sha256(&raw);
        if let Some(want) = r.digest() {
            if want != actual {
                return Err(ImageError::Digest {
                    what: format!("manifest of {r}"),
                    expected: want.to_string(),
                    actual,
                });
            }
        }
        let manifest = Manifest::parse(&raw, &r.to_string())?;
        Ok(Pinned {
            given: r.clone(),
            reference: r.with_digest(&actual),
            digest: actual,
            manifest,
        })
    }

    /// Deletes the manifest `r` names by digest from its repository (every tag on it goes
    /// too); `Ok(false)` when the registry does not allow deletes or no longer has it.
    pub async fn delete_manifest(&self, r: &ImageRef) -> Result<bool, ImageError> {
        let (_, auth) = self.client_and_auth(r).await?;
        let (http, scheme) = self.capped(r)?;
        http.delete_manifest(&auth, r, scheme).await
    }

    /// Resolves `r` when it exists; `None` when the registry answers that it does not.
    pub async fn try_resolve(&self, r: &ImageRef) -> Result<Option<Pinned>, ImageError> {
        match self.resolve(r).await {
            Ok(p) => Ok(Some(p)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The image configuration of a pinned image, read up to [`METADATA_CAP`] bytes.
    pub async fn config(&self, p: &Pinned) -> Result<super::ImageConfig, ImageError> {
        let raw = self
            .blob_bytes(&p.reference, &p.manifest.config, METADATA_CAP)
            .await?;
        super::ImageConfig::parse(&raw, &p.given.to_string())
    }

    /// A small blob (an image configuration) in memory: refused when its descriptor says more
    /// than `cap` bytes, cut off and refused when the registry sends more than the descriptor
    /// says, and checked against its digest.
    pub async fn blob_bytes(
        &self,
        r: &ImageRef,
        d: &Descriptor,
        cap: u64,
    ) -> Result<Vec<u8>, ImageError> {
        if d.size > cap {
            return Err(ImageError::Limit {
                what: format!("blob {} of {r}", d.digest),
                detail: format!(
                    "its descriptor says {} bytes, more than the {cap} a configuration may have",
                    d.size
                ),
            });
        }
        let mut out = Vec::with_capacity(d.size as usize);
        self.stream_blob(r, d, &mut out, &super::Silent, &CancellationToken::new())
            .await?;
        Ok(out)
    }

    /// Streams a blob into the new private file `path`; the stream is cut off at the
    /// descriptor's size and checked against its digest before this returns.
    pub async fn blob_to_file(
        &self,
        r: &ImageRef,
        d: &Descriptor,
        path: &Path,
        progress: &dyn Progress,
        cancel: &CancellationToken,
    ) -> Result<(), ImageError> {
        let f = train_lib::tree::private::create_file(path).map_err(io_err(path))?;
        let mut f = tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::from_std(f));
        self.stream_blob(r, d, &mut f, progress, cancel).await?;
        f.flush().await.map_err(io_err(path))?;
        Ok(())
    }

    /// Pulls blob `d` of `r` into `sink`: at most `d.size` bytes (more is cut off and refused),
    /// then checked against `d.digest` (a mismatch is tampering, a rejection, whichever side
    /// noticed it).
    pub(crate) async fn stream_blob(
        &self,
        r: &ImageRef,
        d: &Descriptor,
        sink: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
        progress: &dyn Progress,
        cancel: &CancellationToken,
    ) -> Result<u64, ImageError> {
        let c = self.client(r, RegistryOperation::Pull).await?;
        let what = format!("blob {} of {r}", d.digest);
        let pull_err =
            |e: &dyn std::fmt::Display| Self::err(r, &format!("blob {} pull", d.digest), e);
        let mut stream = tokio::select! {
            s = c.pull_blob_stream(r.inner(), d.digest.as_str()) => s.map_err(|e| pull_err(&e))?,
            () = cancel.cancelled() => return Err(ImageError::Cancelled),
        };
        let mut ctx = aws_lc_rs::digest::Context::new(&SHA256);
        let mut n = 0u64;
        loop {
            let next = tokio::select! {
                n = stream.next() => n,
                () = cancel.cancelled() => return Err(ImageError::Cancelled),
            };
            let Some(chunk) = next else { break };
            let chunk = chunk.map_err(|e| digest_or(e, &what, pull_err))?;
            n += chunk.len() as u64;
            if n > d.size {
                return Err(ImageError::Limit {
                    what,
                    detail: format!(
                        "the registry sent more than the {} bytes its descriptor says; cut off and refused",
                        d.size
                    ),
                });
            }
            ctx.update(&chunk);
            sink.write_all(&chunk)
                .await
                .map_err(|e| pull_err(&format!("writing it: {e}")))?;
            progress.advance(chunk.len() as u64);
        }
        let actual = format!("sha256:{}", hex::encode(ctx.finish().as_ref()));
        if actual != d.digest || n != d.size {
            return Err(ImageError::Digest {
                what,
                expected: d.digest.clone(),
                actual,
            });
        }
        Ok(n)
    }

    /// Whether `r`'s repository holds `digest`.
    pub async fn has_blob(&self, r: &ImageRef, digest: &str) -> Result<bool, ImageError> {
        let c = self.client(r, RegistryOperation::Pull).await?;
        c.blob_exists(r.inner(), digest)
            .await
            .map_err(|e| Self::err(r, &format!("blob {digest} check"), e))
    }

    /// Cross-repository mount within one registry; `false` when the registry declines (the
    /// blob must then be sent) or cannot be reached for it (the send then says why).
    pub async fn mount(&self, to: &ImageRef, from: &ImageRef, digest: &str) -> bool {
        if to.registry() != from.registry() {
            return false;
        }
        let Ok((_, auth)) = self.client_and_auth(to).await else {
            return false;
        };
        let Ok((http, scheme)) = self.capped(to) else {
            return false;
        };
        match http.mount(&auth, to, from, digest, scheme).await {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "mount failed; the blob is sent instead");
                false
            }
        }
    }

    /// Pushes a blob whose digest is not known yet, streamed from `rx` in chunked uploads (one
    /// PATCH per item: feed it large items); returns the digest the registry accepted.
    pub async fn push_stream(
        &self,
        to: &ImageRef,
        rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
        progress: &dyn Progress,
    ) -> Result<(String, u64), ImageError> {
        let c = self.client(to, RegistryOperation::Push).await?;
        let p = progress.clone_box();
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|b| (Ok(b), rx))
        })
        .inspect_ok(move |b: &bytes::Bytes| p.advance(b.len() as u64));
        let r = c
            .push_blob_stream_chunked(to.inner(), stream)
            .await
            .map_err(|e| Self::err(to, "layer push", e))?;
        Ok((r.blob_digest, r.size))
    }

    /// Pushes a small blob from memory.
    pub async fn push_bytes(&self, to: &ImageRef, bytes: Vec<u8>) -> Result<String, ImageError> {
        let c = self.client(to, RegistryOperation::Push).await?;
        let d = sha256(&bytes);
        if !self.has_blob(to, &d).await? {
            c.push_blob(to.inner(), bytes, &d)
                .await
                .map_err(|e| Self::err(to, &format!("blob {d} push"), e))?;
        }
        Ok(d)
    }

    /// Copies blob `digest` of `size` bytes from `from` to `to`, streamed (never held whole).
    pub async fn copy_blob(
        &self,
        from: &ImageRef,
        to: &ImageRef,
        digest: &str,
        size: u64,
        progress: &dyn Progress,
    ) -> Result<(), ImageError> {
        let src = self.client(from, RegistryOperation::Pull).await?;
        let dst = self.client(to, RegistryOperation::Push).await?;
        let p = progress.clone_box();
        let mut pulled = src
            .pull_blob_stream(from.inner(), digest)
            .await
            .map_err(|e| Self::err(from, &format!("blob {digest} pull"), e))?;
        // Download and upload overlap: the pull runs in its own task, a few MiB ahead of the
        // push (bounded, so memory stays flat whatever the blob size).
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(COPY_AHEAD);
        // A source that sends more than the descriptor says is cut off there (the target then
        // refuses the upload): nothing unbounded is relayed.
        tokio::spawn(async move {
            let mut n = 0u64;
            while let Some(mut item) = pulled.next().await {
                if let Ok(b) = &item {
                    n += b.len() as u64;
                    if n > size {
                        item = Err(std::io::Error::other(format!(
                            "the source sent more than the {size} bytes its descriptor says"
                        )));
                    }
                }
                let stop = item.is_err();
                if tx.send(item).await.is_err() || stop {
                    break;
                }
            }
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
        .map_err(oci_client::errors::OciDistributionError::from)
        .inspect_ok(move |b| p.advance(b.len() as u64));
        dst.push_blob_stream(to.inner(), stream, digest, Some(size))
            .await
            .map_err(|e| Self::err(to, &format!("blob {digest} copy from {from}"), e))?;
        Ok(())
    }

    /// Pushes a manifest under `to` (a tag); returns its digest.
    pub async fn push_manifest(
        &self,
        to: &ImageRef,
        raw: Vec<u8>,
        media_type: &str,
    ) -> Result<String, ImageError> {
        let c = self.client(to, RegistryOperation::Push).await?;
        let d = sha256(&raw);
        let ct = media_type
            .parse()
            .map_err(|e| Self::err(to, "manifest push", e))?;
        c.push_manifest_raw(to.inner(), raw, ct)
            .await
            .map_err(|e| Self::err(to, "manifest push", e))?;
        Ok(d)
    }
}

/// A stream error: `oci-client`'s own digest check (it verifies the blob too, and reports a
/// mismatch as a stream error at the end) is tampering like ours; anything else is `other`.
fn digest_or(
    e: std::io::Error,
    what: &str,
    other: impl FnOnce(&dyn std::fmt::Display) -> ImageError,
) -> ImageError {
    match e
        .get_ref()
        .and_then(|i| i.downcast_ref::<oci_client::errors::DigestError>())
    {
        Some(oci_client::errors::DigestError::VerificationError { expected, actual }) => {
            ImageError::Digest {
                what: what.to_string(),
                expected: expected.clone(),
                actual: actual.clone(),
            }
        }
        _ => other(&e),
    }
}
