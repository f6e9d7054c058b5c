//! TLS and proxies as outside loopback, on this host's own non-loopback address: a route
//! service or registry presenting an expired certificate, one from a CA nobody configured, or
//! one issued for another address is refused, with what it means and what to do; the system
//! store (SSL_CERT_FILE, as OpenSSL and rustls-native-certs read it) and a configured CA file
//! are both honoured; the API key never goes over plain HTTP to another machine unless that
//! was allowed; a hospital's outbound proxy (HTTPS_PROXY) carries the connections.
//! The compose test runs the whole system over TLS and through the proxy.

use e2e::tls::{host_ip, ConnectProxy, TestCa, TlsServer};
use e2e::{bin, Scene};
use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `train status t-1` against `url` with `args` and `env`: (success, stderr).
fn status(url: &str, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut c = Command::new(bin("train"));
    c.args(["status", "t-1", "--as", "creator", "--route-service", url])
        .args(args)
        .env("PHT_API_KEY", "pht_the-creators-key")
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = e2e::run(&mut c);
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// `train verify REF` of an image on `addr`: (success, stderr).
fn verify(addr: &str, ca: &Path) -> (bool, String) {
    let o = e2e::run(
        Command::new(bin("train"))
            .args(["verify", &format!("{addr}/creator/submissions:t-1")])
            .arg("--ca-file")
            .arg(ca)
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy"),
    );
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn expired_foreign_and_misnamed_certificates_are_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let ip = host_ip();
    let ca = TestCa::new(&dir.path().join("ca"), "consortium-ca");
    let other = TestCa::new(&dir.path().join("other"), "someone-elses-ca");
    let ca_file = ca.cert.to_str().unwrap().to_string();

    // Expired: refused, said so, for the route service and for a registry.
    let (c, k) = ca.issue("expired", &ip, -1);
    let s = TlsServer::start(&ip, &c, &k);
    let (ok, err) = status(
        &format!("https://{}", s.addr),
        &["--ca-file", &ca_file],
        &[],
    );
    assert!(!ok);
    assert!(err.contains("certificate has expired"), "{err}");
    assert!(err.contains("nothing was sent"), "{err}");
    let (ok, err) = verify(&s.addr, &ca.cert);
    assert!(!ok);
    assert!(err.contains("certificate has expired"), "{err}");
    drop(s);

    // Signed by a CA this machine was not told to trust.
    let (c, k) = other.issue("foreign", &ip, 30);
    let s = TlsServer::start(&ip, &c, &k);
    let (ok, err) = status(
        &format!("https://{}", s.addr),
        &["--ca-file", &ca_file],
        &[],
    );
    assert!(!ok);
    assert!(
        err.contains("not signed by a CA this machine trusts"),
        "{err}"
    );
    assert!(err.contains("ca_file"), "what to do: {err}");
    let (ok, err) = verify(&s.addr, &ca.cert);
    assert!(!ok);
    assert!(
        err.contains("not signed by a CA this machine trusts"),
        "{err}"
    );
    drop(s);

    // The consortium's CA, but issued for another address.
    let (c, k) = ca.issue("misnamed", "192.0.2.254", 30);
    let s = TlsServer::start(&ip, &c, &k);
    let (ok, err) = status(
        &format!("https://{}", s.addr),
        &["--ca-file", &ca_file],
        &[],
    );
    assert!(!ok);
    assert!(
        err.contains("not issued for the name or address used"),
        "{err}"
    );
    drop(s);

    // A sound certificate: untrusted without the CA; trusted through the system store
    // (SSL_CERT_FILE) or --ca-file. `s_server -www` is no route service: the handshake passes
    // and its answer is not understood, which is the point.
    let (c, k) = ca.issue("sound", &ip, 30);
    let s = TlsServer::start(&ip, &c, &k);
    let url = format!("https://{}", s.addr);
    let (ok, err) = status(&url, &[], &[]);
    assert!(!ok && err.contains("not signed by a CA"), "{err}");
    for (args, env) in [
        (vec!["--ca-file", ca_file.as_str()], vec![]),
        (vec![], vec![("SSL_CERT_FILE", ca_file.as_str())]),
    ] {
        let (ok, err) = status(&url, &args, &env);
        assert!(!ok);
        assert!(!err.contains("certificate"), "{args:?} {env:?}: {err}");
        assert!(err.contains("not understood"), "{args:?} {env:?}: {err}");
    }

    // An unreadable or certificate-less CA file fails at once, named.
    let bad = dir.path().join("not-a-ca.pem");
    std::fs::write(&bad, "hello\n").unwrap();
    let (ok, err) = status(&url, &["--ca-file", bad.to_str().unwrap()], &[]);
    assert!(!ok && err.contains("no PEM certificate"), "{err}");
}

/// A listener on `ip` that records whatever arrives.
fn listener(ip: &str) -> (String, Arc<Mutex<Vec<u8>>>) {
    let l = TcpListener::bind(format!("{ip}:0")).unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut buf = [0u8; 4096];
            if let Ok(n) = c.read(&mut buf) {
                g.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        }
    });
    (addr, got)
}

#[test]
fn the_api_key_never_goes_over_plain_http_to_another_machine_unless_allowed() {
    let ip = host_ip();
    let (addr, got) = listener(&ip);
    let url = format!("http://{addr}");

    let (ok, err) = status(&url, &[], &[]);
    assert!(!ok);
    assert!(err.contains("plain HTTP to another machine"), "{err}");
    assert!(err.contains("nothing was sent"), "{err}");

    // The station: `station doctor` names it, and sends nothing either.
    let scene = Scene::new(&["st-1"]);
    let key_file = scene.path("st-1.api-key");
    std::fs::write(&key_file, "pht_the-stations-key").unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let watch = |extra: &str| {
        scene.config(
            "st-1.toml",
            &format!(
                "[station]\nid = \"st-1\"\nkey = \"{}\"\n[watch]\nroute_service = \"{url}\"\napi_key_file = \"{}\"\nregistries = [\"{addr}\"]\n{extra}",
                scene.key("st-1").display(),
                key_file.display()
            ),
        )
    };
    let o = e2e::run(
        Command::new(bin("station"))
            .args(["doctor", "--config"])
            .arg(watch("")),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success());
    let line = out
        .lines()
        .find(|l| l.starts_with("FAIL  route service"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("plain HTTP to another machine"), "{out}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(got.lock().unwrap().is_empty(), "nothing reached {addr}");

    // Allowed explicitly, it is sent (the setting does what it says).
    let _ = status(&url, &["--plain-http"], &[]);
    wait(|| String::from_utf8_lossy(&got.lock().unwrap()).contains("ApiKey creator"));
    got.lock().unwrap().clear();
    let _ = e2e::run(
        Command::new(bin("station"))
            .args(["doctor", "--config"])
            .arg(watch("plain_http = true\n")),
    );
    wait(|| String::from_utf8_lossy(&got.lock().unwrap()).contains("ApiKey st-1"));
}

fn wait(f: impl Fn() -> bool) {
    e2e::route::wait_for(10, "the request at the listener", f);
}

#[test]
fn a_hospitals_outbound_proxy_carries_the_connections() {
    let dir = tempfile::tempdir().unwrap();
    let ip = host_ip();
    let ca = TestCa::new(&dir.path().join("ca"), "consortium-ca");
    let (c, k) = ca.issue("sound", &ip, 30);
    let s = TlsServer::start(&ip, &c, &k);
    let proxy = ConnectProxy::start();
    let ca_file = ca.cert.to_str().unwrap();
    let (ok, err) = status(
        &format!("https://{}", s.addr),
        &["--ca-file", ca_file],
        &[("HTTPS_PROXY", &proxy.url)],
    );
    assert!(!ok && err.contains("not understood"), "{err}");
    assert_eq!(proxy.targets(), vec![s.addr.clone()]);

    // The registry client too.
    let o = e2e::run(
        Command::new(bin("train"))
            .args(["verify", &format!("{}/creator/submissions:t-1", s.addr)])
            .args(["--ca-file", ca_file])
            .env("HTTPS_PROXY", &proxy.url)
            .env_remove("NO_PROXY")
            .env_remove("no_proxy"),
    );
    assert!(!o.status.success());
    assert!(proxy.targets().len() >= 2, "{:?}", proxy.targets());
    assert!(proxy.targets().iter().all(|t| *t == s.addr));
}
