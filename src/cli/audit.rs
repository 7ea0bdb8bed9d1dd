//! The `audit` command (the default): the raw flags, copied one-to-one into the library's
//! [`Options`], then the library runs the audit, writes every report and gives the exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use aegis_audit::audit::{
    self, parse_detectors, parse_eps_sweep, parse_levels, BandwidthChoice, DecisionRule, Detector, EffortMode,
    MethodChoice, Options,
};

use super::common::{ClustererArg, FeatureArgs, ReducerArg, RuntimeArgs};

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

/// `--effort`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EffortArg {
    /// Full effort up to 16 classes, adaptive above.
    Auto,
    /// Full effort on every class.
    Full,
}

impl From<EffortArg> for EffortMode {
    fn from(e: EffortArg) -> EffortMode {
        match e {
            EffortArg::Auto => EffortMode::Auto,
            EffortArg::Full => EffortMode::Full,
        }
    }
}

/// Audit MODEL for backdoors (several models: one SARIF run and one JSON entry each).
#[derive(Debug, Clone, Args)]
#[command(after_help = audit_help())]
pub struct AuditArgs {
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
    /// Detection method (default auto: the fused, calibrated decision over every detector; the
    /// robustness check is measured and reported, not a switch).
    #[arg(long, value_enum)]
    pub method: Option<MethodArg>,
    /// The fused decision's detectors, comma-separated (aegis, neural-cleanse, reach, universal;
    /// default: every detector the calibration weights).
    #[arg(long, value_name = "LIST", value_parser = parse_detectors)]
    pub detectors: Option<::std::vec::Vec<Detector>>,
    /// The fused decision's calibration file (JSON, as `aegis-audit calibrate` writes it; default: the
    /// built-in config/calibration.json). Read and checked before any model is loaded.
    #[arg(long, value_name = "FILE")]
    pub calibration: Option<PathBuf>,
    /// Preset name (mnist, fashion-mnist, cifar10, imagenet); chosen from the input shape when absent.
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,
    /// A presets YAML file replacing the built-in config/presets.yaml.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Only these classes (comma-separated indices); all by default.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub classes: Option<Vec<usize>>,
    /// Seed images per class (S; at most 100000).
    #[arg(long)]
    pub seeds_per_class: Option<usize>,
    /// L2 radius of the translation.
    #[arg(long)]
    pub eps: Option<f32>,
    /// L2 step of the translation.
    #[arg(long)]
    pub step: Option<f32>,
    /// Translation iterations (at most 10000).
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
    #[arg(long, value_name = "RULE", value_parser = |s: &str| s.parse::<BandwidthChoice>())]
    pub bandwidth: Option<BandwidthChoice>,
    /// Clusters smaller than this fraction of the embedded points are not counted.
    #[arg(long)]
    pub min_cluster_fraction: Option<f64>,
    /// HDBSCAN minimum cluster size (default 25).
    #[arg(long)]
    pub min_cluster_size: Option<usize>,
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
    /// Independent AEGIS runs (seeds SEED, SEED+1, …; default 1, at most 100); either decision rule
    /// flags a class when more than half of the runs do.
    #[arg(long)]
    pub runs: Option<usize>,
    /// Seed of every random choice (default 0; recorded in the report).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Images per model evaluation (default 100, at most 10000).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Limit on ONNX Runtime's working memory (default 4GiB; e.g. 2GiB, 1500MB): from the model's
    /// activations per image, each evaluation takes at most as many images as fit, shared between
    /// the gradient session and the PGD step workers; larger batches run in pieces (same results).
    /// An error when one image does not fit. The report gives the estimate and the peak resident
    /// memory
    #[arg(long, value_name = "SIZE", value_parser = aegis_audit::audit::parse_size)]
    pub memory_limit: Option<u64>,
    /// Skip the robustness precondition (AEGIS is only valid for robust models).
    #[arg(long)]
    pub skip_precondition: bool,
    /// Effort across classes: `auto` (default) gives every detector's full effort to every class up to
    /// 16 classes; above, a cheap universal-reach screen looks at every class and the full effort goes
    /// to the 6 to 12 classes it ranks most suspicious and 16 seeded reference classes (the report
    /// lists them; docs/scaling.md has the cost curve and what it changes). `full`: every class, always
    #[arg(long, value_enum, value_name = "EFFORT")]
    pub effort: Option<EffortArg>,
    /// Seconds each model's audit may take: from a measured evaluation speed the audit plans how many
    /// classes get every detector's full effort (a screen ranks them; the rest are dismissed) so as to
    /// finish within it; the report says what was dismissed. Fused decision only; not with --effort full
    #[arg(long, value_name = "SECONDS")]
    pub time_budget: Option<f64>,
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
    /// Universal reach: held-out source images shared by every class (correctly classified; at most
    /// 100000).
    #[arg(long)]
    pub universal_images: Option<usize>,
    /// Universal reach: the L2 budget ladder, comma-separated and strictly increasing (at most 100
    /// values); a class's budget is the first whose shared perturbation reaches the success level.
    #[arg(long, value_name = "LIST", value_parser = parse_levels)]
    pub universal_levels: Option<::std::vec::Vec<f32>>,
    /// Universal reach: gradient steps per budget (at most 10000).
    #[arg(long)]
    pub universal_steps: Option<usize>,
    /// Universal reach: step size as a multiple of budget / steps.
    #[arg(long)]
    pub universal_step_factor: Option<f32>,
    /// Universal reach: share of the sources the shared perturbation must send to the class.
    #[arg(long)]
    pub universal_success_level: Option<f64>,
    /// Universal reach: anomaly-index threshold (low side, on the log budget) of its own rule.
    #[arg(long)]
    pub universal_anomaly_threshold: Option<f64>,
    /// Universal reach: the least spread of the log budgets the anomaly index divides by.
    #[arg(long)]
    pub universal_min_spread: Option<f64>,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value_t = FormatArg::Table)]
    pub format: FormatArg,
    /// Write the SARIF 2.1.0 report here (checked before the audit, written with the others at the end).
    #[arg(long, value_name = "FILE")]
    pub sarif: Option<PathBuf>,
    /// Write the JSON report here (checked before the audit, written with the others at the end).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write evidence (PNG plots, image grids, index.html) into this folder (one sub-folder per model
    /// when several are audited).
    #[arg(long, value_name = "DIR")]
    pub evidence: Option<PathBuf>,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print each phase's wall time (load, analysis, graph build, …, report) on stderr.
    #[arg(long, short)]
    pub verbose: bool,
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
    /// The fused, calibrated decision over every detector (the robustness check is reported, not a
    /// switch).
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

impl From<MethodArg> for MethodChoice {
    fn from(m: MethodArg) -> Self {
        match m {
            MethodArg::Auto => MethodChoice::Auto,
            MethodArg::Aegis => MethodChoice::Aegis,
            MethodArg::NeuralCleanse => MethodChoice::NeuralCleanse,
            MethodArg::Reach => MethodChoice::Reach,
            MethodArg::Universal => MethodChoice::Universal,
        }
    }
}

/// The text after the options in `--help`: the upper bounds and the exit codes.
fn audit_help() -> String {
    format!("{}\n{}", audit::bounds_help(), super::EXIT_CODES_HELP)
}

impl AuditArgs {
    /// The library's options: one field per flag.
    pub fn options(&self) -> Options {
        Options {
            models: self.models.clone(),
            data: self.data.clone(),
            method: self.method.map(MethodChoice::from),
            detectors: self.detectors.clone(),
            calibration: self.calibration.clone(),
            preset: self.preset.clone(),
            config: self.config.clone(),
            classes: self.classes.clone(),
            seeds_per_class: self.seeds_per_class,
            eps: self.eps,
            step: self.step,
            steps: self.steps,
            reducer: self.reducer.map(Into::into),
            pca_dims: self.pca_dims,
            perplexity: self.perplexity,
            clusterer: self.clusterer.map(Into::into),
            bandwidth: self.bandwidth,
            min_cluster_fraction: self.min_cluster_fraction,
            min_cluster_size: self.min_cluster_size,
            max_clusters: self.max_clusters,
            aegis_decision: self.aegis_decision.map(Into::into),
            shortcut_threshold: self.shortcut_threshold,
            runs: self.runs,
            seed: self.seed,
            batch_size: self.batch_size,
            memory_limit: self.memory_limit,
            skip_precondition: self.skip_precondition,
            effort: self.effort.map(Into::into),
            time_budget: self.time_budget,
            precondition_eps: self.precondition_eps,
            precondition_images: self.precondition_images,
            precondition_steps: self.precondition_steps,
            precondition_step: self.precondition_step,
            min_adv_accuracy: self.min_adv_accuracy,
            nc_images: self.nc_images,
            nc_batch: self.nc_batch,
            nc_epochs: self.nc_epochs,
            nc_init_cost: self.nc_init_cost,
            nc_target_success: self.nc_target_success,
            nc_anomaly_threshold: self.nc_anomaly_threshold,
            nc_reset_cost_to_zero: self.nc_reset_cost_to_zero,
            nc_patience: self.nc_patience,
            nc_cost_up: self.nc_cost_up,
            nc_cost_down: self.nc_cost_down,
            nc_early_stop_patience: self.nc_early_stop_patience,
            nc_lr: self.nc_lr,
            nc_beta1: self.nc_beta1,
            nc_beta2: self.nc_beta2,
            nc_adam_eps: self.nc_adam_eps,
            reach_images: self.reach_images,
            reach_sweep_images: self.reach_sweep_images,
            reach_steps: self.reach_steps,
            reach_step_factor: self.reach_step_factor,
            reach_eps_sweep: self.reach_eps_sweep.clone(),
            reach_median_level: self.reach_median_level,
            reach_anomaly_threshold: self.reach_anomaly_threshold,
            reach_min_ratio: self.reach_min_ratio,
            reach_min_gap: self.reach_min_gap,
            reach_evidence: self.reach_evidence,
            universal_images: self.universal_images,
            universal_levels: self.universal_levels.clone(),
            universal_steps: self.universal_steps,
            universal_step_factor: self.universal_step_factor,
            universal_success_level: self.universal_success_level,
            universal_anomaly_threshold: self.universal_anomaly_threshold,
            universal_min_spread: self.universal_min_spread,
            sarif: self.sarif.clone(),
            json: self.json.clone(),
            evidence: self.evidence.clone(),
            progress: !self.quiet,
            feature: Some(self.features.choice()),
            ort_lib: self.runtime.ort_lib.clone(),
            device: self.runtime.device.map(Into::into),
            threads: self.runtime.threads,
            command_line: std::env::args().collect(),
        }
    }
}

/// Runs the audit: the library checks, audits and writes; stdout gets the chosen format.
pub fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let run = audit::run(&args.options())?;
    let code = run.exit_code();
    let timings = args.verbose.then(|| run.timings_text());
    let rendered = run.write()?;
    if let Some(text) = timings {
        eprint!("{text}");
    }
    match args.format {
        FormatArg::Table => print!("{}", rendered.table),
        FormatArg::Json => print!("{}", rendered.json),
        FormatArg::Sarif => println!("{}", rendered.sarif),
    }
    Ok(ExitCode::from(code))
}
