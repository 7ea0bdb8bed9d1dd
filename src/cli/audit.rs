//! The `audit` command (the default): the library's [`Options`] (every audit flag is declared there,
//! once) plus what only the command line has (the stdout format, quiet, verbose); the library runs the
//! audit, writes every report and gives the exit code.

use std::process::ExitCode;

use clap::{Args, ValueEnum};

use aegis_audit::audit::{self, Options};

/// Audit MODEL for backdoors (several models: one SARIF run and one JSON entry each).
#[derive(Debug, Clone, Args)]
#[command(after_help = audit_help())]
pub struct AuditArgs {
    /// The audit's options.
    #[command(flatten)]
    pub options: Options,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value_t = FormatArg::Table)]
    pub format: FormatArg,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print each phase's wall time (load, analysis, graph build, …, report) on stderr.
    #[arg(long, short)]
    pub verbose: bool,
}

/// `--format` choices for stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// A readable table.
    Table,
    /// The JSON report.
    Json,
    /// The SARIF log.
    Sarif,
}

/// The text after the options in `--help`: the upper bounds and the exit codes.
fn audit_help() -> String {
    format!("{}\n{}", audit::bounds_help(), super::EXIT_CODES_HELP)
}

impl AuditArgs {
    /// The library's options: the flags as parsed, with the progress bars and the command line.
    pub fn options(&self) -> Options {
        Options { progress: !self.quiet, command_line: std::env::args().collect(), ..self.options.clone() }
    }
}

/// Runs the audit: the library checks, audits and writes; stdout gets the chosen format.
pub fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let run = audit::run(&args.options())?;
    let code = run.exit_code();
    let timings = args.verbose.then(|| run.timings_text());
    let rendered = run.write()?;
    if let Some(text) = timings {
        eprint!("{text}");
    }
    match args.format {
        FormatArg::Table => print!("{}", rendered.table),
        FormatArg::Json => print!("{}", rendered.json),
        FormatArg::Sarif => println!("{}", rendered.sarif),
    }
    Ok(ExitCode::from(code))
}
