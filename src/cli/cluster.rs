//! The `cluster` command's flags and its hand-off to the library.

use std::process::ExitCode;

use clap::Args;

/// Cluster a feature matrix.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// Input file.
    #[arg(value_name = "FEATURES")]
    pub features: std::path::PathBuf,
}

/// Runs the command.
pub fn run(args: ClusterArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("'cluster' is not implemented yet (input {:?})", args)
}
