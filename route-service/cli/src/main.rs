//! The `route-service` command: a thin layer over the `route_service` library.

mod cli;
mod cmd;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    pht_term::init_logging("info,sqlx=warn,tower_http=info");
    match cmd::run(cli.cmd) {
        // Said on stderr already: the answer on stdout is incomplete.
        Ok(()) if pht_term::out::failed() => std::process::ExitCode::from(1),
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("route-service: {}", train_lib::text::chain(e.as_ref()));
            std::process::ExitCode::from(1)
        }
    }
}
