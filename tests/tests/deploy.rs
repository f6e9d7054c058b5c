//! What `deploy/` ships, checked by the tools that judge it: the station's systemd unit by
//! `systemd-analyze verify` (with the binary this build made in the installed one's place),
//! with no warning at all, and its hardening present.

use e2e::bin;
use std::path::Path;
use std::process::Command;

fn unit() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd/station-watch.service");
    std::fs::read_to_string(p).unwrap()
}

/// `systemd-analyze verify` of `text` as `station-watch.service`; (exit ok, what it printed).
fn verify(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("station-watch.service");
    std::fs::write(
        &p,
        text.replace("/usr/local/bin/station", bin("station").to_str().unwrap()),
    )
    .unwrap();
    let o = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&p)
        .output()
        .expect("systemd-analyze (Debian's systemd; scripts/services.sh installs it)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), said)
}

#[test]
fn the_station_unit_verifies_without_a_warning_and_is_hardened() {
    let text = unit();
    let (ok, said) = verify(&text);
    assert!(
        ok && said.trim().is_empty(),
        "systemd-analyze verify: {said}"
    );
    for line in [
        "After=network-online.target docker.service",
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/pht /var/log/pht",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=",
        "DevicePolicy=closed",
        "UMask=0077",
        "ExecStartPre=/usr/local/bin/station doctor",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(line)),
            "{line} in the unit"
        );
    }
    // The check bites: a misspelt hardening directive is only a warning to systemd (the unit
    // would run without it), so a warning fails this test.
    let (_, said) = verify(&text.replace("NoNewPrivileges=yes", "NoNewPrivilege=yes"));
    assert!(said.contains("Unknown key"), "{said}");
}
