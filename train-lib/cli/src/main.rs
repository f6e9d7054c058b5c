//! `train`: create, verify, pre-run, post-run and read Personal Health Trains.

mod cli;
mod cmd;
mod support;
mod tls;

use anyhow::Result;
use clap::Parser;
use cli::{Cli, Cmd, ImageCmd};
use cmd::step::Step;
use std::process::ExitCode;
use train_lib::ProtocolError;

fn dispatch(cli: &Cli) -> Result<()> {
    match &cli.cmd {
        Cmd::Keygen(a) => cmd::keygen::run(a),
        Cmd::Create(a) => cmd::create::run(a, cli),
        Cmd::PreRun(a) => cmd::step::run(Step::Pre, a, cli),
        Cmd::PostRun(a) => cmd::step::run(Step::Post, a, cli),
        Cmd::Image(ImageCmd::Build(a)) => cmd::image_build::run(a, cli),
        Cmd::Image(ImageCmd::Copy(a)) => cmd::image_copy::run(a),
        Cmd::Verify(a) => cmd::verify::run(a),
        Cmd::Results(a) => cmd::results::run(a, cli),
        Cmd::Submit(a) => cmd::submit::run(a),
        Cmd::Status(a) => cmd::status::run(a),
    }
}

/// SIGINT and SIGTERM end the process at once, as by default, unless a pre-run is
/// rewriting files in place: then it is asked to put every file back first, and exits 130.
fn stop_on_signals() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    std::thread::spawn(move || {
        for sig in signals.forever() {
            if train_lib::cancel::request() {
                std::process::exit(128 + sig);
            }
            eprintln!("stopping: putting the decrypted files back first …");
        }
    });
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    pht_term::init_logging(level);
    stop_on_signals();
    match tls::load_ca_file(cli.ca_file.as_deref()).and_then(|()| dispatch(&cli)) {
        // Said on stderr already: the answer on stdout is incomplete.
        Ok(()) if pht_term::out::failed() => ExitCode::from(1),
        Ok(()) => ExitCode::SUCCESS,
        Err(e)
            if matches!(
                e.downcast_ref::<ProtocolError>(),
                Some(ProtocolError::Cancelled)
            ) =>
        {
            eprintln!("stopped: {}", train_lib::text::chain(e.as_ref()));
            ExitCode::from(130)
        }
        Err(e) if e.downcast_ref::<cmd::status::TrainEnded>().is_some() => {
            eprintln!(
                "{}",
                train_lib::text::escape(&train_lib::text::chain(e.as_ref()))
            );
            ExitCode::from(5)
        }
        Err(e) => {
            let rejected = e
                .downcast_ref::<ProtocolError>()
                .and_then(ProtocolError::rejection)
                .is_some()
                || e.downcast_ref::<train_image::ImageError>()
                    .is_some_and(train_image::ImageError::is_rejection)
                || e.downcast_ref::<train_image::BuildError>()
                    .is_some_and(train_image::BuildError::is_rejection);
            // Messages can carry names from a hostile image or configuration.
            eprintln!(
                "error: {}",
                train_lib::text::escape(&train_lib::text::chain(e.as_ref()))
            );
            if rejected {
                eprintln!("the train directory was left unchanged");
                ExitCode::from(3)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
