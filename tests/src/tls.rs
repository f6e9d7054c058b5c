//! TLS as outside loopback: a CA the test makes (with the `openssl` command, as an admin
//! would), certificates it issues (valid, expired, for another address), this host's own
//! non-loopback address (where plain HTTP is not fine), and a hospital's outbound proxy (an
//! HTTP CONNECT proxy that records where it was asked to connect).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A certificate authority in a directory.
pub struct TestCa {
    dir: PathBuf,
    /// The CA's certificate (PEM): what stations and creators trust.
    pub cert: PathBuf,
    key: PathBuf,
}

fn openssl(args: &[&str], dir: &Path) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (scripts/services.sh installs it)");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

impl TestCa {
    /// A new CA named `name` in `dir` (made if missing).
    pub fn new(dir: &Path, name: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let (cert, key) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        );
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "30",
                "-subj",
                &format!("/CN={name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-keyout",
                key.to_str().unwrap(),
                "-out",
                cert.to_str().unwrap(),
            ],
            dir,
        );
        Self {
            dir: dir.to_path_buf(),
            cert,
            key,
        }
    }

    /// A server certificate for the IP address `ip`, valid for `days` from now (negative:
    /// expired that many days ago); (certificate, key), both PEM, the key 0644 (a test).
    pub fn issue(&self, name: &str, ip: &str, days: i32) -> (PathBuf, PathBuf) {
        let (cert, key, csr, ext) = (
            self.dir.join(format!("{name}.crt")),
            self.dir.join(format!("{name}.key")),
            self.dir.join(format!("{name}.csr")),
            self.dir.join(format!("{name}.ext")),
        );
        openssl(
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-subj",
                &format!("/CN={ip}"),
                "-keyout",
                key.to_str().unwrap(),
                "-out",
                csr.to_str().unwrap(),
            ],
            &self.dir,
        );
        std::fs::write(
            &ext,
            format!(
                "subjectAltName=IP:{ip}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"
            ),
        )
        .unwrap();
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                csr.to_str().unwrap(),
                "-CA",
                self.cert.to_str().unwrap(),
                "-CAkey",
                self.key.to_str().unwrap(),
                "-CAcreateserial",
                "-days",
                &days.to_string(),
                "-extfile",
                ext.to_str().unwrap(),
                "-out",
                cert.to_str().unwrap(),
            ],
            &self.dir,
        );
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        (cert, key)
    }
}

/// This host's first non-loopback IPv4 address: traffic to it is treated as crossing a
/// network (plain HTTP refused, TLS required), as it is for a station at a hospital.
pub fn host_ip() -> String {
    let o = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .expect("ip (iproute2)");
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .map(str::to_string)
        .expect("a non-loopback IPv4 address on this host")
}

/// `openssl s_server` presenting `cert` on `ip:port`: a server whose certificate a client
/// must refuse. Killed when dropped.
pub struct TlsServer {
    child: std::process::Child,
    /// `ip:port`.
    pub addr: String,
}

impl TlsServer {
    /// Serves `cert`/`key` on a free port of `ip`.
    pub fn start(ip: &str, cert: &Path, key: &Path) -> Self {
        let port = crate::route::free_port();
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("{ip}:{port}"))
            .arg("-cert")
            .arg(cert)
            .arg("-key")
            .arg(key)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let addr = format!("{ip}:{port}");
        crate::route::wait_for(10, "openssl s_server listening", || {
            TcpStream::connect(&addr).is_ok()
        });
        Self { child, addr }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A hospital's outbound proxy: HTTP `CONNECT host:port` tunnels, each target recorded.
/// Stops accepting when dropped.
pub struct ConnectProxy {
    /// `http://127.0.0.1:port`: the value of `HTTPS_PROXY`.
    pub url: String,
    targets: Arc<Mutex<Vec<String>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl ConnectProxy {
    /// Listens on a free loopback port.
    pub fn start() -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let targets = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (t, s) = (targets.clone(), stop.clone());
        l.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                match l.accept() {
                    Ok((c, _)) => {
                        let t = t.clone();
                        std::thread::spawn(move || tunnel(c, &t));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Self { url, targets, stop }
    }

    /// The `host:port`s tunnelled to so far.
    pub fn targets(&self) -> Vec<String> {
        self.targets.lock().unwrap().clone()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn tunnel(mut c: TcpStream, targets: &Mutex<Vec<String>>) {
    c.set_nonblocking(false).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
        match c.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => return,
        }
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let Some(target) = text
        .strip_prefix("CONNECT ")
        .and_then(|r| r.split_whitespace().next())
    else {
        let _ = c.write_all(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n");
        return;
    };
    targets.lock().unwrap().push(target.to_string());
    let Ok(up) = TcpStream::connect(target) else {
        let _ = c.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n");
        return;
    };
    if c.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
    {
        return;
    }
    c.set_read_timeout(None).unwrap();
    let (mut c2, mut up2) = (c.try_clone().unwrap(), up.try_clone().unwrap());
    let mut up = up;
    let t = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut up);
        let _ = up.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut up2, &mut c);
    let _ = c.shutdown(Shutdown::Write);
    let _ = t.join();
}
