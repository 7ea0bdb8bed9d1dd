//! The `inspect` command's flags and its hand-off to the library.

use std::process::ExitCode;

use clap::Args;

/// Inspect MODEL.
#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// Input file.
    #[arg(value_name = "MODEL")]
    pub model: std::path::PathBuf,
}

/// Runs the command.
pub fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("'inspect' is not implemented yet (input {:?})", args)
}
