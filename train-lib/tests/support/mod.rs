//! Helpers shared by the integration tests: vector copies, key pools, trains on disk, snapshots.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use train_lib::keys::{PrivateKey, PublicKey, TrustStore};
use train_lib::{CreateSpec, Format, Station, TrainDir};

/// `../shared/vectors` beside the workspace (or `$PHT_VECTORS`). The workspace is the nearest
/// directory above this crate holding `Cargo.lock` (these helpers serve several crates).
pub fn vectors() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|a| a.join("Cargo.lock").exists())
        .expect("inside the workspace")
        .to_path_buf();
    let p = std::env::var_os("PHT_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("../shared/vectors"));
    assert!(
        p.is_dir(),
        "conformance vectors not found at {}",
        p.display()
    );
    p
}

/// Copies a directory tree, making it writable (the vectors are read-only).
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            fs::copy(e.path(), &dst).unwrap();
            let mut perm = fs::metadata(&dst).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o644);
            fs::set_permissions(&dst, perm).unwrap();
        }
    }
    let mut perm = fs::metadata(to).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    fs::set_permissions(to, perm).unwrap();
}

/// A g3 vector key.
pub fn g3_key(name: &str) -> PrivateKey {
    PrivateKey::from_file(
        &vectors().join(format!("phtmedic-g3/keys/{name}.key.pem")),
        None,
    )
    .unwrap()
}

/// A small pool of generated 2048-bit keys, made once per test binary.
pub fn pool() -> &'static [PrivateKey] {
    static POOL: OnceLock<Vec<PrivateKey>> = OnceLock::new();
    POOL.get_or_init(|| {
        (0..6)
            .map(|_| PrivateKey::generate(2048).unwrap())
            .collect()
    })
}

/// Every file and directory below `dir` with its contents: to assert "left exactly as it was".
pub fn snapshot(dir: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    fn rec(root: &Path, d: &Path, out: &mut BTreeMap<String, Option<Vec<u8>>>) {
        for e in fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                out.insert(rel, None);
                rec(root, &e.path(), out);
            } else if ft.is_symlink() {
                out.insert(
                    rel,
                    Some(
                        fs::read_link(e.path())
                            .unwrap()
                            .display()
                            .to_string()
                            .into_bytes(),
                    ),
                );
            } else {
                out.insert(rel, Some(fs::read(e.path()).unwrap()));
            }
        }
    }
    rec(dir, dir, &mut out);
    out
}

/// True when the parent of `dir` holds no leftover staging directory.
pub fn no_staging_left(dir: &Path) -> bool {
    fs::read_dir(dir.parent().unwrap()).unwrap().all(|e| {
        !e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".pht-")
    })
}

/// Writes `files` (path → bytes) below `dir`.
pub fn write_files(dir: &Path, files: &[(&str, Vec<u8>)]) {
    for (p, data) in files {
        let full = dir.join(p);
        fs::create_dir_all(full.parent().unwrap()).unwrap();
        fs::write(full, data).unwrap();
    }
}

/// A train on disk with its keys: creator = pool[0], builder = pool[1], stations = pool[2..].
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub format: Format,
    pub ids: Vec<String>,
}

pub fn creator() -> &'static PrivateKey {
    &pool()[0]
}
pub fn builder() -> &'static PrivateKey {
    &pool()[1]
}
pub fn station_key(i: usize) -> &'static PrivateKey {
    &pool()[2 + i]
}

/// Creates a train with `n` stations from the given source files.
pub fn create_train(format: Format, n: usize, files: &[(&str, Vec<u8>)]) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write_files(&src, files);
    let ids: Vec<String> = (0..n).map(|i| format!("station-{i}")).collect();
    let spec = CreateSpec {
        files: &src,
        entrypoint: files[0].0,
        creator_id: "creator-1",
        creator_key: creator(),
        stations: ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), station_key(i).public().clone()))
            .collect(),
        query: None,
        builder_key: Some(builder()),
        train_id: Some("train-test".into()),
        proposal_id: None,
        master_image: None,
    };
    let dir = tmp.path().join("train");
    train_lib::create(&spec, format, &dir).unwrap();
    Fixture {
        tmp,
        dir,
        format,
        ids,
    }
}

impl Fixture {
    pub fn station(&self, i: usize) -> Station<'_> {
        static NO_PINS: OnceLock<TrustStore> = OnceLock::new();
        Station {
            id: &self.ids[i],
            key: station_key(i),
            trust: NO_PINS.get_or_init(TrustStore::default),
        }
    }

    pub fn open(&self) -> TrainDir {
        TrainDir::open(&self.dir).unwrap()
    }

    /// Runs stop `i`: pre-run, write `results` (path → bytes, replacing pht_results), post-run.
    pub fn run_stop(&self, i: usize, results: &[(&str, Vec<u8>)]) {
        let t = self.open();
        t.pre_run(&self.station(i)).unwrap();
        let rdir = self.dir.join("pht_results");
        for (p, data) in results {
            let full = rdir.join(p);
            fs::create_dir_all(full.parent().unwrap()).unwrap();
            fs::write(full, data).unwrap();
        }
        t.post_run(&self.station(i)).unwrap();
    }

    /// The creator's decrypted results.
    pub fn results(&self) -> BTreeMap<String, Option<Vec<u8>>> {
        let out = self.tmp.path().join(format!("out-{}", rand_suffix()));
        self.open()
            .results(creator(), &TrustStore::default(), &out)
            .unwrap();
        snapshot(&out)
    }
}

fn rand_suffix() -> String {
    hex::encode(train_lib::keys::random_bytes::<4>())
}

/// Deterministic pseudo-random bytes.
pub fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u64).wrapping_mul(2654435761) >> 7) as u8 ^ seed)
        .collect()
}

/// The public key of a pool entry.
pub fn public(i: usize) -> PublicKey {
    pool()[i].public().clone()
}

/// A train with a 200 KiB model (several STREAM chunks) that station 0 has run, with results
/// `a.csv` (4 bytes) and `plots/b.bin` (`b_len` bytes of `bytes(b_len, 9)`).
pub fn run_first_stop(format: Format, b_len: usize) -> Fixture {
    let f = create_train(
        format,
        3,
        &[
            ("main.py", b"print('hi')\n".to_vec()),
            ("model/weights.bin", bytes(200 * 1024, 3)),
        ],
    );
    f.run_stop(
        0,
        &[
            ("a.csv", b"a,1\n".to_vec()),
            ("plots/b.bin", bytes(b_len, 9)),
        ],
    );
    f
}

/// Every entry of `dir` with its bytes, mode and mtime: what "unchanged" means.
pub fn state(dir: &Path) -> Vec<(String, Option<Vec<u8>>, u32, i64)> {
    use std::os::unix::fs::MetadataExt;
    snapshot(dir)
        .into_iter()
        .map(|(rel, data)| {
            let m = fs::symlink_metadata(dir.join(&rel)).unwrap();
            let mtime = if data.is_some() {
                m.mtime_nsec() + m.mtime() * 1_000_000_000
            } else {
                0
            };
            (rel, data, m.mode(), mtime)
        })
        .collect()
}
