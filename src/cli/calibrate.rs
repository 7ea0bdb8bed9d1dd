//! The `calibrate` and `decide` commands: the fused decision over audit reports already written.
//! `calibrate` turns the reports of known-clean models into a calibration file; `decide` re-applies the
//! fused decision to the indices stored in reports, one line per model, and exits with the most severe
//! code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use aegis_audit::audit::subcommands::{self as tools, CalibrateOptions, DecideOptions};
use aegis_audit::audit::Detector;
use aegis_audit::report::EXIT_CLEAN;

/// Parses `--detectors aegis=1,universal=0.5` (a name alone has weight 1).
fn parse_weights(text: &str) -> Result<Vec<(String, f64)>, String> {
    let mut out: Vec<(String, f64)> = Vec::new();
    for item in text.split(',').map(str::trim) {
        let (name, weight) = match item.split_once('=') {
            Some((n, w)) => {
                let w: f64 = w.trim().parse().map_err(|_| format!("'{}' is not a number", w.trim()))?;
                (n.trim(), w)
            }
            None => (item, 1.0),
        };
        if Detector::from_name(name).is_none() {
            let known: Vec<&str> = Detector::ALL.iter().map(|d| d.name()).collect();
            return Err(format!("'{name}' is not a detector (one of {})", known.join(", ")));
        }
        if !(weight.is_finite() && weight >= 0.0) {
            return Err(format!("{name}: weight {weight} must be finite and >= 0"));
        }
        if out.iter().any(|(n, _)| n == name) {
            return Err(format!("'{name}' is listed twice"));
        }
        out.push((name.to_string(), weight));
    }
    Ok(out)
}

/// A number in (0, 1).
fn unit_interval(text: &str) -> Result<f64, String> {
    let v: f64 = text.parse().map_err(|_| format!("'{text}' is not a number"))?;
    if v > 0.0 && v < 1.0 {
        Ok(v)
    } else {
        Err(format!("{v} must be in (0, 1)"))
    }
}

/// Build a calibration file for the fused decision from the JSON audit reports of known-clean models:
/// every class of every model becomes a null class with each detector's anomaly index.
#[derive(Debug, Clone, Args)]
pub struct CalibrateArgs {
    /// JSON reports (`--json` of an audit; single-model reports or several-model documents) of models
    /// known to be clean.
    #[arg(value_name = "REPORT.json", required = true, num_args = 1..)]
    pub reports: Vec<PathBuf>,
    /// The calibration file to write.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Detector weights, e.g. `aegis=1,universal=1,neural-cleanse=0.5` (a name alone: 1; 0 keeps a
    /// detector out of the score). Default: 1 for every detector present in every report.
    #[arg(long, value_name = "LIST", value_parser = parse_weights)]
    pub detectors: Option<::std::vec::Vec<(String, f64)>>,
    /// Target model-level false-positive rate α: a clean model is flagged with at most this probability.
    #[arg(long, value_name = "ALPHA", default_value = "0.05", value_parser = unit_interval)]
    pub target_fpr: f64,
    /// Fraction of the null samples the exponential tail of each null distribution is fitted on.
    #[arg(long, value_name = "F", default_value = "0.1", value_parser = unit_interval)]
    pub tail_fraction: f64,
    /// Judge each audited model against only the N calibration models nearest to it in adversarial
    /// accuracy (the robustness check), so that each detector is trusted as far as it is on clean models
    /// of similar robustness (default: against every calibration model).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(2..=100_000))]
    pub robustness_neighbours: Option<u32>,
    /// The calibration's description (default: the models, the tool version and this command line).
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// Accept reports whose verdict was "backdoor suspected" as clean models (refused by default: a
    /// calibration on a backdoored model raises every threshold).
    #[arg(long)]
    pub allow_suspected: bool,
}

/// Re-apply the fused decision to the detectors' indices stored in JSON audit reports, without running
/// any model: one line per model; the exit code is the most severe (2 > 1 > 3 > 0).
#[derive(Debug, Clone, Args)]
pub struct DecideArgs {
    /// JSON reports (single-model reports or several-model documents).
    #[arg(value_name = "REPORT.json", required = true, num_args = 1..)]
    pub reports: Vec<PathBuf>,
    /// The calibration file (default: the built-in config/calibration.json).
    #[arg(long, value_name = "FILE")]
    pub calibration: Option<PathBuf>,
    /// Write the decisions (per model and class: fused scores, p-values, contributions) as JSON here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Runs `calibrate`.
pub fn run_calibrate(args: CalibrateArgs) -> anyhow::Result<ExitCode> {
    let options = CalibrateOptions {
        reports: args.reports,
        output: args.output,
        weights: args.detectors,
        target_fpr: args.target_fpr,
        tail_fraction: args.tail_fraction,
        robustness_neighbours: args.robustness_neighbours.map(|n| n as usize),
        description: args.description,
        command_line: std::env::args().collect(),
        allow_suspected: args.allow_suspected,
    };
    let out = tools::calibrate(&options)?;
    for w in &out.warnings {
        eprintln!("aegis-audit: warning: {w}");
    }
    let weights: Vec<String> = out.weights.iter().map(|(n, w)| format!("{n}={w}")).collect();
    let shortlists = match out.shortlist_classes {
        0 => String::new(),
        n => format!(" and {n} classes of adaptive audits' shortlists"),
    };
    println!(
        "wrote {}: {} null classes{shortlists} from {} models; detectors {}",
        out.output.display(),
        out.null_classes,
        out.models,
        weights.join(",")
    );
    Ok(ExitCode::from(EXIT_CLEAN))
}

/// Runs `decide`.
pub fn run_decide(args: DecideArgs) -> anyhow::Result<ExitCode> {
    let options = DecideOptions { reports: args.reports, calibration: args.calibration, json: args.json };
    let run = tools::decide(&options)?;
    for m in &run.models {
        for w in &m.warnings {
            eprintln!("aegis-audit: warning: {}: {w}", m.model);
        }
    }
    print!("{}", run.lines());
    Ok(ExitCode::from(run.exit_code))
}

#[cfg(test)]
mod tests {
    use super::{parse_weights, unit_interval};

    #[test]
    fn weights_parse_and_check() {
        assert_eq!(
            parse_weights("aegis=1, universal=0.5,reach").unwrap(),
            vec![("aegis".into(), 1.0), ("universal".into(), 0.5), ("reach".into(), 1.0)]
        );
        assert!(parse_weights("shortcut=1").unwrap_err().contains("'shortcut' is not a detector"));
        assert!(parse_weights("aegis=x").unwrap_err().contains("'x' is not a number"));
        assert!(parse_weights("aegis=-1").unwrap_err().contains("must be finite and >= 0"));
        assert!(parse_weights("aegis,aegis=2").unwrap_err().contains("listed twice"));
        assert_eq!(unit_interval("0.05").unwrap(), 0.05);
        assert!(unit_interval("1").is_err() && unit_interval("abc").is_err());
    }
}
