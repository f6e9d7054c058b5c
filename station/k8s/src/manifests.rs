//! The guard rails an admin applies once (`station k8s manifests` will print them): the runs'
//! namespace enforcing the `restricted` Pod Security Standard, a deny-all NetworkPolicy
//! (ingress and egress) over every pod in it, the station's ServiceAccount (no token in any
//! pod), and a namespaced Role with only the verbs the station uses, bound to it.

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicySpec};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use std::collections::BTreeMap;

/// The station's ServiceAccount.
pub const SERVICE_ACCOUNT: &str = "pht-station";

/// What the station may do in its namespace, and why each: nothing cluster-wide, no secrets,
/// no wildcard.
pub const RULES: &[(&str, &str, &[&str])] = &[
    // A train's run.
    (
        "batch",
        "jobs",
        &["create", "get", "list", "watch", "delete"],
    ),
    // The run's pod (phase, exit code, OOMKilled), the loader, collector and canary pods.
    ("", "pods", &["create", "get", "list", "watch", "delete"]),
    // The train's output, as on Docker.
    ("", "pods/log", &["get"]),
    // `/opt` in and the results out, through the API server (never the pod network).
    ("", "pods/exec", &["create"]),
    // The run's own volume.
    (
        "",
        "persistentvolumeclaims",
        &["create", "get", "list", "delete"],
    ),
];

fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        labels: Some(BTreeMap::from([(
            "app.kubernetes.io/managed-by".to_string(),
            "pht-station".to_string(),
        )])),
        ..ObjectMeta::default()
    }
}

/// The runs' namespace: `restricted` enforced, audited and warned.
pub fn namespace(name: &str) -> Namespace {
    let mut m = meta(name, None);
    let labels = m.labels.get_or_insert_with(BTreeMap::new);
    for mode in ["enforce", "audit", "warn"] {
        labels.insert(
            format!("pod-security.kubernetes.io/{mode}"),
            "restricted".to_string(),
        );
        labels.insert(
            format!("pod-security.kubernetes.io/{mode}-version"),
            "latest".to_string(),
        );
    }
    Namespace {
        metadata: m,
        ..Namespace::default()
    }
}

/// No traffic in or out for any pod of the namespace: both policy types, no rule.
pub fn deny_all(namespace: &str) -> NetworkPolicy {
    NetworkPolicy {
        metadata: meta("pht-deny-all", Some(namespace)),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ingress: None,
            egress: None,
        }),
    }
}

/// The station's account; no token is mounted into pods by default.
pub fn service_account(namespace: &str) -> ServiceAccount {
    ServiceAccount {
        metadata: meta(SERVICE_ACCOUNT, Some(namespace)),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}

/// The station's rights: [`RULES`], in its namespace only.
pub fn role(namespace: &str) -> Role {
    Role {
        metadata: meta("pht-station", Some(namespace)),
        rules: Some(
            RULES
                .iter()
                .map(|(group, resource, verbs)| PolicyRule {
                    api_groups: Some(vec![group.to_string()]),
                    resources: Some(vec![resource.to_string()]),
                    verbs: verbs.iter().map(|v| v.to_string()).collect(),
                    ..PolicyRule::default()
                })
                .collect(),
        ),
    }
}

/// [`role`] bound to [`service_account`].
pub fn role_binding(namespace: &str) -> RoleBinding {
    RoleBinding {
        metadata: meta("pht-station", Some(namespace)),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: "pht-station".into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: SERVICE_ACCOUNT.into(),
            namespace: Some(namespace.to_string()),
            ..Subject::default()
        }]),
    }
}

/// Everything an admin applies, as one `v1` `List` (`kubectl apply -f`).
pub fn all(namespace: &str) -> serde_json::Value {
    let items = [
        serde_json::to_value(self::namespace(namespace)),
        serde_json::to_value(deny_all(namespace)),
        serde_json::to_value(service_account(namespace)),
        serde_json::to_value(role(namespace)),
        serde_json::to_value(role_binding(namespace)),
    ];
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": items.into_iter().map(|i| i.expect("k8s-openapi objects serialise")).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_namespace_enforces_restricted_and_denies_all_traffic() {
        let ns = namespace("pht-st-1");
        let l = ns.metadata.labels.unwrap();
        assert_eq!(l["pod-security.kubernetes.io/enforce"], "restricted");
        let p = deny_all("pht-st-1").spec.unwrap();
        assert_eq!(p.pod_selector, Some(LabelSelector::default()), "every pod");
        assert_eq!(p.policy_types.unwrap(), ["Ingress", "Egress"]);
        assert!(
            p.ingress.is_none() && p.egress.is_none(),
            "no rule lets anything through"
        );
        assert_eq!(
            service_account("n").automount_service_account_token,
            Some(false)
        );
    }

    #[test]
    fn the_station_s_rights_are_namespaced_few_and_never_secrets_or_wildcards() {
        let r = role("pht-st-1");
        assert_eq!(r.metadata.namespace.as_deref(), Some("pht-st-1"));
        for rule in r.rules.unwrap() {
            let res = rule.resources.unwrap();
            assert!(
                !res.iter()
                    .any(|x| x == "*" || x == "secrets" || x == "configmaps"),
                "{res:?}"
            );
            assert!(
                !rule
                    .verbs
                    .iter()
                    .any(|v| v == "*" || v == "escalate" || v == "bind" || v == "impersonate"),
                "{:?}",
                rule.verbs
            );
            assert!(!rule.api_groups.unwrap().iter().any(|g| g == "*"));
        }
        let b = role_binding("pht-st-1");
        assert_eq!(
            (b.role_ref.kind.as_str(), b.role_ref.name.as_str()),
            ("Role", "pht-station")
        );
        let v = all("pht-st-1");
        let kinds: Vec<&str> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "Namespace",
                "NetworkPolicy",
                "ServiceAccount",
                "Role",
                "RoleBinding"
            ]
        );
    }
}
