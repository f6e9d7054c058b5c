//! `station watch` daemons in a route scene: each with its own configuration, API key file,
//! state directory, data, TMPDIR and log.

use crate::route::{wait_for, RouteScene};
use crate::{bin, ok};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

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
        let mut w = Watcher {
            id: station.to_string(),
            config,
            tmp: self.scene.path(&format!("tmp-{station}")),
            log: self.scene.path(&format!("watch-{station}.log")),
            child: None,
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
            .env("TMPDIR", &self.tmp)
            .env("RUST_LOG", "info")
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
