//! The `audit` command (the default): raw flags, their resolution against a preset into an
//! [`AuditPlan`], and the hand-off to the library; then the report writers and the exit code.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde_json::json;

use aegis_audit::audit::{run_audit, AuditPlan, MethodChoice, PreparedModel};
use aegis_audit::cluster::Clusterer;
use aegis_audit::data::{load_dataset, ImageShape, Split};
use aegis_audit::detect::aegis::{AegisParams, BandwidthRule, DecisionRule, SHORTCUT_MIN_CLASSES};
use aegis_audit::detect::preset::PresetFile;
use aegis_audit::detect::reach::ReachParams;
use aegis_audit::embed::Reducer;
use aegis_audit::onnx::LoadLimits;
use aegis_audit::report::{self, sarif, table, Verdict};

use super::common::{ClustererArg, FeatureArgs, ReducerArg, RuntimeArgs};
use super::{EXIT_CLEAN, EXIT_NOT_APPLICABLE, EXIT_SUSPECTED};

/// `--aegis-decision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DecisionArg {
    /// Translation shortcut: low outlier of the mean translation displacement.
    Shortcut,
    /// The paper's cluster count.
    Clusters,
}

impl From<DecisionArg> for DecisionRule {
    fn from(d: DecisionArg) -> DecisionRule {
        match d {
            DecisionArg::Shortcut => DecisionRule::Shortcut,
            DecisionArg::Clusters => DecisionRule::Clusters,
        }
    }
}

/// Audit MODEL for backdoors.
#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// The ONNX model to audit.
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,
    /// Training data (IDX folder, CIFAR-10 binary batches, or an ImageFolder with train/ and test/):
    /// the train split gives seed and clean images, the test split the robustness check.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Detection method: auto runs the robustness precondition and AEGIS on a robust model.
    #[arg(long, value_enum, default_value_t = MethodArg::Auto)]
    pub method: MethodArg,
    /// Preset name (mnist, fashion-mnist, cifar10); chosen from the input shape when absent.
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,
    /// A presets YAML file replacing the built-in config/presets.yaml.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Only these classes (comma-separated indices); all by default.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub classes: Option<Vec<usize>>,
    /// Seed images per class (S).
    #[arg(long)]
    pub seeds_per_class: Option<usize>,
    /// L2 radius of the translation.
    #[arg(long)]
    pub eps: Option<f32>,
    /// L2 step of the translation.
    #[arg(long)]
    pub step: Option<f32>,
    /// Translation iterations.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Reduction before clustering.
    #[arg(long, value_enum)]
    pub reducer: Option<ReducerArg>,
    /// PCA dimensions before t-SNE.
    #[arg(long)]
    pub pca_dims: Option<usize>,
    /// t-SNE perplexity.
    #[arg(long)]
    pub perplexity: Option<f64>,
    /// Clustering algorithm.
    #[arg(long, value_enum)]
    pub clusterer: Option<ClustererArg>,
    /// Mean-shift bandwidth: `estimate` (scikit-learn's estimate_bandwidth, quantile 0.3),
    /// `estimate:Q`, `paper` (the preset's fixed value, scale-dependent), `relative:F` (F × the
    /// embedding's RMS radius), or a number.
    #[arg(long, value_name = "RULE")]
    pub bandwidth: Option<String>,
    /// Clusters smaller than this fraction of the embedded points are not counted.
    #[arg(long)]
    pub min_cluster_fraction: Option<f64>,
    /// HDBSCAN minimum cluster size.
    #[arg(long, default_value_t = 25)]
    pub min_cluster_size: usize,
    /// Cluster decision: a class with more counted clusters than this is flagged.
    #[arg(long)]
    pub max_clusters: Option<usize>,
    /// How AEGIS flags a class: `shortcut` (default: its mean translation displacement is a low
    /// outlier across classes) or `clusters` (the paper's rule: more than --max-clusters clusters).
    #[arg(long, value_enum)]
    pub aegis_decision: Option<DecisionArg>,
    /// Shortcut decision: low-side anomaly index (MAD) above which a class is flagged.
    #[arg(long)]
    pub shortcut_threshold: Option<f64>,
    /// Independent AEGIS runs (seeds SEED, SEED+1, …); either decision rule flags a class when more
    /// than half of the runs do.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Seed of every random choice (recorded in the report).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Images per model evaluation.
    #[arg(long, default_value_t = 100)]
    pub batch_size: usize,
    /// Skip the robustness precondition (AEGIS is only valid for robust models).
    #[arg(long)]
    pub skip_precondition: bool,
    /// L2 budget of the robustness check.
    #[arg(long)]
    pub precondition_eps: Option<f32>,
    /// Held-out images attacked by the robustness check.
    #[arg(long)]
    pub precondition_images: Option<usize>,
    /// PGD steps of the robustness check.
    #[arg(long)]
    pub precondition_steps: Option<usize>,
    /// L2 step of the robustness check (default: 2.5 × eps / steps).
    #[arg(long)]
    pub precondition_step: Option<f32>,
    /// Minimum adversarial accuracy for the model to count as robust.
    #[arg(long)]
    pub min_adv_accuracy: Option<f64>,
    /// Neural Cleanse: images the triggers are reverse-engineered on.
    #[arg(long)]
    pub nc_images: Option<usize>,
    /// Neural Cleanse: mini-batch size.
    #[arg(long)]
    pub nc_batch: Option<usize>,
    /// Neural Cleanse: maximum epochs per class.
    #[arg(long)]
    pub nc_epochs: Option<usize>,
    /// Neural Cleanse: initial cost λ on ‖m‖₁.
    #[arg(long)]
    pub nc_init_cost: Option<f64>,
    /// Neural Cleanse: attack success the reversed trigger must reach.
    #[arg(long)]
    pub nc_target_success: Option<f64>,
    /// Neural Cleanse: anomaly-index threshold (small side).
    #[arg(long)]
    pub nc_anomaly_threshold: Option<f64>,
    /// Neural Cleanse: start with cost 0 and set the initial cost once the trigger succeeds.
    #[arg(long, value_name = "BOOL")]
    pub nc_reset_cost_to_zero: Option<bool>,
    /// Neural Cleanse: epochs of success (or failure) before the cost goes up (or down).
    #[arg(long)]
    pub nc_patience: Option<usize>,
    /// Neural Cleanse: factor the cost is multiplied by going up.
    #[arg(long)]
    pub nc_cost_up: Option<f64>,
    /// Neural Cleanse: factor the cost is divided by going down.
    #[arg(long)]
    pub nc_cost_down: Option<f64>,
    /// Neural Cleanse: stop a class after this many epochs without a smaller mask (0: never).
    #[arg(long)]
    pub nc_early_stop_patience: Option<usize>,
    /// Neural Cleanse: Adam learning rate.
    #[arg(long)]
    pub nc_lr: Option<f64>,
    /// Neural Cleanse: Adam β₁.
    #[arg(long)]
    pub nc_beta1: Option<f64>,
    /// Neural Cleanse: Adam β₂.
    #[arg(long)]
    pub nc_beta2: Option<f64>,
    /// Neural Cleanse: Adam ε.
    #[arg(long)]
    pub nc_adam_eps: Option<f64>,
    /// Reach: source images per class.
    #[arg(long)]
    pub reach_images: Option<usize>,
    /// Reach: source images per class during the budget sweep (the first of the same draw; at most
    /// --reach-images).
    #[arg(long)]
    pub reach_sweep_images: Option<usize>,
    /// Reach: PGD steps.
    #[arg(long)]
    pub reach_steps: Option<usize>,
    /// Reach: PGD step size as a multiple of eps / steps.
    #[arg(long)]
    pub reach_step_factor: Option<f32>,
    /// Reach: candidate L2 budgets, comma-separated and strictly increasing (e.g. 0.25,0.5,1); the
    /// sweep stops at the first whose median class rate reaches --reach-median-level.
    #[arg(long, value_name = "LIST", value_parser = parse_eps_sweep)]
    pub reach_eps_sweep: Option<::std::vec::Vec<f32>>,
    /// Reach: the median class rate that fixes the budget.
    #[arg(long)]
    pub reach_median_level: Option<f64>,
    /// Reach: anomaly-index threshold (high side).
    #[arg(long)]
    pub reach_anomaly_threshold: Option<f64>,
    /// Reach: a flagged class's rate must exceed max(RATIO × median, median + GAP): the ratio.
    #[arg(long)]
    pub reach_min_ratio: Option<f64>,
    /// Reach: ... and the gap.
    #[arg(long)]
    pub reach_min_gap: Option<f64>,
    /// Reach: perturbed images that reached each class kept as evidence.
    #[arg(long)]
    pub reach_evidence: Option<usize>,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value_t = FormatArg::Table)]
    pub format: FormatArg,
    /// Write the SARIF 2.1.0 report here (atomically).
    #[arg(long, value_name = "FILE")]
    pub sarif: Option<PathBuf>,
    /// Write the JSON report here (atomically).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write evidence (PNG plots, image grids, index.html) into this folder.
    #[arg(long, value_name = "DIR")]
    pub evidence: Option<PathBuf>,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub features: FeatureArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub runtime: RuntimeArgs,
}

/// `--method` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodArg {
    /// Robustness precondition, then AEGIS on a robust model and Neural Cleanse on a standard one.
    Auto,
    /// AEGIS (after the robustness precondition unless --skip-precondition).
    Aegis,
    /// Neural Cleanse (for standard models; no precondition).
    NeuralCleanse,
    /// Targeted reachability (robust models; after the robustness precondition).
    Reach,
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

fn parse_bandwidth(text: &str, paper: f64) -> anyhow::Result<BandwidthRule> {
    let number = |s: &str| -> anyhow::Result<f64> {
        let v: f64 = s.parse().with_context(|| format!("--bandwidth {text}: '{s}' is not a number"))?;
        anyhow::ensure!(v.is_finite() && v > 0.0, "--bandwidth {text}: must be a positive number");
        Ok(v)
    };
    Ok(match text.split_once(':') {
        None if text == "estimate" => BandwidthRule::Estimate { quantile: 0.3 },
        None if text == "paper" => BandwidthRule::Fixed { value: paper },
        None => BandwidthRule::Fixed { value: number(text)? },
        Some(("estimate", q)) => BandwidthRule::Estimate { quantile: number(q)? },
        Some(("relative", f)) => BandwidthRule::Relative { factor: number(f)? },
        Some(_) => anyhow::bail!("--bandwidth {text}: expected estimate, estimate:Q, paper, relative:F or a number"),
    })
}

/// Parses `--reach-eps-sweep`: comma-separated numbers, checked by [`ReachParams::check`] (each
/// finite and > 0, strictly increasing).
fn parse_eps_sweep(text: &str) -> Result<Vec<f32>, String> {
    let eps = text
        .split(',')
        .map(|s| s.trim().parse::<f32>().map_err(|_| format!("'{}' is not a number", s.trim())))
        .collect::<Result<Vec<_>, _>>()?;
    ReachParams { eps_sweep: eps.clone(), ..ReachParams::default() }.check().map_err(|e| e.to_string())?;
    Ok(eps)
}

/// Runs the audit.
pub fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let presets = match &args.config {
        Some(path) => PresetFile::load(path)?,
        None => PresetFile::builtin(),
    };
    anyhow::ensure!(args.runs >= 1, "--runs must be at least 1");
    let config = args.runtime.session_config()?;
    let mut prepared = PreparedModel::load(&args.model, &args.features.choice(), &LoadLimits::default(), &config)
        .with_context(|| format!("preparing model {}", args.model.display()))?;
    let shape = prepared.image_shape();
    let (preset_name, preset) = presets.select(args.preset.as_deref(), shape)?;
    let expected = ImageShape::new(shape.0, shape.1, shape.2);
    let train = load_dataset(&args.data, Split::Train, expected)
        .with_context(|| format!("reading the train split of {}", args.data.display()))?;
    let test = load_dataset(&args.data, Split::Test, expected)
        .with_context(|| format!("reading the test split of {}", args.data.display()))?;
    let k = aegis_audit::attack::GradientModel::num_classes(&prepared.model);
    if let Some(bad) = args.classes.iter().flatten().find(|&&c| c >= k) {
        anyhow::bail!("--classes: class {bad} does not exist (the model has {k} classes)");
    }

    let mut translation = preset.translation.clone();
    translation.seeds_per_class = args.seeds_per_class.unwrap_or(translation.seeds_per_class);
    translation.eps = args.eps.unwrap_or(translation.eps);
    translation.step = args.step.unwrap_or(translation.step);
    translation.steps = args.steps.unwrap_or(translation.steps);
    let bandwidth = match &args.bandwidth {
        Some(text) => parse_bandwidth(text, preset.paper_bandwidth)?,
        None => preset.decision.bandwidth,
    };
    let aegis = AegisParams {
        translation,
        reducer: args.reducer.map_or(Reducer::Tsne, Reducer::from),
        pca_dims: args.pca_dims.unwrap_or(preset.embedding.pca_dims),
        perplexity: args.perplexity.unwrap_or(preset.embedding.perplexity),
        clusterer: args.clusterer.map_or(Clusterer::MeanShift, Clusterer::from),
        bandwidth,
        min_cluster_size: args.min_cluster_size,
        min_cluster_fraction: args.min_cluster_fraction.unwrap_or(preset.decision.min_cluster_fraction),
        max_clusters: args.max_clusters.unwrap_or(preset.decision.max_clusters),
        decision: args.aegis_decision.map_or(preset.decision.rule, DecisionRule::from),
        shortcut_threshold: args.shortcut_threshold.unwrap_or(preset.decision.shortcut_threshold),
        batch_size: args.batch_size.max(1),
        seed: args.seed,
    };
    anyhow::ensure!(
        aegis.shortcut_threshold.is_finite() && aegis.shortcut_threshold > 0.0,
        "--shortcut-threshold {}: must be finite and > 0",
        aegis.shortcut_threshold
    );
    let audited = args.classes.as_ref().map_or(k, |c| c.len());
    if aegis.decision == DecisionRule::Shortcut
        && matches!(args.method, MethodArg::Auto | MethodArg::Aegis)
        && audited < SHORTCUT_MIN_CLASSES
    {
        anyhow::bail!(
            "--classes: the shortcut decision compares the audited classes and needs at least \
             {SHORTCUT_MIN_CLASSES} (got {audited}); add classes or pass --aegis-decision clusters"
        );
    }
    let precondition = (!args.skip_precondition).then(|| {
        let mut p = preset.precondition.clone();
        p.eps = args.precondition_eps.unwrap_or(p.eps);
        p.steps = args.precondition_steps.unwrap_or(p.steps);
        p.step = args.precondition_step.or(p.step);
        p.images = args.precondition_images.unwrap_or(p.images);
        p.min_adv_accuracy = args.min_adv_accuracy.unwrap_or(p.min_adv_accuracy);
        p
    });
    if let Some(p) = &precondition {
        p.check().context("robustness precondition parameters (preset and --precondition-* flags)")?;
    }
    let mut neural_cleanse = preset.neural_cleanse.clone();
    neural_cleanse.images = args.nc_images.unwrap_or(neural_cleanse.images);
    neural_cleanse.batch_size = args.nc_batch.unwrap_or(neural_cleanse.batch_size);
    neural_cleanse.epochs = args.nc_epochs.unwrap_or(neural_cleanse.epochs);
    neural_cleanse.init_cost = args.nc_init_cost.unwrap_or(neural_cleanse.init_cost);
    neural_cleanse.target_success = args.nc_target_success.unwrap_or(neural_cleanse.target_success);
    neural_cleanse.anomaly_threshold = args.nc_anomaly_threshold.unwrap_or(neural_cleanse.anomaly_threshold);
    neural_cleanse.reset_cost_to_zero = args.nc_reset_cost_to_zero.unwrap_or(neural_cleanse.reset_cost_to_zero);
    neural_cleanse.patience = args.nc_patience.unwrap_or(neural_cleanse.patience);
    neural_cleanse.cost_up = args.nc_cost_up.unwrap_or(neural_cleanse.cost_up);
    neural_cleanse.cost_down = args.nc_cost_down.unwrap_or(neural_cleanse.cost_down);
    neural_cleanse.early_stop_patience = args.nc_early_stop_patience.unwrap_or(neural_cleanse.early_stop_patience);
    neural_cleanse.lr = args.nc_lr.unwrap_or(neural_cleanse.lr);
    neural_cleanse.beta1 = args.nc_beta1.unwrap_or(neural_cleanse.beta1);
    neural_cleanse.beta2 = args.nc_beta2.unwrap_or(neural_cleanse.beta2);
    neural_cleanse.adam_eps = args.nc_adam_eps.unwrap_or(neural_cleanse.adam_eps);
    neural_cleanse.seed = args.seed;
    neural_cleanse.check().context("Neural Cleanse parameters (preset and --nc-* flags)")?;
    let mut reach = preset.reach.clone();
    reach.images_per_class = args.reach_images.unwrap_or(reach.images_per_class);
    // The preset's sweep size shrinks with a smaller --reach-images; a given one is checked.
    reach.sweep_images_per_class =
        args.reach_sweep_images.unwrap_or(reach.sweep_images_per_class.min(reach.images_per_class));
    reach.steps = args.reach_steps.unwrap_or(reach.steps);
    reach.step_factor = args.reach_step_factor.unwrap_or(reach.step_factor);
    if let Some(eps) = &args.reach_eps_sweep {
        reach.eps_sweep = eps.clone();
    }
    reach.median_level = args.reach_median_level.unwrap_or(reach.median_level);
    reach.anomaly_threshold = args.reach_anomaly_threshold.unwrap_or(reach.anomaly_threshold);
    reach.min_ratio = args.reach_min_ratio.unwrap_or(reach.min_ratio);
    reach.min_gap = args.reach_min_gap.unwrap_or(reach.min_gap);
    reach.evidence_per_class = args.reach_evidence.unwrap_or(reach.evidence_per_class);
    reach.batch_size = args.batch_size.max(1);
    reach.seed = args.seed;
    reach.check().context("reach parameters (preset and --reach-* flags)")?;
    let parameters = [
        ("method", json!(format!("{:?}", args.method).to_lowercase())),
        ("translation", json!(aegis.translation)),
        ("reducer", json!(format!("{:?}", aegis.reducer).to_lowercase())),
        ("pca_dims", json!(aegis.pca_dims)),
        ("perplexity", json!(aegis.perplexity)),
        ("clusterer", json!(format!("{:?}", aegis.clusterer).to_lowercase())),
        ("bandwidth", json!(aegis.bandwidth)),
        ("min_cluster_fraction", json!(aegis.min_cluster_fraction)),
        ("min_cluster_size", json!(aegis.min_cluster_size)),
        ("max_clusters", json!(aegis.max_clusters)),
        ("decision", json!(aegis.decision)),
        ("shortcut_threshold", json!(aegis.shortcut_threshold)),
        ("runs", json!(args.runs)),
        ("seed", json!(args.seed)),
        ("batch_size", json!(aegis.batch_size)),
        ("precondition", json!(precondition)),
        ("neural_cleanse", json!(neural_cleanse)),
        ("reach", json!(reach)),
        ("classes", json!(args.classes)),
        ("device", json!(format!("{:?}", prepared.model.device()).to_lowercase())),
        ("threads", json!(args.runtime.threads)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let plan = AuditPlan {
        preset: preset_name,
        method: match args.method {
            MethodArg::Auto => MethodChoice::Auto,
            MethodArg::Aegis => MethodChoice::Aegis,
            MethodArg::NeuralCleanse => MethodChoice::NeuralCleanse,
            MethodArg::Reach => MethodChoice::Reach,
        },
        aegis,
        neural_cleanse,
        reach,
        runs: args.runs,
        classes: args.classes.clone(),
        precondition,
        evidence_dir: args.evidence.clone(),
        progress: !args.quiet,
        parameters,
        command_line: std::env::args().collect(),
    };
    let report = run_audit(&plan, &args.model, &args.data, &mut prepared, &train, &test)?;

    let sarif_text = serde_json::to_string_pretty(&sarif::to_sarif(&report))?;
    let json_text = report::to_json(&report)?;
    if let Some(path) = &args.sarif {
        write(path, &sarif_text)?;
    }
    if let Some(path) = &args.json {
        write(path, &json_text)?;
    }
    match args.format {
        FormatArg::Table => print!("{}", table::render(&report)),
        FormatArg::Json => println!("{json_text}"),
        FormatArg::Sarif => println!("{sarif_text}"),
    }
    Ok(ExitCode::from(match report.verdict {
        Verdict::Clean => EXIT_CLEAN,
        Verdict::Suspected => EXIT_SUSPECTED,
        Verdict::NotApplicable => EXIT_NOT_APPLICABLE,
    }))
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    report::write_atomic(path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::parse_eps_sweep;

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
}
