//! Every object the station makes or prints, checked against the upstream OpenAPI schemas by
//! `kubernetes-validate --strict` (PyPI; offline, its schemas are in the package), for the
//! oldest Kubernetes the engine supports. `PHT_KUBERNETES_VALIDATE` names the program.

use super::{manifests, spec};
use std::process::Command;

/// The oldest Kubernetes release the engine supports (k8s-openapi's `v1_33`).
const KUBERNETES: &str = "1.33.0";

#[test]
fn every_object_passes_kubernetes_validate_strict() {
    let tool = std::env::var("PHT_KUBERNETES_VALIDATE").expect(
        "PHT_KUBERNETES_VALIDATE is not set: `pip install kubernetes-validate` and name its program",
    );
    let dir = tempfile::tempdir().unwrap();
    let s = spec::RunSpec {
        millicpus: 1500,
        storage_class: Some("encrypted-local".into()),
        ..spec::tests::base()
    };
    let mut objects = vec![
        ("claim", serde_json::to_value(s.claim().unwrap()).unwrap()),
        ("job", serde_json::to_value(s.job().unwrap()).unwrap()),
        (
            "loader",
            serde_json::to_value(s.helper(spec::Helper::Loader, 600).unwrap()).unwrap(),
        ),
        (
            "collector",
            serde_json::to_value(s.helper(spec::Helper::Collector, 600).unwrap()).unwrap(),
        ),
    ];
    for (i, item) in manifests::all("pht-st-1")["items"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        objects.push((
            ["namespace", "netpol", "sa", "role", "binding"][i],
            item.clone(),
        ));
    }
    let mut files = Vec::new();
    for (name, v) in &objects {
        let f = dir.path().join(format!("{name}.json"));
        std::fs::write(&f, serde_json::to_vec_pretty(v).unwrap()).unwrap();
        files.push(f);
    }
    let out = Command::new(&tool)
        .args(["--strict", "-k", KUBERNETES])
        .args(&files)
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "kubernetes-validate refused:\n{text}");
    assert_eq!(
        text.matches(" passed for resource ").count(),
        objects.len(),
        "one pass per object:\n{text}"
    );
    // And the judge judges: a field the schema does not have is refused under --strict.
    let mut bad = objects[1].1.clone();
    bad["spec"]["template"]["spec"]["hostPathz"] = serde_json::json!(true);
    let f = dir.path().join("bad.json");
    std::fs::write(&f, serde_json::to_vec(&bad).unwrap()).unwrap();
    let out = Command::new(&tool)
        .args(["--strict", "-k", KUBERNETES])
        .arg(&f)
        .output()
        .unwrap();
    assert!(!out.status.success(), "an unknown field passed --strict");
}
