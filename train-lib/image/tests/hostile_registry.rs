//! A registry that lies: manifests and configurations that never end, blobs longer than their
//! descriptors or not matching their digests, layers that unpack to far more than the signed
//! configuration allows.

mod hostile;
#[path = "../../tests/support/mod.rs"]
mod support;

use hostile::*;

/// Pulls `repo:x` from the lying registry at `addr` into `work`, with the default caps.
async fn pull(
    addr: &str,
    repo: &str,
    work: &std::path::Path,
) -> Result<image::PulledTrain, ImageError> {
    let cancel = tokio_util::sync::CancellationToken::new();
    image::pull_train(
        &Registry::new(RegistryOptions::default()),
        &reference(addr, repo),
        work,
        image::PullOptions {
            reporter: &image::Silent,
            limits: ReadLimits::default(),
            cancel: &cancel,
        },
    )
    .await
}
use std::collections::HashMap;
use train_image::{self as image, ImageError, ReadLimits, Registry, RegistryOptions};

#[tokio::test]
async fn a_manifest_that_never_ends_is_cut_off_at_the_cap() {
    let addr = serve(HashMap::from([
        ("/v2/".to_string(), Reply::Bytes(b"{}".to_vec())),
        ("/v2/t/endless/manifests/x".to_string(), Reply::Endless),
    ]))
    .await;
    let e = Registry::new(RegistryOptions::default())
        .resolve(&reference(&addr, "t/endless"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ImageError::Limit { detail, .. } if detail.contains("4194304")),
        "{e}"
    );
    assert!(e.is_rejection());
}

#[tokio::test]
async fn a_configuration_longer_than_its_descriptor_is_cut_off_and_refused() {
    let cfg = config_for(&[]);
    // The configuration that never ends, and one whose descriptor claims a huge size.
    let addr = serve(image_routes("t/cfg", &cfg, &[], &[(0, Reply::Endless)])).await;
    let reg = Registry::new(RegistryOptions::default());
    let pinned = reg.resolve(&reference(&addr, "t/cfg")).await.unwrap();
    let e = reg.config(&pinned).await.unwrap_err();
    assert!(
        matches!(&e, ImageError::Limit { detail, .. } if detail.contains("more than the") && detail.contains("cut off")),
        "{e}"
    );
    let mut routes = image_routes("t/big", &cfg, &[], &[]);
    let cd = sha256(&cfg);
    routes.insert(
        "/v2/t/big/manifests/x".into(),
        Reply::Bytes(manifest((&cd, 1 << 40), &[])),
    );
    let addr = serve(routes).await;
    let pinned = reg.resolve(&reference(&addr, "t/big")).await.unwrap();
    let e = reg.config(&pinned).await.unwrap_err();
    assert!(
        matches!(&e, ImageError::Limit { detail, .. } if detail.contains("descriptor says 1099511627776")),
        "{e}"
    );
}

#[tokio::test]
async fn a_layer_that_does_not_match_its_digest_is_a_rejection() {
    let layer = b"not what the digest says".to_vec();
    let cfg = config_for(&[sha256(b"x")]);
    let mut forged = layer.clone();
    forged[0] ^= 1;
    let addr = serve(image_routes(
        "t/forged",
        &cfg,
        &[layer],
        &[(1, Reply::Bytes(forged))],
    ))
    .await;
    let work = tempfile::tempdir().unwrap();
    let e = pull(&addr, "t/forged", work.path()).await.unwrap_err();
    assert!(matches!(e, ImageError::Digest { .. }), "{e}");
    assert!(
        e.is_rejection(),
        "tampering is a rejection (exit 3), not a registry error"
    );

    // `train verify` says so with exit code 3: train-lib/cli/tests/cli.rs.
}

/// A tar + gzip layer of the signed configuration of `train` with `bomb` zero bytes as the
/// content of its (listed) `pht_train/main.py`, and `extra` more entries that no signed
/// configuration lists. Returns the blob and its diff_id.
fn hostile_layer(train: &std::path::Path, bomb: u64, extra: usize) -> (Vec<u8>, String) {
    use std::io::Write;
    let mut tar_bytes = Vec::new();
    {
        let mut b = tar::Builder::new(&mut tar_bytes);
        let cfg = std::fs::read(train.join("train_config.json")).unwrap();
        let mut add = |path: &str, size: u64, data: &mut dyn Read, dir: bool| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(if dir {
                tar::EntryType::Directory
            } else {
                tar::EntryType::Regular
            });
            h.set_size(size);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, path, data).unwrap();
        };
        add("opt/", 0, &mut std::io::empty(), true);
        add(
            "opt/train_config.json",
            cfg.len() as u64,
            &mut &cfg[..],
            false,
        );
        add("opt/pht_results/", 0, &mut std::io::empty(), true);
        add("opt/pht_train/", 0, &mut std::io::empty(), true);
        add(
            "opt/pht_train/main.py",
            bomb,
            &mut std::io::repeat(0).take(bomb),
            false,
        );
        for i in 0..extra {
            add(&format!("opt/pht_results/{i}"), 1, &mut &b"x"[..], false);
        }
        b.finish().unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar_bytes).unwrap();
    (gz.finish().unwrap(), sha256(&tar_bytes))
}

use std::io::Read;

#[tokio::test]
async fn a_layer_unpacks_only_what_the_signed_configuration_allows() {
    let f = support::create_train(
        train_lib::Format::Native,
        1,
        &[("main.py", b"print(1)\n".to_vec())],
    );
    // 32 MiB of zeros as a file the signed configuration lists at 9 bytes (some 100 KiB
    // compressed); then 10,000 entries it does not list.
    for (bomb, extra, want) in [
        (32 << 20, 0, "opt/pht_train/main.py"),
        (1, 10_000, "more than 5 entries"),
    ] {
        let (layer, diff_id) = hostile_layer(&f.dir, bomb, extra);
        assert!(layer.len() < 1 << 20);
        let cfg = config_for(&[diff_id]);
        let addr = serve(image_routes("t/bomb", &cfg, &[layer], &[])).await;
        let work = tempfile::tempdir().unwrap();
        let e = pull(&addr, "t/bomb", work.path()).await.unwrap_err();
        assert!(
            matches!(&e, ImageError::Limit { detail, .. } if detail.contains(want)),
            "{e}"
        );
        assert!(e.is_rejection());
        // Nothing of the bomb reached the disk: at most the signed configuration did.
        let unpacked: u64 = walk_sizes(&work.path().join("opt"));
        assert!(unpacked < 64 << 10, "{unpacked} bytes unpacked");
    }
}

fn walk_sizes(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.map(|e| {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() {
                    walk_sizes(&e.path())
                } else {
                    e.metadata().unwrap().len()
                }
            })
            .sum()
        })
        .unwrap_or(0)
}
