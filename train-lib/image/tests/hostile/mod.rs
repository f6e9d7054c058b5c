//! A registry that lies, for tests: a few lines of HTTP/1.1 over a socket, serving whatever each
//! test puts at each path (a real registry, distribution, checks what it stores).

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use train_image::ImageRef;

#[derive(Clone)]
pub enum Reply {
    Bytes(Vec<u8>),
    /// Chunked, without end (until the client hangs up).
    Endless,
}

/// Serves `routes` (path → reply) on a loopback port; 404 for anything else. Returns host:port.
pub async fn serve(routes: HashMap<String, Reply>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let routes = Arc::new(routes);
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let routes = routes.clone();
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&req)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string();
                let path = line.split(' ').nth(1).unwrap_or("").to_string();
                let head = line.starts_with("HEAD");
                match routes.get(&path).cloned() {
                    Some(Reply::Bytes(b)) => {
                        let h = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                            b.len()
                        );
                        let _ = sock.write_all(h.as_bytes()).await;
                        if !head {
                            let _ = sock.write_all(&b).await;
                        }
                    }
                    Some(Reply::Endless) => {
                        let _ = sock
                            .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
                            .await;
                        let chunk = vec![b' '; 1 << 20];
                        loop {
                            let mut c = format!("{:x}\r\n", chunk.len()).into_bytes();
                            c.extend_from_slice(&chunk);
                            c.extend_from_slice(b"\r\n");
                            if sock.write_all(&c).await.is_err() {
                                return;
                            }
                        }
                    }
                    None => {
                        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#;
                        let h = format!(
                            "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = sock.write_all(h.as_bytes()).await;
                        let _ = sock.write_all(body).await;
                    }
                }
            });
        }
    });
    addr
}

pub fn sha256(b: &[u8]) -> String {
    format!(
        "sha256:{}",
        hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b).as_ref())
    )
}

pub fn manifest(config: (&str, usize), layers: &[(&str, usize)]) -> Vec<u8> {
    let layers: Vec<_> = layers
        .iter()
        .map(|(d, n)| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": n}))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0, "size": config.1},
        "layers": layers,
    }))
    .unwrap()
}

/// Routes for `repo:x` = a manifest with this configuration and these layer blobs; `serve_as`
/// overrides what is served for a blob (by index: 0 = config, 1.. = layers).
pub fn image_routes(
    repo: &str,
    config: &[u8],
    layers: &[Vec<u8>],
    serve_as: &[(usize, Reply)],
) -> HashMap<String, Reply> {
    let cd = sha256(config);
    let lds: Vec<(String, usize)> = layers.iter().map(|l| (sha256(l), l.len())).collect();
    let refs: Vec<(&str, usize)> = lds.iter().map(|(d, n)| (d.as_str(), *n)).collect();
    let mut r = HashMap::from([
        ("/v2/".to_string(), Reply::Bytes(b"{}".to_vec())),
        (
            format!("/v2/{repo}/manifests/x"),
            Reply::Bytes(manifest((&cd, config.len()), &refs)),
        ),
        (
            format!("/v2/{repo}/blobs/{cd}"),
            Reply::Bytes(config.to_vec()),
        ),
    ]);
    for ((d, _), l) in lds.iter().zip(layers) {
        r.insert(format!("/v2/{repo}/blobs/{d}"), Reply::Bytes(l.clone()));
    }
    for (i, reply) in serve_as {
        let d = if *i == 0 {
            cd.clone()
        } else {
            lds[i - 1].0.clone()
        };
        r.insert(format!("/v2/{repo}/blobs/{d}"), reply.clone());
    }
    r
}

pub fn config_for(diff_ids: &[String]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {}, "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap()
}

pub fn reference(addr: &str, repo: &str) -> ImageRef {
    format!("{addr}/{repo}:x").parse().unwrap()
}
