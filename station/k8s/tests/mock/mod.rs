//! A mocked Kubernetes API server on loopback, for the engine's scenarios: real HTTP, real JSON
//! as the API reference gives it, real watch streams and a real WebSocket exec in the
//! `v5.channel.k8s.io` protocol, so the engine's client (kube-rs) is exercised whole. It keeps
//! the objects created, plays a scripted sequence of statuses for the train's pod, and can
//! answer 409, 403, 422 and 410 Gone where a scenario says.

#![allow(dead_code)]

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;

/// What a scenario scripts.
#[derive(Default, Clone)]
pub struct Script {
    /// Statuses of the train's pod, one per look (list or watch event); the last stays.
    pub train: Vec<Value>,
    /// The Job's status once the train's pod ended.
    pub job_status: Option<Value>,
    /// The first watch of each pod answers 410 Gone.
    pub gone_first: bool,
    /// The claim exists already: `Some(true)` as this run's (a retried create), `Some(false)`
    /// as someone else's.
    pub claim_exists: Option<bool>,
    /// Creating this resource (`pods`, `jobs`, `persistentvolumeclaims`) answers 403.
    pub forbid: Option<&'static str>,
    /// Creating the Job answers 422 with this message.
    pub invalid_job: Option<&'static str>,
    /// Helper pods stay Pending with this waiting reason.
    pub helper_waiting: Option<&'static str>,
    /// What `tar -c` of the results prints.
    pub results: Vec<u8>,
    /// Available KiB that `df` reports.
    pub df_avail: u64,
    /// The train's log.
    pub log: String,
    /// The canary's end (`Succeeded`: it connected).
    pub canary: &'static str,
    /// SelfSubjectAccessReviews answer allowed, except for this `verb resource[/sub]`.
    pub deny: Option<&'static str>,
}

/// What the server saw and holds.
#[derive(Default)]
pub struct Seen {
    /// `METHOD kind[/name]` of every call, in order.
    pub calls: Vec<String>,
    /// Objects by `kind/name`.
    pub objects: BTreeMap<String, Value>,
    /// What `tar -x` got on stdin.
    pub uploaded: Vec<u8>,
    /// Looks at each pod so far.
    looks: BTreeMap<String, usize>,
    watched: BTreeMap<String, bool>,
    /// Commands exec'd.
    pub execs: Vec<Vec<String>>,
}

pub struct Mock {
    pub url: String,
    pub seen: Arc<Mutex<Seen>>,
}

#[derive(Clone)]
struct St {
    script: Arc<Script>,
    seen: Arc<Mutex<Seen>>,
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    (StatusCode::from_u16(code).unwrap(), Json(body)).into_response()
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"kind": format!("{kind}List"), "apiVersion": "v1", "metadata": {"resourceVersion": "100"}, "items": items})
}

impl St {
    fn call(&self, c: String) {
        self.seen.lock().unwrap().calls.push(c);
    }

    /// The pod `name` as the next look sees it.
    fn look(&self, name: &str) -> Option<Value> {
        let mut seen = self.seen.lock().unwrap();
        let mut pod = seen.objects.get(&format!("pods/{name}"))?.clone();
        let n = {
            let n = seen.looks.entry(name.to_string()).or_insert(0);
            *n += 1;
            *n
        };
        let part = pod["metadata"]["labels"]["pht.station/part"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let st = if name.starts_with("pht-canary-") {
            json!({"phase": self.script.canary})
        } else if part == "train" {
            let t = &self.script.train;
            t.get(n - 1)
                .or(t.last())
                .cloned()
                .unwrap_or(json!({"phase": "Pending"}))
        } else if let Some(reason) = self.script.helper_waiting {
            json!({"phase": "Pending", "containerStatuses": [{"name": part, "ready": false,
                "restartCount": 0, "image": "", "imageID": "",
                "state": {"waiting": {"reason": reason, "message": "Back-off pulling image"}}}]})
        } else if n == 1 {
            json!({"phase": "Pending"})
        } else {
            json!({"phase": "Running"})
        };
        pod["status"] = st;
        seen.objects.insert(format!("pods/{name}"), pod.clone());
        Some(pod)
    }
}

fn selected(obj: &Value, q: &BTreeMap<String, String>) -> bool {
    if let Some(f) = q.get("fieldSelector") {
        let want = f.trim_start_matches("metadata.name=");
        if obj["metadata"]["name"] != want {
            return false;
        }
    }
    if let Some(l) = q.get("labelSelector") {
        for pair in l.split(',') {
            let (k, v) = pair.split_once('=').unwrap();
            if obj["metadata"]["labels"][k] != v {
                return false;
            }
        }
    }
    true
}

async fn collection(
    State(st): State<St>,
    Path((ns, kind)): Path<(String, String)>,
    Query(q): Query<BTreeMap<String, String>>,
    req: Request<Body>,
) -> Response {
    let method = req.method().clone();
    if method == "POST" {
        let body = axum::body::to_bytes(req.into_body(), 1 << 20)
            .await
            .unwrap();
        let mut obj: Value = serde_json::from_slice(&body).unwrap();
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        st.call(format!("POST {kind}/{name}"));
        if st.script.forbid == Some(kind.as_str()) {
            return status(403, "Forbidden", &format!("{kind} is forbidden: User \"system:serviceaccount:{ns}:pht-station\" cannot create resource \"{kind}\" in API group \"\" in the namespace \"{ns}\""));
        }
        if kind == "jobs" {
            if let Some(m) = st.script.invalid_job {
                return status(422, "Invalid", m);
            }
        }
        if kind == "persistentvolumeclaims" {
            if let Some(ours) = st.script.claim_exists {
                let mut there = obj.clone();
                if !ours {
                    there["metadata"]["labels"]["pht.station/run"] = json!("someone-else");
                }
                st.seen
                    .lock()
                    .unwrap()
                    .objects
                    .insert(format!("{kind}/{name}"), there);
                return status(
                    409,
                    "AlreadyExists",
                    &format!("persistentvolumeclaims \"{name}\" already exists"),
                );
            }
        }
        obj["metadata"]["namespace"] = json!(ns);
        obj["metadata"]["uid"] = json!(format!("uid-{name}"));
        obj["metadata"]["resourceVersion"] = json!("1");
        let mut seen = st.seen.lock().unwrap();
        seen.objects.insert(format!("{kind}/{name}"), obj.clone());
        if kind == "jobs" {
            // The Job controller makes the pod from the template.
            let mut pod = obj["spec"]["template"].clone();
            let pname = format!("{name}-x7k2p");
            pod["metadata"]["name"] = json!(pname);
            pod["metadata"]["namespace"] = json!(ns);
            pod["kind"] = json!("Pod");
            pod["apiVersion"] = json!("v1");
            seen.objects.insert(format!("pods/{pname}"), pod);
        }
        return (StatusCode::CREATED, Json(obj)).into_response();
    }
    // GET: a list or a watch.
    if q.get("watch").map(String::as_str) == Some("true")
        || q.get("watch").map(String::as_str) == Some("1")
    {
        let name = q
            .get("fieldSelector")
            .map(|f| f.trim_start_matches("metadata.name=").to_string())
            .unwrap_or_default();
        st.call(format!("WATCH {kind}/{name}"));
        let gone = {
            let mut seen = st.seen.lock().unwrap();
            let first = !seen.watched.contains_key(&name);
            seen.watched.insert(name.clone(), true);
            first && st.script.gone_first
        };
        let mut lines = String::new();
        if gone {
            lines.push_str(&json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "too old resource version: 1 (100)", "reason": "Expired", "code": 410}}).to_string());
            lines.push('\n');
        } else if let Some(p) = st.look(&name) {
            lines.push_str(&json!({"type": "MODIFIED", "object": p}).to_string());
            lines.push('\n');
        }
        return Response::builder()
            .header("content-type", "application/json")
            .body(Body::from(lines))
            .unwrap();
    }
    st.call(format!("LIST {kind}"));
    let names: Vec<String> = {
        let seen = st.seen.lock().unwrap();
        seen.objects
            .iter()
            .filter(|(k, v)| k.starts_with(&format!("{kind}/")) && selected(v, &q))
            .map(|(k, _)| k[kind.len() + 1..].to_string())
            .collect()
    };
    let items = names
        .iter()
        .filter_map(|n| {
            if kind == "pods" && q.contains_key("fieldSelector") {
                st.look(n)
            } else {
                st.seen
                    .lock()
                    .unwrap()
                    .objects
                    .get(&format!("{kind}/{n}"))
                    .cloned()
            }
        })
        .collect();
    Json(list(&kind, items)).into_response()
}

async fn one(
    State(st): State<St>,
    Path((_ns, kind, name)): Path<(String, String, String)>,
    req: Request<Body>,
) -> Response {
    let key = format!("{kind}/{name}");
    if req.method() == "DELETE" {
        st.call(format!("DELETE {key}"));
        return match st.seen.lock().unwrap().objects.remove(&key) {
            Some(o) => Json(o).into_response(),
            None => status(404, "NotFound", &format!("{kind} \"{name}\" not found")),
        };
    }
    st.call(format!("GET {key}"));
    let mut obj = st.seen.lock().unwrap().objects.get(&key).cloned();
    if kind == "jobs" {
        if let (Some(o), Some(s)) = (obj.as_mut(), st.script.job_status.clone()) {
            o["status"] = s;
        }
    }
    match obj {
        Some(o) => Json(o).into_response(),
        None => status(404, "NotFound", &format!("{kind} \"{name}\" not found")),
    }
}

async fn log(State(st): State<St>, Path((_ns, name)): Path<(String, String)>) -> Response {
    st.call(format!("LOG pods/{name}"));
    st.script.log.clone().into_response()
}

async fn exec(
    State(st): State<St>,
    Path((_ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    mut req: Request<Body>,
) -> Response {
    let command: Vec<String> = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.strip_prefix("command="))
        .map(percent_decode)
        .collect();
    st.call(format!("EXEC pods/{name} {}", command.join(" ")));
    st.seen.lock().unwrap().execs.push(command.clone());
    let key = headers["sec-websocket-key"].as_bytes().to_vec();
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let io = hyper_util::rt::TokioIo::new(upgrade.await.unwrap());
        let mut ws =
            tokio_tungstenite::WebSocketStream::from_raw_socket(io, Role::Server, None).await;
        let send = |ch: u8, data: &[u8]| {
            let mut m = vec![ch];
            m.extend_from_slice(data);
            Message::Binary(m.into())
        };
        let ok = json!({"metadata": {}, "status": "Success"}).to_string();
        match command.first().map(String::as_str) {
            Some("tar") if command.contains(&"-x".to_string()) => {
                while let Some(Ok(m)) = ws.next().await {
                    let Message::Binary(b) = m else { break };
                    match b.first() {
                        Some(0) => st.seen.lock().unwrap().uploaded.extend_from_slice(&b[1..]),
                        // v5: the client closed stdin.
                        Some(255) => break,
                        _ => {}
                    }
                }
                ws.send(send(3, ok.as_bytes())).await.unwrap();
            }
            Some("tar") => {
                for chunk in st.script.results.chunks(1000) {
                    ws.send(send(1, chunk)).await.unwrap();
                }
                ws.send(send(3, ok.as_bytes())).await.unwrap();
            }
            Some("df") => {
                let out = format!(
                    "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sdb 16777216 100 {} 1% /opt\n",
                    st.script.df_avail
                );
                ws.send(send(1, out.as_bytes())).await.unwrap();
                ws.send(send(3, ok.as_bytes())).await.unwrap();
            }
            _ => {
                let fail = json!({"metadata": {}, "status": "Failure", "message": "command terminated with non-zero exit code", "reason": "NonZeroExitCode"}).to_string();
                ws.send(send(3, fail.as_bytes())).await.unwrap();
            }
        }
        let _ = ws.close(None).await;
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header(
            "sec-websocket-accept",
            tokio_tungstenite::tungstenite::handshake::derive_accept_key(&key),
        )
        .header("sec-websocket-protocol", "v5.channel.k8s.io")
        .body(Body::empty())
        .unwrap()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

async fn access_review(State(st): State<St>, Json(mut r): Json<Value>) -> Response {
    let a = &r["spec"]["resourceAttributes"];
    let what = match a["subresource"].as_str() {
        Some(s) => format!(
            "{} {}/{s}",
            a["verb"].as_str().unwrap(),
            a["resource"].as_str().unwrap()
        ),
        None => format!(
            "{} {}",
            a["verb"].as_str().unwrap(),
            a["resource"].as_str().unwrap()
        ),
    };
    st.call(format!("REVIEW {what}"));
    let allowed = st.script.deny != Some(what.as_str());
    r["status"] = json!({"allowed": allowed});
    (StatusCode::CREATED, Json(r)).into_response()
}

/// Starts the server with `script`.
pub async fn start(script: Script) -> Mock {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let st = St {
        script: Arc::new(script),
        seen: seen.clone(),
    };
    let app = Router::new()
        .route("/api/v1/namespaces/{ns}/pods/{name}/log", get(log))
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}/exec",
            get(exec).post(exec),
        )
        .route(
            "/api/v1/namespaces/{ns}/{kind}",
            get(collection).post(collection),
        )
        .route(
            "/apis/batch/v1/namespaces/{ns}/{kind}",
            get(collection).post(collection),
        )
        .route(
            "/api/v1/namespaces/{ns}/{kind}/{name}",
            get(one).delete(one),
        )
        .route(
            "/apis/batch/v1/namespaces/{ns}/{kind}/{name}",
            get(one).delete(one),
        )
        .route(
            "/version",
            get(|| async {
                Json(json!({"major": "1", "minor": "33", "gitVersion": "v1.33.4",
                    "gitCommit": "0", "gitTreeState": "clean", "buildDate": "2026-08-01T00:00:00Z",
                    "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64"}))
            }),
        )
        .route(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            post(access_review),
        )
        .with_state(st);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Mock { url, seen }
}

impl Mock {
    /// A kube client for this server.
    pub fn client(&self) -> kube::Client {
        let mut c = kube::Config::new(self.url.parse().unwrap());
        c.default_namespace = "pht-st-1".into();
        kube::Client::try_from(c).unwrap()
    }

    pub fn calls(&self) -> Vec<String> {
        self.seen.lock().unwrap().calls.clone()
    }

    /// Objects still held (after a run: none of the run's).
    pub fn objects(&self) -> Vec<String> {
        self.seen.lock().unwrap().objects.keys().cloned().collect()
    }
}
