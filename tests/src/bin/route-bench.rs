//! The route service under load, printed as a table: `--stations` stations (half on each of two
//! loopback registries), `--trains` trains of `--hops` stops each, `--sse` SSE clients. The bench
//! plays the stations: it long-polls each inbox, pulls the image, runs the protocol's pre-run and
//! post-run (no container), pushes the signed state to the outbox and reports `done` with its digest
//! (`--no-report`: rely on the registries' notifications and reconciliation alone). Then a cross-registry move of a
//! `--big-mib` train beside `skopeo copy` of the same image. `--token`: both registries take the
//! service's tokens (`auth: token`), every party logs in with its own id and API key, and the
//! service moves with its own account, as the recommended deployment runs.
//!
//!   eval "$(scripts/services.sh)"; eval "$(scripts/postgres.sh)"
//!   cargo build --release -p route-service-cli -p e2e --bin route-bench
//!   target/release/route-bench [--postgres] [--token] [--stations 200 --trains 1000 --hops 5 --sse 500]

use e2e::route::{free_port, nonce, token_signing_pair, TestRegistry};
use e2e::{arg, bin, master, ok};
use route_service::auth::{key_hash, new_key};
use route_service::db::{Db, NewCreator, NewStation, TrainFilter};
use route_wire::{Approval, EventKind};
use serde_json::{json, Value};
use sqlx::Row;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use train_image::{self as image, Credentials, ImageRef, Registry, RegistryOptions, Silent};
use train_lib::keys::PrivateKey;

fn num(name: &str, default: usize) -> usize {
    arg(name).map_or(default, |v| v.parse().expect(name))
}

fn now_ms() -> i64 {
    route_service::clock::now_ms()
}

fn pct(mut v: Vec<f64>, p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

struct Party {
    id: String,
    key: String,
    registry: String,
    /// Its registry access: with `--token`, logged in as itself on both registries.
    reg: Registry,
    /// A station's private key (it signs its stops).
    signing: Option<Arc<PrivateKey>>,
}

/// Registry access logged in as `id` with `key` on `addrs` (none without token auth), its
/// credentials allowed to the service's token realm at `url`.
fn access(token: bool, addrs: &[String], url: &str, id: &str, key: &str) -> Registry {
    let credentials = if token {
        addrs
            .iter()
            .map(|a| {
                (
                    a.clone(),
                    Credentials::Basic {
                        username: id.to_string(),
                        password: key.to_string().into(),
                    },
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    Registry::new(RegistryOptions {
        credentials,
        token_realms: vec![format!("{url}/v1/registry-token")],
        ..Default::default()
    })
}

struct Bench {
    url: String,
    http: reqwest::Client,
    stations: Vec<Party>,
    creator: Party,
    pushed: Mutex<HashMap<(String, usize), i64>>,
    done: std::sync::atomic::AtomicBool,
    no_report: bool,
}

impl Bench {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        who: &Party,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.url))
            .header("Authorization", format!("ApiKey {} {}", who.id, who.key));
        if let Some(b) = body {
            r = r
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        match r.send().await {
            Ok(resp) => {
                let s = resp.status().as_u16();
                let b = resp.bytes().await.unwrap_or_default();
                (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
            }
            Err(e) => (0, json!({"error": e.to_string()})),
        }
    }
}

/// What a station does with a train, the container aside: pull it, pre-run (verify and
/// decrypt), post-run (sign its stop, re-encrypt for every participant) and push the new state
/// to its outbox, as `station run` does. The service counts a push only for a state signed by
/// the station whose turn it is, so nothing less would move a train.
async fn new_state(
    reg: &Registry,
    me: &Party,
    inbox: &ImageRef,
    outbox: &ImageRef,
) -> Result<String, String> {
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let cancel = tokio_util::sync::CancellationToken::new();
    let opts = image::PullOptions {
        reporter: &Silent,
        limits: image::ReadLimits::default(),
        cancel: &cancel,
    };
    let pulled = image::pull_train(reg, inbox, work.path(), opts)
        .await
        .map_err(|e| e.to_string())?;
    let (dir, id, key) = (pulled.dir.clone(), me.id.clone(), me.signing.clone());
    let train_id = tokio::task::spawn_blocking(move || {
        let trust = train_lib::keys::TrustStore::default();
        let st = train_lib::Station {
            id: &id,
            key: key.as_ref().expect("a station's key"),
            trust: &trust,
        };
        let train = train_lib::TrainDir::open(&dir)?;
        let pre = train.pre_run(&st)?;
        train.post_run(&st)?;
        Ok::<_, train_lib::ProtocolError>(pre.train_id)
    })
    .await
    .unwrap()
    .map_err(|e| e.to_string())?;
    let rep = image::push_next(
        reg,
        &pulled,
        &pulled.dir,
        outbox,
        &[(image::LABEL_TRAIN_ID, &train_id)],
        &Silent,
        &cancel,
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(rep.digest)
}

async fn play_station(b: Arc<Bench>, i: usize) {
    let me = &b.stations[i];
    let mut seen = HashSet::new();
    while !b.done.load(std::sync::atomic::Ordering::Relaxed) {
        let (s, v) = b
            .call(
                reqwest::Method::GET,
                &format!("/v1/stations/{}/inbox?wait=20s", me.id),
                me,
                None,
            )
            .await;
        if s != 200 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        for item in v["items"].as_array().cloned().unwrap_or_default() {
            let train = item["train"].as_str().unwrap().to_string();
            let idx = item["index"].as_u64().unwrap() as usize;
            if !seen.insert((train.clone(), idx)) {
                continue;
            }
            let inbox: ImageRef = item["image"].as_str().unwrap().parse().unwrap();
            let outbox: ImageRef = item["push_to"].as_str().unwrap().parse().unwrap();
            match new_state(&me.reg, me, &inbox, &outbox).await {
                Ok(digest) => {
                    b.pushed
                        .lock()
                        .unwrap()
                        .insert((train.clone(), idx), now_ms());
                    // As `station watch` will: report the push (the registry's notification
                    // may come seconds later under load; whichever arrives first counts).
                    let body = json!({"status": "done", "digest": digest});
                    if !b.no_report {
                        b.call(
                            reqwest::Method::POST,
                            &format!("/v1/trains/{train}/reports"),
                            me,
                            Some(body),
                        )
                        .await;
                    }
                }
                Err(e) => {
                    eprintln!("station {} failed to push {train}: {e}", me.id);
                    seen.remove(&(train, idx));
                }
            }
        }
    }
}

async fn sse_client(
    b: Arc<Bench>,
    path: String,
    who: usize,
    count: Arc<std::sync::atomic::AtomicU64>,
) {
    let p = if who == usize::MAX {
        &b.creator
    } else {
        &b.stations[who]
    };
    let Ok(mut resp) = b
        .http
        .get(format!("{}{path}", b.url))
        .header("Authorization", format!("ApiKey {} {}", p.id, p.key))
        .send()
        .await
    else {
        return;
    };
    while let Ok(Some(chunk)) = resp.chunk().await {
        let n = String::from_utf8_lossy(&chunk).matches("\nid: ").count()
            + usize::from(chunk.starts_with(b"id: "));
        count.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        if b.done.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
    }
}

fn create_train(
    dir: &Path,
    algo: &Path,
    id: &str,
    creator: &PrivateKey,
    route: Vec<(String, train_lib::keys::PublicKey)>,
) {
    let spec = train_lib::CreateSpec {
        files: algo,
        entrypoint: "run.sh",
        creator_id: "creator",
        creator_key: creator,
        stations: route,
        query: None,
        builder_key: None,
        train_id: Some(id.to_string()),
        proposal_id: None,
        master_image: None,
    };
    train_lib::create(&spec, train_lib::Format::Native, dir).expect("create");
}

/// Kills the service on every way out, panics included.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_peak_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmHWM:")
                .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

fn quantile(metrics: &str, name: &str, q: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(&format!("{name}{{quantile=\"{q}\"}}")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

#[tokio::main]
async fn main() {
    let (n_st, n_tr, hops, n_sse, big_mib) = (
        num("--stations", 200),
        num("--trains", 1000),
        num("--hops", 5),
        num("--sse", 500),
        num("--big-mib", 64),
    );
    let postgres = std::env::args().any(|a| a == "--postgres");
    let token = std::env::args().any(|a| a == "--token");
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let secrets: Vec<String> = (0..2)
        .map(|i| format!("bench-secret-{i}-{}", nonce()))
        .collect();
    let secret = secrets[0].clone();
    let hook = format!("{url}/v1/registry-events/distribution");
    let (token_key, token_cert) = token_signing_pair(dir.path(), token);
    let realm = format!("{url}/v1/registry-token");
    let regs: Vec<TestRegistry> = (0..2)
        .map(|i| {
            TestRegistry::start(
                dir.path(),
                &format!("reg-{i}"),
                Some((&hook, &secrets[i])),
                token.then_some((realm.as_str(), token_cert.as_path())),
            )
        })
        .collect();
    let addr: Vec<String> = regs.iter().map(|r| r.addr.clone()).collect();
    let database = if postgres {
        let base = std::env::var("PHT_TEST_POSTGRES_URL")
            .expect("PHT_TEST_POSTGRES_URL (scripts/postgres.sh)");
        Db::create_database(&base, &format!("bench_{}", nonce()))
            .await
            .unwrap()
    } else {
        format!("sqlite:{}", dir.path().join("bench.db").display())
    };
    let db = Db::open(&database).await.unwrap();

    // Parties: keys in parallel (RSA generation dominates the setup).
    let keys: Vec<PrivateKey> = {
        let mut hs = Vec::new();
        for _ in 0..=n_st {
            hs.push(tokio::task::spawn_blocking(|| {
                PrivateKey::generate(2048).unwrap()
            }));
        }
        let mut v = Vec::new();
        for h in hs {
            v.push(h.await.unwrap());
        }
        v
    };
    let creator_key = &keys[n_st];
    let creator_api_key = new_key();
    let creator = Party {
        id: "creator".into(),
        reg: access(token, &addr, &url, "creator", &creator_api_key),
        key: creator_api_key,
        registry: addr[0].clone(),
        signing: None,
    };
    db.add_creator(
        &NewCreator {
            id: creator.id.parse().unwrap(),
            registry: addr[0].clone(),
            namespace: "creator".into(),
            public_key: creator_key.public().to_pem(),
            fingerprint: creator_key.public().fingerprint(),
        },
        &key_hash(&creator.id, &creator.key),
    )
    .await
    .unwrap();
    let mut stations = Vec::new();
    for (i, k) in keys.iter().take(n_st).enumerate() {
        let (id, api_key) = (format!("s{i:03}"), new_key());
        let p = Party {
            reg: access(token, &addr, &url, &id, &api_key),
            id,
            key: api_key,
            registry: addr[i % 2].clone(),
            signing: Some(Arc::new(
                PrivateKey::from_text(k.to_pkcs8_pem().unwrap().as_bytes(), None, "station")
                    .unwrap(),
            )),
        };
        db.add_station(
            &NewStation {
                id: p.id.parse().unwrap(),
                registry: p.registry.clone(),
                namespace: p.id.clone(),
                public_key: k.public().to_pem(),
                fingerprint: k.public().fingerprint(),
                approval: Approval::Auto,
            },
            &key_hash(&p.id, &p.key),
        )
        .await
        .unwrap();
        stations.push(p);
    }
    let config = dir.path().join("route-service.toml");
    let mut cfg = format!("listen = \"127.0.0.1:{port}\"\ndatabase = \"{database}\"\n[mover]\nworkers = 16\nreconcile_secs = 30\n");
    if token {
        cfg.push_str(&format!(
            "[token]\nkey_file = \"{}\"\npublic_pull = [\"master\"]\n",
            token_key.display()
        ));
    }
    for (i, a) in addr.iter().enumerate() {
        cfg.push_str(&format!("[[registry]]\nname = \"r{i}\"\naddress = \"{a}\"\nnotification_secret_env = \"BENCH_SECRET_{i}\"\n"));
        if token {
            cfg.push_str(&format!("token_service = \"reg-{i}\"\n"));
        }
    }
    std::fs::write(&config, cfg).unwrap();
    let log = std::fs::File::create(dir.path().join("service.log")).unwrap();
    let service = Command::new(bin("route-service"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("BENCH_SECRET_0", &secrets[0])
        .env("BENCH_SECRET_1", &secrets[1])
        .env(
            "RUST_LOG",
            std::env::var("BENCH_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let service = Killed(service);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()
        .unwrap();
    e2e::route::wait_for(30, "the service", || {
        Command::new("curl")
            .args(["-fs", "-o", "/dev/null", &format!("{url}/healthz")])
            .status()
            .is_ok_and(|s| s.success())
    });
    // The bench's own writes outside any party's repositories (the master copy, the big train's
    // skopeo target) use tokens signed here, as the service's movers sign theirs.
    let issuer = token.then(|| {
        Arc::new(
            route_service::token::TokenIssuer::new(route_service::token::TokenConfig {
                key_file: token_key.clone(),
                issuer: "pht-route-service".into(),
                lifetime_secs: 300,
                public_pull: vec![],
            })
            .unwrap(),
        )
    });
    let reg = if let Some(issuer) = &issuer {
        Registry::new(RegistryOptions {
            minters: addr
                .iter()
                .enumerate()
                .map(|(i, a)| image::Minter {
                    registry: a.clone(),
                    minter: Arc::new(route_service::token::MoverTokens::new(
                        issuer.clone(),
                        format!("reg-{i}"),
                    )),
                })
                .collect(),
            ..Default::default()
        })
    } else {
        Registry::new(RegistryOptions::default())
    };
    let local_master: ImageRef = format!("{}/master/busybox:1", addr[0]).parse().unwrap();
    let m = reg.resolve(&master().parse().unwrap()).await.unwrap();
    image::copy_image(&reg, &m, &local_master, &Silent)
        .await
        .unwrap();
    let b = Arc::new(Bench {
        url: url.clone(),
        http,
        stations,
        creator,
        pushed: Mutex::default(),
        done: false.into(),
        no_report: std::env::args().any(|a| a == "--no-report"),
    });
    let setup = t0.elapsed().as_secs_f64();
    eprintln!(
        "setup {setup:.0} s: {n_st} stations, registries {addr:?}, {}",
        if postgres { "PostgreSQL" } else { "SQLite" }
    );

    // Stations and SSE clients.
    let mut players = Vec::new();
    for i in 0..n_st {
        players.push(tokio::spawn(play_station(b.clone(), i)));
    }
    let sse_events = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut sse = Vec::new();
    for i in 0..n_sse {
        let who = i % n_st;
        sse.push(tokio::spawn(sse_client(
            b.clone(),
            format!("/v1/stations/{}/events", b.stations[who].id),
            who,
            sse_events.clone(),
        )));
    }
    // Webhook answer times, measured by a client beside the registries' own deliveries.
    let hook_times = Arc::new(Mutex::new(Vec::new()));
    let probe = {
        let (b, hook, secret, times) =
            (b.clone(), hook.clone(), secret.clone(), hook_times.clone());
        tokio::spawn(async move {
            let mut i = 0u64;
            while !b.done.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let body = json!({"events": [{"id": format!("probe-{i}"), "action": "push", "target": {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": "sha256:00", "repository": "nobody/outbox", "tag": "x"}}]});
                let t = Instant::now();
                let r = b
                    .http
                    .post(&hook)
                    .header("Authorization", &secret)
                    .body(body.to_string())
                    .send()
                    .await;
                if r.is_ok_and(|r| r.status().is_success()) {
                    times
                        .lock()
                        .unwrap()
                        .push(t.elapsed().as_secs_f64() * 1000.0);
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
    };

    // Trains: created, built and submitted, 8 at a time.
    let algo = dir.path().join("algo");
    std::fs::create_dir_all(&algo).unwrap();
    std::fs::write(algo.join("run.sh"), "#!/bin/sh\necho ok\n").unwrap();
    // A route: `hops` distinct stations, a seeded shuffle per train (the same on every call).
    let route_of = move |t: usize| -> Vec<usize> {
        let mut all: Vec<usize> = (0..n_st).collect();
        let mut x = (t as u64)
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        for i in (1..all.len()).rev() {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            all.swap(i, (x >> 33) as usize % (i + 1));
        }
        all.truncate(hops);
        all
    };
    let t_run = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(8));
    let mut subs = Vec::new();
    for t in 0..n_tr {
        let permit = sem.clone().acquire_owned().await.unwrap();
        let (b, algo, dir) = (b.clone(), algo.clone(), dir.path().join(format!("t{t}")));
        let route = route_of(t);
        let pubs: Vec<_> = route
            .iter()
            .map(|&s| (b.stations[s].id.clone(), keys[s].public().clone()))
            .collect();
        let ck = PrivateKey::from_text(
            creator_key.to_pkcs8_pem().unwrap().as_bytes(),
            None,
            "creator",
        )
        .unwrap();
        let master = local_master.clone();
        subs.push(tokio::spawn(async move {
            let id = format!("b{t:05}");
            let (d, i2) = (dir.clone(), id.clone());
            let ck = tokio::task::spawn_blocking(move || {
                create_train(&d, &algo, &i2, &ck, pubs);
                ck
            })
            .await
            .unwrap();
            let tag: ImageRef = format!("{}/creator/submissions:{id}", b.creator.registry)
                .parse()
                .unwrap();
            let req = image::BuildRequest {
                dir: &dir,
                master: &master,
                tag: &tag,
                entrypoint: Some("run.sh"),
                creator_key: Some(&ck),
                builder_key: None,
            };
            // distribution answers 500 now and then to concurrent uploads of one blob into one
            // repository (eight builds at once here); a creator would build again.
            let mut tries = 0;
            while let Err(e) = image::build(&b.creator.reg, &req, &Silent).await {
                tries += 1;
                assert!(tries < 5, "build of {id}: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let route: Vec<String> = route_of(t)
                .iter()
                .map(|&s| b.stations[s].id.clone())
                .collect();
            // 502 (the registry failed while the service read the image): submit again, as the
            // message says.
            for attempt in 0.. {
                let body = json!({"image": tag.to_string(), "route": route});
                let (s, v) = b
                    .call(reqwest::Method::POST, "/v1/trains", &b.creator, Some(body))
                    .await;
                if s == 502 && attempt < 4 {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    continue;
                }
                assert_eq!(s, 201, "{v}");
                break;
            }
            drop(permit);
        }));
    }
    for s in subs {
        s.await.unwrap();
    }
    let submitted_in = t_run.elapsed().as_secs_f64();
    eprintln!("{n_tr} trains submitted in {submitted_in:.0} s");
    let mut last = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(3600);
    let finished = loop {
        let r = sqlx::query(
            "SELECT COUNT(*) AS n FROM trains WHERE state IN ('finished', 'failed', 'cancelled')",
        )
        .fetch_one(db.pool())
        .await
        .unwrap();
        let n: i64 = r.try_get("n").unwrap();
        if n as usize >= n_tr || Instant::now() > deadline {
            break n;
        }
        if last.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "{n} of {n_tr} trains done after {:.0} s",
                t_run.elapsed().as_secs_f64()
            );
            last = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let run_secs = t_run.elapsed().as_secs_f64();
    let metrics = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    // Exactly once: per train, one delivery per station hop, one finish, hops + 1 states.
    let mut lost = 0;
    let mut duplicated = 0;
    let mut same = Vec::new();
    let mut cross = Vec::new();
    let mut same_bytes = 0u64;
    let mut same_moves = 0;
    let (mut detect, mut moving) = (Vec::new(), Vec::new());
    let mut same_service = Vec::new();
    let pushed = b.pushed.lock().unwrap().clone();
    for t in 0..n_tr {
        let id = format!("b{t:05}");
        let state: String = sqlx::query("SELECT state FROM trains WHERE id = $1")
            .bind(&id)
            .fetch_one(db.pool())
            .await
            .unwrap()
            .try_get("state")
            .unwrap();
        let evs = db
            .events(route_service::db::EventFilter::Train(&id), 0, 1000)
            .await
            .unwrap();
        let moves: Vec<_> = evs
            .iter()
            .filter(|e| e.kind == EventKind::Delivered || e.kind == EventKind::Finished)
            .collect();
        let states: i64 = sqlx::query("SELECT COUNT(*) AS n FROM train_states WHERE train_id = $1")
            .bind(&id)
            .fetch_one(db.pool())
            .await
            .unwrap()
            .try_get("n")
            .unwrap();
        if state != "finished" || moves.len() < hops + 1 || states < hops as i64 + 1 {
            lost += 1;
        }
        if moves.len() > hops + 1 || states > hops as i64 + 1 {
            duplicated += 1;
        }
        let route = route_of(t);
        let detections: Vec<_> = evs.iter().filter(|e| e.kind == EventKind::Pushed).collect();
        for (k, e) in moves.iter().enumerate().skip(1) {
            let Some(p) = pushed.get(&(id.clone(), k - 1)) else {
                continue;
            };
            if let Some(d) = detections.get(k - 1) {
                detect.push((d.at - p) as f64);
                moving.push((e.at - d.at) as f64);
            }
            let from = &b.stations[route[k - 1]].registry;
            let to = route
                .get(k)
                .map_or(&b.creator.registry, |&s| &b.stations[s].registry);
            let ms = (e.at - p) as f64;
            // The registry's own time in the move (resolve and copy), as the mover records it.
            let registry_ms = e
                .detail
                .rsplit(" in ")
                .next()
                .and_then(|r| r.strip_suffix(" ms"))
                .and_then(|n| n.parse::<f64>().ok())
                .unwrap_or(0.0);
            if from == to {
                same.push(ms);
                same_service.push(ms - registry_ms);
                same_moves += 1;
                if let Some(n) = e
                    .detail
                    .split(" sent (")
                    .nth(1)
                    .and_then(|r| r.split(' ').next())
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    same_bytes += n;
                }
            } else {
                cross.push(ms);
            }
        }
    }
    let rss = rss_peak_kib(service.0.id());
    b.done.store(true, std::sync::atomic::Ordering::Relaxed);
    probe.abort();
    for p in players.into_iter().chain(sse) {
        p.abort();
    }
    let hooks = hook_times.lock().unwrap().clone();

    // A cross-registry move of a big train by the service, beside skopeo copy of that image.
    let big = dir.path().join("big-algo");
    std::fs::create_dir_all(&big).unwrap();
    std::fs::write(big.join("run.sh"), "#!/bin/sh\n").unwrap();
    let mut data = vec![0u8; big_mib << 20];
    aws_lc_rs::rand::fill(&mut data).unwrap();
    std::fs::write(big.join("data.bin"), &data).unwrap();
    drop(data);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let target = (0..n_st)
        .find(|&s| b.stations[s].registry != b.creator.registry)
        .unwrap();
    for r in 0..3 {
        let id = format!("big{r}");
        let d = dir.path().join(&id);
        let pubs = vec![(b.stations[target].id.clone(), keys[target].public().clone())];
        create_train(&d, &big, &id, creator_key, pubs);
        let tag: ImageRef = format!("{}/creator/submissions:{id}", b.creator.registry)
            .parse()
            .unwrap();
        let req = image::BuildRequest {
            dir: &d,
            master: &local_master,
            tag: &tag,
            entrypoint: Some("run.sh"),
            creator_key: Some(creator_key),
            builder_key: None,
        };
        image::build(&b.creator.reg, &req, &Silent).await.unwrap();
        let _ = std::fs::remove_file("/var/lib/containers/cache/blob-info-cache-v1.boltdb");
        let mut skopeo = Command::new("skopeo");
        skopeo.args([
            "copy",
            "-q",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ]);
        if let Some(issuer) = &issuer {
            use train_image::TokenMinter;
            let mint = |i: usize, scopes: &[String]| {
                route_service::token::MoverTokens::new(issuer.clone(), format!("reg-{i}"))
                    .mint(&format!("reg-{i}"), scopes)
                    .unwrap()
            };
            let src = mint(0, &[format!("repository:{}:pull", tag.repository())]);
            let dst = mint(1, &[format!("repository:skopeo/big{r}:pull,push")]);
            skopeo.args(["--src-registry-token", &src, "--dest-registry-token", &dst]);
        }
        let t = Instant::now();
        ok(skopeo.args([
            &format!("docker://{tag}"),
            &format!("docker://{}/skopeo/big{r}:x", addr[1]),
        ]));
        theirs.push(t.elapsed().as_secs_f64());
        let (s, v) = b
            .call(
                reqwest::Method::POST,
                "/v1/trains",
                &b.creator,
                Some(json!({"image": tag.to_string(), "route": [b.stations[target].id]})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let start = v["events"][0]["at"].as_i64().unwrap();
        let delivered = loop {
            let evs = db
                .events(route_service::db::EventFilter::Train(&id), 0, 100)
                .await
                .unwrap();
            if let Some(e) = evs.iter().find(|e| e.kind == EventKind::Delivered) {
                break e.at;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        ours.push((delivered - start) as f64 / 1000.0);
    }
    drop(service);
    let (listed, list_ms, per_train_ms) = list_reads(&db).await;

    let db_name = if postgres { "PostgreSQL" } else { "SQLite" };
    let auth = if token { ", token auth" } else { "" };
    println!("route service, {db_name}{auth}: {n_st} stations, {n_tr} trains × {hops} hops, {n_sse} SSE clients (setup {setup:.0} s; submissions {submitted_in:.0} s; all trains done {run_secs:.0} s)");
    println!("| measure | value | target |");
    println!("|---|---|---|");
    println!("| trains finished | {finished} of {n_tr} | all |");
    println!("| trains lost / duplicated | {lost} / {duplicated} | 0 / 0 |");
    println!(
        "| webhook answer p50 / p99 (client, {} probes) | {:.1} / {:.1} ms | p99 < 50 ms |",
        hooks.len(),
        pct(hooks.clone(), 0.5),
        pct(hooks, 0.99)
    );
    println!(
        "| webhook handling p50 / p99 (server) | {:.2} / {:.2} ms | |",
        quantile(&metrics, "route_notification_seconds", "0.5") * 1e3,
        quantile(&metrics, "route_notification_seconds", "0.99") * 1e3
    );
    println!(
        "| push → delivered, same registry, p50 / p99 ({} moves) | {:.0} / {:.0} ms | p99 < 1 s |",
        same.len(),
        pct(same.clone(), 0.5),
        pct(same, 0.99)
    );
    println!(
        "| push → delivered, across registries, p50 / p99 ({} moves) | {:.0} / {:.0} ms | |",
        cross.len(),
        pct(cross.clone(), 0.5),
        pct(cross, 0.99)
    );
    println!(
        "| of which push → detected (notification, outbox check) p50 / p99 | {:.0} / {:.0} ms | |",
        pct(detect.clone(), 0.5),
        pct(detect, 0.99)
    );
    println!(
        "| of which detected → delivered (claim, copy, record) p50 / p99 | {:.0} / {:.0} ms | |",
        pct(moving.clone(), 0.5),
        pct(moving, 0.99)
    );
    println!(
        "| push → delivered, same registry, without the move's registry requests, p50 / p99 | {:.0} / {:.0} ms | p99 < 1 s |",
        pct(same_service.clone(), 0.5),
        pct(same_service, 0.99)
    );
    println!("| layer bytes sent by {same_moves} same-registry moves | {same_bytes} | 0 (manifests only) |");
    println!("| {big_mib} MiB train across registries: service move / skopeo copy (median of 3) | {:.2} s / {:.2} s = {:.2}× | ≤ 1.0× |", pct(ours.clone(), 0.5), pct(theirs.clone(), 0.5), pct(ours, 0.5) / pct(theirs, 0.5));
    println!(
        "| SSE events received by {n_sse} clients | {} | |",
        sse_events.load(std::sync::atomic::Ordering::Relaxed)
    );
    println!("| service peak RSS | {} MiB | |", rss / 1024);
    println!(
        "| list of {listed} trains (`GET /v1/trains`'s read, median of 5): one list / a view per train | {list_ms:.0} ms / {per_train_ms:.0} ms = {:.2}× | |",
        list_ms / per_train_ms
    );
    drop(regs);
    if std::env::var_os("BENCH_KEEP").is_some() {
        eprintln!("kept {}", dir.keep().display());
    }
}

/// `GET /v1/trains`'s read of every train (`Db::trains`) side by side with the way it read
/// them before, a view per train: (trains, list ms, per-train ms), medians of 5, alternated.
async fn list_reads(db: &Db) -> (usize, f64, f64) {
    let (mut list, mut each) = (Vec::new(), Vec::new());
    let mut n = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let all = db.trains(&TrainFilter::default()).await.unwrap();
        list.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        for v in &all {
            db.train_view(&v.id, false).await.unwrap().unwrap();
        }
        each.push(t.elapsed().as_secs_f64() * 1e3);
        n = all.len();
    }
    (n, pct(list, 0.5), pct(each, 0.5))
}
