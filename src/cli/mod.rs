//! Command-line interface: the raw flags of every subcommand (one file each), handed to the library
//! (`aegis_audit::audit`), whose results are printed (`aegis_audit::report`). The CLI imports nothing
//! else from the library (tests/architecture.rs); the exit codes are the library's and are documented in
//! `--help` and the README.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod audit;
mod calibrate;
mod cluster;
mod export_grad;
mod inspect;

/// Usage or input error: nothing was concluded and no report was written.
pub use aegis_audit::report::EXIT_ERROR;

pub(crate) const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  no backdoor found (subcommands: success)
  1  backdoor suspected in at least one class
  2  usage or input error: nothing concluded; with one model no report is written or replaced
  3  the method does not apply to this model (an explicit --method aegis or reach on a model that
     failed the robustness precondition; the default fused decision on a linear model of the image)
130, 143  interrupted (SIGINT, SIGTERM): temporary files removed, no report written or replaced
With several models: the most severe of their codes, 2 > 1 > 3 > 0. An error found before any model
is audited (a flag, an output path, the data path) writes nothing; a model that cannot be audited
gives exit 2 while every other model is audited and reported, the failed one appearing in the
reports as an error (a failed SARIF run, an \"error\" entry in the JSON), so a gate sees which.";

/// aegis-audit: scan an ONNX image classifier for backdoors (trojans) before deployment.
#[derive(Debug, Parser)]
#[command(
    name = "aegis-audit",
    version,
    override_usage = "aegis-audit [audit] MODEL --data DIR [OPTIONS]\n       aegis-audit <COMMAND> [ARGS]",
    about,
    after_help = EXIT_CODES_HELP,
)]
pub struct Cli {
    /// The subcommand; `audit` when the first argument is not a subcommand's name.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum Command {
    /// Audit a model for backdoors (the default when no subcommand is given).
    Audit(audit::AuditArgs),
    /// Show what aegis-audit sees in a model: image input, logits, feature tensor, ops.
    Inspect(inspect::InspectArgs),
    /// Write the gradient graph (inputs x, y; outputs logits, features, loss, grad) as ONNX.
    ExportGrad(export_grad::ExportGradArgs),
    /// Embed and cluster a feature matrix (NPY or CSV) as AEGIS does.
    Cluster(cluster::ClusterArgs),
    /// Build a fused-decision calibration file from the audit reports of known-clean models.
    Calibrate(calibrate::CalibrateArgs),
    /// Re-apply the fused decision to the detectors' indices stored in audit reports (no model runs).
    Decide(calibrate::DecideArgs),
}

/// The audit options `aegis-audit --help` shows, by clap id (the field names of `aegis_audit::audit::Options`
/// and [`audit::AuditArgs`], a grouped flag's name);
/// `aegis-audit audit --help` lists every option.
const MAIN_OPTIONS: &[&str] = &[
    "models",
    "data",
    "input_mean",
    "input_std",
    "sarif",
    "json",
    "evidence",
    "format",
    "calibration",
    "memory_limit",
    "time_budget",
    "device",
    "threads",
    "quiet",
    "verbose",
];

/// What `aegis-audit --help` (and `-h`, `help`, or no argument at all) prints: the audit's usage with its
/// most used options, each with the documentation of its one definition in [`audit::AuditArgs`], then
/// the subcommands and the exit codes.
pub fn main_help() -> String {
    use clap::{Args, CommandFactory};
    let top = Cli::command();
    let commands: String = top
        .get_subcommands()
        .map(|s| format!("  {:<12} {}\n", s.get_name(), s.get_about().map(|a| a.to_string()).unwrap_or_default()))
        .collect();
    let mut cmd = audit::AuditArgs::augment_args(clap::Command::new("aegis-audit"))
        .about(top.get_about().map(|a| a.to_string()).unwrap_or_default())
        .override_usage("aegis-audit MODEL... --data DIR [--sarif FILE] [--json FILE] [OPTIONS]\n       aegis-audit <COMMAND> [ARGS]")
        .mut_args(|a| if MAIN_OPTIONS.contains(&a.get_id().as_str()) { a } else { a.hide(true) })
        .disable_help_flag(true)
        .after_help(format!(
            "Every audit option (detector settings, presets, seeds): aegis-audit audit --help\n\nCommands:\n{commands}\n\
             {EXIT_CODES_HELP}"
        ));
    cmd.render_help().to_string()
}

/// Whether the command line asks for the main help: no argument, or only `--help`, `-h` or `help`.
pub fn wants_main_help(args: &[std::ffi::OsString]) -> bool {
    match args.len() {
        1 => true,
        2 => matches!(args[1].to_str(), Some("--help" | "-h" | "help")),
        _ => false,
    }
}

/// The command line with `audit` inserted when the first argument names no subcommand, so that
/// `aegis-audit model.onnx --data DIR` is `aegis-audit audit model.onnx --data DIR`.
pub fn with_default_command(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    const KNOWN: [&str; 11] = [
        "audit",
        "inspect",
        "export-grad",
        "cluster",
        "calibrate",
        "decide",
        "help",
        "-h",
        "--help",
        "-V",
        "--version",
    ];
    match args.get(1).and_then(|a| a.to_str()) {
        Some(first) if KNOWN.contains(&first) => {}
        Some(_) => args.insert(1, "audit".into()),
        None => {}
    }
    args
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Audit(args) => audit::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::ExportGrad(args) => export_grad::run(args),
        Command::Cluster(args) => cluster::run(args),
        Command::Calibrate(args) => calibrate::run_calibrate(args),
        Command::Decide(args) => calibrate::run_decide(args),
    }
}

#[cfg(test)]
mod tests {
    use super::{main_help, wants_main_help};

    #[test]
    fn the_main_help_shows_the_audit_and_its_most_used_options_only() {
        let help = main_help();
        assert!(help.contains("aegis-audit MODEL... --data DIR"), "{help}");
        for flag in [
            "--data",
            "--input-mean",
            "--input-std",
            "--sarif",
            "--json",
            "--evidence",
            "--calibration",
            "--memory-limit",
            "--threads",
        ] {
            assert!(help.contains(flag), "{flag} missing from\n{help}");
        }
        // Detector settings stay under `aegis-audit audit --help`.
        for flag in ["--nc-epochs", "--reach-steps", "--perplexity", "--seeds-per-class"] {
            assert!(!help.contains(flag), "{flag} in\n{help}");
        }
        assert!(help.contains("aegis-audit audit --help"), "{help}");
        for command in ["inspect", "export-grad", "calibrate", "decide", "cluster"] {
            assert!(help.contains(command), "{command} missing from\n{help}");
        }
        assert!(help.contains("Exit codes:"), "{help}");
        let os = |v: &[&str]| v.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        assert!(wants_main_help(&os(&["aegis-audit"])));
        assert!(wants_main_help(&os(&["aegis-audit", "--help"])));
        assert!(wants_main_help(&os(&["aegis-audit", "help"])));
        assert!(!wants_main_help(&os(&["aegis-audit", "audit", "--help"])));
        assert!(!wants_main_help(&os(&["aegis-audit", "m.onnx", "--help"])));
    }
}
