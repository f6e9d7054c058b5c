//! `train pre-run` stopped by a signal while it rewrites the train directory's files in
//! place: every file is put back before it exits 130, in both formats.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::fs;
use support::*;
use train_lib::Format;

/// Ctrl-C while `train pre-run` rewrites files: every file is put back before it exits 130.
#[test]
fn sigint_during_the_rewrite_puts_every_file_back() {
    for format in [Format::Native, Format::Legacy] {
        sigint_during_the_rewrite(format);
    }
}

fn sigint_during_the_rewrite(format: Format) {
    let f = create_train(format, 3, &[("main.py", b"print('hi')\n".to_vec())]);
    f.run_stop(
        0,
        &[
            ("big.bin", bytes(192 << 20, 5)),
            ("small.csv", b"x\n".to_vec()),
        ],
    );
    let key = f.tmp.path().join("s1.key.pem");
    fs::write(&key, station_key(1).to_pkcs8_pem().unwrap().as_bytes()).unwrap();
    let before = state(&f.dir);
    let marker = f.dir.join(".pht-pre-run-in-progress");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_train"))
        .args([
            "pre-run",
            f.dir.to_str().unwrap(),
            "--station",
            &f.ids[1],
            "--key",
        ])
        .arg(&key)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !marker.exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "{format}: pre-run ended before the rewrite could be interrupted"
        );
        assert!(start.elapsed().as_secs() < 60);
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{format}: {err}");
    assert!(err.contains("left as it was"), "{err}");
    assert!(before == state(&f.dir), "{format}: directory changed");
    assert!(!marker.exists());
    // And the train still runs afterwards.
    f.open().pre_run(&f.station(1)).unwrap();
    assert_eq!(
        fs::read(f.dir.join("pht_results/small.csv")).unwrap(),
        b"x\n"
    );
}
