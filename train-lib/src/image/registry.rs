//! A thin layer over `oci-client`: one client per registry, plain HTTP only for loopback or
//! explicitly insecure registries, credentials from Docker's configuration, every manifest and
//! blob checked against the digest it was asked for.

use super::assemble::Manifest;
use super::error::io_err;
use super::transfer::Progress;
use super::{Credentials, ImageError, ImageRef};
use aws_lc_rs::digest::{digest, SHA256};
use futures_util::{StreamExt, TryStreamExt};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::{
    IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE,
    OCI_IMAGE_MEDIA_TYPE,
};
use oci_client::secrets::RegistryAuth;
use oci_client::Client;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Registries (`host:port`) spoken to over plain HTTP although not on loopback.
    pub insecure: Vec<String>,
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
}

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
        }
    }

    fn err(r: &ImageRef, what: &str, e: impl std::fmt::Display) -> ImageError {
        ImageError::Registry {
            registry: r.registry().to_string(),
            what: format!("{what} ({})", r),
            reason: e.to_string(),
        }
    }

    async fn client(&self, r: &ImageRef) -> Result<Client, ImageError> {
        Ok(self.client_and_auth(r).await?.0)
    }

    /// One client per registry, holding its credentials (read once).
    async fn client_and_auth(&self, r: &ImageRef) -> Result<(Client, RegistryAuth), ImageError> {
        let reg = r.registry().to_string();
        if let Some(c) = self.clients.lock().expect("not poisoned").get(&reg) {
            return Ok(c.clone());
        }
        let plain = r.is_loopback() || self.opts.insecure.contains(&reg);
        let config = ClientConfig {
            protocol: if plain {
                ClientProtocol::HttpsExcept(vec![reg.clone()])
            } else {
                ClientProtocol::Https
            },
            // One PUT per blob: distribution answers chunked PATCHes slowly (measured 25×).
            use_monolithic_push: true,
            ..Default::default()
        };
        let client = Client::try_from(config).map_err(|e| Self::err(r, "client setup", e))?;
        let auth = Credentials::for_registry(&reg)?.to_auth();
        client.store_auth_if_needed(&reg, &auth).await;
        self.clients
            .lock()
            .expect("not poisoned")
            .insert(reg, (client.clone(), auth.clone()));
        Ok((client, auth))
    }

    /// Resolves `r` to its manifest digest (checked against the bytes when `r` names a digest).
    pub async fn resolve(&self, r: &ImageRef) -> Result<Pinned, ImageError> {
        let (c, auth) = self.client_and_auth(r).await?;
        let (raw, _) = c
            .pull_manifest_raw(r.inner(), &auth, ACCEPT)
            .await
            .map_err(|e| Self::err(r, "manifest pull", e))?;
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

    /// Resolves `r` when it exists; `None` when the registry answers that it does not.
    pub async fn try_resolve(&self, r: &ImageRef) -> Result<Option<Pinned>, ImageError> {
        match self.resolve(r).await {
            Ok(p) => Ok(Some(p)),
            Err(ImageError::Registry { reason, .. })
                if reason.contains("MANIFEST_UNKNOWN")
                    || reason.contains("NAME_UNKNOWN")
                    || reason.contains("404") =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The image configuration of a pinned image.
    pub async fn config(&self, p: &Pinned) -> Result<super::ImageConfig, ImageError> {
        let raw = self
            .blob_bytes(&p.reference, &p.manifest.config.digest)
            .await?;
        super::ImageConfig::parse(&raw, &p.given.to_string())
    }

    /// A small blob (an image configuration) in memory, checked against `digest`.
    pub async fn blob_bytes(&self, r: &ImageRef, digest: &str) -> Result<Vec<u8>, ImageError> {
        let c = self.client(r).await?;
        let mut out = Vec::new();
        c.pull_blob(r.inner(), digest, &mut out)
            .await
            .map_err(|e| Self::err(r, &format!("blob {digest} pull"), e))?;
        let actual = sha256(&out);
        if actual != digest {
            return Err(ImageError::Digest {
                what: format!("blob of {r}"),
                expected: digest.to_string(),
                actual,
            });
        }
        Ok(out)
    }

    /// Streams a blob into `path`; the stream is checked against `digest` before this returns.
    pub async fn blob_to_file(
        &self,
        r: &ImageRef,
        digest: &str,
        path: &Path,
        progress: &dyn Progress,
    ) -> Result<(), ImageError> {
        let c = self.client(r).await?;
        let mut stream = c
            .pull_blob_stream(r.inner(), digest)
            .await
            .map_err(|e| Self::err(r, &format!("blob {digest} pull"), e))?;
        let mut f = tokio::fs::File::create(path).await.map_err(io_err(path))?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| Self::err(r, &format!("blob {digest} pull"), e))?;
            f.write_all(&chunk).await.map_err(io_err(path))?;
            progress.advance(chunk.len() as u64);
        }
        f.flush().await.map_err(io_err(path))?;
        Ok(())
    }

    /// Whether `r`'s repository holds `digest`.
    pub async fn has_blob(&self, r: &ImageRef, digest: &str) -> Result<bool, ImageError> {
        let c = self.client(r).await?;
        c.blob_exists(r.inner(), digest)
            .await
            .map_err(|e| Self::err(r, &format!("blob {digest} check"), e))
    }

    /// Cross-repository mount within one registry; `false` when the registry declines (it then
    /// answers 202 and the blob must be sent).
    pub async fn mount(&self, to: &ImageRef, from: &ImageRef, digest: &str) -> bool {
        if to.registry() != from.registry() {
            return false;
        }
        match self.client(to).await {
            Ok(c) => c.mount_blob(to.inner(), from.inner(), digest).await.is_ok(),
            Err(_) => false,
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
        let c = self.client(to).await?;
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
        let c = self.client(to).await?;
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
        let src = self.client(from).await?;
        let dst = self.client(to).await?;
        let p = progress.clone_box();
        let mut pulled = src
            .pull_blob_stream(from.inner(), digest)
            .await
            .map_err(|e| Self::err(from, &format!("blob {digest} pull"), e))?;
        // Download and upload overlap: the pull runs in its own task, a few MiB ahead of the
        // push (bounded, so memory stays flat whatever the blob size).
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(COPY_AHEAD);
        tokio::spawn(async move {
            while let Some(item) = pulled.next().await {
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
        let c = self.client(to).await?;
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
