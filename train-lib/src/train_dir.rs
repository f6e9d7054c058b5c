//! Format detection and dispatch: callers hold a [`TrainDir`] and need not know the format.

use crate::error::{Rejection, Result};
use crate::keys::{PrivateKey, TrustStore};
use crate::layout;
use crate::report::{Station, StepReport, VerifyReport};
use crate::spec::CreateSpec;
use crate::{legacy, native};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The two train formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// PHT-meDIC 2.0.5.
    Legacy,
    /// This project's authenticated format.
    Native,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Legacy => "legacy",
            Format::Native => "native",
        })
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "legacy" => Ok(Format::Legacy),
            "native" => Ok(Format::Native),
            other => Err(format!("unknown format `{other}` (native or legacy)")),
        }
    }
}

/// The master image a train names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterImage {
    /// A manifest digest its creator signed (native).
    Signed(String),
    /// An image reference nobody signed (legacy `source`): a hint where to look, which a
    /// station trusts only when its own policy names that master.
    Claimed(String),
    /// None.
    None,
}

/// A train directory whose format has been detected from its configuration.
#[derive(Debug, Clone)]
pub struct TrainDir {
    path: PathBuf,
    format: Format,
}

impl TrainDir {
    /// Opens `path` and detects its format: a native configuration says `"format": "pht-native/…"`;
    /// a legacy one has `route` and `file_list` and no `format`.
    pub fn open(path: &Path) -> Result<Self> {
        interrupted(path)?;
        let bytes = layout::read_config(path)?;
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| Rejection::ConfigSchema(e.to_string()))?;
        let format = match v.get("format").and_then(|f| f.as_str()) {
            Some(f) if f.starts_with("pht-native/") => Format::Native,
            Some(f) => return Err(Rejection::ConfigSchema(format!("unknown format `{f}`")).into()),
            None if v.get("route").is_some() && v.get("file_list").is_some() => Format::Legacy,
            None => {
                return Err(Rejection::ConfigSchema(
                    "neither a native (format) nor a PHT-meDIC (route, file_list) configuration"
                        .into(),
                )
                .into())
            }
        };
        Ok(Self {
            path: path.to_path_buf(),
            format,
        })
    }

    /// The detected format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file the train runs, below `pht_train`, when the configuration signs it (native);
    /// `None` for a legacy train (its image's `CMD` names it, unsigned).
    pub fn entrypoint(&self) -> Result<Option<String>> {
        interrupted(&self.path)?;
        match self.format {
            Format::Legacy => Ok(None),
            Format::Native => native::entrypoint(&self.path).map(Some),
        }
    }

    /// The master image the train names: signed by its creator (a native train's digest), or
    /// only claimed (a legacy train's `source`, which no signature covers), or none.
    pub fn master_image(&self) -> Result<MasterImage> {
        interrupted(&self.path)?;
        Ok(match self.format {
            Format::Native => match native::master_image(&self.path)? {
                Some(d) => MasterImage::Signed(d),
                None => MasterImage::None,
            },
            Format::Legacy => {
                let cfg = legacy::config::LegacyConfig::parse(&layout::read_config(&self.path)?)?;
                let tag = cfg.source.tag.as_deref().unwrap_or("latest");
                MasterImage::Claimed(format!("{}:{tag}", cfg.source.address))
            }
        })
    }

    /// Verifies and decrypts in place for a station; unchanged on failure.
    pub fn pre_run(&self, st: &Station<'_>) -> Result<StepReport> {
        interrupted(&self.path)?;
        match self.format {
            Format::Legacy => legacy::pre_run(&self.path, st),
            Format::Native => native::pre_run(&self.path, st),
        }
    }

    /// Hashes, signs, re-encrypts and rewraps after the run; unchanged on failure.
    pub fn post_run(&self, st: &Station<'_>) -> Result<StepReport> {
        interrupted(&self.path)?;
        match self.format {
            Format::Legacy => legacy::post_run(&self.path, st),
            Format::Native => native::post_run(&self.path, st),
        }
    }

    /// Every check that needs no private key.
    pub fn verify(&self, trust: &TrustStore) -> Result<VerifyReport> {
        interrupted(&self.path)?;
        match self.format {
            Format::Legacy => legacy::verify(&self.path, trust),
            Format::Native => native::verify(&self.path, trust),
        }
    }

    /// The creator's decrypted results, written to the new directory `out`.
    pub fn results(
        &self,
        creator: &PrivateKey,
        trust: &TrustStore,
        out: &Path,
    ) -> Result<StepReport> {
        interrupted(&self.path)?;
        match self.format {
            Format::Legacy => legacy::results(&self.path, creator, trust, out),
            Format::Native => native::results(&self.path, creator, trust, out),
        }
    }
}

pub use crate::allowance::Allowance;

/// What the layers of the train whose `train_config.json` is `config` may unpack to, decided
/// from the configuration before anything else is unpacked: for a native train, exactly what
/// its signed configuration lists (its signatures are checked first); `None` for a legacy
/// train, whose configuration signs no sizes (a station applies its own limit).
pub fn unpack_allowance(config: &[u8]) -> Result<Option<Allowance>> {
    let v: serde_json::Value =
        serde_json::from_slice(config).map_err(|e| Rejection::ConfigSchema(e.to_string()))?;
    match v.get("format") {
        Some(_) => native::unpack_allowance(config).map(Some),
        None => Ok(None),
    }
}

/// Creates a train of `format` in the new directory `out`.
pub fn create(spec: &CreateSpec<'_>, format: Format, out: &Path) -> Result<StepReport> {
    match format {
        Format::Legacy => legacy::create(spec, out),
        Format::Native => native::create(spec, out),
    }
}

/// Refuses a directory that a killed in-place pre-run left partly decrypted.
fn interrupted(dir: &Path) -> Result<()> {
    let marker = dir.join(crate::tree::rewrite::MARKER);
    if marker.exists() {
        return Err(Rejection::Interrupted(marker.display().to_string()).into());
    }
    Ok(())
}
