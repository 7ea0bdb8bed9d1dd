//! The audit's options as a caller gives them: every flag of `aegis-audit audit`, declared once here and
//! in [`super::flags`] (the command line flattens [`Options`] as it is; any other caller, a Python
//! binding or a service, fills the same struct). Nothing
//! here is checked or resolved: [`crate::audit::Preset::apply`] resolves the options against a preset
//! into an [`crate::audit::AuditPlan`], whose `check` says what is wrong.

use std::path::PathBuf;
use std::str::FromStr;

pub use super::detectors::Detector;
pub use crate::analysis::FeatureChoice;
pub use crate::cluster::Clusterer;
use crate::detect::aegis::BandwidthRule;
pub use crate::detect::aegis::DecisionRule;
pub use crate::embed::Reducer;
pub use crate::runtime::Device;

use super::flags::{
    ClusteringFlags, DecisionFlags, EmbeddingFlags, GeneralFlags, NeuralCleanseFlags, PreconditionFlags, ReachFlags,
    RuntimeFlags, TranslationFlags, UniversalFlags,
};
use crate::detect::reach::ReachParams;
use crate::detect::universal::UniversalParams;

/// Which detector the audit runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum MethodChoice {
    /// The fused, calibrated decision over every detector (the robustness check is reported, not a
    /// switch).
    #[default]
    Auto,
    /// AEGIS (after the robustness precondition unless --skip-precondition).
    Aegis,
    /// Neural Cleanse (for standard models; no precondition).
    NeuralCleanse,
    /// Targeted reachability (robust models; after the robustness precondition).
    Reach,
    /// Universal reach (any model; no precondition).
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

impl BandwidthChoice {
    /// The bandwidth rule this choice asks for; `paper` is the preset's fixed `paper_bandwidth`.
    pub fn rule(self, paper_bandwidth: f64) -> BandwidthRule {
        match self {
            BandwidthChoice::Estimate { quantile } => BandwidthRule::Estimate { quantile },
            BandwidthChoice::Paper => BandwidthRule::Fixed { value: paper_bandwidth },
            BandwidthChoice::Relative { factor } => BandwidthRule::Relative { factor },
            BandwidthChoice::Fixed { value } => BandwidthRule::Fixed { value },
        }
    }
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
    parse_budgets(text, |eps| ReachParams { eps_sweep: eps, ..ReachParams::default() }.check())
}

/// Parses the universal-reach budget ladder (`--universal-levels`): comma-separated numbers, each
/// finite and > 0, strictly increasing (the rules of [`UniversalParams::check`]).
pub fn parse_levels(text: &str) -> Result<Vec<f32>, String> {
    parse_budgets(text, |levels| UniversalParams { levels, ..UniversalParams::default() }.check())
}

/// Parses a comma-separated list of numbers (`--input-mean`, `--input-std`); their ranges are checked
/// with the plan ([`crate::grad::InputNormalisation::check`]).
pub fn parse_values(text: &str) -> Result<Vec<f32>, String> {
    parse_budgets(text, |_| Ok::<(), String>(()))
}

/// Comma-separated numbers, then the detector's own rules on them (`check`).
fn parse_budgets<E: std::fmt::Display>(
    text: &str,
    check: impl Fn(Vec<f32>) -> Result<(), E>,
) -> Result<Vec<f32>, String> {
    let budgets = text
        .split(',')
        .map(|s| s.trim().parse::<f32>().map_err(|_| format!("'{}' is not a number", s.trim())))
        .collect::<Result<Vec<_>, _>>()?;
    check(budgets.clone()).map_err(|e| e.to_string())?;
    Ok(budgets)
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

/// Parses a class list (`--classes 0,3,7`): comma-separated indices (duplicates are refused later, by
/// the plan's check, with the class named).
pub fn parse_classes(text: &str) -> Result<Vec<usize>, String> {
    text.split(',')
        .map(|s| s.trim().parse::<usize>().map_err(|_| format!("'{}' is not a class index", s.trim())))
        .collect()
}

/// Which layer gives the features (`--feature-layer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FeatureLayer {
    /// Output of the last convolutional block, before pooling/Flatten (a network without convolutions:
    /// its last hidden layer; a linear model of the image: its classifier layer's input).
    #[default]
    LastConv,
    /// Input of the final Gemm/MatMul.
    Penultimate,
}

/// Which tensor is the feature representation.
#[derive(Debug, Clone, Default, PartialEq, clap::Args)]
pub struct FeatureFlags {
    /// Which layer gives the features: the last convolutional block's output before the pooling or
    /// Flatten that feeds the classifier head (as the AEGIS authors took it), or the input of the
    /// final Gemm/MatMul.
    #[arg(long, value_enum, default_value_t = FeatureLayer::LastConv)]
    pub feature_layer: FeatureLayer,
    /// Name of the tensor to use as features; overrides --feature-layer.
    #[arg(long, value_name = "NAME")]
    pub feature_tensor: Option<String>,
}

impl FeatureFlags {
    /// The feature tensor these flags choose.
    pub fn choice(&self) -> FeatureChoice {
        match (&self.feature_tensor, self.feature_layer) {
            (Some(name), _) => FeatureChoice::Named(name.clone()),
            (None, FeatureLayer::LastConv) => FeatureChoice::LastConv,
            (None, FeatureLayer::Penultimate) => FeatureChoice::Penultimate,
        }
    }
}

/// Every option of an audit, as the command line gives it (`aegis-audit audit --help` is generated from
/// these declarations); `None` (or `false`) means "the preset's value, or the default". The flags that
/// set a detector's or a section's parameters are declared in `audit/flags.rs` (re-exported here), one
/// group per section.
#[derive(Debug, Clone, Default, PartialEq, clap::Args)]
pub struct Options {
    /// The ONNX models to audit, each once. With several, the data is read once, the SARIF log has one
    /// run per model, the JSON report is a document with one entry per model, evidence goes into one
    /// sub-folder per model, and the exit code is the most severe (2 > 1 > 3 > 0); a model that fails
    /// gets a failed SARIF run and an error entry while the others are still reported.
    #[arg(value_name = "MODEL", required = true, num_args = 1..)]
    pub models: Vec<PathBuf>,
    /// Training data (IDX folder, CIFAR-10 binary batches, or an ImageFolder with train/ and test/):
    /// the train split gives seed and clean images, the test split the robustness check.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// How an ImageFolder image whose size differs from the model's input is read: `none` (default:
    /// refused, naming the file), `stretch` (scaled to the model's size) or `crop` (scaled to cover it,
    /// aspect ratio kept, and its centre cut out, as torchvision's Resize and CenterCrop); bilinear,
    /// antialiased. IDX and CIFAR-10 images must match the model
    #[arg(long, value_enum, value_name = "MODE", default_value_t)]
    pub resize: crate::data::Resize,
    /// Detection method (default auto: the fused, calibrated decision over every detector; the
    /// robustness check is measured and reported, not a switch).
    #[arg(long, value_enum)]
    pub method: Option<MethodChoice>,
    /// The fused decision's detectors, comma-separated (aegis, neural-cleanse, reach, universal;
    /// default: every detector the calibration weights).
    #[arg(long, value_name = "LIST", value_parser = parse_detectors)]
    pub detectors: Option<::std::vec::Vec<Detector>>,
    /// The fused decision's calibration file (JSON, as `aegis-audit calibrate` writes it; default: the
    /// built-in config/calibration.json). Read and checked before any model is loaded.
    #[arg(long, value_name = "FILE")]
    pub calibration: Option<PathBuf>,
    /// Preset name (mnist, fashion-mnist, cifar10, imagenet); chosen from the input shape when absent
    /// (derived from the nearest preset for a shape none matches).
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,
    /// A presets YAML file replacing the built-in config/presets.yaml.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The settings every detector shares.
    #[command(flatten)]
    pub general: GeneralFlags,
    /// AEGIS's translation.
    #[command(flatten)]
    pub translation: TranslationFlags,
    /// AEGIS's embedding.
    #[command(flatten)]
    pub embedding: EmbeddingFlags,
    /// AEGIS's clustering.
    #[command(flatten)]
    pub clustering: ClusteringFlags,
    /// AEGIS's decision rule.
    #[command(flatten)]
    pub decision: DecisionFlags,
    /// Limit on ONNX Runtime's working memory (default 4GiB; e.g. 2GiB, 1500MB): from the model's
    /// activations per image, each evaluation takes at most as many images as fit, shared between
    /// the gradient session and the PGD step workers; larger batches run in pieces (same results).
    /// An error when one image does not fit. The report gives the estimate and the peak resident
    /// memory
    #[arg(long, value_name = "SIZE", value_parser = super::memory::parse_size)]
    pub memory_limit: Option<u64>,
    /// Skip the robustness precondition (AEGIS is only valid for robust models).
    #[arg(long)]
    pub skip_precondition: bool,
    /// Effort across classes: `auto` (default) gives every detector's full effort to every class up to
    /// 16 classes; above, a cheap universal-reach screen looks at every class and the full effort goes
    /// to the 6 to 12 classes it ranks most suspicious and 16 seeded reference classes (the report
    /// lists them; docs/scaling.md has the cost curve and what it changes). `full`: every class, always
    #[arg(long, value_enum, value_name = "EFFORT")]
    pub effort: Option<super::EffortMode>,
    /// Seconds each model's audit may take: from a measured evaluation speed the audit plans how many
    /// classes get every detector's full effort (a screen ranks them; the rest are dismissed) so as to
    /// finish within it; the report says what was dismissed. Fused decision only; not with --effort full
    #[arg(long, value_name = "SECONDS")]
    pub time_budget: Option<f64>,
    /// The robustness check.
    #[command(flatten)]
    pub precondition: PreconditionFlags,
    /// Neural Cleanse.
    #[command(flatten)]
    pub neural_cleanse: NeuralCleanseFlags,
    /// Targeted reachability.
    #[command(flatten)]
    pub reach: ReachFlags,
    /// Universal reach.
    #[command(flatten)]
    pub universal: UniversalFlags,
    /// Write the SARIF 2.1.0 report here (checked before the audit, written with the others at the end).
    #[arg(long, value_name = "FILE")]
    pub sarif: Option<PathBuf>,
    /// Write the JSON report here (checked before the audit, written with the others at the end).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write evidence (PNG plots, image grids, index.html) into this folder (one sub-folder per model
    /// when several are audited); evidence an earlier run wrote there and this one does not is removed.
    #[arg(long, value_name = "DIR")]
    pub evidence: Option<PathBuf>,
    /// Show progress bars on stderr (the command line's `--quiet` turns them off).
    #[arg(skip)]
    pub progress: bool,
    /// The feature layer.
    #[command(flatten)]
    pub feature: FeatureFlags,
    /// Per-channel mean of the model's input normalisation, comma-separated, in pixel units of [0, 1]
    /// (e.g. 0.485,0.456,0.406 for torchvision's ImageNet weights; one value serves every channel),
    /// for a model trained on `(x − mean) / std` with the normalisation outside the model: the audit
    /// puts it in front of the model and still attacks pixels in [0, 1]. Needs --input-std
    #[arg(long, value_name = "LIST", value_parser = parse_values, requires = "input_std")]
    pub input_mean: Option<::std::vec::Vec<f32>>,
    /// Per-channel standard deviation of the model's input normalisation, comma-separated (e.g.
    /// 0.229,0.224,0.225; see --input-mean). Needs --input-mean
    #[arg(long, value_name = "LIST", value_parser = parse_values, requires = "input_mean")]
    pub input_std: Option<::std::vec::Vec<f32>>,
    /// Where ONNX Runtime comes from and where it runs.
    #[command(flatten)]
    pub runtime: RuntimeFlags,
    /// The command line (or the caller's description of the call), for the report.
    #[arg(skip)]
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
