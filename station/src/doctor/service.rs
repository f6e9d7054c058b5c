//! The route service's side: reachable, the API key accepted, the station's key the one the
//! service holds, the station's registry reachable with a token for its inbox and outbox, and
//! the clocks in step.

use super::Check;
use crate::config::StationConfig;
use route_wire::client::Client;
use train_image::{Credentials, ImageRef, Registry, RegistryOptions};
use train_lib::keys::PrivateKey;

const SERVICE: &str = "route service";
const KEY_AT_SERVICE: &str = "key at the service";
const REGISTRY: &str = "registry";
const CLOCK: &str = "clock";

fn skip_rest(out: &mut Vec<Check>, why: &str) {
    for n in [KEY_AT_SERVICE, REGISTRY, CLOCK] {
        out.push(Check::skipped(n, why));
    }
}

pub(super) async fn checks(cfg: &StationConfig, key: Option<&PrivateKey>, out: &mut Vec<Check>) {
    let Some(url) = cfg.watch.route_service.clone() else {
        out.push(Check::skipped(
            SERVICE,
            "no [watch] route_service: this station runs trains only with `station run`",
        ));
        skip_rest(out, "no route service");
        return;
    };
    let Some(station) = cfg.station.id.as_deref() else {
        out.push(Check::failed(
            SERVICE,
            "no [station] id in the configuration",
            "set [station] id to the id the consortium registered this station under",
        ));
        skip_rest(out, "no station id");
        return;
    };
    let api_key = match cfg.watch.api_key() {
        Ok(k) => k,
        Err(e) => {
            out.push(Check::failed(
                SERVICE,
                e.to_string(),
                "put the key printed at registration in [watch] api_key_file (mode 0600)",
            ));
            skip_rest(out, "no API key");
            return;
        }
    };
    let client = match Client::with_options(&url, station, &api_key, &cfg.client_options()) {
        Ok(c) => c,
        Err(e) => {
            out.push(Check::failed(
                SERVICE,
                e.to_string(),
                "fix [watch] route_service",
            ));
            skip_rest(out, "no route service");
            return;
        }
    };
    let id: route_wire::StationId = match station.parse() {
        Ok(i) => i,
        Err(e) => {
            out.push(Check::failed(
                SERVICE,
                format!("[station] id: {e}"),
                "fix [station] id",
            ));
            skip_rest(out, "no station id");
            return;
        }
    };
    let inbox = match client.inbox(&id, std::time::Duration::ZERO).await {
        Ok(i) => {
            out.push(Check::ok(
                SERVICE,
                format!(
                    "{url} answers; the API key of {station} is accepted ({} train(s) waiting)",
                    i.items.len()
                ),
            ));
            i
        }
        Err(e) => {
            let fix = match e.status() {
                Some(401) => "the API key is not this station's: ask an admin for a new one (`route-service station rotate-key ID`, or over the API) and put it in [watch] api_key_file",
                Some(403 | 404) => "this station id is not registered there: check [station] id, or ask an admin to register the station",
                _ => "check [watch] route_service, the network path (an outbound proxy: HTTPS_PROXY) and that the service runs",
            };
            out.push(Check::failed(SERVICE, e.to_string(), fix));
            skip_rest(out, "the route service did not answer as this station");
            return;
        }
    };
    key_at_service(&client, &id, key, out).await;
    registry(
        cfg,
        station,
        &api_key,
        &url,
        inbox.repositories.as_ref(),
        out,
    )
    .await;
    clock(&client, out).await;
}

async fn key_at_service(
    client: &Client,
    id: &route_wire::StationId,
    key: Option<&PrivateKey>,
    out: &mut Vec<Check>,
) {
    let Some(key) = key else {
        out.push(Check::skipped(KEY_AT_SERVICE, "the key could not be read"));
        return;
    };
    let mine = key.public().fingerprint();
    match client.station_key(id).await {
        Ok(k) if k.fingerprint == mine => out.push(Check::ok(
            KEY_AT_SERVICE,
            match k.pending_fingerprint {
                Some(p) => format!("the service holds {mine}; the proposed {p} waits for an admin"),
                None => format!("the service holds {mine}, this station's"),
            },
        )),
        Ok(k) => out.push(Check::failed(
            KEY_AT_SERVICE,
            format!(
                "the service holds {} for {id}, but this station's key is {mine}: trains for {id} are encrypted for the other key and none could run here",
                k.fingerprint
            ),
            format!("if this key is the right one, `station keys rotate --reuse` and ask an admin to run `route-service station accept-key {id} --fingerprint {mine}`; otherwise set [station] key to the key the service holds"),
        )),
        Err(e) => out.push(Check::failed(
            KEY_AT_SERVICE,
            e.to_string(),
            "see the route service line",
        )),
    }
}

async fn registry(
    cfg: &StationConfig,
    station: &str,
    api_key: &secrecy::SecretString,
    url: &str,
    repos: Option<&route_wire::StationRepositories>,
    out: &mut Vec<Check>,
) {
    let Some(repos) = repos else {
        out.push(Check::skipped(
            REGISTRY,
            "the route service does not say where this station's inbox is (an older service)",
        ));
        return;
    };
    let parse = |r: &str| format!("{r}:pht-doctor").parse::<ImageRef>();
    let (Ok(inbox), Ok(outbox)) = (parse(&repos.inbox), parse(&repos.outbox)) else {
        out.push(Check::failed(
            REGISTRY,
            format!(
                "the service names {} and {}, which do not parse",
                repos.inbox, repos.outbox
            ),
            "report this to the consortium's admin",
        ));
        return;
    };
    let host = inbox.registry().to_string();
    if !cfg.watch.registries.contains(&host) {
        out.push(Check::failed(
            REGISTRY,
            format!(
                "the station's inbox is on {host}, which is not in [watch] registries ({:?}): every train would be refused",
                cfg.watch.registries
            ),
            format!("add \"{host}\" to [watch] registries if it is the consortium's registry for this station"),
        ));
        return;
    }
    let mut realms = cfg.registry.token_realms.clone();
    realms.push(format!("{}/v1/registry-token", url.trim_end_matches('/')));
    let reg = Registry::new(RegistryOptions {
        insecure: cfg.registry.insecure.clone(),
        credentials: vec![(
            host.clone(),
            Credentials::Basic {
                username: station.to_string(),
                password: api_key.clone(),
            },
        )],
        token_realms: realms,
        ca_certs: cfg.tls.certs.clone(),
        ..Default::default()
    });
    let fix = "check that the registry runs and is reachable from here (an outbound proxy: HTTPS_PROXY), and that the consortium registered this station on it";
    let pull =
        tokio::time::timeout(std::time::Duration::from_secs(60), reg.try_resolve(&inbox)).await;
    match pull {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            out.push(Check::failed(
                REGISTRY,
                format!("reading the inbox: {e}"),
                fix,
            ));
            return;
        }
        Err(_) => {
            out.push(Check::failed(
                REGISTRY,
                format!("{host}: no answer within 60 s"),
                fix,
            ));
            return;
        }
    }
    match tokio::time::timeout(std::time::Duration::from_secs(60), reg.probe_push(&outbox)).await {
        Ok(Ok(())) => out.push(Check::ok(
            REGISTRY,
            format!(
                "{host}: the inbox {} may be read and the outbox {} written",
                repos.inbox, repos.outbox
            ),
        )),
        Ok(Err(e)) => out.push(Check::failed(
            REGISTRY,
            format!("writing the outbox: {e}"),
            fix,
        )),
        Err(_) => out.push(Check::failed(
            REGISTRY,
            format!("{host}: no answer within 60 s"),
            fix,
        )),
    }
}

async fn clock(client: &Client, out: &mut Vec<Check>) {
    let before = std::time::SystemTime::now();
    match client.server_time().await {
        Ok(Some(t)) => {
            let after = std::time::SystemTime::now();
            // The middle of the request, against a time the service rounded down to the second.
            let mid = before + after.duration_since(before).unwrap_or_default() / 2;
            let skew = match t.duration_since(mid) {
                Ok(d) => d.as_secs_f64(),
                Err(e) => -e.duration().as_secs_f64(),
            };
            // Positive: the service is ahead, so this host is behind.
            out.push(super::judge_skew(skew));
        }
        Ok(None) => out.push(Check::skipped(CLOCK, "the service sends no Date header")),
        Err(_) => out.push(Check::skipped(
            CLOCK,
            "the service's time could not be read",
        )),
    }
}
