//! Helpers for the end-to-end tests: the project's binaries, the services started by
//! `scripts/services.sh`, keys, trains and the offline test master image.

pub mod flaky;
pub mod route;
pub mod tls;
pub mod watch;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The value after `--name` on the command line (the benchmarks' flags).
pub fn arg(name: &str) -> Option<String> {
    let mut it = std::env::args();
    while let Some(a) = it.next() {
        if a == name {
            return it.next();
        }
    }
    None
}

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A binary of the workspace, built by the same `cargo test` (`--all-targets` builds them).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // Beside a binary (target/<profile>/<bin>), or above a test (target/<profile>/deps/<test>).
    let here = exe.parent().unwrap();
    let p = if here.join(name).exists() {
        here.join(name)
    } else {
        here.parent().unwrap().join(name)
    };
    assert!(
        p.exists(),
        "{} is missing: build the workspace first (cargo build --workspace)",
        p.display()
    );
    p
}

/// `host:port` of registry A or B (from `scripts/services.sh`).
pub fn registry(which: char) -> String {
    let var = format!("PHT_REGISTRY_{which}");
    std::env::var(&var).unwrap_or_else(|_| {
        panic!("{var} is not set: start the services with `eval \"$(scripts/services.sh)\"` (scripts/test.sh does)")
    })
}

/// Runs a command, returning its output; panics with the command line if it cannot start.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    out
}

/// Runs a command that must succeed.
pub fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A unique repository name for one test.
pub fn repo(test: &str) -> String {
    format!(
        "trains/{test}-{}-{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

/// The offline test master image in registry A, built once per test process.
pub fn master() -> &'static str {
    static M: OnceLock<String> = OnceLock::new();
    M.get_or_init(|| {
        let tag = format!("{}/master/busybox:1", registry('A'));
        ok(Command::new(root().join("master-images/busybox-test/build.sh")).arg(&tag));
        tag
    })
}

/// A `[policy]` section allowing the test master: legacy trains need one (their master is
/// not signed).
pub fn master_policy() -> String {
    let repo = master().rsplit_once(':').unwrap().0;
    format!("[policy]\nallowed_masters = [\"{repo}\"]\n")
}

/// Whether registry `host:port` has `repo:tag`.
pub fn exists(reg: &str, repo: &str, tag: &str) -> bool {
    let url = format!("http://{reg}/v2/{repo}/manifests/{tag}");
    let out = run(Command::new("curl").args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        "Accept: application/vnd.docker.distribution.manifest.v2+json",
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json",
        &url,
    ]));
    String::from_utf8_lossy(&out.stdout).trim() == "200"
}

/// Containers of images in `repo` left behind by `station run` (it labels every train
/// container). Per repository, because tests run in parallel.
pub fn leftover_containers(repo: &str) -> usize {
    let out = ok(Command::new("docker").args([
        "ps",
        "-a",
        "--filter",
        "label=org.pht.station.run",
        "--format",
        "{{.Labels}}",
    ]));
    out.lines().filter(|l| l.contains(repo)).count()
}

/// A scratch directory with keys for a creator, a builder and `stations`.
pub struct Scene {
    /// The scratch directory (keys, algorithm, train, data, results).
    pub dir: tempfile::TempDir,
    /// Route stations, in order.
    pub stations: Vec<String>,
}

impl Scene {
    /// Keys for the creator, the builder and each of `stations`.
    pub fn new(stations: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for who in ["creator", "builder"].iter().chain(stations) {
            ok(Command::new(bin("train"))
                .args(["keygen", who, "--bits", "2048", "--out-dir"])
                .arg(dir.path().join("keys")));
        }
        Self {
            dir,
            stations: stations.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// A path in the scratch directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The private key file of `who`.
    pub fn key(&self, who: &str) -> PathBuf {
        self.path(&format!("keys/{who}.key.pem"))
    }

    /// Writes the algorithm `script` as `algo/run.sh` and creates the train directory `train`.
    pub fn create(&self, format: &str, script: &str) -> PathBuf {
        self.create_with(format, script, &[])
    }

    /// [`Scene::create`] with more `train create` arguments.
    pub fn create_with(&self, format: &str, script: &str, extra: &[&str]) -> PathBuf {
        let algo = self.path("algo");
        std::fs::create_dir_all(&algo).unwrap();
        std::fs::write(algo.join("run.sh"), script).unwrap();
        let out = self.path("train");
        let mut c = Command::new(bin("train"));
        c.args(["create", "--format", format, "--entrypoint", "run.sh"])
            .args(["--creator-id", "creator", "--creator-key"])
            .arg(self.key("creator"))
            .arg("--files")
            .arg(&algo)
            .arg("--out")
            .arg(&out);
        if format == "legacy" {
            c.arg("--builder-key").arg(self.key("builder"));
        }
        c.args(extra);
        for s in &self.stations {
            c.arg("--station").arg(format!(
                "{s}={}",
                self.path(&format!("keys/{s}.pub.pem")).display()
            ));
        }
        ok(&mut c);
        out
    }

    /// Writes a station configuration `name` (e.g. `st-1.toml`) with its own audit log
    /// (`st-1.audit.jsonl`: a log belongs to one station) and `extra`; returns its path.
    pub fn config(&self, name: &str, extra: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(
            &p,
            format!(
                "[audit]\nlog = \"{}\"\n{extra}",
                self.audit_log(name).display()
            ),
        )
        .unwrap();
        p
    }

    /// The audit log of the configuration `name`.
    pub fn audit_log(&self, config: &str) -> PathBuf {
        let stem = config.strip_suffix(".toml").unwrap_or(config);
        self.path(&format!("{stem}.audit.jsonl"))
    }

    /// The audit log's records (of the configuration `name`).
    pub fn audit_records(&self, config: &str) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.audit_log(config))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Builds and pushes the train image for `train` on the test master to `tag`.
    pub fn build(&self, train: &Path, tag: &str) {
        ok(Command::new(bin("train"))
            .args(["image", "build"])
            .arg(train)
            .args(["--master", master(), "--tag", tag, "--entrypoint", "run.sh"])
            .arg("--creator-key")
            .arg(self.key("creator")));
    }

    /// `station run` at `station` with this scene's key; returns the raw output.
    pub fn station(&self, station: &str, reference: &str, extra: &[&str]) -> Output {
        run(self.station_cmd(station, reference).args(extra))
    }

    /// The `station run` command (not started); its TMPDIR is this scene's `tmp/`.
    pub fn station_cmd(&self, station: &str, reference: &str) -> Command {
        let data = self.path(&format!("data-{station}"));
        std::fs::create_dir_all(&data).unwrap();
        let rows: String = (0..station.len() + 3).map(|i| format!("{i}\n")).collect();
        std::fs::write(data.join("rows.csv"), rows).unwrap();
        let tmp = self.path("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let mut c = Command::new(bin("station"));
        c.env("TMPDIR", &tmp)
            .args(["run", reference, "--station", station, "--quiet", "--key"])
            .arg(self.key(station))
            .arg("--data")
            .arg(&data);
        c
    }

    /// Whether anything is left in the station's TMPDIR (decrypted trains live only there).
    pub fn tmp_leftovers(&self) -> Vec<String> {
        std::fs::read_dir(self.path("tmp"))
            .map(|rd| {
                rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The creator's results of the image `reference`, as (file name, content) pairs.
    pub fn results(&self, reference: &str) -> Vec<(String, String)> {
        let out = self.path("results");
        let _ = std::fs::remove_dir_all(&out);
        ok(Command::new(bin("train"))
            .args(["results", reference, "--key"])
            .arg(self.key("creator"))
            .arg("--out")
            .arg(&out));
        let mut v: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read_to_string(e.path()).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    }
}

/// The exit code and stderr of an output.
pub fn code_and_err(o: &Output) -> (i32, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Builds `dockerfile` offline as `tag` in a fresh context holding `files` (name, source), and
/// pushes it.
pub fn docker_image(dockerfile: &str, files: &[(&str, &Path)], tag: &str) {
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), dockerfile).unwrap();
    for (name, src) in files {
        ok(Command::new("cp")
            .arg("-r")
            .arg(src)
            .arg(ctx.path().join(name)));
    }
    ok(Command::new("docker")
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "--force-rm", "--network", "none", "-t", tag])
        .arg(ctx.path()));
    ok(Command::new("docker").args(["push", "-q", tag]));
}
