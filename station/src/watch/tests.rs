//! The watcher against a fake route service and a fake runner: what it does with each kind
//! of inbox item, and that a job that panics costs that job only.

use super::*;
use crate::audit::{record, RecordKind};
use crate::run::{Failure, RunRequest, Summary};
use route_wire::{Approval, Digest, Format, HopState, Inbox, InboxItem, ReportStatus, TrainId};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Mutex;

fn d(c: char) -> Digest {
    Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
}

/// A report the fake received.
#[derive(Debug, Clone, PartialEq)]
struct Sent {
    train: String,
    status: ReportStatus,
    reason: Option<String>,
    digest: Option<Digest>,
}

/// The route service, scripted: an inbox (items leave it once reported done or failed), a
/// station key, and everything the watcher sent.
struct FakeService {
    fingerprint: String,
    inbox: Mutex<BTreeMap<String, InboxItem>>,
    reports: Mutex<Vec<Sent>>,
    decisions: Mutex<Vec<(String, bool)>>,
    /// Reports on these trains are refused with 409.
    conflict: Vec<String>,
}

impl FakeService {
    fn new(key: &PrivateKey, items: Vec<InboxItem>) -> Self {
        Self {
            fingerprint: key.public().fingerprint(),
            inbox: Mutex::new(
                items
                    .into_iter()
                    .map(|i| (i.train.to_string(), i))
                    .collect(),
            ),
            reports: Mutex::default(),
            decisions: Mutex::default(),
            conflict: Vec::new(),
        }
    }

    fn sent(&self) -> Vec<Sent> {
        self.reports.lock().unwrap().clone()
    }
}

fn api_error(status: u16) -> ClientError {
    ClientError::Api {
        what: "test".into(),
        status,
        body: route_wire::ApiError {
            error: route_wire::ErrorCode::for_status(status),
            message: "no".into(),
            check: None,
        },
    }
}

impl RouteService for FakeService {
    fn base(&self) -> &str {
        "fake://route-service"
    }
    async fn inbox(&self, _: &StationId) -> Result<Inbox, ClientError> {
        Ok(Inbox {
            repositories: None,
            items: self.inbox.lock().unwrap().values().cloned().collect(),
        })
    }
    async fn report(
        &self,
        train: &TrainId,
        status: ReportStatus,
        reason: Option<String>,
        digest: Option<Digest>,
    ) -> Result<(), ClientError> {
        if self.conflict.contains(&train.to_string()) {
            return Err(api_error(409));
        }
        self.reports.lock().unwrap().push(Sent {
            train: train.to_string(),
            status,
            reason,
            digest,
        });
        if matches!(status, ReportStatus::Done | ReportStatus::Failed) {
            self.inbox.lock().unwrap().remove(train.as_str());
        }
        Ok(())
    }
    async fn decide(
        &self,
        train: &TrainId,
        approve: bool,
        _: Option<String>,
    ) -> Result<(), ClientError> {
        self.decisions
            .lock()
            .unwrap()
            .push((train.to_string(), approve));
        if let Some(i) = self.inbox.lock().unwrap().get_mut(train.as_str()) {
            i.state = HopState::Approved;
        }
        Ok(())
    }
    async fn set_approval(&self, _: &StationId, _: Approval) -> Result<(), ClientError> {
        Ok(())
    }
    async fn station_key(
        &self,
        station: &StationId,
    ) -> Result<route_wire::StationKey, ClientError> {
        Ok(route_wire::StationKey {
            id: station.clone(),
            public_key: String::new(),
            fingerprint: self.fingerprint.clone(),
            pending_fingerprint: None,
        })
    }
    // Not `async fn`: the future is spawned, so it must not borrow the service.
    #[allow(clippy::manual_async_fn)]
    fn follow(
        &self,
        _: StationId,
        _: Arc<Notify>,
        stop: CancellationToken,
    ) -> impl Future<Output = ()> + Send + 'static {
        async move { stop.cancelled().await }
    }
}

/// Runs that push (the pushed digest: `b`), except for trains that panic.
#[derive(Default)]
struct FakeRunner {
    panics: Vec<String>,
    runs: Mutex<Vec<String>>,
    sweeps: Mutex<usize>,
    /// Runs (of any train) that find the engine unreachable before it answers again.
    engine_down_for: Mutex<usize>,
}

impl Runner for FakeRunner {
    async fn run(
        &self,
        req: &RunRequest,
        _: &CancellationToken,
        summary: &mut Summary,
    ) -> Result<(), Failure> {
        let image = req.reference.to_string();
        self.runs.lock().unwrap().push(image.clone());
        {
            let mut down = self.engine_down_for.lock().unwrap();
            if *down > 0 {
                *down -= 1;
                return Err(Failure::Engine(crate::engine::EngineError::Unreachable {
                    engine: "Docker engine",
                    detail: "creating the train's /opt volume: socket not found".into(),
                    hint: "start it",
                }));
            }
        }
        if self
            .panics
            .iter()
            .any(|t| image.contains(&format!("/{t}-inbox")))
        {
            panic!("boom in {image}");
        }
        summary.digest_out = Some(d('b').to_string());
        Ok(())
    }
    async fn sweep(
        &self,
        _: &str,
        _: &Path,
        _: &AuditLog,
        _: &PrivateKey,
    ) -> Result<crate::sweep::Swept, String> {
        *self.sweeps.lock().unwrap() += 1;
        Ok(crate::sweep::Swept::default())
    }
}

fn item(train: &str, state: HopState, digest: char) -> InboxItem {
    InboxItem {
        train: train.parse().unwrap(),
        creator: "alice".parse().unwrap(),
        format: Format::Native,
        route: vec!["st-1".parse().unwrap()],
        index: 0,
        state,
        // The train's name in the repository lets the fake runner tell trains apart.
        image: format!("127.0.0.1:5000/{train}-inbox/x@{}", d(digest)),
        push_to: format!("127.0.0.1:5000/st-1/outbox:{train}"),
    }
}

struct Scene {
    _dir: tempfile::TempDir,
    key: Arc<PrivateKey>,
    config: StationConfig,
    tmp: PathBuf,
}

fn scene(approval: Approval) -> Scene {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StationConfig::default();
    config.audit.log = Some(dir.path().join("audit.log"));
    config.watch.state_dir = dir.path().join("state");
    config.watch.approval = approval;
    config.watch.concurrency = 2;
    config.watch.max_attempts = 2;
    config.watch.resync_secs = 1;
    config.watch.registries = vec!["127.0.0.1:5000".into()];
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    Scene {
        key: Arc::new(PrivateKey::generate(2048).unwrap()),
        _dir: dir,
        config,
        tmp,
    }
}

fn request<S>(s: &Scene, client: S) -> WatchRequest<S> {
    WatchRequest {
        station: "st-1".parse().unwrap(),
        key_path: s.tmp.join("station.key.pem"),
        key_password_env: None,
        key: s.key.clone(),
        api_key: "pht_test".to_string().into(),
        config: s.config.clone(),
        client,
        tmp: s.tmp.clone(),
        live: Default::default(),
    }
}

/// Waits until `f` holds (the watcher polls every second), up to 30 s.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..300 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_run_that_panics_costs_that_train_only_and_the_watcher_goes_on() {
    let s = scene(Approval::Auto);
    let svc = FakeService::new(
        &s.key,
        vec![
            item("calm", HopState::Delivered, 'a'),
            item("crash", HopState::Delivered, 'c'),
        ],
    );
    let runner = FakeRunner {
        panics: vec!["crash".into()],
        ..FakeRunner::default()
    };
    let stop = CancellationToken::new();
    let req = request(&s, &svc);
    let live = req.live.clone();
    let watcher = supervise(&runner, req, stop.clone());
    let check = async {
        until("the calm train done and the crashing one failed", || {
            let sent = svc.sent();
            sent.iter()
                .any(|r| r.train == "calm" && r.status == ReportStatus::Done)
                && sent
                    .iter()
                    .any(|r| r.train == "crash" && r.status == ReportStatus::Failed)
        })
        .await;
        stop.cancel();
    };
    let (out, ()) = tokio::join!(watcher, check);
    out.expect("the watcher ends cleanly when asked, not with the panic");
    let sent = svc.sent();
    let done = sent.iter().find(|r| r.train == "calm").unwrap();
    assert_eq!(done.digest, Some(d('b')));
    let failed = sent.iter().find(|r| r.train == "crash").unwrap();
    let why = failed.reason.clone().unwrap();
    assert!(
        why.contains("gave up after 2 runs") && why.contains("boom in"),
        "{why}"
    );
    let runs = runner.runs.lock().unwrap().clone();
    assert_eq!(
        runs.iter().filter(|r| r.contains("/crash-inbox")).count(),
        2,
        "run again once, then given up: {runs:?}"
    );
    // Swept at start, and after each panic.
    assert_eq!(*runner.sweeps.lock().unwrap(), 3);
    // The dashboard's view: both runs ended, the calm one pushed, the crash said as such.
    let shown = live.snapshot();
    let calm = shown
        .iter()
        .find(|r| r.stop.train.as_str() == "calm")
        .unwrap();
    let e = calm.ended.as_ref().unwrap();
    assert!(e.pushed && e.outcome.contains(&d('b').to_string()), "{e:?}");
    let crash = shown
        .iter()
        .find(|r| r.stop.train.as_str() == "crash")
        .unwrap();
    let e = crash.ended.as_ref().unwrap();
    assert!(
        !e.pushed && e.outcome.starts_with("error: ") && e.outcome.contains("boom in"),
        "{e:?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn an_engine_that_cannot_be_reached_does_not_use_up_a_train_s_attempts() {
    let s = scene(Approval::Auto);
    let svc = FakeService::new(&s.key, vec![item("patient", HopState::Delivered, 'a')]);
    // Down for twice as many runs as the train may fail (max_attempts = 2 here).
    let runner = FakeRunner {
        engine_down_for: Mutex::new(4),
        ..FakeRunner::default()
    };
    let stop = CancellationToken::new();
    let watcher = supervise(&runner, request(&s, &svc), stop.clone());
    let check = async {
        until("the train done once the engine answers", || {
            svc.sent().iter().any(|r| r.status == ReportStatus::Done)
        })
        .await;
        stop.cancel();
    };
    let (out, ()) = tokio::join!(watcher, check);
    out.unwrap();
    assert!(
        !svc.sent().iter().any(|r| r.status == ReportStatus::Failed),
        "{:?}",
        svc.sent()
    );
    assert_eq!(
        runner.runs.lock().unwrap().len(),
        5,
        "four runs without an engine, then one"
    );
}

impl<S: RouteService> RouteService for &S {
    fn base(&self) -> &str {
        (**self).base()
    }
    fn inbox(&self, s: &StationId) -> impl Future<Output = Result<Inbox, ClientError>> {
        (**self).inbox(s)
    }
    fn report(
        &self,
        t: &TrainId,
        st: ReportStatus,
        r: Option<String>,
        d: Option<Digest>,
    ) -> impl Future<Output = Result<(), ClientError>> {
        (**self).report(t, st, r, d)
    }
    fn decide(
        &self,
        t: &TrainId,
        a: bool,
        r: Option<String>,
    ) -> impl Future<Output = Result<(), ClientError>> {
        (**self).decide(t, a, r)
    }
    fn set_approval(
        &self,
        s: &StationId,
        a: Approval,
    ) -> impl Future<Output = Result<(), ClientError>> {
        (**self).set_approval(s, a)
    }
    fn station_key(
        &self,
        s: &StationId,
    ) -> impl Future<Output = Result<route_wire::StationKey, ClientError>> {
        (**self).station_key(s)
    }
    fn follow(
        &self,
        s: StationId,
        w: Arc<Notify>,
        stop: CancellationToken,
    ) -> impl Future<Output = ()> + Send + 'static {
        (**self).follow(s, w, stop)
    }
}

/// A watcher on `svc` for the act tests, opened as `supervise` opens it.
fn watcher<'s>(s: &Scene, svc: &'s FakeService) -> Watcher<&'s FakeService> {
    let (tx, _) = mpsc::unbounded_channel();
    Watcher {
        key: s.key.clone(),
        audit: AuditLog::new(s.config.audit.log.as_deref().unwrap()),
        state: State::open(&s.config.watch.state_dir).unwrap(),
        jobs: HashMap::new(),
        inspecting: Vec::new(),
        milestones: tx,
        stopping: false,
        req: request(s, svc),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn owed_reports_approvals_and_what_the_audit_log_knows_are_acted_on_without_a_run() {
    let s = scene(Approval::Auto);
    let mut svc = FakeService::new(
        &s.key,
        vec![
            item("owed", HopState::Delivered, 'a'),
            item("gone", HopState::Delivered, 'a'),
            item("waits", HopState::AwaitingApproval, 'a'),
            item("ran", HopState::Delivered, 'e'),
        ],
    );
    svc.conflict = vec!["gone".into()];
    // `owed` and `gone` were pushed before the watcher stopped; the report did not get through.
    {
        let mut st = State::open(&s.config.watch.state_dir).unwrap();
        for t in ["owed", "gone"] {
            let stop = plan::Stop {
                train: t.parse().unwrap(),
                index: 0,
            };
            st.set(&stop, &d('a'), Status::Pushed { digest: d('f') })
                .unwrap();
        }
    }
    // `ran` was pushed here (its image `e`), and the watcher died before it recorded it.
    let log = AuditLog::new(s.config.audit.log.as_deref().unwrap());
    let mut r = record("st-1", RecordKind::Pushed);
    r.digest_in = Some(d('e').to_string());
    r.digest_out = Some(d('9').to_string());
    log.append(&s.key, r).unwrap();

    let runner = FakeRunner::default();
    let mut w = watcher(&s, &svc);
    let (mut runs, mut insp) = (FuturesUnordered::new(), FuturesUnordered::new());
    w.resync(&runner, &mut runs, &mut insp).await.unwrap();
    assert!(
        runs.is_empty() && insp.is_empty(),
        "nothing ran, nothing inspected"
    );
    let sent = svc.sent();
    assert!(sent.contains(&Sent {
        train: "owed".into(),
        status: ReportStatus::Done,
        reason: None,
        digest: Some(d('f')),
    }));
    assert!(sent.contains(&Sent {
        train: "ran".into(),
        status: ReportStatus::Done,
        reason: None,
        digest: Some(d('9')),
    }));
    assert_eq!(
        svc.decisions.lock().unwrap().clone(),
        [("waits".to_string(), true)]
    );
    // A 409 settles the report: `gone` is not reported again.
    let stop = plan::Stop {
        train: "gone".parse().unwrap(),
        index: 0,
    };
    assert!(w.state.get(&stop).unwrap().reported);
    // The approved train runs at the next read.
    w.resync(&runner, &mut runs, &mut insp).await.unwrap();
    assert_eq!(runs.len(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn an_inbox_item_the_station_cannot_use_is_reported_failed_with_why() {
    let s = scene(Approval::Auto);
    let mut bad = item("odd", HopState::Delivered, 'a');
    bad.image = "127.0.0.1:5000/odd-inbox/x:latest".into();
    let svc = FakeService::new(&s.key, vec![bad]);
    let runner = FakeRunner::default();
    let mut w = watcher(&s, &svc);
    let (mut runs, mut insp) = (FuturesUnordered::new(), FuturesUnordered::new());
    w.resync(&runner, &mut runs, &mut insp).await.unwrap();
    assert!(runs.is_empty());
    let sent = svc.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].status, ReportStatus::Failed);
    assert!(
        sent[0].reason.as_deref().unwrap().contains("not pinned"),
        "{sent:?}"
    );
}
