//! The file step both formats share: one file of the train directory through a cipher into a
//! private sink (a staging or output directory), with the errors named by the file: a failed
//! decryption is a rejection of that file, a failed encryption an error.

use crate::crypto::CipherError;
use crate::error::{decrypt_error, ProtocolError, Result};
use crate::tree::{self, open_regular};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// Which way a file goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Way {
    Encrypt,
    Decrypt,
}

/// Runs `cipher` from the file `src` (never through a symlink) into `sink`, flushed; `shown`
/// names the file in errors. `hint` is the expected size (a manifest's), else the file's.
pub(crate) fn through(
    way: Way,
    src: &Path,
    sink: File,
    shown: &str,
    hint: Option<u64>,
    cipher: impl FnOnce(File, &mut BufWriter<File>, u64) -> std::result::Result<u64, CipherError>,
) -> Result<u64> {
    let input = open_regular(src)?;
    let hint = hint.unwrap_or_else(|| input.metadata().map_or(0, |m| m.len()));
    let mut out = BufWriter::new(sink);
    let n = cipher(input, &mut out, hint).map_err(|e| match way {
        Way::Decrypt => decrypt_error(shown, e),
        Way::Encrypt => ProtocolError::Encrypt {
            path: shown.to_string(),
            source: e,
        },
    })?;
    out.flush().map_err(tree::io_err(src))?;
    Ok(n)
}
