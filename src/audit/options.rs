//! The audit's options as a caller gives them: every flag of `aegis-audit audit` as an optional field,
//! filled one-to-one by the command line or by any other caller (a Python binding, a service). Nothing
//! here is checked or resolved: [`crate::audit::Preset::apply`] resolves the options against a preset
//! into an [`crate::audit::AuditPlan`], whose `check` says what is wrong.

use std::path::PathBuf;
use std::str::FromStr;

pub use super::detectors::Detector;
pub use crate::analysis::FeatureChoice;
pub use crate::cluster::Clusterer;
pub use crate::detect::aegis::DecisionRule;
pub use crate::embed::Reducer;
pub use crate::runtime::Device;

use crate::detect::reach::ReachParams;
use crate::detect::universal::UniversalParams;

/// Default of `runs`.
pub const DEFAULT_RUNS: usize = 1;
/// Default of `seed`.
pub const DEFAULT_SEED: u64 = 0;
/// Default of `batch_size`.
pub const DEFAULT_BATCH_SIZE: usize = 100;
/// Default of `min_cluster_size` (HDBSCAN).
pub const DEFAULT_MIN_CLUSTER_SIZE: usize = 25;

/// Which detector the audit runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MethodChoice {
    /// The fused, calibrated decision: every detector of the fused set runs on every model and their
    /// per-class anomaly indices are combined against a calibration (the robustness precondition is
    /// measured and reported, not a switch).
    #[default]
    Auto,
    /// AEGIS, after the precondition unless it is skipped.
    Aegis,
    /// Neural Cleanse (for standard, non-robust models); no precondition.
    NeuralCleanse,
    /// Targeted reachability (robust models), after the precondition unless it is skipped.
    Reach,
    /// Universal reach (any model); no precondition.
    Universal,
}

impl MethodChoice {
    /// The name used in the report's parameters (`auto`, `aegis`, `neuralcleanse`, `reach`,
    /// `universal`).
    pub fn name(self) -> &'static str {
        match self {
            MethodChoice::Auto => "auto",
            MethodChoice::Aegis => "aegis",
            MethodChoice::NeuralCleanse => "neuralcleanse",
            MethodChoice::Reach => "reach",
            MethodChoice::Universal => "universal",
        }
    }
}

/// The mean-shift bandwidth as asked for (`--bandwidth`): `estimate`, `estimate:Q`, `paper` (the
/// preset's fixed value), `relative:F` or a number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BandwidthChoice {
    /// scikit-learn's `estimate_bandwidth` at this quantile.
    Estimate {
        /// Neighbour quantile (`estimate` alone: 0.3).
        quantile: f64,
    },
    /// The preset's `paper_bandwidth`.
    Paper,
    /// `factor` × the embedding's RMS radius.
    Relative {
        /// The factor.
        factor: f64,
    },
    /// A fixed bandwidth.
    Fixed {
        /// The bandwidth.
        value: f64,
    },
}

impl FromStr for BandwidthChoice {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let number = |s: &str| -> Result<f64, String> {
            let v: f64 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
            if v.is_finite() && v > 0.0 {
                Ok(v)
            } else {
                Err(format!("'{s}' must be a positive number"))
            }
        };
        Ok(match text.split_once(':') {
            None if text == "estimate" => BandwidthChoice::Estimate { quantile: 0.3 },
            None if text == "paper" => BandwidthChoice::Paper,
            None => BandwidthChoice::Fixed { value: number(text)? },
            Some(("estimate", q)) => BandwidthChoice::Estimate { quantile: number(q)? },
            Some(("relative", f)) => BandwidthChoice::Relative { factor: number(f)? },
            Some(_) => return Err("expected estimate, estimate:Q, paper, relative:F or a number".into()),
        })
    }
}

/// Parses a list of L2 budgets (`--reach-eps-sweep`): comma-separated numbers, each finite and > 0,
/// strictly increasing (the rules of [`ReachParams::check`]).
pub fn parse_eps_sweep(text: &str) -> Result<Vec<f32>, String> {
    let eps = text
        .split(',')
        .map(|s| s.trim().parse::<f32>().map_err(|_| format!("'{}' is not a number", s.trim())))
        .collect::<Result<Vec<_>, _>>()?;
    ReachParams { eps_sweep: eps.clone(), ..ReachParams::default() }.check().map_err(|e| e.to_string())?;
    Ok(eps)
}

/// Parses the universal-reach budget ladder (`--universal-levels`): comma-separated numbers, each
/// finite and > 0, strictly increasing (the rules of [`UniversalParams::check`]).
pub fn parse_levels(text: &str) -> Result<Vec<f32>, String> {
    let levels = text
        .split(',')
        .map(|s| s.trim().parse::<f32>().map_err(|_| format!("'{}' is not a number", s.trim())))
        .collect::<Result<Vec<_>, _>>()?;
    UniversalParams { levels: levels.clone(), ..UniversalParams::default() }.check().map_err(|e| e.to_string())?;
    Ok(levels)
}

/// Parses a list of detector names (`--detectors aegis,universal`): each one of `aegis`,
/// `neural-cleanse`, `reach`, `universal`, once.
pub fn parse_detectors(text: &str) -> Result<Vec<Detector>, String> {
    let mut out = Vec::new();
    for name in text.split(',').map(str::trim) {
        let d = Detector::from_name(name).ok_or_else(|| {
            let known: Vec<&str> = Detector::ALL.iter().map(|d| d.name()).collect();
            format!("'{name}' is not a detector (one of {})", known.join(", "))
        })?;
        if out.contains(&d) {
            return Err(format!("'{name}' is listed twice"));
        }
        out.push(d);
    }
    Ok(out)
}

/// Every option of an audit; `None` (or `false`) means "the preset's value, or the default".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    /// The ONNX models to audit (each once, in order).
    pub models: Vec<PathBuf>,
    /// The training data: IDX folder, CIFAR-10 batches or an ImageFolder with `train/` and `test/`.
    pub data: PathBuf,
    /// The detector (default: auto, the fused decision).
    pub method: Option<MethodChoice>,
    /// The fused decision's detectors (default: those the calibration weights).
    pub detectors: Option<Vec<Detector>>,
    /// The fused decision's calibration file (default: the built-in `config/calibration.json`).
    pub calibration: Option<PathBuf>,
    /// Preset name; chosen from the model's input shape when absent.
    pub preset: Option<String>,
    /// A presets YAML file replacing the built-in one.
    pub config: Option<PathBuf>,
    /// Only these classes (all by default).
    pub classes: Option<Vec<usize>>,
    /// Seed images per class (S).
    pub seeds_per_class: Option<usize>,
    /// L2 radius of the translation.
    pub eps: Option<f32>,
    /// L2 step of the translation.
    pub step: Option<f32>,
    /// Translation iterations.
    pub steps: Option<usize>,
    /// Reduction before clustering (default: t-SNE).
    pub reducer: Option<Reducer>,
    /// PCA dimensions before t-SNE.
    pub pca_dims: Option<usize>,
    /// t-SNE perplexity.
    pub perplexity: Option<f64>,
    /// Clustering algorithm (default: mean shift).
    pub clusterer: Option<Clusterer>,
    /// Mean-shift bandwidth.
    pub bandwidth: Option<BandwidthChoice>,
    /// Clusters below this fraction of the embedded points are not counted.
    pub min_cluster_fraction: Option<f64>,
    /// HDBSCAN's minimum cluster size (default 25).
    pub min_cluster_size: Option<usize>,
    /// Cluster rule: more counted clusters than this flags a class.
    pub max_clusters: Option<usize>,
    /// How AEGIS flags a class.
    pub aegis_decision: Option<DecisionRule>,
    /// Shortcut rule: low-side anomaly index above which a class is flagged.
    pub shortcut_threshold: Option<f64>,
    /// Independent AEGIS runs (default 1).
    pub runs: Option<usize>,
    /// Seed of every random choice (default 0).
    pub seed: Option<u64>,
    /// Images per model evaluation (default 100).
    pub batch_size: Option<usize>,
    /// Limit on the ONNX Runtime sessions' working memory, bytes (default 4 GiB): batches larger
    /// than it allows are evaluated in pieces (see [`crate::audit::MemoryBudget`]).
    pub memory_limit: Option<u64>,
    /// Skip the robustness precondition.
    pub skip_precondition: bool,
    /// How much effort each class gets (default `auto`: adaptive above 16 classes).
    pub effort: Option<super::EffortMode>,
    /// Seconds each model's audit may take; the effort across classes is planned to fit.
    pub time_budget: Option<f64>,
    /// L2 budget of the robustness check.
    pub precondition_eps: Option<f32>,
    /// Held-out images attacked by the robustness check.
    pub precondition_images: Option<usize>,
    /// PGD steps of the robustness check.
    pub precondition_steps: Option<usize>,
    /// L2 step of the robustness check.
    pub precondition_step: Option<f32>,
    /// Minimum adversarial accuracy for a robust model.
    pub min_adv_accuracy: Option<f64>,
    /// Neural Cleanse: images.
    pub nc_images: Option<usize>,
    /// Neural Cleanse: mini-batch size.
    pub nc_batch: Option<usize>,
    /// Neural Cleanse: maximum epochs per class.
    pub nc_epochs: Option<usize>,
    /// Neural Cleanse: initial cost.
    pub nc_init_cost: Option<f64>,
    /// Neural Cleanse: target attack success.
    pub nc_target_success: Option<f64>,
    /// Neural Cleanse: anomaly-index threshold.
    pub nc_anomaly_threshold: Option<f64>,
    /// Neural Cleanse: start with cost 0.
    pub nc_reset_cost_to_zero: Option<bool>,
    /// Neural Cleanse: patience of the cost schedule.
    pub nc_patience: Option<usize>,
    /// Neural Cleanse: cost factor up.
    pub nc_cost_up: Option<f64>,
    /// Neural Cleanse: cost factor down.
    pub nc_cost_down: Option<f64>,
    /// Neural Cleanse: early-stop patience (0: never).
    pub nc_early_stop_patience: Option<usize>,
    /// Neural Cleanse: Adam learning rate.
    pub nc_lr: Option<f64>,
    /// Neural Cleanse: Adam β₁.
    pub nc_beta1: Option<f64>,
    /// Neural Cleanse: Adam β₂.
    pub nc_beta2: Option<f64>,
    /// Neural Cleanse: Adam ε.
    pub nc_adam_eps: Option<f64>,
    /// Reach: source images per class.
    pub reach_images: Option<usize>,
    /// Reach: source images per class in the budget sweep.
    pub reach_sweep_images: Option<usize>,
    /// Reach: PGD steps.
    pub reach_steps: Option<usize>,
    /// Reach: step size as a multiple of eps / steps.
    pub reach_step_factor: Option<f32>,
    /// Reach: candidate budgets.
    pub reach_eps_sweep: Option<Vec<f32>>,
    /// Reach: the median class rate that fixes the budget.
    pub reach_median_level: Option<f64>,
    /// Reach: anomaly-index threshold.
    pub reach_anomaly_threshold: Option<f64>,
    /// Reach: minimum ratio to the median.
    pub reach_min_ratio: Option<f64>,
    /// Reach: minimum gap to the median.
    pub reach_min_gap: Option<f64>,
    /// Reach: evidence images per class.
    pub reach_evidence: Option<usize>,
    /// Universal: shared source images.
    pub universal_images: Option<usize>,
    /// Universal: the budget ladder.
    pub universal_levels: Option<Vec<f32>>,
    /// Universal: gradient steps per budget.
    pub universal_steps: Option<usize>,
    /// Universal: step size as a multiple of budget / steps.
    pub universal_step_factor: Option<f32>,
    /// Universal: the success rate that fixes a class's budget.
    pub universal_success_level: Option<f64>,
    /// Universal: anomaly-index threshold (low side, log budget).
    pub universal_anomaly_threshold: Option<f64>,
    /// Universal: the least spread of the log budgets that counts.
    pub universal_min_spread: Option<f64>,
    /// Write the SARIF 2.1.0 log here.
    pub sarif: Option<PathBuf>,
    /// Write the JSON report here.
    pub json: Option<PathBuf>,
    /// Write evidence into this folder.
    pub evidence: Option<PathBuf>,
    /// Show progress bars on stderr.
    pub progress: bool,
    /// Which tensor is the feature representation (default: the last conv block's output).
    pub feature: Option<FeatureChoice>,
    /// The ONNX Runtime shared library (otherwise found as `runtime::find_library` says).
    pub ort_lib: Option<PathBuf>,
    /// Execution provider (default: CPU).
    pub device: Option<Device>,
    /// Intra-op threads (default 0: ONNX Runtime's choice).
    pub threads: Option<usize>,
    /// The command line (or the caller's description of the call), for the report.
    pub command_line: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::{parse_detectors, parse_eps_sweep, parse_levels, BandwidthChoice, Detector};

    #[test]
    fn levels_and_detector_lists_parse_and_check() {
        assert_eq!(parse_levels("0.5, 1,2").unwrap(), vec![0.5, 1.0, 2.0]);
        assert!(parse_levels("1,0.5").unwrap_err().contains("strictly increasing"));
        assert_eq!(parse_levels("x").unwrap_err(), "'x' is not a number");
        assert!(parse_levels("0").unwrap_err().contains("budget 0 is not finite and > 0"));
        assert_eq!(parse_detectors("universal,aegis").unwrap(), vec![Detector::Universal, Detector::Aegis]);
        assert_eq!(parse_detectors(" neural-cleanse ").unwrap(), vec![Detector::NeuralCleanse]);
        assert!(parse_detectors("aegis,shortcut").unwrap_err().contains("'shortcut' is not a detector"));
        assert_eq!(parse_detectors("reach,reach").unwrap_err(), "'reach' is listed twice");
    }

    #[test]
    fn eps_sweep_list_parses_and_checks() {
        assert_eq!(parse_eps_sweep("0.25,0.5,1").unwrap(), vec![0.25, 0.5, 1.0]);
        assert_eq!(parse_eps_sweep(" 0.5 , 2 ").unwrap(), vec![0.5, 2.0]);
        assert_eq!(parse_eps_sweep("3").unwrap(), vec![3.0]);
        let err = parse_eps_sweep("1,0.5").unwrap_err();
        assert!(err.contains("strictly increasing"), "{err}");
        assert!(parse_eps_sweep("0.5,0.5").unwrap_err().contains("strictly increasing"));
        assert_eq!(parse_eps_sweep("0.5,abc").unwrap_err(), "'abc' is not a number");
        assert_eq!(parse_eps_sweep("0.5,,1").unwrap_err(), "'' is not a number");
        assert_eq!(parse_eps_sweep("").unwrap_err(), "'' is not a number");
        assert!(parse_eps_sweep("0,1").unwrap_err().contains("budget 0 is not finite and > 0"));
        assert!(parse_eps_sweep("-1").unwrap_err().contains("not finite and > 0"));
        assert!(parse_eps_sweep("0.5,inf").unwrap_err().contains("not finite"));
        assert!(parse_eps_sweep("NaN").unwrap_err().contains("not finite"));
    }

    #[test]
    fn bandwidth_rules_parse() {
        assert_eq!("estimate".parse(), Ok(BandwidthChoice::Estimate { quantile: 0.3 }));
        assert_eq!("estimate:0.2".parse(), Ok(BandwidthChoice::Estimate { quantile: 0.2 }));
        assert_eq!("paper".parse(), Ok(BandwidthChoice::Paper));
        assert_eq!("relative:0.5".parse(), Ok(BandwidthChoice::Relative { factor: 0.5 }));
        assert_eq!("2.5".parse(), Ok(BandwidthChoice::Fixed { value: 2.5 }));
        assert_eq!("0".parse::<BandwidthChoice>().unwrap_err(), "'0' must be a positive number");
        assert_eq!("x".parse::<BandwidthChoice>().unwrap_err(), "'x' is not a number");
        assert!("mean:3".parse::<BandwidthChoice>().unwrap_err().starts_with("expected estimate"));
    }
}
