//! Whether this process may push to a repository, checked without leaving anything there: an
//! upload is opened and cancelled. `station doctor` uses it for the station's outbox, so that a
//! grant missing at the registry shows before a train has run (a run finds out only at its
//! push, with the train's results computed and thrown away).

use super::http::CappedHttp;
use super::registry::Registry;
use super::{ImageError, ImageRef};
use oci_client::secrets::RegistryAuth;

impl Registry {
    /// `Ok(())` when the registry opens an upload into `r`'s repository for these credentials
    /// (the upload is cancelled at once); otherwise what the registry answered.
    pub async fn probe_push(&self, r: &ImageRef) -> Result<(), ImageError> {
        let (_, auth) = self.client_and_auth(r).await?;
        let (http, scheme) = self.capped(r)?;
        http.upload_probe(&auth, r, scheme).await
    }
}

impl CappedHttp {
    async fn upload_probe(
        &self,
        auth: &RegistryAuth,
        r: &ImageRef,
        scheme: &str,
    ) -> Result<(), ImageError> {
        let registry = r.inner().resolve_registry().to_string();
        let base = format!("{scheme}://{registry}");
        let url = format!("{base}/v2/{}/blobs/uploads/", r.repository());
        let err = |reason: String| ImageError::Registry {
            registry: r.registry().to_string(),
            what: format!("opening an upload into {}/{}", r.registry(), r.repository()),
            reason,
        };
        let (resp, header) = self
            .answering_challenge(&registry, auth, &err, &|| {
                self.client.post(&url).header("Content-Length", "0")
            })
            .await?;
        let status = resp.status();
        if status != reqwest::StatusCode::ACCEPTED {
            return Err(err(format!("{status} (push is not allowed)")));
        }
        // Cancel it; the location is the registry's own (a relative path or its origin):
        // credentials go nowhere else.
        if let Some(loc) = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
        {
            let cancel = if loc.starts_with('/') {
                format!("{base}{loc}")
            } else {
                loc.to_string()
            };
            if cancel.starts_with(&format!("{base}/")) {
                let mut req = self.client.delete(&cancel);
                if let Some(h) = &header {
                    req = req.header(reqwest::header::AUTHORIZATION, h);
                }
                let _ = req.send().await;
            }
        }
        Ok(())
    }
}
