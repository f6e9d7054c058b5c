//! `/opt` into the loader pod and the results out of the collector pod, as tar streams over
//! the API server's `pods/exec` (a WebSocket to the kubelet): no pod network is involved, so the
//! namespace's deny-all NetworkPolicy stays closed both ways. What a helper prints on stderr is
//! capped; the results are capped as on the Docker engine.

use crate::errors::{call, Ctx};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, AttachParams};
use station::engine::{EngineError, OptStream, ResultsFile};
use std::path::Path;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// What of a helper's stderr is kept for a message.
const STDERR_CAP: u64 = 4096;

async fn capped(r: Option<impl AsyncRead + Unpin>, cap: u64) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(r) = r {
        let mut r = r.take(cap);
        let _ = r.read_to_end(&mut out).await;
        // Whatever more comes is read and dropped, so the stream never stalls the exec.
        let mut rest = r.into_inner();
        let _ = tokio::io::copy(&mut rest, &mut tokio::io::sink()).await;
    }
    out
}

/// The outcome of an exec from its status: `Success`, or what failed with its stderr.
fn checked(status: Option<Status>, what: &str, stderr: &[u8]) -> Result<(), EngineError> {
    match status {
        Some(s) if s.status.as_deref() == Some("Success") => Ok(()),
        Some(s) => Err(call(
            what,
            format!(
                "{} ({}); it said: {}",
                s.message.unwrap_or_default(),
                s.reason.unwrap_or_default(),
                station::output::escape(&String::from_utf8_lossy(stderr))
            ),
        )),
        None => Err(call(what, "the exec ended without a status")),
    }
}

/// Streams `opt` into `tar -x` in `/opt` of `pod`.
pub async fn tar_in(pods: &Api<Pod>, pod: &str, mut opt: OptStream) -> Result<(), EngineError> {
    let what = format!("copying the decrypted train into {pod}");
    let ap = AttachParams::default()
        .stdin(true)
        .stdout(false)
        .stderr(true);
    let mut p = pods
        .exec(pod, ["tar", "-x", "-f", "-", "-C", "/opt"], &ap)
        .await
        .ctx(|| what.clone())?;
    let status = p.take_status().expect("taken once");
    let stderr = tokio::spawn(capped(p.stderr(), STDERR_CAP));
    let mut stdin = p.stdin().expect("asked for stdin");
    let mut sent = Ok(());
    while let Some(b) = opt.recv().await {
        if let Err(e) = stdin.write_all(&b).await {
            sent = Err(e);
            break;
        }
    }
    // The end of stdin is the end of the archive (v5.channel.k8s.io closes the stream).
    let _ = stdin.shutdown().await;
    drop(stdin);
    let status = status.await;
    let stderr = stderr.await.unwrap_or_default();
    checked(status, &what, &stderr)?;
    sent.map_err(|e| call(what, e.to_string()))
}

/// Writes the tar of `/opt/pht_results` in `pod` to `dest`, at most `cap` bytes: the train's
/// failure ([`EngineError::Results`]) when there is none or it is too large.
pub async fn tar_out(
    pods: &Api<Pod>,
    pod: &str,
    dest: &Path,
    cap: u64,
) -> Result<u64, EngineError> {
    let what = format!("copying the results out of {pod}");
    let ap = AttachParams::default().stdout(true).stderr(true);
    let mut p = pods
        .exec(
            pod,
            ["tar", "-c", "-f", "-", "-C", "/opt", "pht_results"],
            &ap,
        )
        .await
        .ctx(|| what.clone())?;
    let status = p.take_status().expect("taken once");
    let stderr = tokio::spawn(capped(p.stderr(), STDERR_CAP));
    let mut stdout = p.stdout().expect("asked for stdout");
    let mut f = ResultsFile::create(dest, cap)?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let k = stdout
            .read(&mut buf)
            .await
            .map_err(|e| call(what.clone(), e.to_string()))?;
        if k == 0 {
            break;
        }
        f.write(&buf[..k]).await?;
    }
    let n = f.finish().await?;
    let status = status.await;
    let stderr = stderr.await.unwrap_or_default();
    checked(status, &what, &stderr).map_err(|e| {
        EngineError::Results(format!("the train's results could not be taken out: {e}"))
    })?;
    Ok(n)
}

/// Whether `/opt` in `pod` is full (`df -P -k`: under 16 KiB available).
pub async fn full(pods: &Api<Pod>, pod: &str) -> Result<bool, EngineError> {
    let what = format!("measuring the train's volume in {pod}");
    let ap = AttachParams::default().stdout(true).stderr(true);
    let mut p = pods
        .exec(pod, ["df", "-P", "-k", "/opt"], &ap)
        .await
        .ctx(|| what.clone())?;
    let status = p.take_status().expect("taken once");
    let stderr = tokio::spawn(capped(p.stderr(), STDERR_CAP));
    let out = capped(p.stdout(), STDERR_CAP).await;
    checked(status.await, &what, &stderr.await.unwrap_or_default())?;
    let text = String::from_utf8_lossy(&out);
    let avail = text
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|a| a.parse::<u64>().ok())
        .ok_or_else(|| call(&what, format!("unexpected `df` output: {}", text.trim())))?;
    Ok(avail < 16)
}
