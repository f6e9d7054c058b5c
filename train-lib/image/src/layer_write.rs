//! Packing a train directory into a deterministic layer: tar → diff_id hasher → gzip → blob
//! hasher → a sink (the upload). The same directory gives the same bytes on every machine:
//! entries sorted, mtime 0, owner root, modes 0755/0644, gzip without a timestamp.

use super::error::io_err;
use super::ImageError;
use aws_lc_rs::digest::{Context, SHA256};
use flate2::write::GzEncoder;
use flate2::Compression;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use train_lib::tree::EntryKind;

struct Hashing<W> {
    inner: W,
    ctx: Context,
    n: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.ctx.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn hashing<W>(inner: W) -> Hashing<W> {
    Hashing {
        inner,
        ctx: Context::new(&SHA256),
        n: 0,
    }
}

fn hex_digest(ctx: Context) -> String {
    format!("sha256:{}", hex::encode(ctx.finish().as_ref()))
}

/// Owner applied to the entries of a tree appended with [`append_tree`].
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    /// uid
    pub uid: u64,
    /// gid
    pub gid: u64,
}

/// Appends `dir`'s content under `prefix` (e.g. `opt`), normalised as described in the module
/// documentation: the configuration file first (a reader checks it before it unpacks anything
/// else), then every other entry in the protocol's walk order; `owned` lists top-level names
/// (below `prefix`) whose entries get `owner` instead of root, so a non-root container user can
/// write them. The walk is iterative and refuses links, devices and unnamable entries.
pub fn append_tree<W: Write>(
    b: &mut tar::Builder<W>,
    dir: &Path,
    prefix: &str,
    owned: &[&str],
    owner: Owner,
) -> Result<(), ImageError> {
    let root = Owner { uid: 0, gid: 0 };
    let mut h = dir_header(root);
    b.append_data(&mut h, format!("{prefix}/"), io::empty())
        .map_err(io_err(dir))?;
    let entries = train_lib::tree::walk(dir).map_err(|e| ImageError::Io {
        path: dir.to_path_buf(),
        cause: io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
    })?;
    let (first, rest): (Vec<_>, Vec<_>) = entries
        .into_iter()
        .partition(|e| e.path == train_lib::layout::CONFIG);
    for e in first.into_iter().chain(rest) {
        let top = e.path.split('/').next().unwrap_or_default();
        let o = if owned.contains(&top) { owner } else { root };
        let path = dir.join(&e.path);
        match e.kind {
            EntryKind::Dir => {
                let mut h = dir_header(o);
                b.append_data(&mut h, format!("{prefix}/{}/", e.path), io::empty())
                    .map_err(io_err(&path))?;
            }
            EntryKind::File(_) => {
                let f = train_lib::tree::open_regular(&path).map_err(|e| ImageError::Io {
                    path: path.clone(),
                    cause: io::Error::other(e.to_string()),
                })?;
                // Size and mode from the open file, not from the walk: what is sent is what
                // the header says.
                let meta = f.metadata().map_err(io_err(&path))?;
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(if meta.permissions().mode() & 0o111 != 0 {
                    0o755
                } else {
                    0o644
                });
                h.set_uid(o.uid);
                h.set_gid(o.gid);
                h.set_mtime(0);
                h.set_size(meta.len());
                let len = meta.len();
                b.append_data(&mut h, format!("{prefix}/{}", e.path), f.take(len))
                    .map_err(io_err(&path))?;
            }
        }
    }
    Ok(())
}

fn dir_header(o: Owner) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_uid(o.uid);
    h.set_gid(o.gid);
    h.set_mtime(0);
    h.set_size(0);
    h
}

/// The digests and size of a written layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDigests {
    /// `sha256:` of the gzip bytes.
    pub digest: String,
    /// `sha256:` of the tar bytes.
    pub diff_id: String,
    /// Size of the gzip bytes.
    pub size: u64,
}

/// Writes `train_dir` as the layer `opt/…` (gzip) into `sink`; returns the digests and `sink`.
pub fn write_layer_to<W: Write>(
    train_dir: &Path,
    sink: W,
) -> Result<(LayerDigests, W), ImageError> {
    let blob = hashing(sink);
    // Train content is ciphertext and does not compress; stored deflate blocks keep gzip (which
    // every engine expects) at copy speed.
    let gz = GzEncoder::new(blob, Compression::none());
    let mut b = tar::Builder::new(hashing(gz));
    b.mode(tar::HeaderMode::Deterministic);
    append_tree(
        &mut b,
        train_dir,
        train_lib::layout::IN_LAYER,
        &[],
        Owner { uid: 0, gid: 0 },
    )?;
    let tar_w = b.into_inner().map_err(io_err(train_dir))?;
    let diff_id = hex_digest(tar_w.ctx);
    let mut blob = tar_w.inner.finish().map_err(io_err(train_dir))?;
    blob.flush().map_err(io_err(train_dir))?;
    let d = LayerDigests {
        size: blob.n,
        digest: hex_digest(blob.ctx),
        diff_id,
    };
    Ok((d, blob.inner))
}

/// A writer that hands its bytes to an async consumer in chunks of `chunk` bytes (for blocking
/// producers such as tar writers feeding an upload). Dropping it ends the stream.
pub struct ChunkSender {
    tx: tokio::sync::mpsc::Sender<bytes::Bytes>,
    buf: Vec<u8>,
    chunk: usize,
}

impl ChunkSender {
    /// A sender and the receiving end; at most `depth` chunks wait in between.
    pub fn channel(
        chunk: usize,
        depth: usize,
    ) -> (Self, tokio::sync::mpsc::Receiver<bytes::Bytes>) {
        let (tx, rx) = tokio::sync::mpsc::channel(depth);
        (
            Self {
                tx,
                buf: Vec::with_capacity(chunk),
                chunk,
            },
            rx,
        )
    }
}

impl Write for ChunkSender {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = b.len().min(self.chunk - self.buf.len());
        self.buf.extend_from_slice(&b[..n]);
        if self.buf.len() == self.chunk {
            self.flush()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let full = std::mem::replace(&mut self.buf, Vec::with_capacity(self.chunk));
            self.tx
                .blocking_send(bytes::Bytes::from(full))
                .map_err(|_| io::Error::other("the consumer stopped reading"))?;
        }
        Ok(())
    }
}

/// Reads a layer file back as an uncompressed tar stream (gzip detected by its magic).
pub fn open_layer(path: &Path) -> Result<Box<dyn io::Read + Send>, ImageError> {
    use std::io::{BufRead, BufReader};
    let mut r = BufReader::with_capacity(1 << 20, File::open(path).map_err(io_err(path))?);
    let gz = r
        .fill_buf()
        .map_err(io_err(path))?
        .starts_with(&[0x1f, 0x8b]);
    Ok(if gz {
        Box::new(flate2::bufread::MultiGzDecoder::new(r))
    } else {
        Box::new(r)
    })
}

#[cfg(test)]
mod tests {
    use super::super::{read_layer, LayerRole, OptTree};
    use super::*;
    use std::fs;

    #[test]
    fn same_tree_same_bytes_and_it_reads_back() {
        let src = tempfile::tempdir().unwrap();
        fs::create_dir_all(src.path().join("pht_train/sub")).unwrap();
        fs::create_dir_all(src.path().join("pht_results")).unwrap();
        fs::write(src.path().join("pht_train/sub/b.bin"), vec![7u8; 100_000]).unwrap();
        fs::write(src.path().join("pht_train/a.py"), b"x").unwrap();
        fs::write(src.path().join("train_config.json"), b"{}").unwrap();
        let (a, bytes_a) = write_layer_to(src.path(), Vec::new()).unwrap();
        // A different mtime must not change the layer.
        let f = File::options()
            .write(true)
            .open(src.path().join("pht_train/a.py"))
            .unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(99))
            .unwrap();
        let (b, bytes_b) = write_layer_to(src.path(), Vec::new()).unwrap();
        assert_eq!(a, b);
        assert_eq!(bytes_a, bytes_b);
        assert_eq!(a.size, bytes_a.len() as u64);
        let blob = src.path().join("layer.gz");
        fs::write(&blob, &bytes_a).unwrap();
        let back = tempfile::tempdir().unwrap();
        let mut t = OptTree::new(back.path());
        read_layer(
            open_layer(&blob).unwrap(),
            &a.digest,
            LayerRole::Train,
            Some(&mut t),
        )
        .unwrap();
        assert_eq!(
            fs::read(back.path().join("pht_train/sub/b.bin")).unwrap(),
            vec![7u8; 100_000]
        );
        assert_eq!(t.files(), 3);
    }

    #[test]
    fn refuses_symlinks_in_the_source() {
        let src = tempfile::tempdir().unwrap();
        fs::create_dir_all(src.path().join("pht_train")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.path().join("pht_train/x")).unwrap();
        assert!(matches!(
            write_layer_to(src.path(), Vec::new()),
            Err(ImageError::Io { .. })
        ));
    }
}
