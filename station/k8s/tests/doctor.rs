//! `station doctor`'s cluster checks against the mocked API server: each failing precondition
//! is a failed line with what to do, and what depends on it is skipped.

mod mock;

use mock::Script;
use station::config::KubernetesSection;
use station::doctor::{Check, Outcome};
use station_k8s::KubeEngine;

fn section() -> KubernetesSection {
    KubernetesSection {
        namespace: "pht-st-1".into(),
        helper_image: format!("registry.example/pht/helper@sha256:{}", "b".repeat(64)),
        storage_class: None,
        data: Default::default(),
        canary_target: "192.0.2.1:443".into(),
        context: None,
        image_pull_secret: None,
        ephemeral_mib: 256,
    }
}

async fn doctor(script: Script) -> Vec<Check> {
    let m = mock::start(script).await;
    let mut out = Vec::new();
    station_k8s::doctor::check(&KubeEngine::new(m.client(), section()), &mut out).await;
    out
}

fn line<'a>(checks: &'a [Check], name: &str) -> &'a Outcome {
    &checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name}: {checks:?}"))
        .outcome
}

#[tokio::test]
async fn a_sound_cluster_passes_every_check() {
    let c = doctor(Script {
        canary: "Failed",
        ..Script::default()
    })
    .await;
    assert!(
        matches!(line(&c, "kubernetes"), Outcome::Ok(v) if v.contains("v1.33.4")),
        "{c:?}"
    );
    assert!(
        matches!(line(&c, "cluster rights"), Outcome::Ok(_)),
        "{c:?}"
    );
    assert!(matches!(line(&c, "egress canary"), Outcome::Ok(_)), "{c:?}");
}

#[tokio::test]
async fn a_missing_right_fails_with_what_to_apply_and_skips_the_canary() {
    let c = doctor(Script {
        deny: Some("get pods/log"),
        canary: "Failed",
        ..Script::default()
    })
    .await;
    match line(&c, "cluster rights") {
        Outcome::Failed { problem, fix } => {
            assert!(problem.contains("may not get pods/log"), "{problem}");
            assert!(fix.contains("station k8s manifests"), "{fix}");
        }
        o => panic!("{o:?}"),
    }
    assert!(
        matches!(line(&c, "egress canary"), Outcome::Skipped(_)),
        "{c:?}"
    );
}

#[tokio::test]
async fn a_canary_that_gets_out_fails_the_check() {
    let c = doctor(Script {
        canary: "Succeeded",
        ..Script::default()
    })
    .await;
    match line(&c, "egress canary") {
        Outcome::Failed { problem, fix } => {
            assert!(
                problem.contains("does not enforce NetworkPolicies"),
                "{problem}"
            );
            assert!(fix.contains("Calico"), "{fix}");
        }
        o => panic!("{o:?}"),
    }
}

#[tokio::test]
async fn an_api_server_that_does_not_answer_fails_and_skips_the_rest() {
    // A port nothing listens on.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
    let mut c = Vec::new();
    station_k8s::doctor::check(&KubeEngine::new(client, section()), &mut c).await;
    assert!(
        matches!(line(&c, "kubernetes"), Outcome::Failed { .. }),
        "{c:?}"
    );
    assert!(
        matches!(line(&c, "cluster rights"), Outcome::Skipped(_)),
        "{c:?}"
    );
}
