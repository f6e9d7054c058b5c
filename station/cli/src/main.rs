//! `station`: runs Personal Health Trains at a station. Parses arguments, runs the station
//! library's pipeline, maps its decision to an exit code.

mod cli;
mod cmd;
mod ui;

use anyhow::Result;
use clap::Parser;
use cli::{AuditCmd, Cli, Cmd, K8sCmd, KeysCmd, TrustCmd};
use cmd::Ended;
use station::{output, run};
use std::process::ExitCode;

async fn dispatch(cmd: Cmd) -> Result<Ended> {
    match cmd {
        Cmd::Run(a) => cmd::run::run(a).await,
        Cmd::Watch(a) => cmd::watch::run(a).await,
        Cmd::Queue(a) => cmd::queue::run(a).await,
        Cmd::Approve(a) => cmd::decide::run(a, true).await,
        Cmd::Reject(a) => cmd::decide::run(a, false).await,
        Cmd::Keys(KeysCmd::Create(a)) => cmd::keys::create(a),
        Cmd::Keys(KeysCmd::Show(a)) => cmd::keys::show(a),
        Cmd::Keys(KeysCmd::Rotate(a)) => cmd::keys::rotate(a).await,
        Cmd::Trust(TrustCmd::Add(a)) => cmd::trust::add(a),
        Cmd::Trust(TrustCmd::List(a)) => cmd::trust::list(a),
        Cmd::Trust(TrustCmd::Remove(a)) => cmd::trust::remove(a),
        Cmd::Audit(AuditCmd::Verify(a)) => cmd::audit_verify::run(a),
        Cmd::Doctor(a) => cmd::doctor::run(a).await,
        Cmd::K8s(K8sCmd::Manifests(a)) => cmd::k8s::manifests(a),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The daemon logs what it does; the one-shot commands only warnings.
    let level = if matches!(cli.cmd, Cmd::Watch(_)) {
        "info"
    } else {
        "warn"
    };
    pht_term::init_logging(level);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(dispatch(cli.cmd)) {
        // Said on stderr already: the answer on stdout is incomplete.
        Ok(Ended::Ok) if pht_term::out::failed() => ExitCode::from(1),
        Ok(Ended::Ok) => ExitCode::SUCCESS,
        Ok(Ended::Failed(decision, msg)) => {
            eprintln!("error: {}", output::escape(&msg));
            match decision {
                run::Decision::Rejected => eprintln!("nothing was run or pushed"),
                run::Decision::TrainFailed => eprintln!(
                    "nothing was pushed; the container and the decrypted train were removed"
                ),
                _ => {}
            }
            ExitCode::from(decision.exit_code())
        }
        Err(e) => {
            eprintln!(
                "error: {}",
                output::escape(&train_lib::text::chain(e.as_ref()))
            );
            ExitCode::from(1)
        }
    }
}
