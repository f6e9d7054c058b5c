//! A route-service scene for end-to-end tests: two `docker-registry` processes of the test's
//! own on free loopback ports, each notifying the service with its own secret, and the
//! `route-service` binary on a SQLite file (or a fresh PostgreSQL database), with a creator and
//! stations registered through its administration commands.

use crate::{bin, ok, Scene};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound, then released: the caller binds it next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `f` holds, up to `secs`; panics with `what` otherwise.
pub fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {secs} s waiting for {what}");
}

/// A registry process of the test's own.
pub struct TestRegistry {
    /// `127.0.0.1:port`.
    pub addr: String,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl TestRegistry {
    /// Writes the configuration (storage under `dir`, notifications to `notify` with
    /// `secret`, or none) and starts it.
    pub fn start(
        dir: &Path,
        name: &str,
        notify: Option<(&str, &str)>,
        token: Option<(&str, &Path)>,
    ) -> Self {
        let port = free_port();
        let storage = dir.join(name);
        std::fs::create_dir_all(&storage).unwrap();
        let mut yml = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        if let Some((realm, cert)) = token {
            yml.push_str(&format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {name}\n    issuer: pht-route-service\n    rootcertbundle: {}\n",
                cert.display()
            ));
        }
        if let Some((url, secret)) = notify {
            yml.push_str(&format!(
                "notifications:\n  endpoints:\n    - name: route-service\n      url: {url}\n      headers:\n        Authorization: [\"{secret}\"]\n      timeout: 2s\n      threshold: 3\n      backoff: 500ms\n      ignore:\n        mediatypes: [application/octet-stream]\n        actions: [pull]\n"
            ));
        }
        let config = dir.join(format!("{name}.yml"));
        std::fs::write(&config, yml).unwrap();
        let mut r = Self {
            addr: format!("127.0.0.1:{port}"),
            config,
            log: dir.join(format!("{name}.log")),
            child: None,
        };
        r.restart();
        r
    }

    /// A registry this test did not start (a compose stack's): its address only.
    pub fn external(addr: &str) -> Self {
        Self {
            addr: addr.to_string(),
            config: PathBuf::new(),
            log: PathBuf::new(),
            child: None,
        }
    }

    /// Starts it (again), on the same port and storage.
    pub fn restart(&mut self) {
        self.stop();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("docker-registry (scripts/services.sh installs it)");
        self.child = Some(child);
        let url = format!("http://{}/v2/", self.addr);
        // Any answer will do: with token auth, /v2/ answers 401.
        let up = || {
            Command::new("curl")
                .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", &url])
                .output()
                .is_ok_and(|o| matches!(&o.stdout[..], b"200" | b"401"))
        };
        let end = Instant::now() + Duration::from_secs(20);
        while !up() {
            assert!(
                Instant::now() < end,
                "registry {} did not come up:\n{}",
                self.addr,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops it (SIGKILL: a crash, queued notifications are lost).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The service and what it routes between.
pub struct RouteScene {
    /// Keys, trains, station configurations.
    pub scene: Scene,
    /// Registries A and B.
    pub regs: Vec<TestRegistry>,
    /// `http://127.0.0.1:port`.
    pub url: String,
    /// The database URL.
    pub database: String,
    /// API keys by principal.
    pub keys: HashMap<String, String>,
    config: PathBuf,
    secrets: Vec<String>,
    service: Option<Child>,
    log: PathBuf,
    /// Extra environment for the service (fault injection).
    pub env: Vec<(String, String)>,
    /// Whether the registries take the service's tokens (then every party logs in).
    pub token: bool,
    /// With [`Setup::flaky`]: the proxy in front of each registry, whose address everyone is
    /// given as the registry's (`regs[i].addr`).
    pub proxies: Vec<crate::flaky::FlakyProxy>,
    /// Extra environment of the creators' `train` commands (a CA store, an outbound proxy).
    pub party_env: Vec<(String, String)>,
    /// Extra environment of the `station watch` daemons (an outbound proxy).
    pub watch_env: Vec<(String, String)>,
}

/// How the scene is set up.
pub struct Setup<'a> {
    /// Stations and the registry (0 = A, 1 = B) each lives on, with its approval mode.
    pub stations: &'a [(&'a str, usize, &'a str)],
    /// Whether registry `i` notifies the service.
    pub notify: [bool; 2],
    /// `None`: SQLite in the scene; `Some(base)`: a fresh database on that PostgreSQL server.
    pub postgres: Option<String>,
    /// Seconds between reconciliation passes.
    pub reconcile_secs: u64,
    /// Lease of a move, seconds.
    pub lease_secs: u64,
    /// Extra environment of the service (fault injection).
    pub env: Vec<(String, String)>,
    /// Registries authenticate with the service's tokens (`auth: token`).
    pub token: bool,
    /// Top-level lines of the service's configuration (limits).
    pub service_config: String,
    /// Every party reaches the registries through a [`crate::flaky::FlakyProxy`] (passing
    /// everything until told to fail).
    pub flaky: bool,
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Self {
            stations: &[
                ("st-1", 0, "auto"),
                ("st-2", 1, "auto"),
                ("st-3", 0, "auto"),
            ],
            notify: [true, true],
            postgres: None,
            reconcile_secs: 30,
            lease_secs: 30,
            env: Vec::new(),
            token: false,
            service_config: String::new(),
            flaky: false,
        }
    }
}

impl RouteScene {
    /// Registries, the service, a creator `creator` on registry A and the stations.
    pub fn new(setup: Setup<'_>) -> Self {
        let ids: Vec<&str> = setup.stations.iter().map(|s| s.0).collect();
        let scene = Scene::new(&ids);
        let dir = scene.path("route");
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let hook = format!("{url}/v1/registry-events/distribution");
        let secrets: Vec<String> = (0..2)
            .map(|i| format!("secret-{i}-{}", crate::route::nonce()))
            .collect();
        let (key, cert) = token_signing_pair(&dir, setup.token);
        let realm = format!("{url}/v1/registry-token");
        let mut regs: Vec<TestRegistry> = (0..2)
            .map(|i| {
                let n = setup.notify[i].then_some((hook.as_str(), secrets[i].as_str()));
                let t = setup.token.then_some((realm.as_str(), cert.as_path()));
                TestRegistry::start(&dir, &format!("registry-{i}"), n, t)
            })
            .collect();
        let mut proxies = Vec::new();
        if setup.flaky {
            for r in &mut regs {
                let p = crate::flaky::FlakyProxy::start(&r.addr);
                r.addr = p.addr.clone();
                proxies.push(p);
            }
        }
        let database = match &setup.postgres {
            None => format!("sqlite:{}", dir.join("route.db").display()),
            Some(base) => {
                let name = format!("e2e_{}", nonce());
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(route_service::db::Db::create_database(base, &name))
                    .unwrap()
            }
        };
        let mut cfg = format!(
            "listen = \"127.0.0.1:{port}\"\ndatabase = \"{database}\"\noffline_after_secs = 5\n{}\n[mover]\nworkers = 4\nlease_secs = {}\nreconcile_secs = {}\n",
            setup.service_config, setup.lease_secs, setup.reconcile_secs
        );
        if setup.token {
            cfg.push_str(&format!(
                "[token]\nkey_file = \"{}\"\npublic_pull = [\"master\"]\n",
                key.display()
            ));
        }
        for (i, r) in regs.iter().enumerate() {
            cfg.push_str(&format!(
                "[[registry]]\nname = \"{}\"\naddress = \"{}\"\nnotification_secret_env = \"PHT_TEST_HOOK_SECRET_{i}\"\n",
                ["a", "b"][i],
                r.addr
            ));
            if setup.token {
                cfg.push_str(&format!("token_service = \"registry-{i}\"\n"));
            }
        }
        let config = dir.join("route-service.toml");
        std::fs::write(&config, cfg).unwrap();
        let mut rs = Self {
            scene,
            regs,
            url,
            database,
            keys: HashMap::new(),
            config,
            secrets,
            service: None,
            log: dir.join("route-service.log"),
            env: setup.env.clone(),
            token: setup.token,
            proxies,
            party_env: Vec::new(),
            watch_env: Vec::new(),
        };
        let creator_reg = rs.regs[0].addr.clone();
        let pubkey = rs.scene.path("keys/creator.pub.pem");
        rs.admin(&[
            "creator",
            "add",
            "creator",
            "--registry",
            &creator_reg,
            "--public-key",
            pubkey.to_str().unwrap(),
        ]);
        for (id, reg, approval) in setup.stations {
            let r = rs.regs[*reg].addr.clone();
            let k = rs.scene.path(&format!("keys/{id}.pub.pem"));
            rs.admin(&[
                "station",
                "add",
                id,
                "--registry",
                &r,
                "--approval",
                approval,
                "--public-key",
                k.to_str().unwrap(),
            ]);
        }
        rs.admin(&["admin", "add", "root"]);
        rs.start();
        rs
    }

    /// A scene around a route service and one registry (with token auth) this test did not
    /// start (a compose stack's), with the parties' API keys: watchers and the creator's
    /// commands work as in every other scene; the service's own commands do not.
    pub fn external(
        scene: Scene,
        url: &str,
        registry: &str,
        keys: HashMap<String, String>,
    ) -> Self {
        let log = scene.path("route-service.log");
        Self {
            scene,
            regs: vec![TestRegistry::external(registry)],
            url: url.to_string(),
            database: String::new(),
            keys,
            config: PathBuf::new(),
            secrets: Vec::new(),
            service: None,
            log,
            env: Vec::new(),
            token: true,
            proxies: Vec::new(),
            party_env: Vec::new(),
            watch_env: Vec::new(),
        }
    }

    /// Runs an administration command and records the API key it prints.
    pub fn admin(&mut self, args: &[&str]) -> String {
        let out = ok(Command::new(bin("route-service"))
            .args(args)
            .arg("--database")
            .arg(&self.database));
        let key = out.trim().to_string();
        if args.get(1) == Some(&"add") {
            self.keys.insert(args[2].to_string(), key.clone());
        }
        key
    }

    /// The registry notification secret of registry `i`.
    pub fn secret(&self, i: usize) -> &str {
        &self.secrets[i]
    }

    /// Starts the service (again) and waits until it answers.
    pub fn start(&mut self) {
        let url = self.url.clone();
        self.service = Some(self.spawn_service(None, &url));
    }

    /// A second replica on the same configuration and database, listening on its own port;
    /// returns it and its URL (registries keep notifying the first).
    pub fn start_replica(&self) -> (Child, String) {
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        (
            self.spawn_service(Some(&format!("127.0.0.1:{port}")), &url),
            url,
        )
    }

    /// `route-service serve` on this scene's configuration (and `listen`), waited for at `url`.
    fn spawn_service(&self, listen: Option<&str>, url: &str) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut c = Command::new(bin("route-service"));
        c.arg("serve").arg("--config").arg(&self.config);
        if let Some(l) = listen {
            c.arg("--listen").arg(l);
        }
        c.stdout(Stdio::null())
            .stderr(log)
            .env("RUST_LOG", "info,route_service=debug");
        for (i, s) in self.secrets.iter().enumerate() {
            c.env(format!("PHT_TEST_HOOK_SECRET_{i}"), s);
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        let child = c.spawn().unwrap();
        let health = format!("{url}/healthz");
        wait_for(30, "the route service", || {
            Command::new("curl")
                .args(["-fs", "-o", "/dev/null", &health])
                .status()
                .is_ok_and(|s| s.success())
        });
        child
    }

    /// The service's process id.
    pub fn pid(&self) -> Option<u32> {
        self.service.as_ref().map(Child::id)
    }

    /// `kill -9` of the service.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.service.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.service.take().expect("running");
        ok(Command::new("kill").args(["-TERM", &c.id().to_string()]));
        c.wait().unwrap()
    }

    /// The service's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An API call as `who` (`None`: no credentials); returns (status, JSON body).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        who: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let auth = who.map(|w| {
            format!(
                "ApiKey {w} {}",
                self.keys.get(w).map(String::as_str).unwrap_or("pht_wrong")
            )
        });
        http(
            method,
            &format!("{}{path}", self.url),
            auth.as_deref(),
            body.map(|b| b.to_string()).as_deref(),
        )
    }

    /// The train `id` as the admin sees it.
    pub fn train(&self, id: &str) -> Value {
        let (s, v) = self.call("GET", &format!("/v1/trains/{id}"), Some("root"), None);
        assert_eq!(s, 200, "{v}");
        v
    }

    /// Waits until the train's state is `state` (or panics with its view and the log).
    pub fn wait_state(&self, id: &str, state: &str, secs: u64) -> Value {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self.train(id);
            if v["state"] == state {
                return v;
            }
            if Instant::now() > end {
                panic!(
                    "train {id} is not {state} after {secs} s: {v:#}\nservice log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The station's inbox (long-poll of up to `wait` seconds) as the station.
    pub fn inbox(&self, station: &str, wait: u64) -> Vec<Value> {
        let (s, v) = self.call(
            "GET",
            &format!("/v1/stations/{station}/inbox?wait={wait}s"),
            Some(station),
            None,
        );
        assert_eq!(s, 200, "{v}");
        v["items"].as_array().cloned().unwrap_or_default()
    }

    /// Builds the train directory `train` on the test master and pushes it to the creator's
    /// submissions repository as `tag`; returns the reference.
    pub fn build_submission(&self, train: &Path, tag: &str) -> String {
        self.build_submission_by(train, tag, "creator")
    }

    /// [`RouteScene::build_submission`] signed with the key of `key_owner`.
    pub fn build_submission_by(&self, train: &Path, tag: &str, key_owner: &str) -> String {
        let r = format!("{}/creator/submissions:{tag}", self.regs[0].addr);
        ok(self
            .as_party("creator", Command::new(bin("train")))
            .args(["image", "build"])
            .arg(train)
            .args([
                "--master",
                crate::master(),
                "--tag",
                &r,
                "--entrypoint",
                "run.sh",
            ])
            .arg("--creator-key")
            .arg(self.scene.key(key_owner)));
        r
    }

    /// `cmd` with `who`'s registry login (its id and API key) when registries take tokens.
    pub fn as_party(&self, who: &str, mut cmd: Command) -> Command {
        for (k, v) in &self.party_env {
            cmd.env(k, v);
        }
        if self.token {
            cmd.env("PHT_REGISTRY_USERNAME", who);
            cmd.env(
                "PHT_REGISTRY_PASSWORD",
                self.keys.get(who).map(String::as_str).unwrap_or("none"),
            );
            // The service's realm, named as a user would (credentials go nowhere else).
            cmd.env(
                "PHT_TOKEN_REALMS",
                format!("{}/v1/registry-token", self.url),
            );
        }
        cmd
    }

    /// The creator's decrypted results of train `id`, file contents concatenated.
    pub fn results(&self, id: &str) -> String {
        let out = self.scene.path("results");
        let _ = std::fs::remove_dir_all(&out);
        ok(self
            .as_party("creator", Command::new(bin("train")))
            .args([
                "results",
                &format!("{}/creator/results:{id}", self.regs[0].addr),
                "--key",
            ])
            .arg(self.scene.key("creator"))
            .arg("--out")
            .arg(&out));
        let mut files: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect()
    }

    /// Submits `image` along `route` as the creator; returns (status, body).
    pub fn submit(&self, image: &str, route: &[&str]) -> (u16, Value) {
        self.call(
            "POST",
            "/v1/trains",
            Some("creator"),
            Some(&serde_json::json!({"image": image, "route": route})),
        )
    }

    /// Waits for the train in `station`'s inbox and runs it there with `station run`,
    /// pushing to the outbox the inbox item names; returns the item.
    pub fn run_station(&self, station: &str, train: &str) -> Value {
        self.run_station_with(station, train, "")
    }

    /// [`RouteScene::run_station`] with `extra` station configuration (e.g. a master policy).
    pub fn run_station_with(&self, station: &str, train: &str, extra: &str) -> Value {
        let end = Instant::now() + Duration::from_secs(60);
        let item = loop {
            let items = self.inbox(station, 5);
            if let Some(i) = items.into_iter().find(|i| i["train"] == train) {
                if i["state"] != "awaiting_approval" {
                    break i;
                }
            }
            assert!(
                Instant::now() < end,
                "train {train} never reached {station}: {:#}\n{}",
                self.train(train),
                self.log()
            );
        };
        let realm = if self.token && !extra.contains("[registry]") {
            format!(
                "\n[registry]\ntoken_realms = [\"{}/v1/registry-token\"]\n",
                self.url
            )
        } else {
            String::new()
        };
        let cfg = self
            .scene
            .config(&format!("{station}.toml"), &format!("{extra}{realm}"));
        let mut cmd = self
            .scene
            .station_cmd(station, item["image"].as_str().unwrap());
        if self.token {
            cmd.env("PHT_REGISTRY_USERNAME", station)
                .env("PHT_REGISTRY_PASSWORD", &self.keys[station]);
        }
        let o = crate::run(
            cmd.arg("--push")
                .arg(item["push_to"].as_str().unwrap())
                .arg("--config")
                .arg(cfg),
        );
        assert!(
            o.status.success(),
            "station run at {station}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        item
    }

    /// `curl`-free access to the service's registries: the manifest digest of `repo:tag` in
    /// registry `i`, if any.
    pub fn digest(&self, i: usize, repo: &str, tag: &str) -> Option<String> {
        let url = format!("http://{}/v2/{repo}/manifests/{tag}", self.regs[i].addr);
        let out = crate::run(Command::new("curl").args([
            "-sfI",
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
            &url,
        ]));
        let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
        head.lines().find_map(|l| {
            l.strip_prefix("docker-content-digest:")
                .map(|d| d.trim().to_string())
        })
    }
}

impl Drop for RouteScene {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The token signing key (PKCS#8) and its self-signed certificate (what the registries'
/// `rootcertbundle` holds) under `dir`, made with the openssl command when `make`.
pub fn token_signing_pair(dir: &Path, make: bool) -> (PathBuf, PathBuf) {
    let (key, cert) = (dir.join("token.key"), dir.join("token.crt"));
    if make {
        ok(Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
            ])
            .args(["-subj", "/CN=pht-route-service", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::null()));
    }
    (key, cert)
}

/// A short random-enough suffix (pid and clock).
pub fn nonce() -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "{}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_micros(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// One HTTP request with curl; returns (status, JSON body or `null`).
pub fn http(method: &str, url: &str, auth: Option<&str>, body: Option<&str>) -> (u16, Value) {
    let mut c = Command::new("curl");
    c.args([
        "-sS",
        "-X",
        method,
        "-w",
        "\n%{http_code}",
        "-H",
        "Content-Type: application/json",
    ]);
    if let Some(a) = auth {
        c.args(["-H", &format!("Authorization: {a}")]);
    }
    if let Some(b) = body {
        c.args(["--data-binary", b]);
    }
    c.arg(url);
    let out = crate::run(&mut c);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

/// Pushes to `to` the image at `from` with one more label on its image configuration: the
/// same layers, so the same signed train state, under a new manifest digest. What anyone who
/// may write into an outbox can make without any key (a registry operator, a station that
/// did not run the train); the route service must not count it as a stop done.
pub fn restamp(from: &str, to: &str) -> String {
    use serde_json::json;
    use train_image::{ImageRef, Registry, RegistryOptions, Silent, METADATA_CAP};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let reg = Registry::new(RegistryOptions::default());
        let (from, to): (ImageRef, ImageRef) = (from.parse().unwrap(), to.parse().unwrap());
        let p = reg.resolve(&from).await.unwrap();
        let raw = reg
            .blob_bytes(&p.reference, &p.manifest.config, METADATA_CAP)
            .await
            .unwrap();
        let mut cfg: Value = serde_json::from_slice(&raw).unwrap();
        if !cfg["config"]["Labels"].is_object() {
            cfg["config"]["Labels"] = json!({});
        }
        cfg["config"]["Labels"]["org.pht.test.restamped"] = json!("1");
        let bytes = serde_json::to_vec(&cfg).unwrap();
        let size = bytes.len();
        let config = reg.push_bytes(&to, bytes).await.unwrap();
        for l in &p.manifest.layers {
            if !reg.mount(&to, &p.reference, &l.digest).await {
                reg.copy_blob(&p.reference, &to, &l.digest, l.size, &Silent)
                    .await
                    .unwrap();
            }
        }
        let mut m: Value = serde_json::from_slice(&p.manifest.raw).unwrap();
        m["config"]["digest"] = json!(config);
        m["config"]["size"] = json!(size);
        reg.push_manifest(&to, serde_json::to_vec(&m).unwrap(), &p.manifest.media_type)
            .await
            .unwrap()
    })
}
