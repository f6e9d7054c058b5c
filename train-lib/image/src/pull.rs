//! Pulling a train's `/opt` out of its image, and reading base layers that are not proven to
//! be the master's.
//!
//! Every layer blob is downloaded to a private file first (cut off at its descriptor's size,
//! checked against its digest) and parsed only after it verified. Then the train layers are
//! read twice: once for `train_config.json` alone (our layers put it first, so this stops at
//! once), and once to unpack, capped by what that configuration allows: for a native train
//! exactly the sizes its signed configuration lists, for a legacy train the caller's limits. A
//! 9 MB layer that unpacked to 2 GB before any check is now refused at the cap.

use super::assemble::{ImageConfig, LABEL_MASTER};
use super::error::io_err;
use super::layer_read::{find_config, scan_base_layer, unpack_train_layer, OptTree};
use super::layer_write::open_layer;
use super::progress::Reporter;
use super::registry::{Pinned, Registry};
use super::untar::{CancelRead, ReadLimits};
use super::{Descriptor, ImageError, ImageRef};
use aws_lc_rs::digest::{Context, SHA256};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

/// How a pull reads: progress, caps and cancellation.
#[derive(Clone, Copy)]
pub struct PullOptions<'a> {
    /// Where progress goes.
    pub reporter: &'a dyn Reporter,
    /// Caps on what the train layers (together) and each base layer may unpack to. A native
    /// train is held to its signed sizes too, whichever is smaller.
    pub limits: ReadLimits,
    /// Stops the pull between chunks and entries.
    pub cancel: &'a CancellationToken,
}

/// A train's `/opt` unpacked from its image.
#[derive(Debug)]
pub struct PulledTrain {
    /// The image, pinned.
    pub pinned: Pinned,
    /// Its configuration.
    pub config: ImageConfig,
    /// How many of its layers are base (master) layers; the rest are train layers.
    pub base_count: usize,
    /// The unpacked train directory (mode 0700).
    pub dir: PathBuf,
    /// Bytes downloaded.
    pub downloaded: u64,
}

struct DiffIdReader<R> {
    inner: R,
    ctx: Context,
}

impl<R: Read> Read for DiffIdReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.ctx.update(&buf[..n]);
        Ok(n)
    }
}

/// Compressed bytes a layer may have for `limits.bytes` of content: gzip's stored blocks add 5
/// bytes per 64 KiB, tar 512 per entry and padding; anything real compresses below that.
fn compressed_cap(limits: ReadLimits) -> u64 {
    limits
        .bytes
        .saturating_add(limits.bytes / 64)
        .saturating_add(limits.entries.saturating_mul(1024))
        .saturating_add(1 << 20)
}

/// Pulls `r` and unpacks its train layers' `/opt` into `work/opt` (both created private). Base
/// layers are those of `repo:base` when that image exists and is a prefix of this one
/// (PHT-meDIC's rebase target), otherwise all but the last layer.
pub async fn pull_train(
    reg: &Registry,
    r: &ImageRef,
    work: &Path,
    opts: PullOptions<'_>,
) -> Result<PulledTrain, ImageError> {
    let pinned = reg.resolve(r).await?;
    let config = reg.config(&pinned).await?;
    let layers = &pinned.manifest.layers;
    if layers.is_empty() {
        return Err(ImageError::Unsupported {
            reference: r.to_string(),
            reason: "no layers".into(),
        });
    }
    let mut base_count = layers.len() - 1;
    if config.label(LABEL_MASTER).is_none() && r.tag() != Some("base") {
        if let Some(base) = reg.try_resolve(&r.with_tag("base")).await? {
            let bl = &base.manifest.layers;
            if bl.len() < layers.len() && layers[..bl.len()] == bl[..] {
                base_count = bl.len();
            }
        }
    }
    let diff_ids = config.diff_ids();
    if diff_ids.len() != layers.len() {
        return Err(ImageError::Unsupported {
            reference: r.to_string(),
            reason: format!(
                "{} layers but {} diff_ids in its configuration",
                layers.len(),
                diff_ids.len()
            ),
        });
    }
    let train_layers = &layers[base_count..];
    let compressed: u64 = train_layers.iter().map(|l| l.size).sum();
    if compressed > compressed_cap(opts.limits) {
        return Err(ImageError::Limit {
            what: format!("train layers of {r}"),
            detail: format!(
                "{compressed} bytes to download, more than a train within the limits ({} bytes of content) can be",
                opts.limits.bytes
            ),
        });
    }
    let dir = work.join(train_lib::layout::IN_LAYER);
    train_lib::tree::private::create_dir(&dir).map_err(io_err(&dir))?;
    let blobs = work.join("blobs");
    train_lib::tree::private::create_dir_all(&blobs).map_err(io_err(&blobs))?;
    let mut files = Vec::new();
    for layer in train_layers {
        files.push(download(reg, &pinned.reference, layer, &blobs, "pull", opts).await?);
    }
    let downloaded = compressed;

    // 1. The configuration, before anything is unpacked.
    let mut found = None;
    for (layer, path) in train_layers.iter().zip(&files) {
        let (digest, path, limits, cancel) = (
            layer.digest.clone(),
            path.clone(),
            opts.limits,
            opts.cancel.clone(),
        );
        let cfg = blocking(move || {
            let rd = CancelRead::new(open_layer(&path)?, move || cancel.is_cancelled());
            find_config(rd, &digest, limits)
        })
        .await?;
        if cfg.is_some() {
            found = cfg;
        }
    }
    let limits = match found.as_deref().map(train_lib::unpack_allowance) {
        Some(Ok(Some(a))) => ReadLimits {
            bytes: a.bytes.min(opts.limits.bytes),
            entries: a.entries.min(opts.limits.entries),
        },
        Some(Ok(None)) | None => opts.limits,
        Some(Err(e)) => {
            return Err(super::untar::refused(
                &train_layers[train_layers.len() - 1].digest,
                train_lib::layout::CONFIG_IN_LAYER,
                e.to_string(),
            ))
        }
    };

    // 2. Unpack, within that allowance over all train layers together.
    let mut tree = OptTree::with_limits(&dir, limits);
    for ((layer, path), want_diff) in train_layers
        .iter()
        .zip(files)
        .zip(diff_ids[base_count..].iter().cloned())
    {
        let (digest, cancel) = (layer.digest.clone(), opts.cancel.clone());
        tree = blocking(move || {
            let inner = CancelRead::new(open_layer(&path)?, move || cancel.is_cancelled());
            let mut rd = DiffIdReader {
                inner,
                ctx: Context::new(&SHA256),
            };
            let unpacked = unpack_train_layer(&mut rd, &digest, &mut tree);
            let rest = io::copy(&mut rd, &mut io::sink());
            let _ = std::fs::remove_file(&path);
            unpacked?;
            rest.map_err(|e| super::untar::cancelled_or(e, io_err(&path)))?;
            let got = format!("sha256:{}", hex::encode(rd.ctx.finish().as_ref()));
            if got != want_diff {
                return Err(ImageError::Digest {
                    what: format!("uncompressed layer {digest} (config diff_id)"),
                    expected: want_diff,
                    actual: got,
                });
            }
            Ok(tree)
        })
        .await?;
    }
    Ok(PulledTrain {
        pinned,
        config,
        base_count,
        dir,
        downloaded,
    })
}

/// Reads the base layers `[skip..base_count]` of a pulled train and refuses any that holds
/// content under the train paths (only the train layer may). `skip` is the number of layers
/// proven to be a known master's, which need no reading.
pub async fn scan_base_layers(
    reg: &Registry,
    pulled: &PulledTrain,
    skip: usize,
    work: &Path,
    opts: PullOptions<'_>,
) -> Result<usize, ImageError> {
    let blobs = work.join("base-blobs");
    train_lib::tree::private::create_dir_all(&blobs).map_err(io_err(&blobs))?;
    let mut n = 0;
    for layer in &pulled.pinned.manifest.layers[skip.min(pulled.base_count)..pulled.base_count] {
        if layer.size > compressed_cap(opts.limits) {
            return Err(ImageError::Limit {
                what: format!("base layer {}", layer.digest),
                detail: format!("{} bytes, more than the read limits allow", layer.size),
            });
        }
        let path = download(reg, &pulled.pinned.reference, layer, &blobs, "scan", opts).await?;
        let (digest, limits, cancel) = (layer.digest.clone(), opts.limits, opts.cancel.clone());
        blocking(move || {
            let rd = CancelRead::new(open_layer(&path)?, move || cancel.is_cancelled());
            let r = scan_base_layer(rd, &digest, limits);
            let _ = std::fs::remove_file(&path);
            r
        })
        .await?;
        n += 1;
    }
    Ok(n)
}

/// Downloads `layer` into a private file under `dir`.
async fn download(
    reg: &Registry,
    from: &ImageRef,
    layer: &Descriptor,
    dir: &Path,
    verb: &str,
    opts: PullOptions<'_>,
) -> Result<PathBuf, ImageError> {
    let path = dir.join(layer.digest.replace(':', "-"));
    let p = opts
        .reporter
        .task(&format!("{verb} {}", short(&layer.digest)), layer.size);
    let r = reg
        .blob_to_file(from, layer, &path, p.as_ref(), opts.cancel)
        .await;
    p.finish();
    r.map(|()| path)
}

/// Runs blocking layer work to its end (it is never abandoned while it still writes: a
/// cancelled job waits for it to notice).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ImageError> + Send + 'static,
) -> Result<T, ImageError> {
    tokio::task::spawn_blocking(f)
        .await
        .expect("layer reader does not panic")
}

/// The first 19 characters of a digest, for progress lines.
pub(crate) fn short(d: &str) -> &str {
    &d[..d.len().min(19)]
}
