//! A registry behind a proxy that answers 500 at random: what a registry under load, a broken
//! storage backend or a load balancer in front of a half-dead replica gives its clients. Every
//! request either gets a 500 before it reaches the registry (one in `n`, counted) or is passed
//! through, bodies streamed both ways, `Host` kept as the proxy's so that the registry's
//! upload locations name the proxy.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

struct Inner {
    upstream: String,
    public: String,
    one_in: AtomicU64,
    rng: AtomicU64,
    injected: AtomicU64,
    passed: AtomicU64,
    client: reqwest::Client,
}

impl Inner {
    /// xorshift64*: enough randomness for fault injection, no dependency.
    fn roll(&self) -> bool {
        let n = self.one_in.load(Ordering::Relaxed);
        if n == 0 {
            return false;
        }
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.store(x, Ordering::Relaxed);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D).is_multiple_of(n)
    }
}

/// The proxy; stopped when dropped.
pub struct FlakyProxy {
    /// `127.0.0.1:port`, to give clients in the registry's place.
    pub addr: String,
    inner: Arc<Inner>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FlakyProxy {
    /// A proxy in front of `upstream` (`host:port`), passing everything until
    /// [`FlakyProxy::fail_one_in`].
    pub fn start(upstream: &str) -> Self {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let seed = crate::route::nonce()
            .bytes()
            .fold(0x9E37_79B9_7F4A_7C15u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
            })
            | 1;
        let inner = Arc::new(Inner {
            upstream: upstream.to_string(),
            public: addr.clone(),
            one_in: AtomicU64::new(0),
            rng: AtomicU64::new(seed),
            injected: AtomicU64::new(0),
            passed: AtomicU64::new(0),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let state = inner.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let l = tokio::net::TcpListener::from_std(l).unwrap();
                let app = axum::Router::new().fallback(forward).with_state(state);
                axum::serve(l, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        Self {
            addr,
            inner,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    /// From now on, one request in `n` (at random) answers 500; 0: none.
    pub fn fail_one_in(&self, n: u64) {
        self.inner.one_in.store(n, Ordering::Relaxed);
    }

    /// (requests answered 500, requests passed through).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.inner.injected.load(Ordering::Relaxed),
            self.inner.passed.load(Ordering::Relaxed),
        )
    }
}

impl Drop for FlakyProxy {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const HOP_BY_HOP: &[header::HeaderName] = &[
    header::HOST,
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

async fn forward(State(p): State<Arc<Inner>>, req: Request) -> Response {
    if p.roll() {
        p.injected.fetch_add(1, Ordering::Relaxed);
        return (StatusCode::INTERNAL_SERVER_ERROR, "injected fault\n").into_response();
    }
    p.passed.fetch_add(1, Ordering::Relaxed);
    let (parts, body) = req.into_parts();
    let pq = parts.uri.path_and_query().map_or("/", |x| x.as_str());
    let mut rb = p
        .client
        .request(parts.method.clone(), format!("http://{}{pq}", p.upstream));
    for (k, v) in &parts.headers {
        if !HOP_BY_HOP.contains(k) {
            rb = rb.header(k, v);
        }
    }
    rb = rb.header(header::HOST, &p.public);
    let has_body = parts.headers.contains_key(header::TRANSFER_ENCODING)
        || parts
            .headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v != "0");
    if has_body {
        rb = rb.body(reqwest::Body::wrap_stream(body.into_data_stream()));
    }
    let resp = match rb.send().await {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let mut out = Response::builder().status(resp.status().as_u16());
    for (k, v) in resp.headers() {
        if HOP_BY_HOP.contains(k) {
            continue;
        }
        if k == header::LOCATION {
            let l = v
                .to_str()
                .unwrap_or_default()
                .replace(&p.upstream, &p.public);
            out = out.header(k, HeaderValue::from_str(&l).unwrap());
        } else {
            out = out.header(k, v);
        }
    }
    out.body(Body::from_stream(resp.bytes_stream())).unwrap()
}
