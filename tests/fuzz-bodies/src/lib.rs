//! The bodies of the fuzz targets (`train-lib/fuzz`), here so that plain `cargo test` replays
//! the committed corpus through the same code (`tests/fuzz-bodies/tests/corpus.rs`). Each takes
//! untrusted bytes and asserts what must hold whatever they are; none may panic otherwise.

use std::path::Path;

/// A target's body.
pub type Body = fn(&[u8]);

/// The targets, by name (the corpus has a folder for each).
pub const TARGETS: &[(&str, Body)] = &[
    ("native_config", native_config),
    ("legacy_config", legacy_config),
    ("stream_decrypt", stream_decrypt),
    ("key_text", key_text),
    ("layer_read", layer_read),
    ("oci_manifest", oci_manifest),
    ("notification", notification),
    ("token_scope", token_scope),
    ("api_bodies", api_bodies),
    ("sse", sse),
];

/// A native configuration: parsing and every derived digest fail cleanly; what parses
/// re-encodes to the same bytes.
pub fn native_config(data: &[u8]) {
    if let Ok(c) = train_lib::native::NativeConfig::parse(data) {
        let _ = c.body_digest();
        let _ = c.build_digest();
        let _ = c.dispatch_digest();
        let _ = c.route_keys();
        for (i, s) in c.stops.iter().enumerate() {
            let _ = c.stop_digest(i, s);
        }
        assert_eq!(c.to_json(), data);
    }
    let _ = train_lib::signed_state(data, &train_lib::keys::TrustStore::default());
}

/// A PHT-meDIC configuration: file names that reach the file system stay inside pht_train.
pub fn legacy_config(data: &[u8]) {
    if let Ok(c) = train_lib::legacy::LegacyConfig::parse(data) {
        let _ = c.ordered_route();
        if let Ok(files) = c.train_files() {
            for f in files {
                assert!(!f.starts_with('/') && !f.split('/').any(|p| p == ".." || p.is_empty()));
            }
        }
        let _ = c.creator_key();
        let _ = c.to_json();
    }
}

/// Native ciphertext: rejected, or it round-trips; never unauthenticated plaintext.
pub fn stream_decrypt(data: &[u8]) {
    use train_lib::crypto::{hasher::SplitHasher, stream};
    let key = stream::file_key(&[9u8; 32], "results", "f.bin");
    let mut out = Vec::new();
    let mut h = SplitHasher::new(&aws_lc_rs::digest::SHA256, 0);
    let hint = data.first().copied().unwrap_or(0) as u64 * 4096;
    if stream::decrypt(&key, data, &mut out, &mut h, hint).is_ok() {
        let mut again = Vec::new();
        let mut h2 = SplitHasher::new(&aws_lc_rs::digest::SHA256, 0);
        stream::encrypt(&key, &out[..], &mut again, &mut h2, hint).unwrap();
        assert_eq!(again, data);
    } else {
        assert!(out.len() <= data.len());
    }
}

/// Key text (configurations carry hex of PEM): parsed or refused.
pub fn key_text(data: &[u8]) {
    let _ = train_lib::keys::public_key_from_text(data, "fuzz");
    let _ = train_lib::keys::PrivateKey::from_text(data, Some(b"pw"), "fuzz");
}

/// A layer (the hardened untar): nothing is written outside the tree, which holds only files
/// and directories.
pub fn layer_read(data: &[u8]) {
    use train_image::{read_layer, LayerRole, OptTree};
    let outer = tempfile::tempdir().unwrap();
    let root = outer.path().join("opt");
    std::fs::create_dir(&root).unwrap();
    let mut tree = OptTree::new(&root);
    let _ = read_layer(data, "sha256:fuzz", LayerRole::Train, Some(&mut tree));
    let _ = read_layer(data, "sha256:fuzz", LayerRole::Base, None);
    let _ = train_image::find_config(data, "sha256:fuzz", train_image::ReadLimits::default());
    let beside: Vec<_> = std::fs::read_dir(outer.path()).unwrap().collect();
    assert_eq!(beside.len(), 1);
    fn walk(p: &Path) {
        for e in std::fs::read_dir(p).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            assert!(t.is_file() || t.is_dir(), "{:?}", e.path());
            if t.is_dir() {
                walk(&e.path());
            }
        }
    }
    walk(&root);
}

/// An OCI or Docker manifest, index or image configuration from a registry.
pub fn oci_manifest(data: &[u8]) {
    if let Ok(m) = train_image::Manifest::parse(data, "fuzz") {
        assert_eq!(m.raw, data);
        for d in m.layers.iter().chain([&m.config]) {
            assert!(d.digest.starts_with("sha256:"), "{}", d.digest);
        }
    }
    if let Ok(c) = train_image::ImageConfig::parse(data, "fuzz") {
        let _ = c.label("org.pht.train.id");
    }
}

/// Registry notification envelopes (distribution's and Harbor's): what is taken is a train's
/// tag and a repository.
pub fn notification(data: &[u8]) {
    for pushes in [
        route_registry::notify::distribution(data),
        route_registry::notify::harbor(data),
    ]
    .into_iter()
    .flatten()
    {
        for p in pushes {
            assert!(route_wire::TrainId::parse(p.tag.as_str()).is_ok());
        }
    }
}

/// Token scopes as a registry client asks for them: a grant never names a repository that is
/// not canonical, and never more actions than asked.
pub fn token_scope(data: &[u8]) {
    use route_registry::token::{grant, is_canonical_repository, parse_scope, Grantee};
    let text = String::from_utf8_lossy(data);
    let asked: Vec<_> = text.split(' ').filter_map(parse_scope).collect();
    let who = Grantee::Station {
        namespace: "st-1".into(),
        service: "registry-a".into(),
    };
    for g in grant(&who, "registry-a", &asked, &["master".to_string()]) {
        assert!(is_canonical_repository(&g.name), "{}", g.name);
        assert!(asked
            .iter()
            .any(|a| a.name == g.name && g.actions.iter().all(|x| a.actions.contains(x))));
    }
}

/// The API's JSON bodies, as the service and its clients read them.
pub fn api_bodies(data: &[u8]) {
    use route_wire::*;
    let _ = serde_json::from_slice::<SubmitTrain>(data);
    let _ = serde_json::from_slice::<StationReport>(data);
    let _ = serde_json::from_slice::<Decision>(data);
    let _ = serde_json::from_slice::<KeyProposal>(data);
    let _ = serde_json::from_slice::<ApprovalSetting>(data);
    let _ = serde_json::from_slice::<Inbox>(data);
    let _ = serde_json::from_slice::<TrainView>(data);
    let _ = serde_json::from_slice::<ApiError>(data);
}

/// An event feed's body, as `station watch` and `train status --follow` read it.
pub fn sse(data: &[u8]) {
    // Each frame is an event, a keep-alive or a decode error: never a panic. A frame never
    // holds a blank line (two frames are never read as one event).
    let frames = route_wire::client::frames(data);
    let blank = data.windows(2).filter(|w| w == b"\n\n").count();
    assert!(frames.len() <= blank + data.windows(4).filter(|w| w == b"\r\n\r\n").count());
    for f in frames.into_iter().flatten().flatten() {
        let _ = (f.id, f.kind.as_str(), f.detail.len());
    }
}
