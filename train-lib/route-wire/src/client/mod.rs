//! The route service's HTTP client (feature `client`): what a station's watcher and a creator's
//! commands call. Thin: one method per endpoint, typed errors that carry the service's own
//! message, and an SSE reader that resumes with `Last-Event-ID`.
//!
//! The API key is sent as a sensitive header (never in a URL, never in `Debug` output).

mod sse;

pub use sse::{frames, EventStream, SseError};

use crate::{
    ApiError, ApprovalSetting, Decision, Digest, Inbox, KeyProposal, ReportStatus, StationId,
    StationKey, StationReport, SubmitTrain, TrainId, TrainView, API_KEY_SCHEME, MAX_WAIT_SECS,
};
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;

/// Why a call to the route service failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The service could not be reached (or the connection broke).
    #[error("cannot reach the route service at {url}: {message}; check the URL and that the service runs")]
    Unreachable {
        /// The request's URL.
        url: String,
        /// What the HTTP client said.
        message: String,
    },
    /// The service answered with an error body.
    #[error("the route service refused {what} ({status}): {}{}", .body.message, .body.check.as_ref().map(|c| format!(" [check: {c}]")).unwrap_or_default())]
    Api {
        /// What was asked.
        what: String,
        /// HTTP status.
        status: u16,
        /// The service's error body.
        body: ApiError,
    },
    /// The answer was not what this client understands.
    #[error("the route service's answer to {what} is not understood: {message}; is the URL a PHT route service of a matching version?")]
    Decode {
        /// What was asked.
        what: String,
        /// Why.
        message: String,
    },
    /// The API key or base URL cannot be used.
    #[error("{0}")]
    Config(String),
    /// The answer is longer than any answer of the service needs.
    #[error("the route service's answer to {what} is over {cap} bytes; refused (is the URL a PHT route service?)")]
    TooLarge {
        /// What was asked.
        what: String,
        /// The cap.
        cap: usize,
    },
}

/// The longest answer read: an inbox or a list of 1,000 trains is well under 2 MiB; 16 MiB
/// bounds what a hostile or broken service can make a station hold (a 256 MiB inbox answer
/// cost a watcher 567 MiB before this cap).
pub const MAX_ANSWER: usize = 16 << 20;
/// An error body is a sentence or two.
const MAX_ERROR_BODY: usize = 64 << 10;
/// Every call but the long-poll and the feeds ends within this.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// No byte for this long ends a call: above the long-poll's 55 s and the feeds' 15 s
/// keep-alive.
const READ_TIMEOUT: Duration = Duration::from_secs(75);

/// Reads `resp`'s body up to `cap` bytes.
async fn read_capped(what: &str, mut resp: reqwest::Response, cap: usize) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| unreachable(&e))? {
        if body.len() + chunk.len() > cap {
            return Err(ClientError::TooLarge {
                what: what.to_string(),
                cap,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl ClientError {
    /// The HTTP status, when the service answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether trying again later may help (the service or the network, not the request).
    pub fn transient(&self) -> bool {
        match self {
            ClientError::Unreachable { .. } => true,
            ClientError::Api { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

type Result<T> = std::result::Result<T, ClientError>;

/// Why an API key file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The file could not be read.
    #[error("reading the API key file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Others can read the file.
    #[error("the API key file {0} can be read by other users; run `chmod 600 {0}`")]
    Exposed(String),
}

/// Reads an API key from `path`, which only its owner may read (stations' and creators' key
/// files alike; keys never come from arguments, which `ps` shows).
pub fn read_api_key_file(
    path: &std::path::Path,
) -> std::result::Result<SecretString, KeyFileError> {
    use std::os::unix::fs::MetadataExt;
    let shown = path.display().to_string();
    let read = |source| KeyFileError::Read {
        path: shown.clone(),
        source,
    };
    if std::fs::metadata(path).map_err(read)?.mode() & 0o044 != 0 {
        return Err(KeyFileError::Exposed(shown));
    }
    let text = std::fs::read_to_string(path).map_err(read)?;
    Ok(SecretString::from(text.trim().to_string()))
}

/// A principal's connection to the route service.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    principal: String,
    auth: HeaderValue,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

/// How the service is reached beyond its URL.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// CA certificates (PEM, one each) trusted besides the system's.
    pub ca_certs: Vec<Vec<u8>>,
    /// Plain `http://` to a host that is not this machine is allowed (the API key crosses
    /// the network in clear): only for a link that is otherwise protected.
    pub plain_http: bool,
}

impl Client {
    /// A client of the service at `base` (`https://host` or, on this machine,
    /// `http://127.0.0.1:port`), calling as `principal` with `api_key`.
    pub fn new(base: &str, principal: &str, api_key: &SecretString) -> Result<Self> {
        Self::with_options(base, principal, api_key, &ClientOptions::default())
    }

    /// [`Client::new`] with `opts`.
    pub fn with_options(
        base: &str,
        principal: &str,
        api_key: &SecretString,
        opts: &ClientOptions,
    ) -> Result<Self> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::Config(format!(
                "route service URL `{base}`: give https://HOST (or http://127.0.0.1:PORT on this machine)"
            )));
        }
        if train_lib::net::plain_off_loopback(&base) && !opts.plain_http {
            return Err(ClientError::Config(format!(
                "route service URL `{base}` is plain HTTP to another machine: the API key would cross the network in clear, so nothing was sent. Use https:// (the reverse proxy in front of the service), or allow plain HTTP explicitly (station.toml [watch] plain_http = true; train --plain-http) for a link protected otherwise"
            )));
        }
        let key = api_key.expose_secret().trim();
        let mut auth = HeaderValue::from_str(&format!("{API_KEY_SCHEME} {principal} {key}"))
            .map_err(|_| {
                ClientError::Config(format!(
                    "the API key of `{principal}` holds characters a header cannot carry; it is the `pht_…` token printed at registration"
                ))
            })?;
        auth.set_sensitive(true);
        let mut http = reqwest::Client::builder();
        for pem in &opts.ca_certs {
            let c = reqwest::Certificate::from_pem(pem)
                .map_err(|e| ClientError::Config(format!("a configured CA certificate: {e}")))?;
            http = http.add_root_certificate(c);
        }
        let http = http
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(READ_TIMEOUT)
            .build()
            .map_err(|e| ClientError::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            principal: principal.to_string(),
            auth,
        })
    }

    /// The service's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The principal this client calls as.
    pub fn principal(&self) -> &str {
        &self.principal
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send<T: DeserializeOwned>(
        &self,
        what: &str,
        req: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<T> {
        let resp = req
            .header(AUTHORIZATION, self.auth.clone())
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| unreachable(&e))?;
        let status = resp.status();
        if !status.is_success() {
            let body = read_capped(what, resp, MAX_ERROR_BODY).await?;
            return Err(api_error(what, status, &body));
        }
        let body = read_capped(what, resp, MAX_ANSWER).await?;
        serde_json::from_slice(&body).map_err(|e| ClientError::Decode {
            what: what.into(),
            message: e.to_string(),
        })
    }

    async fn get<T: DeserializeOwned>(&self, what: &str, path: &str) -> Result<T> {
        self.send(what, self.http.get(self.url(path)), CALL_TIMEOUT)
            .await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        what: &str,
        path: &str,
        body: &B,
    ) -> Result<T> {
        let json = serde_json::to_vec(body).map_err(|e| ClientError::Decode {
            what: what.into(),
            message: e.to_string(),
        })?;
        let req = self
            .http
            .post(self.url(path))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(json);
        self.send(what, req, CALL_TIMEOUT).await
    }

    /// The service's clock, from the `Date` header of its `/healthz` answer (one-second
    /// precision); `None` when it sends none.
    pub async fn server_time(&self) -> Result<Option<std::time::SystemTime>> {
        let resp = self
            .http
            .get(self.url("/healthz"))
            .timeout(CALL_TIMEOUT)
            .send()
            .await
            .map_err(|e| unreachable(&e))?;
        Ok(resp
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok()))
    }

    /// The station's inbox, held up to `wait` (capped at [`MAX_WAIT_SECS`]) while it is empty.
    pub async fn inbox(&self, station: &StationId, wait: Duration) -> Result<Inbox> {
        let secs = wait.as_secs().min(MAX_WAIT_SECS);
        let req = self
            .http
            .get(self.url(&format!("/v1/stations/{station}/inbox?wait={secs}s")));
        let timeout = Duration::from_secs(secs + 20);
        self.send(&format!("reading the inbox of {station}"), req, timeout)
            .await
    }

    /// Reports on train `train` (as the station).
    pub async fn report(
        &self,
        train: &TrainId,
        status: ReportStatus,
        reason: Option<String>,
        digest: Option<Digest>,
    ) -> Result<TrainView> {
        let body = StationReport {
            status,
            reason,
            digest,
        };
        self.post(
            &format!("the report on train {train}"),
            &format!("/v1/trains/{train}/reports"),
            &body,
        )
        .await
    }

    /// Approves (`reason` optional) or rejects (`reason` required) train `train`.
    pub async fn decide(
        &self,
        train: &TrainId,
        approve: bool,
        reason: Option<String>,
    ) -> Result<TrainView> {
        let verb = if approve { "approve" } else { "reject" };
        self.post(
            &format!("to {verb} train {train}"),
            &format!("/v1/trains/{train}/{verb}"),
            &Decision { reason },
        )
        .await
    }

    /// The public key the service holds for station `id`.
    pub async fn station_key(&self, id: &StationId) -> Result<StationKey> {
        self.get(
            &format!("the key of station {id}"),
            &format!("/v1/stations/{id}/key"),
        )
        .await
    }

    /// Proposes `public_key` (PEM) as station `id`'s next key.
    pub async fn propose_key(&self, id: &StationId, public_key: &str) -> Result<StationKey> {
        let body = KeyProposal {
            public_key: public_key.to_string(),
        };
        self.post(
            &format!("the new key of station {id}"),
            &format!("/v1/stations/{id}/key"),
            &body,
        )
        .await
    }

    /// Sets how station `id` takes trains.
    pub async fn set_approval(
        &self,
        id: &StationId,
        a: crate::Approval,
    ) -> Result<ApprovalSetting> {
        let req = self
            .http
            .put(self.url(&format!("/v1/stations/{id}/approval")))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(format!("{{\"approval\":\"{a}\"}}"));
        self.send(&format!("the approval mode of {id}"), req, CALL_TIMEOUT)
            .await
    }

    /// Submits a pushed train image along `route`.
    pub async fn submit(&self, image: &str, route: &[StationId]) -> Result<TrainView> {
        let body = SubmitTrain {
            image: image.to_string(),
            route: route.to_vec(),
        };
        self.post("the submission", "/v1/trains", &body).await
    }

    /// One train with its hops and history.
    pub async fn train(&self, id: &TrainId) -> Result<TrainView> {
        self.get(&format!("train {id}"), &format!("/v1/trains/{id}"))
            .await
    }

    /// The train's events from after `last_event_id` on, as they happen.
    pub async fn train_events(&self, id: &TrainId, last_event_id: i64) -> Result<EventStream> {
        self.events(&format!("/v1/trains/{id}/events"), last_event_id)
            .await
    }

    /// An SSE feed at `path`, resumed after `last_event_id`.
    pub async fn events(&self, path: &str, last_event_id: i64) -> Result<EventStream> {
        let resp = self
            .http
            .get(self.url(path))
            .header(AUTHORIZATION, self.auth.clone())
            .header("accept", "text/event-stream")
            .header("last-event-id", last_event_id.to_string())
            .send()
            .await
            .map_err(|e| unreachable(&e))?;
        let status = resp.status();
        if !status.is_success() {
            let what = format!("the feed {path}");
            let body = read_capped(&what, resp, MAX_ERROR_BODY).await?;
            return Err(api_error(&what, status, &body));
        }
        Ok(EventStream::new(resp, last_event_id))
    }
}

fn unreachable(e: &reqwest::Error) -> ClientError {
    // reqwest's message names the URL; the key is in a header it does not print.
    let message = train_lib::net::explain(e);
    ClientError::Unreachable {
        url: e.url().map(|u| u.to_string()).unwrap_or_default(),
        message,
    }
}

fn api_error(what: &str, status: StatusCode, body: &[u8]) -> ClientError {
    let body = serde_json::from_slice::<ApiError>(body).unwrap_or_else(|_| ApiError {
        error: crate::ErrorCode::for_status(status.as_u16()),
        message: String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
        check: None,
    });
    ClientError::Api {
        what: what.into(),
        status: status.as_u16(),
        body,
    }
}
