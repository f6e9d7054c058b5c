//! The central side as containers, for real: `deploy/compose/docker-compose.yml` brought up
//! by Debian's `docker-compose` on the images `scripts/images.sh` builds here; the first-run steps of its
//! README (an admin, three stations and a creator registered with `docker-compose exec`); every
//! service healthy; a station's token accepted by the registry; the state kept across
//! `docker-compose restart` and `down` then `up` with the volumes; a backup restored into a
//! fresh stack; `down -v` removes the volumes.
//!
//! As outside loopback: on this host's own non-loopback address, the route service is reached
//! only through the reverse proxy over TLS and the registry over its own TLS, with a CA the
//! test makes. The watchers trust it through `[tls] ca_file`, the creator's commands through
//! the system store (SSL_CERT_FILE), and both reach the stack through an outbound proxy
//! (HTTPS_PROXY) that records each connection.

use e2e::route::{free_port, nonce, token_signing_pair, wait_for, RouteScene};
use e2e::tls::{host_ip, ConnectProxy, TestCa};
use e2e::watch::{left, results, submit, Watcher, COUNT};
use e2e::{bin, ok, Scene};
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// One compose project and what it was given; `down -v` when dropped.
struct Stack {
    project: String,
    env: Vec<(String, String)>,
    url: String,
    ca: String,
}

impl Stack {
    fn cmd(&self, args: &[&str]) -> Command {
        let d = e2e::root().join("deploy/compose");
        let mut c = Command::new("docker-compose");
        c.arg("-p")
            .arg(&self.project)
            .arg("-f")
            .arg(d.join("docker-compose.yml"))
            .args(args);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    fn run(&self, args: &[&str]) -> String {
        ok(&mut self.cmd(args))
    }

    /// `up -d`; on failure, the services' logs in the panic.
    fn up(&self) {
        let o = self.cmd(&["up", "-d"]).output().unwrap();
        if !o.status.success() {
            let logs = self.cmd(&["logs", "--no-color"]).output().unwrap();
            panic!(
                "docker-compose up: {}\n{}",
                String::from_utf8_lossy(&o.stderr),
                String::from_utf8_lossy(&logs.stdout)
            );
        }
    }

    /// Waits until every service of the project reports healthy.
    fn healthy(&self, secs: u64) {
        wait_for(secs, "every service healthy", || {
            let ids = self.run(&["ps", "-q"]);
            let ids: Vec<&str> = ids.lines().collect();
            ids.len() == 4
                && ids.iter().all(|id| {
                    Command::new("docker")
                        .args(["inspect", "-f", "{{.State.Health.Status}}", id])
                        .output()
                        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "healthy")
                })
        });
    }

    /// `GET path` as `who` with `key`: (status, body).
    fn get(&self, path: &str, who: &str, key: &str) -> (u16, String) {
        let o = Command::new("curl")
            .args(["-s", "--cacert", &self.ca, "-w", "\n%{http_code}", "-H"])
            .arg(format!("Authorization: ApiKey {who} {key}"))
            .arg(format!("{}{path}", self.url))
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        let (body, code) = out.rsplit_once('\n').unwrap_or(("", "0"));
        (code.parse().unwrap_or(0), body.to_string())
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.cmd(&["down", "-v", "--remove-orphans"]).output();
    }
}

#[test]
fn the_central_side_comes_up_with_compose_and_keeps_its_state_across_restarts() {
    let images = ok(Command::new("bash")
        .arg(e2e::root().join("scripts/images.sh"))
        .arg(bin("route-service")));
    eprintln!("images (MB):\n{images}");

    let dir = tempfile::tempdir().unwrap();
    let (config, secrets) = (dir.path().join("config"), dir.path().join("secrets"));
    std::fs::create_dir_all(&config).unwrap();
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o700)).unwrap();
    // The secrets are files in a directory only root may enter; each readable by the
    // service that mounts it (route-service runs as uid 10001, the others as their users).
    let (key, cert) = token_signing_pair(dir.path(), true);
    std::fs::copy(&key, secrets.join("token.key")).unwrap();
    std::fs::set_permissions(
        secrets.join("token.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::copy(&cert, config.join("token.crt")).unwrap();
    std::fs::set_permissions(
        config.join("token.crt"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let n = nonce().replace('_', "-");
    let hook = format!("hook-{n}-0123456789abcdef0123456789");
    write(&secrets.join("hook_secret"), &hook, 0o644);
    write(
        &secrets.join("postgres_password"),
        &format!("pg-{n}"),
        0o644,
    );
    let (rs_port, reg_port, pg_port, proxy_port) =
        (free_port(), free_port(), free_port(), free_port());
    // Where the service listens (127.0.0.1, for the proxy and the registry's notifications)
    // and where everyone else reaches it: through the proxy, over TLS.
    let inside = format!("http://127.0.0.1:{rs_port}");
    let ip = host_ip();
    let url = format!("https://{ip}:{proxy_port}");
    let registry = format!("{ip}:{reg_port}");
    let tls = config.join("tls");
    let ca = TestCa::new(&dir.path().join("ca"), "consortium-ca");
    std::fs::create_dir_all(&tls).unwrap();
    std::fs::set_permissions(&tls, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::copy(&ca.cert, tls.join("ca.pem")).unwrap();
    for (name, secret) in [
        ("route-service", "route-service.tls.key"),
        ("registry", "registry.tls.key"),
    ] {
        let (c, k) = ca.issue(name, &ip, 30);
        std::fs::copy(&c, tls.join(format!("{name}.crt"))).unwrap();
        std::fs::copy(&k, secrets.join(secret)).unwrap();
    }
    for f in std::fs::read_dir(&tls)
        .unwrap()
        .chain(std::fs::read_dir(&secrets).unwrap())
    {
        let f = f.unwrap().path();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let ca_file = tls.join("ca.pem").display().to_string();
    // curl (the test's own calls) trusts it too.
    std::env::set_var("CURL_CA_BUNDLE", &ca_file);
    let nginx = std::fs::read_to_string(e2e::root().join("deploy/compose/nginx.conf.example"))
        .unwrap()
        .replace("listen 8443 ssl", &format!("listen {proxy_port} ssl"))
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{rs_port}"));
    write(&config.join("nginx.conf"), &nginx, 0o644);
    write(
        &secrets.join("registry.yml"),
        &format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\n  delete:\n    enabled: true\nhttp:\n  addr: \":{reg_port}\"\n  tls:\n    certificate: /etc/pht/tls/registry.crt\n    key: /run/secrets/registry_tls_key\nauth:\n  token:\n    realm: {url}/v1/registry-token\n    service: registry\n    issuer: pht-route-service\n    rootcertbundle: /etc/pht/token.crt\nnotifications:\n  endpoints:\n    - name: route-service\n      url: {inside}/v1/registry-events/distribution\n      headers:\n        Authorization: [\"{hook}\"]\n      timeout: 2s\n      threshold: 3\n      backoff: 1s\n      ignore:\n        mediatypes: [application/octet-stream]\n        actions: [pull]\n"
        ),
        0o644,
    );
    write(
        &config.join("route-service.toml"),
        &format!(
            "listen = \"127.0.0.1:{rs_port}\"\nca_file = \"/etc/pht/tls/ca.pem\"\ndatabase = \"postgres://route@127.0.0.1:{pg_port}/route\"\ndatabase_password_file = \"/run/secrets/postgres_password\"\n[token]\nkey_file = \"/run/secrets/token_key\"\npublic_pull = [\"master\"]\n[[registry]]\nname = \"central\"\naddress = \"{registry}\"\nnotification_secret_file = \"/run/secrets/hook_secret\"\ntoken_service = \"registry\"\n"
        ),
        0o644,
    );
    let env = |k: &str, v: &str| (k.to_string(), v.to_string());
    let stack = Stack {
        project: format!("pht-compose-{}", n.to_lowercase()),
        env: vec![
            env("PHT_ROUTE_SERVICE_IMAGE", "pht-local/route-service:latest"),
            env("PHT_POSTGRES_IMAGE", "pht-local/postgres:15"),
            env("PHT_REGISTRY_IMAGE", "pht-local/registry:2.8"),
            env("PHT_PROXY_IMAGE", "pht-local/nginx:bookworm"),
            env("PHT_PROXY_USER", "www-data"),
            env("PHT_PROXY_PORT", &proxy_port.to_string()),
            env("PHT_ROUTE_SERVICE_PORT", &rs_port.to_string()),
            env("PHT_REGISTRY_PORT", &reg_port.to_string()),
            env("PHT_POSTGRES_PORT", &pg_port.to_string()),
            env("PHT_CONFIG_DIR", config.to_str().unwrap()),
            env("PHT_SECRETS_DIR", secrets.to_str().unwrap()),
        ],
        url: url.clone(),
        ca: ca_file.clone(),
    };
    stack.up();
    stack.healthy(180);

    // First run, as deploy/compose/README.md says: an admin, then the parties, each
    // registration printing the party's API key once.
    let cfg = "/etc/pht/route-service.toml";
    // `exec` in the running service: its image has the binary and nothing else
    // (`docker-compose run` of a host-network service fails in 1.29: it adds links).
    let admin = |args: &[&str]| -> String {
        let mut a = vec![
            "exec",
            "-T",
            "route-service",
            "/usr/local/bin/route-service",
        ];
        a.extend_from_slice(args);
        a.extend_from_slice(&["--config", cfg]);
        stack.run(&a).trim().to_string()
    };
    let scene = Scene::new(&["st-1", "st-2", "st-3"]);
    let public = config.join("keys");
    std::fs::create_dir_all(&public).unwrap();
    std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o755)).unwrap();
    for who in ["creator", "st-1", "st-2", "st-3"] {
        let f = public.join(format!("{who}.pub.pem"));
        std::fs::copy(scene.path(&format!("keys/{who}.pub.pem")), &f).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let root = admin(&["admin", "add", "root"]);
    assert!(root.starts_with("pht_"), "{root}");
    let mut station_keys = Vec::new();
    let mut keys = HashMap::new();
    for s in ["st-1", "st-2", "st-3"] {
        let pem = format!("/etc/pht/keys/{s}.pub.pem");
        let k = admin(&[
            "station",
            "add",
            s,
            "--registry",
            &registry,
            "--public-key",
            &pem,
        ]);
        assert!(k.starts_with("pht_"), "{k}");
        station_keys.push(k.clone());
        keys.insert(s.to_string(), k);
    }
    let c = admin(&[
        "creator",
        "add",
        "creator",
        "--registry",
        &registry,
        "--public-key",
        "/etc/pht/keys/creator.pub.pem",
    ]);
    assert!(c.starts_with("pht_"), "{c}");
    keys.insert("creator".to_string(), c.clone());
    let stations = |what: &str| {
        let (s, body) = stack.get("/v1/stations", "root", &root);
        assert_eq!(s, 200, "{what}: {body}");
        for st in ["st-1", "st-2", "st-3"] {
            assert!(
                body.contains(&format!("\"{st}\"")),
                "{what}: {st} in {body}"
            );
        }
    };
    stations("after the first run");

    // The dashboard through the proxy, as a browser posts its sign-in form: the Origin it
    // names matches the host the proxy passes on, and the cookie is Secure (TLS outside).
    let o = Command::new("curl")
        .args(["-s", "--cacert", &ca_file, "-o", "/dev/null", "-D", "-"])
        .args(["-H", &format!("Origin: {url}")])
        .args(["--data-urlencode", "principal=root", "--data-urlencode"])
        .arg(format!("api_key={root}"))
        .arg(format!("{url}/ui/login"))
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&o.stdout).to_lowercase();
    assert!(head.starts_with("http/1.1 303"), "{head}");
    let cookie = head
        .lines()
        .find(|l| l.starts_with("set-cookie: pht_session="))
        .unwrap_or_else(|| panic!("no session cookie: {head}"));
    assert!(
        cookie.contains("; secure") && cookie.contains("httponly"),
        "{cookie}"
    );

    // The registry takes the service's token for a station's own outbox.
    let o = Command::new("curl")
        .args(["-sf", "--cacert", &ca_file, "-u"])
        .arg(format!("st-1:{}", station_keys[0]))
        .arg(format!(
            "{url}/v1/registry-token?service=registry&scope=repository:st-1/outbox:pull,push"
        ))
        .output()
        .unwrap();
    assert!(o.status.success(), "a token for st-1");
    let token: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let t = token["token"].as_str().unwrap();
    let o = Command::new("curl")
        .args([
            "-s",
            "--cacert",
            &ca_file,
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
        ])
        .arg(format!("Authorization: Bearer {t}"))
        .arg(format!("https://{registry}/v2/st-1/outbox/tags/list"))
        .output()
        .unwrap();
    // 404 (no such repository yet) or 200: authorised either way; 401 would not be.
    let code = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        code == "404" || code == "200",
        "the registry answered {code}"
    );

    // The demo's train through the stack: three `station watch` daemons on the host, the
    // creator's commands (`train create --route-service`, `image build`, `submit`, `results`).
    keys.insert("root".to_string(), root.clone());
    // The hospitals' outbound proxy carries the watchers' connections, the creator's own
    // proxy the `train` commands'; watchers trust the CA by configuration, the creator by
    // the system store.
    let mut rs = RouteScene::external(scene, &url, &registry, keys);
    let (hospital, office) = (ConnectProxy::start(), ConnectProxy::start());
    let no_proxy =
        [("NO_PROXY", ""), ("no_proxy", "")].map(|(k, v)| (k.to_string(), v.to_string()));
    rs.watch_env = [("HTTPS_PROXY".to_string(), hospital.url.clone())]
        .into_iter()
        .chain(no_proxy.clone())
        .collect();
    rs.party_env = [
        ("HTTPS_PROXY".to_string(), office.url.clone()),
        ("SSL_CERT_FILE".to_string(), ca_file.clone()),
    ]
    .into_iter()
    .chain(no_proxy)
    .collect();
    let trust = format!("\n[tls]\nca_file = \"{ca_file}\"\n");
    let route = ["st-1", "st-2", "st-3"];

    // `station doctor` over TLS: the service, its key check, the registry and the clock.
    let st1 = rs.watcher_config("st-1", &trust);
    let o = e2e::run(
        Command::new(bin("station"))
            .args(["doctor", "--config"])
            .arg(&st1)
            .env("HTTPS_PROXY", &hospital.url),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    for name in ["route service", "key at the service", "registry", "clock"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("ok    {name} "))),
            "doctor over TLS: `{name}` not ok:\n{out}"
        );
    }

    let ws: Vec<Watcher> = route.iter().map(|s| rs.watcher(s, &trust)).collect();
    let id = submit(&rs, "native", COUNT, &route);
    rs.wait_state(&id, "finished", 300);
    assert_eq!(results(&rs, &id), "st-1,7\nst-2,7\nst-3,7\n");
    let public = [format!("{ip}:{proxy_port}"), registry.clone()];
    for (who, p) in [("the watchers", &hospital), ("the creator", &office)] {
        let t = p.targets();
        for want in &public {
            assert!(
                t.contains(want),
                "{who} reached {want} through their proxy: {t:?}"
            );
        }
        assert!(
            t.iter().all(|x| public.contains(x)),
            "{who}'s proxy was asked only for the stack: {t:?}"
        );
    }

    // A second route, the stack restarted while st-2 runs it, then taken down and up (volumes
    // kept) while st-3 does: it finishes, each stop once.
    let slow = format!(
        "#!/bin/sh\nsleep 8\n{}",
        COUNT.strip_prefix("#!/bin/sh\n").unwrap()
    );
    let id2 = submit(&rs, "native", &slow, &route);
    wait_for(240, "the second train's container at st-2", || {
        left(&ws[1], "container") > 0
    });
    stack.run(&["restart"]);
    stack.healthy(180);
    // And taken down and brought up with its volumes while st-3 runs it.
    wait_for(240, "the second train's container at st-3", || {
        left(&ws[2], "container") > 0
    });
    stack.run(&["down"]);
    stack.up();
    stack.healthy(180);
    let v = rs.wait_state(&id2, "finished", 300);
    assert_eq!(v["states"].as_array().map(Vec::len), Some(4), "{v:#}");
    assert_eq!(results(&rs, &id2), "st-1,7\nst-2,7\nst-3,7\n");
    for s in route {
        let pushed = rs
            .scene
            .audit_records(&format!("{s}.toml"))
            .iter()
            .filter(|r| r["decision"] == "pushed" && r["train_id"] == id2.as_str())
            .count();
        assert_eq!(pushed, 1, "{s} pushed the second train once");
    }
    drop(ws);
    stations("after docker-compose restart");
    stack.run(&["down"]);
    stack.up();
    stack.healthy(180);
    stations("after down and up with the volumes kept");

    // A third train in flight when the backup is taken: st-1 has run it, it waits in st-2's
    // inbox (no watcher of st-2 runs).
    let w1 = rs.watcher("st-1", &trust);
    let id3 = submit(&rs, "native", COUNT, &route);
    wait_for(240, "the third train in st-2's inbox", || {
        rs.inbox("st-2", 0)
            .iter()
            .any(|i| i["train"] == id3.as_str())
    });
    drop(w1);

    // A backup (deploy/compose/README.md, "Backup and restore"): pg_dump in the database's
    // container, to a file on the host.
    let pg = |script: &str| -> Command {
        let mut c = stack.cmd(&["exec", "-T", "postgres", "sh", "-c"]);
        c.arg(format!(
            "PGPASSWORD=\"$(cat /run/secrets/postgres_password)\" {script} -h 127.0.0.1 -p \"$PGPORT\" -U route -d route"
        ));
        c
    };
    let dump = pg("pg_dump --format=custom").output().unwrap();
    assert!(
        dump.status.success() && dump.stdout.len() > 1000,
        "pg_dump: {}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let backup = dir.path().join("route.dump");
    std::fs::write(&backup, &dump.stdout).unwrap();

    // The database is lost: the route service and PostgreSQL with their volumes removed (the
    // registry's storage, where the trains' images are, is kept: it is backed up on its own).
    // A fresh database knows no one.
    let volumes = || {
        ok(Command::new("docker").args([
            "volume",
            "ls",
            "-q",
            "--filter",
            &format!("name={}_", stack.project),
        ]))
    };
    stack.run(&["rm", "-s", "-f", "-v", "proxy", "route-service", "postgres"]);
    for v in ["postgres", "route-service"] {
        ok(Command::new("docker").args(["volume", "rm", &format!("{}_{v}", stack.project)]));
    }
    stack.up();
    stack.healthy(180);
    assert_eq!(stack.get("/v1/stations", "root", &root).0, 401);

    // Restored into it (the route service stopped meanwhile): everyone is back, and the train
    // in flight goes on from st-2, st-1 not running it again.
    stack.run(&["stop", "route-service"]);
    let mut restore = pg("pg_restore --clean --if-exists --no-owner");
    restore.stdin(std::fs::File::open(&backup).unwrap());
    let o = restore.output().unwrap();
    assert!(
        o.status.success(),
        "pg_restore: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    stack.run(&["start", "route-service"]);
    stack.healthy(180);
    stations("after a restore into a fresh database");
    let ws: Vec<Watcher> = route.iter().map(|s| rs.watcher(s, &trust)).collect();
    let v = rs.wait_state(&id3, "finished", 300);
    assert_eq!(v["states"].as_array().map(Vec::len), Some(4), "{v:#}");
    assert_eq!(results(&rs, &id3), "st-1,7\nst-2,7\nst-3,7\n");
    for s in route {
        let pushed = rs
            .scene
            .audit_records(&format!("{s}.toml"))
            .iter()
            .filter(|r| r["decision"] == "pushed" && r["train_id"] == id3.as_str())
            .count();
        assert_eq!(pushed, 1, "{s} pushed the restored train once");
    }
    drop(ws);

    stack.run(&["down", "-v"]);
    assert!(volumes().trim().is_empty(), "volumes left: {}", volumes());
}
