//! What the three binaries do with standard output they cannot write: a reader that stops
//! early (`station keys show | head -1`) is no error (it was a panic and exit code 101), any
//! other write error is said on stderr and exits 1 (`pht_term::out`).

use e2e::bin;
use std::process::{Command, Stdio};

/// A command of each binary that prints its answer on stdout, run in `dir`.
fn printers(dir: &std::path::Path) -> Vec<Command> {
    let mut openapi = Command::new(bin("route-service"));
    openapi.arg("openapi");
    let mut keygen = Command::new(bin("train"));
    keygen.args(["keygen", "k", "--bits", "2048"]);
    let mut show = Command::new(bin("station"));
    show.args(["keys", "show", "--key", "k.key.pem"])
        .env("STATION_ID", "st-1");
    let mut all = vec![openapi, keygen, show];
    for c in &mut all {
        c.current_dir(dir).stderr(Stdio::piped());
    }
    all
}

fn said(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_reader_that_stops_early_is_no_error() {
    let dir = tempfile::tempdir().unwrap();
    for mut c in printers(dir.path()) {
        // The reading end closed before the command starts: its first write gets EPIPE.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = c.stdout(writer).output().unwrap();
        assert!(o.status.success(), "{c:?}: {:?}\n{}", o.status, said(&o));
        assert_eq!(said(&o), "", "{c:?}");
    }
}

#[test]
fn an_answer_that_cannot_be_written_is_said_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    for mut c in printers(dir.path()) {
        // Every write to /dev/full fails with ENOSPC, as on a full disk under `> file`.
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let o = c.stdout(full).output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{c:?}: {}", said(&o));
        assert!(
            said(&o).contains("error: writing to standard output: No space left on device"),
            "{c:?}: {}",
            said(&o)
        );
        assert!(!said(&o).contains("panicked"), "{c:?}: {}", said(&o));
    }
}
