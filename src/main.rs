//! The `aegis-audit` binary: parses arguments and hands them to the library. Errors (a bad flag too)
//! print as one line with their whole context chain and map to the documented exit codes.

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;

mod cli;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse_from(cli::with_default_command(std::env::args_os().collect())) {
        Ok(cli) => cli,
        // --help, --version, and the help printed when no argument is given.
        Err(err) if !err.use_stderr() || err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            err.exit()
        }
        Err(err) => {
            eprintln!("aegis-audit: {} (see --help)", one_line(&err.render().to_string()));
            return ExitCode::from(cli::EXIT_ERROR);
        }
    };
    match cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("aegis-audit: error: {err:#}");
            ExitCode::from(cli::EXIT_ERROR)
        }
    }
}

/// A clap error as one line: its text up to the first blank line (the usage and the tips follow it),
/// joined.
fn one_line(text: &str) -> String {
    text.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect::<Vec<_>>().join(" ")
}
