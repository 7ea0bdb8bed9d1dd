//! The `export_grad` command's flags and its hand-off to the library.

use std::process::ExitCode;

use clap::Args;

/// Export the gradient graph of MODEL.
#[derive(Debug, Clone, Args)]
pub struct ExportGradArgs {
    /// Input file.
    #[arg(value_name = "MODEL")]
    pub model: std::path::PathBuf,
}

/// Runs the command.
pub fn run(args: ExportGradArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("'export_grad' is not implemented yet (input {:?})", args)
}
