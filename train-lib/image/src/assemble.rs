//! Manifests and image configurations, and the next image of a train: the base (master) layers
//! unchanged plus one new train layer. Nothing else the run wrote survives, because the run's
//! container filesystem is never committed.

use super::{ImageError, LayerDigests};
use oci_client::manifest::{
    IMAGE_DOCKER_LAYER_GZIP_MEDIA_TYPE, IMAGE_LAYER_GZIP_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE,
    OCI_IMAGE_MEDIA_TYPE,
};
use serde_json::{json, Value};

/// Label: digest of the master image manifest the train is built on.
pub const LABEL_MASTER: &str = "org.pht.master.digest";
/// Label: `registry/repository` of the master image (where to find it by its digest).
pub const LABEL_MASTER_REPO: &str = "org.pht.master.repository";
/// Label: the train id.
pub const LABEL_TRAIN_ID: &str = "org.pht.train.id";

/// A content descriptor of a manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Descriptor {
    /// Media type.
    pub media_type: String,
    /// `sha256:…`
    pub digest: String,
    /// Bytes.
    pub size: u64,
    raw: Value,
}

impl Descriptor {
    fn parse(v: &Value, what: &str) -> Result<Self, ImageError> {
        let bad = |f: &str| ImageError::Unsupported {
            reference: what.to_string(),
            reason: format!("descriptor without a valid `{f}`"),
        };
        let digest = v["digest"].as_str().ok_or_else(|| bad("digest"))?;
        if !digest.starts_with("sha256:")
            || digest.len() != 71
            || !digest[7..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad("digest"));
        }
        Ok(Self {
            media_type: v["mediaType"]
                .as_str()
                .ok_or_else(|| bad("mediaType"))?
                .to_string(),
            digest: digest.to_string(),
            size: v["size"].as_u64().ok_or_else(|| bad("size"))?,
            raw: v.clone(),
        })
    }
}

/// An image manifest (Docker schema 2 or OCI), as bytes and parsed.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The bytes its digest is of.
    pub raw: Vec<u8>,
    /// Its media type.
    pub media_type: String,
    /// The configuration blob.
    pub config: Descriptor,
    /// Layers, bottom first.
    pub layers: Vec<Descriptor>,
}

impl Manifest {
    /// Parses a manifest; indexes and schema 1 are refused with a message saying what to do.
    pub fn parse(raw: &[u8], what: &str) -> Result<Self, ImageError> {
        let unsupported = |reason: String| ImageError::Unsupported {
            reference: what.to_string(),
            reason,
        };
        let v: Value = serde_json::from_slice(raw)
            .map_err(|e| unsupported(format!("manifest is not JSON: {e}")))?;
        let media_type = v["mediaType"]
            .as_str()
            .unwrap_or(OCI_IMAGE_MEDIA_TYPE)
            .to_string();
        if v.get("manifests").is_some() {
            return Err(unsupported(
                "a multi-platform index; name the linux/amd64 manifest by its digest".into(),
            ));
        }
        if media_type != IMAGE_MANIFEST_MEDIA_TYPE && media_type != OCI_IMAGE_MEDIA_TYPE {
            return Err(unsupported(format!("manifest media type {media_type}")));
        }
        let config = Descriptor::parse(&v["config"], what)?;
        let layers = v["layers"]
            .as_array()
            .ok_or_else(|| unsupported("manifest without layers".into()))?
            .iter()
            .map(|l| Descriptor::parse(l, what))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            raw: raw.to_vec(),
            media_type,
            config,
            layers,
        })
    }

    fn is_docker(&self) -> bool {
        self.media_type == IMAGE_MANIFEST_MEDIA_TYPE
    }
}

/// An image configuration blob, as bytes and parsed.
#[derive(Debug, Clone)]
pub struct ImageConfig {
    /// The bytes its digest is of.
    pub raw: Vec<u8>,
    value: Value,
}

impl ImageConfig {
    /// Parses a configuration blob.
    pub fn parse(raw: &[u8], what: &str) -> Result<Self, ImageError> {
        let value: Value = serde_json::from_slice(raw).map_err(|e| ImageError::Unsupported {
            reference: what.to_string(),
            reason: format!("image configuration is not JSON: {e}"),
        })?;
        Ok(Self {
            raw: raw.to_vec(),
            value,
        })
    }
    /// `rootfs.diff_ids`.
    pub fn diff_ids(&self) -> Vec<String> {
        self.value["rootfs"]["diff_ids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }
    /// A label's value.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.value["config"]["Labels"][key].as_str()
    }
    fn list(&self, k: &str) -> Vec<String> {
        self.value["config"][k]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }
    /// `Entrypoint` then `Cmd`, as the engine would run them.
    pub fn command(&self) -> Vec<String> {
        let mut c = self.entrypoint();
        c.extend(self.cmd());
        c
    }
    /// `config.Entrypoint` (a master's interpreter).
    pub fn entrypoint(&self) -> Vec<String> {
        self.list("Entrypoint")
    }
    /// `config.Cmd` (a train's entrypoint file).
    pub fn cmd(&self) -> Vec<String> {
        self.list("Cmd")
    }
    /// `config.User`.
    pub fn user(&self) -> Option<&str> {
        self.value["config"]["User"]
            .as_str()
            .filter(|u| !u.is_empty())
    }
}

/// The next image of a train, ready to push.
#[derive(Debug, Clone)]
pub struct NextImage {
    /// Manifest bytes.
    pub manifest: Vec<u8>,
    /// Its media type.
    pub media_type: String,
    /// Configuration bytes.
    pub config: Vec<u8>,
    /// Base-layer descriptors (already in some registry).
    pub base_layers: Vec<Descriptor>,
}

/// Builds the next image: `base` layers `[..base_count]` of `manifest`, then `layer`, with
/// `config` rewritten to match (diff_ids, history) and `labels`/`cmd` set.
pub fn next_image(
    manifest: &Manifest,
    base_count: usize,
    config: &ImageConfig,
    layer: &LayerDigests,
    labels: &[(&str, &str)],
    cmd: Option<Vec<String>>,
) -> Result<NextImage, ImageError> {
    let diff_ids = config.diff_ids();
    if base_count > manifest.layers.len() || diff_ids.len() != manifest.layers.len() {
        return Err(ImageError::Unsupported {
            reference: "train image".into(),
            reason: format!(
                "{} layers but {} diff_ids in its configuration",
                manifest.layers.len(),
                diff_ids.len()
            ),
        });
    }
    let mut cfg = config.value.clone();
    let mut ids: Vec<Value> = diff_ids[..base_count].iter().map(|d| json!(d)).collect();
    ids.push(json!(layer.diff_id));
    cfg["rootfs"] = json!({"type": "layers", "diff_ids": ids});
    // Keep the history of the base layers (and the metadata-only steps among them), then one
    // entry for the train layer, so `docker history` matches the layers.
    let mut kept = Vec::new();
    let mut nonempty = 0;
    for h in cfg["history"].as_array().cloned().unwrap_or_default() {
        let empty = h["empty_layer"].as_bool().unwrap_or(false);
        if empty {
            kept.push(h);
        } else if nonempty < base_count {
            nonempty += 1;
            kept.push(h);
        }
    }
    kept.push(json!({
        "created": "1970-01-01T00:00:00Z",
        "created_by": "pht: train layer (/opt)",
    }));
    cfg["history"] = Value::Array(kept);
    cfg["created"] = json!("1970-01-01T00:00:00Z");
    if !cfg["config"].is_object() {
        cfg["config"] = json!({});
    }
    if !cfg["config"]["Labels"].is_object() {
        cfg["config"]["Labels"] = json!({});
    }
    for (k, v) in labels {
        cfg["config"]["Labels"][*k] = json!(v);
    }
    if let Some(cmd) = cmd {
        cfg["config"]["Cmd"] = json!(cmd);
    }
    let config_raw = serde_json::to_vec(&cfg).expect("JSON value serialises");
    let config_digest = format!(
        "sha256:{}",
        hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &config_raw).as_ref())
    );
    let docker = manifest.is_docker();
    let base_layers: Vec<Descriptor> = manifest.layers[..base_count].to_vec();
    let mut layers: Vec<Value> = base_layers.iter().map(|d| d.raw.clone()).collect();
    layers.push(json!({
        "mediaType": if docker { IMAGE_DOCKER_LAYER_GZIP_MEDIA_TYPE } else { IMAGE_LAYER_GZIP_MEDIA_TYPE },
        "digest": layer.digest,
        "size": layer.size,
    }));
    let m = json!({
        "schemaVersion": 2,
        "mediaType": manifest.media_type,
        "config": {
            "mediaType": manifest.config.media_type,
            "digest": config_digest,
            "size": config_raw.len(),
        },
        "layers": layers,
    });
    Ok(NextImage {
        manifest: serde_json::to_vec(&m).expect("JSON value serialises"),
        media_type: manifest.media_type.clone(),
        config: config_raw,
        base_layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn refuses_indexes_and_bad_digests() {
        let idx = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        assert!(matches!(
            Manifest::parse(idx, "x"),
            Err(ImageError::Unsupported { .. })
        ));
        let bad = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"c","digest":"sha256:../../x","size":1},"layers":[]}"#;
        assert!(matches!(
            Manifest::parse(bad, "x"),
            Err(ImageError::Unsupported { .. })
        ));
    }

    #[test]
    fn next_image_keeps_base_layers_and_replaces_the_train_layer() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{IMAGE_MANIFEST_MEDIA_TYPE}","config":{{"mediaType":"c","digest":"{D}","size":1}},"layers":[{{"mediaType":"l","digest":"{D}","size":5}},{{"mediaType":"l","digest":"{D}","size":6}}]}}"#
        );
        let m = Manifest::parse(m.as_bytes(), "x").unwrap();
        let c = ImageConfig::parse(
            br#"{"rootfs":{"type":"layers","diff_ids":["sha256:a","sha256:b"]},"history":[{"created_by":"base"},{"created_by":"ENTRYPOINT","empty_layer":true},{"created_by":"train"}],"config":{"Entrypoint":["/bin/sh"]}}"#,
            "x",
        )
        .unwrap();
        let layer = LayerDigests {
            digest: D.into(),
            diff_id: "sha256:new".into(),
            size: 9,
        };
        let n = next_image(
            &m,
            1,
            &c,
            &layer,
            &[(LABEL_TRAIN_ID, "t1")],
            Some(vec!["/opt/pht_train/x.sh".into()]),
        )
        .unwrap();
        let cfg = ImageConfig::parse(&n.config, "n").unwrap();
        assert_eq!(cfg.diff_ids(), vec!["sha256:a", "sha256:new"]);
        assert_eq!(cfg.label(LABEL_TRAIN_ID), Some("t1"));
        assert_eq!(cfg.command(), vec!["/bin/sh", "/opt/pht_train/x.sh"]);
        let nm = Manifest::parse(&n.manifest, "n").unwrap();
        assert_eq!(nm.layers.len(), 2);
        assert_eq!(nm.layers[1].size, 9);
        let v: Value = serde_json::from_slice(&n.config).unwrap();
        assert_eq!(v["history"].as_array().unwrap().len(), 3);
    }
}
