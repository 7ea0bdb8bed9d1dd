//! Command-line interface: the raw, validated flags of every subcommand (one file each) and the
//! dispatch to the library. Exit codes are defined here and documented in `--help` and the README.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod audit;
mod cluster;
mod common;
mod export_grad;
mod inspect;

/// No backdoor found (or a subcommand succeeded).
pub const EXIT_CLEAN: u8 = 0;
/// A backdoor is suspected in at least one class.
pub const EXIT_SUSPECTED: u8 = 1;
/// Usage or input error: nothing was concluded and no report was written.
pub const EXIT_ERROR: u8 = 2;
/// The method does not apply to this model (the robustness precondition failed).
pub const EXIT_NOT_APPLICABLE: u8 = 3;

const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  no backdoor found (subcommands: success)
  1  backdoor suspected in at least one class
  2  usage or input error (no report is written)
  3  the method does not apply to this model (robustness precondition failed)";

/// aegis-audit: scan an ONNX image classifier for backdoors (trojans) before deployment.
#[derive(Debug, Parser)]
#[command(
    name = "aegis-audit",
    version,
    about,
    after_help = EXIT_CODES_HELP,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    /// A subcommand; without one, aegis-audit audits MODEL.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The audit's arguments (the default command). `Option` so that a subcommand parses
    /// without them (a plain flatten makes clap demand MODEL even after `inspect`).
    #[command(flatten)]
    pub audit: Option<audit::AuditArgs>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Audit a model for backdoors (the default when no subcommand is given).
    Audit(audit::AuditArgs),
    /// Show what aegis-audit sees in a model: image input, logits, feature tensor, ops.
    Inspect(inspect::InspectArgs),
    /// Write the gradient graph (inputs x, y; outputs logits, features, loss, grad) as ONNX.
    ExportGrad(export_grad::ExportGradArgs),
    /// Embed and cluster a feature matrix (NPY or CSV) as AEGIS does.
    Cluster(cluster::ClusterArgs),
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        None => match cli.audit {
            Some(args) => audit::run(args),
            None => anyhow::bail!("no MODEL given (see --help)"),
        },
        Some(Command::Audit(args)) => audit::run(args),
        Some(Command::Inspect(args)) => inspect::run(args),
        Some(Command::ExportGrad(args)) => export_grad::run(args),
        Some(Command::Cluster(args)) => cluster::run(args),
    }
}
