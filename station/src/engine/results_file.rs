//! The results archive as every engine writes it: a file only the station's user can read,
//! refused past `limits.results_bytes` as the bytes come (never after the fact: a train that
//! writes 100 GiB of results does not fill the station's disk first).

use super::EngineError;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// The archive being written.
pub struct ResultsFile {
    f: tokio::fs::File,
    path: PathBuf,
    n: u64,
    cap: u64,
}

impl ResultsFile {
    /// Creates `dest` (0600), to hold at most `cap` bytes.
    pub fn create(dest: &Path, cap: u64) -> Result<Self, EngineError> {
        let f = train_lib::tree::private::create_file(dest).map_err(|source| EngineError::Io {
            what: format!("creating {}", dest.display()),
            source,
        })?;
        Ok(Self {
            f: tokio::fs::File::from_std(f),
            path: dest.to_path_buf(),
            n: 0,
            cap,
        })
    }

    fn io(&self) -> impl FnOnce(std::io::Error) -> EngineError + '_ {
        |source| EngineError::Io {
            what: format!("writing {}", self.path.display()),
            source,
        }
    }

    /// Appends `chunk`; the train's failure ([`EngineError::Results`]) past the cap.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), EngineError> {
        self.n += chunk.len() as u64;
        if self.n > self.cap {
            return Err(EngineError::results_limit(self.cap));
        }
        let r = self.f.write_all(chunk).await;
        r.map_err(self.io())
    }

    /// Flushes it; its size.
    pub async fn finish(mut self) -> Result<u64, EngineError> {
        let r = self.f.flush().await;
        r.map_err(self.io())?;
        Ok(self.n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn it_is_private_and_refused_past_the_cap() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("r.tar");
        let mut f = ResultsFile::create(&p, 10).unwrap();
        f.write(b"0123456789").await.unwrap();
        let e = f.write(b"x").await.unwrap_err();
        assert!(matches!(e, EngineError::Results(_)), "{e}");
        assert!(e.to_string().contains("results limit (10 bytes"), "{e}");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mut f = ResultsFile::create(&d.path().join("s.tar"), 10).unwrap();
        f.write(b"abc").await.unwrap();
        assert_eq!(f.finish().await.unwrap(), 3);
    }
}
