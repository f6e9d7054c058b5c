//! Pushing train images: the next image of a pulled train, a new train image on a master, and
//! copies of whole images. Blobs the target has are skipped, blobs in another repository of the
//! same registry mounted, the rest streamed; the train layer is written while it uploads.

use super::assemble::{next_image, ImageConfig, LABEL_MASTER, LABEL_MASTER_REPO};
use super::layer_write::{write_layer_to, ChunkSender};
use super::progress::Reporter;
use super::pull::{short, PulledTrain};
use super::registry::{Pinned, Registry};
use super::{ImageError, ImageRef};
use std::io::Write;
use std::path::Path;
use tokio_util::sync::CancellationToken;

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

/// Chunk size of a streamed layer push (one PATCH each).
const PUSH_CHUNK: usize = 8 << 20;

/// The image a push makes: the first `base_count` layers of `base`, `base`'s configuration
/// rewritten for the new train layer, `labels` and `cmd` set.
struct NewImage<'a> {
    base: &'a Pinned,
    base_count: usize,
    config: &'a ImageConfig,
    labels: &'a [(&'a str, &'a str)],
    cmd: Option<Vec<String>>,
}

/// Pushes `img` with `train_dir` as its train layer to `to`. Cancelled, it stops sending; the
/// manifest (the only thing that makes the image exist under `to`) is then not pushed.
async fn push_image(
    reg: &Registry,
    img: NewImage<'_>,
    train_dir: &Path,
    to: &ImageRef,
    reporter: &dyn Reporter,
    cancel: &CancellationToken,
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
    // Dropping the upload on cancellation drops the receiver, which ends the writer.
    let pushed = tokio::select! {
        r = reg.push_stream(to, rx, p.as_ref()) => r,
        () = cancel.cancelled() => Err(ImageError::Cancelled),
    };
    p.finish();
    let layer = writer.await.expect("layer writer does not panic");
    let (digest, size) = pushed?;
    let layer = layer?;
    if digest != layer.digest || size != layer.size {
        return Err(ImageError::Digest {
            what: format!("train layer pushed to {to}"),
            expected: layer.digest,
            actual: digest,
        });
    }
    let next = next_image(
        &img.base.manifest,
        img.base_count,
        img.config,
        &layer,
        img.labels,
        img.cmd,
    )?;
    let mut rep = tokio::select! {
        r = move_blobs(reg, &img.base.reference, to, &next.base_layers, reporter) => r?,
        () = cancel.cancelled() => return Err(ImageError::Cancelled),
    };
    rep.sent += 1;
    rep.bytes_sent += layer.size;
    rep.layer = Some(layer.digest.clone());
    reg.push_bytes(to, next.config).await?;
    if cancel.is_cancelled() {
        return Err(ImageError::Cancelled);
    }
    rep.digest = reg
        .push_manifest(to, next.manifest, &next.media_type)
        .await?;
    Ok(rep)
}

/// Pushes the next image of a pulled train: its base layers plus `train_dir` as the one train
/// layer, to `to`. Cancelled before its manifest is sent, nothing exists under `to`.
pub async fn push_next(
    reg: &Registry,
    pulled: &PulledTrain,
    train_dir: &Path,
    to: &ImageRef,
    labels: &[(&str, &str)],
    reporter: &dyn Reporter,
    cancel: &CancellationToken,
) -> Result<PushReport, ImageError> {
    let img = NewImage {
        base: &pulled.pinned,
        base_count: pulled.base_count,
        config: &pulled.config,
        labels,
        cmd: None,
    };
    push_image(reg, img, train_dir, to, reporter, cancel).await
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
    let img = NewImage {
        base: master,
        base_count: master.manifest.layers.len(),
        config: &config,
        labels: &all,
        cmd: Some(cmd),
    };
    push_image(
        reg,
        img,
        train_dir,
        tag,
        reporter,
        &CancellationToken::new(),
    )
    .await
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
    // HEAD before mounting, although a mount alone would do: distribution rewrites the
    // repository's link file on every mount, and a pull reading it meanwhile got a 500 (seen
    // with eight builds into one repository in route-bench).
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
