//! A pushed train state's `train_config.json`, read from its top layer as the layer streams in
//! and with the download stopped as soon as it is found. The route service counts a push only
//! when this configuration carries the signature of the station whose turn it was; reading the
//! whole layer for that would cost every move a download of the train (layers this project
//! writes put the configuration first, so a few KiB are read of a layer of any size).
//!
//! The layer's digest is not checked when the read stops early: nothing here relies on it. The
//! configuration is believed for its signatures alone, checked by the caller with pinned keys;
//! the files are the next station's to check against it.

use super::layer_read::find_config;
use super::registry::{Pinned, Registry};
use super::{ImageError, ReadLimits};
use std::io::{BufRead, BufReader, Read};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

/// Bytes in flight between the download and the tar reader.
const PIPE: usize = 256 << 10;

/// The configuration in the top layer of `p`, or `None` when that layer holds none. Bounded by
/// the layer's descriptor size (no more is read), by `limits` (what the tar reader accepts) and
/// by `within` (the whole read).
pub async fn state_config(
    reg: &Registry,
    p: &Pinned,
    limits: ReadLimits,
    within: Duration,
) -> Result<Option<Vec<u8>>, ImageError> {
    let Some(top) = p.manifest.layers.last().cloned() else {
        return Ok(None);
    };
    let (mut tx, rx) = tokio::io::duplex(PIPE);
    let cancel = CancellationToken::new();
    let handle = tokio::runtime::Handle::current();
    let digest = top.digest.clone();
    let reader = tokio::task::spawn_blocking(move || {
        let rd = BufReader::with_capacity(64 << 10, Bridge { rx, handle });
        find_config(layer(rd)?, &digest, limits)
    });
    let download = async {
        let r = reg
            .stream_blob(&p.reference, &top, &mut tx, &super::Silent, &cancel)
            .await;
        // The reader sees the end of the stream (or has stopped reading already).
        drop(tx);
        r
    };
    let both = async { tokio::join!(download, reader) };
    let (downloaded, read) =
        tokio::time::timeout(within, both)
            .await
            .map_err(|_| ImageError::Registry {
                registry: p.reference.registry().to_string(),
                what: format!(
                    "the configuration in layer {} of {}",
                    top.digest, p.reference
                ),
                reason: format!("not read within {} s", within.as_secs()),
            })?;
    let read = read.map_err(|e| ImageError::Registry {
        registry: p.reference.registry().to_string(),
        what: format!("layer {} of {}", top.digest, p.reference),
        reason: format!("the reader stopped: {e}"),
    })?;
    match (read, downloaded) {
        // Found: the download was cut short on purpose, whatever it says about that.
        (Ok(Some(cfg)), _) => Ok(Some(cfg)),
        // Read to the end without one: the download must have completed and checked out.
        (Ok(None), Ok(_)) => Ok(None),
        // A download error explains a reader's error (a truncated stream), not the reverse.
        (_, Err(e)) => Err(e),
        (Err(e), Ok(_)) => Err(e),
    }
}

/// Gzip or plain tar, as the layer's first bytes say.
fn layer<R: BufRead + Send + 'static>(mut r: R) -> Result<Box<dyn Read + Send>, ImageError> {
    let gz = r
        .fill_buf()
        .map_err(|cause| ImageError::Io {
            path: "the layer stream".into(),
            cause,
        })?
        .starts_with(&[0x1f, 0x8b]);
    Ok(if gz {
        Box::new(flate2::bufread::MultiGzDecoder::new(r))
    } else {
        Box::new(r)
    })
}

/// The download's bytes, for a blocking reader.
struct Bridge {
    rx: tokio::io::DuplexStream,
    handle: tokio::runtime::Handle,
}

impl Read for Bridge {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.handle.block_on(self.rx.read(buf))
    }
}
