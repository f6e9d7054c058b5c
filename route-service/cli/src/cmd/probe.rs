//! `route-service probe`: one plain-HTTP GET, for health checks inside the service's own image
//! (no shell, no curl there). Only the status line is read.

use crate::cli::ProbeArgs;
use anyhow::{bail, Context, Result};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub async fn run(a: ProbeArgs) -> Result<()> {
    let rest = a
        .url
        .strip_prefix("http://")
        .context("--url: give http://HOST:PORT/PATH")?;
    let (host, path) = match rest.split_once('/') {
        Some((h, p)) => (h, format!("/{p}")),
        None => (rest, "/".to_string()),
    };
    let status = tokio::time::timeout(Duration::from_secs(a.timeout_secs), async {
        let mut s = tokio::net::TcpStream::connect(host)
            .await
            .with_context(|| format!("connecting to {host}"))?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
        // The status line is in the first bytes; 64 are enough and bound the read.
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).await?;
        let line = String::from_utf8_lossy(&buf[..n]).to_string();
        anyhow::Ok(line.split_whitespace().nth(1).unwrap_or("").to_string())
    })
    .await
    .with_context(|| format!("{} did not answer within {} s", a.url, a.timeout_secs))??;
    if status != "200" {
        bail!("{} answered {status}: not ready", a.url);
    }
    pht_term::outln!("ready");
    Ok(())
}
