//! The scripts whose standard output a caller evaluates (`eval "$(scripts/x.sh)"`) print
//! nothing there but `export NAME=…` lines, on a first start as on later ones. A first start of
//! the PostgreSQL cluster once printed its cluster table there, and the README's test command
//! died with `Cluster: command not found` on every fresh machine; a machine that already had
//! the cluster passed. So each script is run here on state of its own that does not exist yet
//! (another cluster name and port, another state directory, another virtualenv), then again.

use e2e::route::{free_port, nonce};
use e2e::{root, run};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long a script may take here: a first start installs nothing on a machine the test
/// command has prepared, so minutes mean it hangs.
const DEADLINE: Duration = Duration::from_secs(300);

/// Runs `script` with `args` and `env` the way `eval "$(…)"` does, its standard output a pipe
/// read to its end, within [`DEADLINE`]: a daemon the script leaves running with that pipe
/// open makes `$(…)` wait for as long as the daemon runs (the first start of services.sh and
/// postgres.sh once hung so). Returns (success, stdout, stderr).
fn capture(script: &str, args: &[&str], env: &[(&str, String)]) -> (bool, String, String) {
    let mut c = Command::new(root().join("scripts").join(script));
    c.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut o = String::new();
        let _ = out.read_to_string(&mut o);
        let _ = tx.send(o);
    });
    let stderr = std::thread::spawn(move || {
        let mut e = String::new();
        let _ = err.read_to_string(&mut e);
        e
    });
    let Ok(stdout) = rx.recv_timeout(DEADLINE) else {
        let _ = child.kill();
        panic!(
            "`{script} {}`: its standard output was still open after {} s; a process it started holds it (start daemons with `3>&-`)",
            args.join(" "),
            DEADLINE.as_secs()
        );
    };
    let ok = child.wait().unwrap().success();
    (ok, stdout, stderr.join().unwrap_or_default())
}

/// Runs `script` with `env`; asserts success and that every line of standard output is an
/// `export NAME=VALUE` line (VALUE without spaces or quotes: the callers evaluate it as is).
fn only_exports(script: &str, env: &[(&str, String)], what: &str) -> Vec<String> {
    let (ok, out, err) = capture(script, &[], env);
    assert!(ok, "{script} ({what}) failed:\n{err}");
    let lines: Vec<String> = out.lines().map(str::to_string).collect();
    assert!(!lines.is_empty(), "{script} ({what}) printed no export");
    for l in &lines {
        let ok = l.strip_prefix("export ").is_some_and(|rest| {
            rest.split_once('=').is_some_and(|(name, value)| {
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
                    && !value.is_empty()
                    && !value.contains([' ', '"', '\'', '`', '$', ';'])
            })
        });
        assert!(
            ok,
            "{script} ({what}) printed a line that is not `export NAME=VALUE`: {l:?}\nall of it:\n{out}"
        );
    }
    lines
}

fn root_user() -> bool {
    run(Command::new("id").arg("-u")).stdout == b"0\n"
}

/// Drops the test's cluster however the test ends.
struct DropCluster(String);

impl Drop for DropCluster {
    fn drop(&mut self) {
        let v = run(Command::new("sh").args(["-c", "ls /usr/lib/postgresql | sort -n | tail -1"]));
        let version = String::from_utf8_lossy(&v.stdout).trim().to_string();
        let _ = run(Command::new("pg_dropcluster").args(["--stop", &version, &self.0]));
    }
}

#[test]
fn postgres_sh_prints_only_exports_on_a_new_cluster_and_after() {
    if !root_user() {
        eprintln!("SKIPPED: postgres.sh manages clusters as root");
        return;
    }
    let cluster = format!("chk{}", nonce().replace('_', ""));
    let _drop = DropCluster(cluster.clone());
    let env = [
        ("PHT_POSTGRES_CLUSTER", cluster.clone()),
        ("PHT_POSTGRES_PORT", free_port().to_string()),
    ];
    let first = only_exports("postgres.sh", &env, "a new cluster");
    let again = only_exports("postgres.sh", &env, "the cluster running");
    assert_eq!(first, again);
    assert!(first[0].starts_with("export PHT_TEST_POSTGRES_URL=postgres://"));
    // Stopped, it starts again with the same output.
    let (ok, out, err) = capture("postgres.sh", &["stop"], &env);
    assert!(ok, "{err}");
    assert!(out.is_empty(), "stop prints nothing on stdout: {out}");
    let again = only_exports("postgres.sh", &env, "after a stop");
    assert_eq!(first, again);
}

#[test]
fn services_sh_prints_only_exports_with_new_registries_and_after() {
    if !root_user() {
        eprintln!("SKIPPED: services.sh installs packages and starts daemons as root");
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let env = [
        ("PHT_SERVICES_DIR", state.path().display().to_string()),
        ("PHT_REGISTRY_A_PORT", free_port().to_string()),
        ("PHT_REGISTRY_B_PORT", free_port().to_string()),
    ];
    let first = only_exports("services.sh", &env, "new registries");
    assert_eq!(first.len(), 3, "{first:?}");
    let again = only_exports("services.sh", &env, "all running");
    assert_eq!(first, again);
    let (ok, out, _) = capture("services.sh", &["env"], &env);
    assert!(ok);
    assert_eq!(out.lines().count(), 3, "{out}");
    // Stops only the registries of its own state directory (the engine was running already).
    let (ok, out, err) = capture("services.sh", &["stop"], &env);
    assert!(ok && out.is_empty(), "{out}{err}");
}

#[test]
fn the_virtualenv_scripts_print_only_exports_when_made_and_after() {
    for (script, vars, dir_var) in [
        (
            "reference-venv.sh",
            &["PHT_REFERENCE_PYTHON"][..],
            "PHT_REFERENCE_VENV",
        ),
        (
            "api-tools.sh",
            &["PHT_API_TOOLS", "PHT_KUBERNETES_VALIDATE"][..],
            "PHT_API_TOOLS_VENV",
        ),
    ] {
        let d = tempfile::tempdir().unwrap();
        let venv = d.path().join("venv");
        let env = [(dir_var, venv.display().to_string())];
        let first = only_exports(script, &env, "a new virtualenv");
        assert_eq!(first.len(), vars.len(), "{first:?}");
        for (line, var) in first.iter().zip(vars) {
            assert!(
                line.starts_with(&format!("export {var}={}", venv.display())),
                "{first:?}"
            );
        }
        let again = only_exports(script, &env, "made already");
        assert_eq!(first, again);
    }
}
