//! Moving trains between registries and train directories: pull a train's `/opt`, push its next
//! image, build a train image on a master, check a train's lineage.

use super::assemble::{next_image, ImageConfig, LABEL_MASTER, LABEL_MASTER_REPO};
use super::error::io_err;
use super::layer_read::{read_layer, LayerRole, OptTree};
use super::layer_write::{open_layer, write_layer_to, ChunkSender};
use super::registry::{Pinned, Registry};
use super::{ImageError, ImageRef};
use aws_lc_rs::digest::{Context, SHA256};
use std::fs;
use std::io::Write;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Progress of one transfer. Implemented by the binaries' progress bars.
pub trait Progress: Send + Sync {
    /// `n` more bytes done.
    fn advance(&self, n: u64);
    /// The transfer is over.
    fn finish(&self) {}
    /// A handle to the same transfer, for a stream that must own one.
    fn clone_box(&self) -> Box<dyn Progress>;
}

/// Creates a [`Progress`] for each transfer.
pub trait Reporter: Send + Sync {
    /// A new transfer of `total` bytes, described by `what`.
    fn task(&self, what: &str, total: u64) -> Box<dyn Progress>;
}

/// No progress output.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn advance(&self, _: u64) {}
    fn clone_box(&self) -> Box<dyn Progress> {
        Box::new(Silent)
    }
}

impl Reporter for Silent {
    fn task(&self, _: &str, _: u64) -> Box<dyn Progress> {
        Box::new(Silent)
    }
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

/// What a push did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PushReport {
    /// The reference pushed to (a tag).
    pub reference: String,
    /// The manifest digest.
    pub digest: String,
    /// The digest of the new train layer (the encrypted train and results), when one was made.
    pub layer: Option<String>,
    /// Blobs the target already had.
    pub skipped: usize,
    /// Blobs mounted from another repository of the same registry.
    pub mounted: usize,
    /// Blobs sent (streamed copies and the new layer).
    pub sent: usize,
    /// Bytes sent.
    pub bytes_sent: u64,
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

/// Pulls `r` and unpacks its train layers' `/opt` into `work/opt`. Base layers are those of
/// `repo:base` when that image exists and is a prefix of this one (PHT-meDIC's rebase target),
/// otherwise all but the last layer.
pub async fn pull_train(
    reg: &Registry,
    r: &ImageRef,
    work: &Path,
    reporter: &dyn Reporter,
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
    let dir = work.join("opt");
    fs::create_dir(&dir).map_err(io_err(&dir))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(io_err(&dir))?;
    let blobs = work.join("blobs");
    fs::create_dir_all(&blobs).map_err(io_err(&blobs))?;
    let mut downloaded = 0;
    let mut tree = OptTree::new(&dir);
    for (i, layer) in layers.iter().enumerate().skip(base_count) {
        let path = blobs.join(layer.digest.replace(':', "-"));
        let p = reporter.task(&format!("pull {}", short(&layer.digest)), layer.size);
        reg.blob_to_file(&pinned.reference, &layer.digest, &path, p.as_ref())
            .await?;
        p.finish();
        downloaded += layer.size;
        let digest = layer.digest.clone();
        let want_diff = diff_ids[i].clone();
        tree = tokio::task::spawn_blocking(move || -> Result<OptTree, ImageError> {
            let mut rd = DiffIdReader {
                inner: open_layer(&path)?,
                ctx: Context::new(&SHA256),
            };
            read_layer(&mut rd, &digest, LayerRole::Train, Some(&mut tree))?;
            io::copy(&mut rd, &mut io::sink()).map_err(io_err(&path))?;
            let got = format!("sha256:{}", hex::encode(rd.ctx.finish().as_ref()));
            let _ = fs::remove_file(&path);
            if got != want_diff {
                return Err(ImageError::Digest {
                    what: format!("uncompressed layer {digest} (config diff_id)"),
                    expected: want_diff,
                    actual: got,
                });
            }
            Ok(tree)
        })
        .await
        .expect("layer reader does not panic")?;
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
    reporter: &dyn Reporter,
) -> Result<usize, ImageError> {
    let blobs = work.join("base-blobs");
    fs::create_dir_all(&blobs).map_err(io_err(&blobs))?;
    let mut n = 0;
    for layer in &pulled.pinned.manifest.layers[skip.min(pulled.base_count)..pulled.base_count] {
        let path = blobs.join(layer.digest.replace(':', "-"));
        let p = reporter.task(&format!("scan {}", short(&layer.digest)), layer.size);
        reg.blob_to_file(&pulled.pinned.reference, &layer.digest, &path, p.as_ref())
            .await?;
        p.finish();
        let digest = layer.digest.clone();
        tokio::task::spawn_blocking(move || -> Result<(), ImageError> {
            let r = read_layer(open_layer(&path)?, &digest, LayerRole::Base, None);
            let _ = fs::remove_file(&path);
            r
        })
        .await
        .expect("layer reader does not panic")?;
        n += 1;
    }
    Ok(n)
}

/// Chunk size of a streamed layer push (one PATCH each).
const PUSH_CHUNK: usize = 8 << 20;

fn short(d: &str) -> &str {
    &d[..d.len().min(19)]
}

/// Pushes the image made of the first `base_count` layers of `base`, `config` and `train_dir` as
/// the train layer to `to`.
#[allow(clippy::too_many_arguments)]
async fn push_image(
    reg: &Registry,
    base: &Pinned,
    base_count: usize,
    config: &ImageConfig,
    train_dir: &Path,
    to: &ImageRef,
    labels: &[(&str, &str)],
    cmd: Option<Vec<String>>,
    reporter: &dyn Reporter,
) -> Result<PushReport, ImageError> {
    // The layer is written and pushed at once: the writer (tar, diff_id, gzip, digest) runs on a
    // blocking thread and hands 8 MiB chunks to the upload; nothing goes to disk.
    let (sink, rx) = ChunkSender::channel(PUSH_CHUNK, 4);
    let dir = train_dir.to_path_buf();
    let writer = tokio::task::spawn_blocking(move || {
        write_layer_to(&dir, sink).map(|(d, mut sink)| {
            let _ = sink.flush();
            d
        })
    });
    let p = reporter.task("push train layer", 0);
    let pushed = reg.push_stream(to, rx, p.as_ref()).await;
    p.finish();
    let layer = writer.await.expect("layer writer does not panic")?;
    let (digest, size) = pushed?;
    if digest != layer.digest || size != layer.size {
        return Err(ImageError::Digest {
            what: format!("train layer pushed to {to}"),
            expected: layer.digest,
            actual: digest,
        });
    }
    let next = next_image(&base.manifest, base_count, config, &layer, labels, cmd)?;
    let mut rep = move_blobs(reg, &base.reference, to, &next.base_layers, reporter).await?;
    rep.sent += 1;
    rep.bytes_sent += layer.size;
    rep.layer = Some(layer.digest.clone());
    reg.push_bytes(to, next.config).await?;
    rep.digest = reg
        .push_manifest(to, next.manifest, &next.media_type)
        .await?;
    Ok(rep)
}

/// Pushes the next image of a pulled train: its base layers plus `train_dir` as the one train
/// layer, to `to`.
pub async fn push_next(
    reg: &Registry,
    pulled: &PulledTrain,
    train_dir: &Path,
    to: &ImageRef,
    labels: &[(&str, &str)],
    reporter: &dyn Reporter,
) -> Result<PushReport, ImageError> {
    push_image(
        reg,
        &pulled.pinned,
        pulled.base_count,
        &pulled.config,
        train_dir,
        to,
        labels,
        None,
        reporter,
    )
    .await
}

/// Builds a train image from `train_dir` on `master` and pushes it to `tag`. `cmd` is the
/// entrypoint file under `/opt/pht_train`. The master digest and `labels` are recorded as labels.
pub async fn build_train_image(
    reg: &Registry,
    train_dir: &Path,
    master: &Pinned,
    tag: &ImageRef,
    cmd: Vec<String>,
    labels: &[(&str, &str)],
    reporter: &dyn Reporter,
) -> Result<PushReport, ImageError> {
    let config = reg.config(master).await?;
    let repo = format!("{}/{}", master.given.registry(), master.given.repository());
    let mut all: Vec<(&str, &str)> = vec![
        (LABEL_MASTER, master.digest.as_str()),
        (LABEL_MASTER_REPO, repo.as_str()),
    ];
    all.extend_from_slice(labels);
    push_image(
        reg,
        master,
        master.manifest.layers.len(),
        &config,
        train_dir,
        tag,
        &all,
        Some(cmd),
        reporter,
    )
    .await
}

/// The outcome of a lineage check.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Lineage {
    /// The master's layer count.
    pub master_layers: usize,
    /// The train's layer count.
    pub train_layers: usize,
    /// The master digest the train's label records, if any.
    pub labelled_master: Option<String>,
}

/// Checks that `train` descends from `master` by layer digests: the master's layers (and their
/// diff_ids) are exactly the train's base layers, and the train adds its train layers only.
pub fn lineage(
    train: &PulledTrain,
    master: &Pinned,
    master_config: &ImageConfig,
) -> Result<Lineage, ImageError> {
    let t = &train.pinned.manifest.layers;
    let m = &master.manifest.layers;
    let labelled = train.config.label(LABEL_MASTER).map(String::from);
    if let Some(l) = &labelled {
        if *l != master.digest {
            return Err(ImageError::Lineage(format!(
                "the train is labelled as built on {l}, not on {} ({})",
                master.digest, master.given
            )));
        }
    }
    if m.len() > train.base_count {
        return Err(ImageError::Lineage(format!(
            "the master has {} layers but the train only {} base layers",
            m.len(),
            train.base_count
        )));
    }
    for (i, (a, b)) in t.iter().zip(m.iter()).enumerate() {
        if a.digest != b.digest {
            return Err(ImageError::Lineage(format!(
                "layer {i}: train has {}, master has {}",
                a.digest, b.digest
            )));
        }
    }
    let (td, md) = (train.config.diff_ids(), master_config.diff_ids());
    if td.len() < md.len() || td[..md.len()] != md[..] {
        return Err(ImageError::Lineage(
            "the train's diff_ids do not start with the master's".into(),
        ));
    }
    if m.len() < train.base_count {
        // Layers between the master and the train layer (PHT-meDIC's `:base` adds one holding
        // the empty train directories) must not touch the train paths; they are only allowed when
        // the caller has read them (see `check_base_layers`).
        return Err(ImageError::Lineage(format!(
            "{} layers between the master and the train layer",
            train.base_count - m.len()
        )));
    }
    Ok(Lineage {
        master_layers: m.len(),
        train_layers: t.len(),
        labelled_master: labelled,
    })
}

enum Moved {
    Skipped,
    Mounted,
    Sent(u64),
}

/// Makes `to` hold blob `d` of `from`: skip, mount, or stream it across.
async fn blob_to(
    reg: &Registry,
    from: &ImageRef,
    to: &ImageRef,
    d: &super::Descriptor,
    reporter: &dyn Reporter,
) -> Result<Moved, ImageError> {
    if reg.has_blob(to, &d.digest).await? {
        return Ok(Moved::Skipped);
    }
    if reg.mount(to, from, &d.digest).await {
        return Ok(Moved::Mounted);
    }
    let p = reporter.task(&format!("copy {}", short(&d.digest)), d.size);
    reg.copy_blob(from, to, &d.digest, d.size, p.as_ref())
        .await?;
    p.finish();
    Ok(Moved::Sent(d.size))
}

/// Makes `to` hold every blob of `blobs` (all at once); the report counts how.
async fn move_blobs(
    reg: &Registry,
    from: &ImageRef,
    to: &ImageRef,
    blobs: &[super::Descriptor],
    reporter: &dyn Reporter,
) -> Result<PushReport, ImageError> {
    let mut rep = PushReport {
        reference: to.to_string(),
        digest: String::new(),
        layer: None,
        skipped: 0,
        mounted: 0,
        sent: 0,
        bytes_sent: 0,
    };
    let moves = blobs.iter().map(|d| blob_to(reg, from, to, d, reporter));
    for how in futures_util::future::try_join_all(moves).await? {
        match how {
            Moved::Skipped => rep.skipped += 1,
            Moved::Mounted => rep.mounted += 1,
            Moved::Sent(n) => {
                rep.sent += 1;
                rep.bytes_sent += n;
            }
        }
    }
    Ok(rep)
}

/// Copies the image `from` to `to` blob by blob, all blobs at once: blobs the target has are skipped, blobs in
/// another repository of the same registry are mounted, the rest are streamed across.
pub async fn copy_image(
    reg: &Registry,
    from: &Pinned,
    to: &ImageRef,
    reporter: &dyn Reporter,
) -> Result<PushReport, ImageError> {
    let m = &from.manifest;
    let blobs: Vec<_> = m
        .layers
        .iter()
        .chain(std::iter::once(&m.config))
        .cloned()
        .collect();
    let mut rep = move_blobs(reg, &from.reference, to, &blobs, reporter).await?;
    rep.digest = reg.push_manifest(to, m.raw.clone(), &m.media_type).await?;
    if rep.digest != from.digest {
        return Err(ImageError::Digest {
            what: format!("copied manifest at {to}"),
            expected: from.digest.clone(),
            actual: rep.digest,
        });
    }
    Ok(rep)
}
