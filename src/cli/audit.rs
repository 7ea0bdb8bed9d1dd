//! The `audit` command's flags and its hand-off to the library.

use std::process::ExitCode;

use clap::Args;

/// Audit MODEL for backdoors.
#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// Input file.
    #[arg(value_name = "MODEL")]
    pub model: std::path::PathBuf,
}

/// Runs the command.
pub fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("'audit' is not implemented yet (input {:?})", args)
}
