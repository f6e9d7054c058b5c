//! Our images, built here with no image registry (scripts/images.sh: a Debian base from
//! mmdebstrap, `docker import`, then the Dockerfiles) and run as a deployment runs them: the
//! route service's image read-only, without capabilities or new privileges, as uid 10001, with
//! no shell in it; the registry and PostgreSQL stand-ins serving what the route service needs.

use e2e::route::{free_port, wait_for};
use e2e::{bin, ok};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn docker(args: &[&str]) -> String {
    ok(Command::new("docker").args(args))
}

/// A directory (and its files) the containers' users may read: they run as other uids.
fn shared_dir(parent: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let d = parent.join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    for (f, text) in files {
        std::fs::write(d.join(f), text).unwrap();
        std::fs::set_permissions(d.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    d
}

/// Removes the containers and volumes of the test, whatever happens.
struct Cleanup(Vec<String>, Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.0 {
            let _ = Command::new("docker").args(["rm", "-f", "-v", c]).output();
        }
        for v in &self.1 {
            let _ = Command::new("docker")
                .args(["volume", "rm", "-f", v])
                .output();
        }
    }
}

fn http_ok(url: &str) -> bool {
    Command::new("curl")
        .args(["-sf", "-o", "/dev/null", url])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn images_build_from_debian_packages_and_run_hardened() {
    let out = ok(Command::new("bash")
        .arg(e2e::root().join("scripts/images.sh"))
        .arg(bin("route-service")));
    eprintln!("image sizes (MB):\n{out}");
    for name in [
        "pht-local/route-service:latest",
        "pht-local/registry:2.8",
        "pht-local/postgres:15",
    ] {
        assert!(out.lines().any(|l| l.starts_with(name)), "{name} in {out}");
    }
    let image = "pht-local/route-service:latest";
    assert_eq!(
        docker(&["image", "inspect", "-f", "{{.Config.User}}", image]).trim(),
        "10001:10001"
    );
    // No shell to get into.
    let sh = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--entrypoint",
            "/bin/sh",
            image,
            "-c",
            "true",
        ])
        .output()
        .unwrap();
    assert!(!sh.status.success(), "the runtime image has a shell");

    let tmp = tempfile::tempdir().unwrap();
    let n = e2e::route::nonce();
    let mut clean = Cleanup(Vec::new(), Vec::new());

    // PostgreSQL (the stand-in), password from a file as the upstream image takes it.
    let pg_port = free_port();
    let pw = format!("pw-{n}");
    let secrets = shared_dir(tmp.path(), "secrets", &[("pg-password", &pw)]);
    let pg = format!("pht-test-pg-{n}");
    clean.0.push(pg.clone());
    clean.1.push(format!("{pg}-data"));
    docker(&[
        "run",
        "-d",
        "--name",
        &pg,
        "--network",
        "host",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "-e",
        &format!("PGPORT={pg_port}"),
        "-e",
        "POSTGRES_USER=route",
        "-e",
        "POSTGRES_DB=route",
        "-e",
        "POSTGRES_PASSWORD_FILE=/run/secrets/pg-password",
        "-v",
        &format!("{}:/run/secrets:ro", secrets.display()),
        "-v",
        &format!("{pg}-data:/var/lib/postgresql/data"),
        "pht-local/postgres:15",
    ]);
    let pg_url = format!("postgres://route:{pw}@127.0.0.1:{pg_port}/route");
    // The route service's own migrations run against it: an admin is added.
    let mut key = String::new();
    wait_for(
        60,
        "PostgreSQL in its image to take the route service's schema",
        || match Command::new(bin("route-service"))
            .args(["admin", "add", "root", "--database", &pg_url])
            .output()
        {
            Ok(o) if o.status.success() => {
                key = String::from_utf8_lossy(&o.stdout).trim().to_string();
                true
            }
            _ => false,
        },
    );
    assert!(key.starts_with("pht_"), "an API key: {key}");

    // The registry (the stand-in): /v2/ answers.
    let reg_port = free_port();
    let cfg = format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\nhttp:\n  addr: 127.0.0.1:{reg_port}\n"
    );
    let reg_cfg = shared_dir(tmp.path(), "registry", &[("config.yml", &cfg)]);
    let reg = format!("pht-test-reg-{n}");
    clean.0.push(reg.clone());
    clean.1.push(format!("{reg}-data"));
    docker(&[
        "run",
        "-d",
        "--name",
        &reg,
        "--network",
        "host",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "-v",
        &format!("{}:/etc/docker/registry:ro", reg_cfg.display()),
        "-v",
        &format!("{reg}-data:/var/lib/registry"),
        "pht-local/registry:2.8",
    ]);
    wait_for(30, "the registry in its image", || {
        http_ok(&format!("http://127.0.0.1:{reg_port}/v2/"))
    });

    // The route service, read-only, no capabilities, on that PostgreSQL.
    let rs_port = free_port();
    let rs_cfg = shared_dir(
        tmp.path(),
        "pht",
        &[(
            "route-service.toml",
            &format!(
                "listen = \"127.0.0.1:{rs_port}\"\ndatabase = \"{pg_url}\"\n[[registry]]\nname = \"a\"\naddress = \"127.0.0.1:{reg_port}\"\nnotification_secret_env = \"HOOK_SECRET\"\n"
            ),
        )],
    );
    let rs = format!("pht-test-rs-{n}");
    clean.0.push(rs.clone());
    docker(&[
        "run",
        "-d",
        "--name",
        &rs,
        "--network",
        "host",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "-e",
        &format!("HOOK_SECRET=hook-secret-{n}-0123456789abcdef"),
        "-v",
        &format!("{}:/etc/pht:ro", rs_cfg.display()),
        image,
    ]);
    let ready = format!("http://127.0.0.1:{rs_port}/readyz");
    let up = std::time::Instant::now();
    while !http_ok(&ready) {
        if up.elapsed().as_secs() > 60 {
            panic!(
                "the route service in its image is not ready:\n{}",
                String::from_utf8_lossy(
                    &Command::new("docker")
                        .args(["logs", &rs])
                        .output()
                        .unwrap()
                        .stderr
                )
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // The admin added through the image's database answers.
    let o = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "-H"])
        .arg(format!("Authorization: ApiKey root {key}"))
        .arg(format!("http://127.0.0.1:{rs_port}/v1/stations"))
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        answer.ends_with("\n200"),
        "GET /v1/stations as root: {answer}"
    );
    assert_eq!(
        docker(&[
            "inspect",
            "-f",
            "{{.State.Running}} {{.HostConfig.ReadonlyRootfs}}",
            &rs
        ])
        .trim(),
        "true true"
    );
}
