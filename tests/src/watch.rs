//! `station watch` daemons in a route scene: each with its own configuration, API key file,
//! state directory, data, TMPDIR and log.

use crate::route::{wait_for, RouteScene};
use crate::{bin, ok, Scene};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::process::{Child, Command};

/// One `station watch` process (restartable).
pub struct Watcher {
    /// The station.
    pub id: String,
    /// Its configuration.
    pub config: PathBuf,
    /// Its TMPDIR (decrypted trains live only there, and only during a run).
    pub tmp: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    env: Vec<(String, String)>,
    args: Vec<String>,
}

impl RouteScene {
    /// Writes the configuration of a watcher for `station` (its key, API key file, data,
    /// state, audit log, the test master allowed) plus `extra` lines in `[watch]`.
    pub fn watcher_config(&self, station: &str, watch_extra: &str) -> PathBuf {
        let s = &self.scene;
        let key_file = s.path(&format!("{station}.api-key"));
        std::fs::write(&key_file, &self.keys[station]).unwrap();
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let data = s.path(&format!("data-{station}"));
        std::fs::create_dir_all(&data).unwrap();
        let rows: String = (0..station.len() + 3).map(|i| format!("{i}\n")).collect();
        std::fs::write(data.join("rows.csv"), rows).unwrap();
        let extra = format!(
            "[station]\nid = \"{station}\"\nkey = \"{}\"\n{}[watch]\nroute_service = \"{}\"\nregistries = [{}]\napi_key_file = \"{}\"\nstate_dir = \"{}\"\ndata = [\"{}\"]\nresync_secs = 5\n{watch_extra}\n",
            s.key(station).display(),
            crate::master_policy(),
            self.url,
            self.regs
                .iter()
                .map(|r| format!("\"{}\"", r.addr))
                .collect::<Vec<_>>()
                .join(", "),
            key_file.display(),
            s.path(&format!("watch-{station}")).display(),
            data.display(),
        );
        s.config(&format!("{station}.toml"), &extra)
    }

    /// Starts `station watch` for `station` with `watch_extra` in its `[watch]`.
    pub fn watcher(&self, station: &str, watch_extra: &str) -> Watcher {
        self.watcher_with(station, self.watcher_config(station, watch_extra))
    }

    /// Starts `station watch` for `station` on the configuration `config`.
    pub fn watcher_with(&self, station: &str, config: PathBuf) -> Watcher {
        self.watcher_args(station, config, &[])
    }

    /// [`Self::watcher_with`], with more arguments to `station watch` (`--ui ADDR`).
    pub fn watcher_args(&self, station: &str, config: PathBuf, args: &[&str]) -> Watcher {
        let mut w = Watcher {
            args: args.iter().map(|a| a.to_string()).collect(),
            id: station.to_string(),
            config,
            tmp: self.scene.path(&format!("tmp-{station}")),
            log: self.scene.path(&format!("watch-{station}.log")),
            child: None,
            env: self.watch_env.clone(),
        };
        w.start();
        w
    }

    /// A `station` subcommand for `station` (its configuration, as its operator runs it).
    pub fn operator(&self, w: &Watcher, args: &[&str]) -> Command {
        let mut c = Command::new(bin("station"));
        c.args(args).arg("--config").arg(&w.config);
        c
    }
}

impl Watcher {
    /// Starts (again).
    pub fn start(&mut self) {
        std::fs::create_dir_all(&self.tmp).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(bin("station"))
            .args(["watch", "--config"])
            .arg(&self.config)
            .args(&self.args)
            .env("TMPDIR", &self.tmp)
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// Waits until the log holds `what`.
    pub fn wait_log(&mut self, secs: u64, what: &str) {
        let log = self.log.clone();
        wait_for(secs, &format!("`{what}` in {}", log.display()), || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains(what)
        });
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM; waits for the exit and returns its code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        ok(Command::new("kill").args(["-TERM", &c.id().to_string()]));
        c.wait().unwrap().code()
    }

    /// Waits for the process to exit by itself (up to `secs`); its code.
    pub fn exit_code(&mut self, secs: u64) -> Option<i32> {
        let c = self.child.as_mut()?;
        let mut code = None;
        wait_for(secs, "the watcher to exit", || match c.try_wait() {
            Ok(Some(s)) => {
                code = s.code();
                true
            }
            _ => false,
        });
        self.child = None;
        code
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A train that counts the rows of the station's data into `counts.csv`.
pub const COUNT: &str = "#!/bin/sh\nset -e\nrows=$(wc -l < /opt/train_data/data-$STATION_ID/rows.csv)\necho \"$STATION_ID,$rows\" >> /opt/pht_results/counts.csv\n";

/// A fresh train id.
pub fn new_id() -> String {
    format!("w-{}", crate::route::nonce().replace('_', "-"))
}

/// `train …` as the creator, logged in to the route service (and its registries).
pub fn creator(rs: &RouteScene) -> Command {
    let f = rs.scene.path("creator.api-key");
    if !f.exists() {
        std::fs::write(&f, &rs.keys["creator"]).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut c = rs.as_party("creator", Command::new(bin("train")));
    c.env("PHT_ROUTE_SERVICE", &rs.url)
        .env("PHT_CREATOR_ID", "creator")
        .env("PHT_API_KEY_FILE", &f);
    c
}

/// The fingerprint `station keys show` prints for `station`'s key.
pub fn fingerprint(scene: &Scene, station: &str) -> String {
    let out = ok(Command::new(bin("station"))
        .args(["keys", "show", "--station", station, "--key"])
        .arg(scene.key(station)));
    out.lines()
        .find_map(|l| l.strip_prefix("fingerprint: "))
        .unwrap()
        .to_string()
}

/// Creates a train with `script` along `route`, its keys fetched from the service and checked
/// against the stations' own fingerprints; builds, pushes and submits it; returns its id.
pub fn submit(rs: &RouteScene, format: &str, script: &str, route: &[&str]) -> String {
    let pins: Vec<(&str, String)> = route
        .iter()
        .map(|s| (*s, fingerprint(&rs.scene, s)))
        .collect();
    submit_pinned(rs, format, script, &pins).expect("train create")
}

/// [`submit`] with the pins given; the `train create` error when it fails.
pub fn submit_pinned(
    rs: &RouteScene,
    format: &str,
    script: &str,
    pins: &[(&str, String)],
) -> Result<String, String> {
    let id = new_id();
    let algo = rs.scene.path("algo");
    std::fs::create_dir_all(&algo).unwrap();
    std::fs::write(algo.join("run.sh"), script).unwrap();
    let train = rs.scene.path(&format!("train-{id}"));
    let mut c = creator(rs);
    c.args([
        "create",
        "--format",
        format,
        "--entrypoint",
        "run.sh",
        "--train-id",
        &id,
    ])
    .args(["--creator-id", "creator", "--creator-key"])
    .arg(rs.scene.key("creator"))
    .arg("--files")
    .arg(&algo)
    .arg("--out")
    .arg(&train);
    if format == "legacy" {
        c.arg("--builder-key").arg(rs.scene.key("builder"));
    }
    for (s, fp) in pins {
        c.args(["--station", s, "--pin", &format!("{s}={fp}")]);
    }
    let o = crate::run(&mut c);
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).into_owned());
    }
    let image = rs.build_submission(&train, &id);
    let out = ok(creator(rs).args(["submit", &image]));
    assert_eq!(out.trim(), id);
    Ok(id)
}

/// `train status ID --follow` in the background, its output in a file.
pub fn follow(rs: &RouteScene, id: &str) -> (std::process::Child, std::path::PathBuf) {
    let out = rs.scene.path(&format!("status-{id}.txt"));
    let child = creator(rs)
        .args(["status", id, "--follow"])
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    (child, out)
}

/// The creator's results of train `id` through `train results ID`, files concatenated.
pub fn results(rs: &RouteScene, id: &str) -> String {
    let out = rs.scene.path(&format!("results-{id}"));
    ok(creator(rs)
        .args(["results", id, "--key"])
        .arg(rs.scene.key("creator"))
        .arg("--out")
        .arg(&out));
    std::fs::read_to_string(out.join("counts.csv")).unwrap()
}

/// Containers (or volumes) of runs of `w` (by their work directory, under its TMPDIR: other
/// tests run stations of the same ids).
pub fn left(w: &Watcher, what: &str) -> usize {
    let list: &[&str] = if what == "volume" {
        &["volume", "ls"]
    } else {
        &["ps", "-a"]
    };
    ok(Command::new("docker").args(list).args([
        "--filter",
        "label=org.pht.station.workdir",
        "--format",
        "{{.Label \"org.pht.station.workdir\"}}",
    ]))
    .lines()
    .filter(|l| l.starts_with(w.tmp.to_str().unwrap()))
    .count()
}
