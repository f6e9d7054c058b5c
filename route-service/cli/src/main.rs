//! The `route-service` command: a thin layer over the `route_service` library.

mod cli;
mod cmd;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    pht_term::init_logging("info,sqlx=warn,tower_http=info");
    match cmd::run(cli.cmd) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("route-service: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
