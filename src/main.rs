//! The `aegis-audit` binary: parses arguments and hands them to the library. Errors print with their
//! whole context chain and map to the documented exit codes.

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    let cli = cli::Cli::parse_from(cli::with_default_command(std::env::args_os().collect()));
    match cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("aegis-audit: error: {err:#}");
            ExitCode::from(cli::EXIT_ERROR)
        }
    }
}
