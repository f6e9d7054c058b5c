//! Invariants of every object a run makes, over generated runs; and the refusals.

use super::*;
use proptest::prelude::*;

fn digest(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

/// A run as the engine describes one; the schema test uses it too.
pub(crate) fn base() -> RunSpec {
    RunSpec {
        run_id: "r-0123abcd".into(),
        station: "st-1".into(),
        namespace: "pht-st-1".into(),
        image: format!("registry.example:5000/st-1/inbox@{}", digest('a')),
        helper_image: format!("registry.example:5000/pht/helper@{}", digest('b')),
        command: Some(vec!["/bin/sh".into()]),
        args: vec!["/opt/pht_train/run.sh".into()],
        env: vec![("STATION_ID".into(), "st-1".into())],
        data_claims: vec![("cohort".into(), "cohort-2026".into())],
        pull_secret: Some("pht-masters".into()),
        annotations: vec![(
            "pht.station/workdir".into(),
            "/var/tmp/pht-station-r-0123abcd".into(),
        )],
        uid: 65534,
        gid: 65534,
        memory_mib: 1024,
        millicpus: 1000,
        disk_mib: 16384,
        ephemeral_mib: 256,
        deadline_secs: 3600,
        storage_class: None,
    }
}

/// What the `restricted` Pod Security Standard and our own rules want of a pod; each
/// violation in words.
fn violations(p: &PodSpec, s: &RunSpec) -> Vec<String> {
    let mut v = Vec::new();
    let mut bad = |ok: bool, what: &str| {
        if !ok {
            v.push(what.to_string());
        }
    };
    bad(
        p.automount_service_account_token == Some(false),
        "service account token mounted",
    );
    bad(p.host_network != Some(true), "host network");
    bad(
        p.host_pid != Some(true) && p.host_ipc != Some(true),
        "host pid/ipc",
    );
    bad(p.restart_policy.as_deref() == Some("Never"), "restarts");
    let psc = p.security_context.as_ref();
    bad(
        psc.and_then(|c| c.run_as_non_root) == Some(true),
        "pod may run as root",
    );
    bad(
        psc.and_then(|c| c.seccomp_profile.as_ref())
            .is_some_and(|s| s.type_ == "RuntimeDefault"),
        "pod seccomp not RuntimeDefault",
    );
    for vol in p.volumes.iter().flatten() {
        bad(vol.host_path.is_none(), "a hostPath volume");
        let claim = vol.persistent_volume_claim.as_ref();
        let own = claim.is_some_and(|c| c.claim_name == s.claim_name());
        // Besides its own claim a pod mounts only the operator's data claims, read-only.
        let data = claim.is_some_and(|c| {
            c.read_only == Some(true) && s.data_claims.iter().any(|(_, d)| *d == c.claim_name)
        });
        bad(
            own || data,
            "a volume that is not the run's own claim or read-only data",
        );
        for c in &p.containers {
            for m in c.volume_mounts.iter().flatten() {
                if m.name == vol.name && !own {
                    bad(m.read_only == Some(true), "data mounted writable");
                }
            }
        }
    }
    let all = p
        .containers
        .iter()
        .chain(p.init_containers.iter().flatten());
    for c in all {
        let sc = c.security_context.as_ref();
        bad(
            sc.and_then(|c| c.allow_privilege_escalation) == Some(false),
            "privilege escalation allowed",
        );
        bad(sc.and_then(|c| c.privileged) != Some(true), "privileged");
        bad(
            sc.and_then(|c| c.read_only_root_filesystem) == Some(true),
            "writable root",
        );
        bad(
            sc.and_then(|c| c.run_as_non_root) == Some(true),
            "container may run as root",
        );
        bad(
            sc.and_then(|c| c.run_as_user).is_some_and(|u| u != 0),
            "uid 0",
        );
        bad(
            sc.and_then(|c| c.capabilities.as_ref()).is_some_and(|k| {
                k.drop.as_deref() == Some(&["ALL".to_string()][..]) && k.add.is_none()
            }),
            "capabilities not all dropped",
        );
        bad(c.ports.is_none(), "a port");
        bad(
            c.image.as_deref().is_some_and(pinned),
            "an image not pinned by digest",
        );
        let limits = c.resources.as_ref().and_then(|r| r.limits.as_ref());
        for k in ["cpu", "memory", "ephemeral-storage"] {
            bad(
                limits.is_some_and(|l| l.contains_key(k)),
                &format!("no {k} limit"),
            );
        }
    }
    v
}

fn run_spec() -> impl Strategy<Value = RunSpec> {
    (
        "[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?",
        1i64..=2_000_000,
        1i64..=2_000_000,
        1u64..=1_000_000,
        1u64..=64_000,
        1u64..=10_000_000,
        1u64..=1_000_000,
        1u64..=604_800,
        "[a-f0-9]{64}",
        prop::option::of("[a-z][a-z0-9-]{0,20}"),
        prop::collection::vec(
            (
                "[a-z][a-z0-9-]{0,20}[a-z0-9]",
                "[a-z]([a-z0-9-]{0,40}[a-z0-9])?",
            ),
            0..3,
        ),
    )
        .prop_map(
            |(
                run_id,
                uid,
                gid,
                memory_mib,
                millicpus,
                disk_mib,
                ephemeral_mib,
                deadline_secs,
                hex,
                sc,
                data,
            )| RunSpec {
                run_id,
                uid,
                gid,
                memory_mib,
                millicpus,
                disk_mib,
                ephemeral_mib,
                deadline_secs,
                image: format!("r.example/st-1/inbox@sha256:{hex}"),
                storage_class: sc,
                // One mount per name (the pipeline refuses two `--data` of one name).
                data_claims: data
                    .into_iter()
                    .collect::<BTreeMap<_, _>>()
                    .into_iter()
                    .collect(),
                ..base()
            },
        )
}

proptest! {
    #[test]
    fn every_pod_a_run_makes_is_restricted_pinned_limited_and_on_its_own_volume(s in run_spec()) {
        let job = s.job().unwrap();
        let js = job.spec.as_ref().unwrap();
        prop_assert_eq!(js.backoff_limit, Some(0));
        prop_assert_eq!(js.active_deadline_seconds, Some(s.deadline_secs as i64));
        let pod = js.template.spec.as_ref().unwrap();
        prop_assert_eq!(violations(pod, &s), Vec::<String>::new());
        prop_assert_eq!(pod.containers[0].image.as_deref(), Some(s.image.as_str()));
        for h in [Helper::Loader, Helper::Collector] {
            let p = s.helper(h, 600).unwrap();
            let spec = p.spec.as_ref().unwrap();
            prop_assert_eq!(violations(spec, &s), Vec::<String>::new());
            let mounts = spec.containers[0].volume_mounts.as_ref().unwrap();
            prop_assert_eq!(mounts.len(), 1, "helpers never see the data");
            prop_assert_eq!(mounts[0].read_only, Some(h == Helper::Collector));
        }
        // Every object carries the run's labels (the sweep finds a dead run's objects by them).
        let labels = job.metadata.labels.as_ref().unwrap();
        prop_assert_eq!(labels.get(LABEL_RUN), Some(&s.run_id));
        let claim = s.claim().unwrap();
        prop_assert_eq!(claim.metadata.labels.as_ref().unwrap().get(LABEL_RUN), Some(&s.run_id));
        let template = job.spec.unwrap().template.metadata.unwrap().labels.unwrap();
        prop_assert_eq!(template.get(LABEL_RUN), Some(&s.run_id));
    }
}

#[test]
fn what_would_weaken_a_run_is_refused_by_name() {
    let mut s = base();
    s.image = "registry.example:5000/st-1/inbox:latest".into();
    assert!(matches!(s.job(), Err(SpecError::NotPinned(_))));
    s.image = format!("registry.example:5000/st-1/inbox@sha256:{}", "A".repeat(64));
    assert!(
        matches!(s.job(), Err(SpecError::NotPinned(_))),
        "upper-case hex is not a digest"
    );
    let mut s = base();
    s.helper_image = "busybox".into();
    assert!(matches!(
        s.helper(Helper::Loader, 60),
        Err(SpecError::NotPinned(_))
    ));
    let mut s = base();
    s.uid = 0;
    assert_eq!(s.job().unwrap_err(), SpecError::Root { uid: 0, gid: 65534 });
    let mut s = base();
    s.deadline_secs = 0;
    assert_eq!(s.job().unwrap_err(), SpecError::NoLimit("the deadline"));
    let mut s = base();
    s.data_claims = vec![("Cohort".into(), "c".into())];
    assert!(matches!(s.job(), Err(SpecError::DataName(_))));
    let mut s = base();
    s.data_claims = vec![("a".into(), "c".into()), ("a".into(), "d".into())];
    assert!(
        matches!(s.job(), Err(SpecError::DataName(_))),
        "one mount per name"
    );
    for id in ["", "R-1", "-r", "r-", "r_1", &"r".repeat(41)] {
        let mut s = base();
        s.run_id = id.to_string();
        assert!(matches!(s.claim(), Err(SpecError::RunId(_))), "{id}");
    }
}

#[test]
fn the_invariant_check_itself_catches_what_it_is_for() {
    // A test that cannot fail proves nothing: weaken a built pod and the check says so.
    let s = base();
    let mut pod = s.job().unwrap().spec.unwrap().template.spec.unwrap();
    pod.automount_service_account_token = None;
    pod.containers[0].volume_mounts.as_mut().unwrap()[1].read_only = Some(false);
    pod.host_network = Some(true);
    pod.volumes.as_mut().unwrap().push(Volume {
        name: "host".into(),
        host_path: Some(Default::default()),
        ..Volume::default()
    });
    let c = &mut pod.containers[0];
    c.security_context.as_mut().unwrap().capabilities = None;
    c.resources
        .as_mut()
        .unwrap()
        .limits
        .as_mut()
        .unwrap()
        .remove("memory");
    c.image = Some("busybox:latest".into());
    let v = violations(&pod, &s);
    for want in [
        "service account token mounted",
        "host network",
        "a hostPath volume",
        "capabilities not all dropped",
        "no memory limit",
        "an image not pinned by digest",
        "data mounted writable",
    ] {
        assert!(v.iter().any(|x| x == want), "{want} not caught: {v:?}");
    }
}
