//! The audit report's data model: one serde-serialisable [`AuditReport`] that every detector (AEGIS,
//! Neural Cleanse, reach, universal reach) and the fused decision fill and every writer (SARIF, JSON,
//! table, evidence index) reads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The tool that wrote the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolInfo {
    /// Tool name (`aegis-audit`).
    pub name: String,
    /// Tool version (the crate's).
    pub version: String,
}

impl Default for ToolInfo {
    fn default() -> Self {
        ToolInfo { name: env!("CARGO_PKG_NAME").to_string(), version: env!("CARGO_PKG_VERSION").to_string() }
    }
}

/// The model file audited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Path as given on the command line.
    pub path: String,
    /// SHA-256 of the bytes that were loaded and audited, lower-case hex.
    pub sha256: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Whether its logits are a linear function of the image (no convolution, no hidden layer): the
    /// fused decision does not apply to it (absent: false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub linear: bool,
    /// The image input's dims the model leaves open, as they were fixed for the audit from the data's
    /// image size (e.g. `H = 28, W = 28`; absent: the model fixes them all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_dims_fixed: Option<String>,
    /// The half-precision type the model was stored in (`float16`, `bfloat16`), widened to float32 for
    /// the audit (absent: a float32 model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub widened_from: Option<String>,
}

/// The dataset the audit drew its images from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    /// Path as given.
    pub path: String,
    /// Format read (`idx`, `cifar10`, `image-folder`).
    pub format: String,
    /// Split read (`train`, `test`).
    pub split: String,
    /// Number of images read.
    pub images: usize,
    /// Number of classes.
    pub classes: usize,
    /// Image shape `[C, H, W]`.
    pub image_shape: [usize; 3],
}

/// The detection method that ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// AEGIS: cluster the features of translated images (robust models).
    Aegis,
    /// Targeted reachability: success rate of small targeted perturbations per class.
    Reach,
    /// Neural Cleanse: smallest trigger mask per class.
    NeuralCleanse,
    /// Universal reach: the smallest perturbation shared by many images that sends them to a class.
    Universal,
    /// The fused, calibrated decision over several detectors (`--method auto`).
    Fused,
}

impl Method {
    /// Whether the method is valid only for adversarially robust models (its result is "not applicable"
    /// when the robustness precondition failed).
    pub fn requires_robust_model(self) -> bool {
        matches!(self, Method::Aegis | Method::Reach)
    }

    /// Whether the method applies to a model (the one rule behind the verdict "not applicable"): a
    /// method valid only for robust models needs a `robust` model (its robustness check passed or was
    /// skipped); the fused decision does not apply to a `linear` model of the image.
    pub fn applies(self, robust: bool, linear: bool) -> bool {
        (robust || !self.requires_robust_model()) && !(linear && self == Method::Fused)
    }

    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Method::Aegis => "AEGIS",
            Method::Reach => "reach",
            Method::NeuralCleanse => "Neural Cleanse",
            Method::Universal => "universal reach",
            Method::Fused => "fused decision",
        }
    }
}

/// Which method ran and why it was chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodInfo {
    /// The method.
    pub method: Method,
    /// Why (e.g. "--method aegis" or "model passed the robustness precondition").
    pub reason: String,
}

/// The robustness precondition: untargeted L2 PGD on clean images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Precondition {
    /// L2 budget ε.
    pub epsilon: f64,
    /// PGD steps.
    pub steps: usize,
    /// Images attacked.
    pub samples: usize,
    /// Accuracy on clean images, in `[0, 1]`.
    pub clean_accuracy: f64,
    /// Accuracy under attack, in `[0, 1]`.
    pub adversarial_accuracy: f64,
    /// Minimum adversarial accuracy for the method to apply.
    pub threshold: f64,
    /// Whether the model passed (adversarial accuracy ≥ threshold).
    pub passed: bool,
}

impl Precondition {
    /// The measurement in words, for every output: "adversarial accuracy A vs threshold T (clean C;
    /// L2 PGD ε=E, S steps, N images)".
    pub fn describe(&self) -> String {
        format!(
            "adversarial accuracy {:.3} vs threshold {:.3} (clean {:.3}; L2 PGD ε={}, {} steps, {} images)",
            self.adversarial_accuracy, self.threshold, self.clean_accuracy, self.epsilon, self.steps, self.samples
        )
    }
}

/// Per-class measurements of one method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum ClassDetails {
    /// AEGIS: the translation's displacement and the clusters found in the embedding of clean and
    /// translated features.
    Aegis {
        /// The rule that decided the flag: `shortcut` or `clusters`.
        decision: String,
        /// Mean L2 displacement of the translated images from their seeds (seeds of other classes).
        displacement: f64,
        /// Median of the audited classes' mean displacements.
        displacement_median: f64,
        /// Low-side anomaly index of `displacement` among the audited classes (negative above the median;
        /// the mean over runs).
        shortcut_index: f64,
        /// Runs whose shortcut decision flagged the class (a class is flagged by more than half).
        shortcut_votes: usize,
        /// Threshold on `shortcut_index` of the shortcut rule.
        shortcut_threshold: f64,
        /// Whether the cluster rule flags the class (majority over runs); `None` when the clustering
        /// did not run.
        cluster_flagged: Option<bool>,
        /// Number of counted clusters; `None` when the clustering did not run (the shortcut decision
        /// does not need it; `--aegis-decision clusters` or `--evidence` computes it).
        clusters: Option<usize>,
        /// Points in each cluster, by cluster id.
        cluster_sizes: Vec<usize>,
        /// Translated points in each cluster, by cluster id.
        translated_per_cluster: Vec<usize>,
        /// Clean points in each cluster, by cluster id.
        clean_per_cluster: Vec<usize>,
        /// Mean-shift bandwidth used.
        bandwidth: f64,
        /// The cluster rule flags the class when `clusters` exceeds this.
        max_clusters: usize,
    },
    /// Targeted reachability.
    Reach {
        /// Fraction of seed images translated into the class within ε, in `[0, 1]`.
        success_rate: f64,
        /// Anomaly index of the success rate among classes (robust z-score, MAD), signed: positive above
        /// the median (the suspicious side), negative below it.
        anomaly_index: f64,
        /// The ε budget chosen.
        epsilon: f64,
    },
    /// Neural Cleanse.
    NeuralCleanse {
        /// L1 norm of the smallest mask that flips images into the class.
        mask_l1: f64,
        /// Anomaly index of the norm among classes (MAD), signed: positive below the median (the
        /// suspicious side), negative above it.
        anomaly_index: f64,
    },
    /// Universal reach.
    Universal {
        /// L2 budget of the shared perturbation that sends the success level of the sources to the
        /// class (the ladder's last budget when it never did).
        budget: f64,
        /// Whether the success level was reached within the ladder.
        reached: bool,
        /// Median budget over the classes (geometric).
        median_budget: f64,
        /// Low-side anomaly index of the log budget among classes (negative above the median).
        anomaly_index: f64,
    },
    /// The fused decision.
    Fused {
        /// The class's fused score `Σ weight · −ln p` over the detectors.
        score: f64,
        /// The score's p-value against the calibration classes' fused scores.
        class_p_value: f64,
        /// `1 − (1 − class_p_value)^K`: the probability that a clean model with this many classes has
        /// some class scoring at least this high.
        model_p_value: f64,
        /// The score a class must reach to be flagged (with this many classes).
        threshold: f64,
        /// Each detector's part, largest first.
        contributions: Vec<FusedContribution>,
    },
}

/// One detector's part in a class's fused score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FusedContribution {
    /// The detector's name (`aegis`, `neural-cleanse`, `reach`, `universal`).
    pub detector: String,
    /// Its signed anomaly index for the class (`"inf"`, `"-inf"` or `null` when not finite).
    #[serde(with = "nonfinite")]
    pub index: f64,
    /// The index's p-value against the same detector's clean calibration classes.
    pub p_value: f64,
    /// The detector's weight.
    pub weight: f64,
    /// `weight · −ln p_value` (capped).
    pub score: f64,
}

/// One class as one detector saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectorClass {
    /// The class.
    pub class: i64,
    /// The detector's statistic for the class (`null` when not a number).
    #[serde(with = "nonfinite")]
    pub value: f64,
    /// Its signed anomaly index across classes, positive on the suspicious side (`"inf"`, `"-inf"` or
    /// `null` when not finite).
    #[serde(with = "nonfinite")]
    pub anomaly_index: f64,
    /// Whether the detector flags the class under its own rule.
    pub flagged: bool,
    /// One sentence with the detector's numbers.
    pub reason: String,
}

/// What one detector measured (every audit lists the detectors that ran).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectorReport {
    /// The detector's name (`aegis`, `neural-cleanse`, `reach`, `universal`).
    pub name: String,
    /// What `classes[].value` measures.
    pub statistic: String,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Images run forward and backward through the model's gradient graph (the detector's cost).
    pub gradient_evaluations: u64,
    /// The version of the anomaly indices (`crate::detect::INDEX_VERSION`); 1 in reports written before
    /// the field existed, whose Neural Cleanse and AEGIS indices `calibrate` and `decide` compute again
    /// from the stored values.
    #[serde(default = "first_index_version")]
    pub index_version: u32,
    /// One entry per audited class, in the audited order.
    pub classes: Vec<DetectorClass>,
}

fn first_index_version() -> u32 {
    1
}

/// The fused decision's model-level numbers and where its calibration came from.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FusedInfo {
    /// Where the calibration was read from (`built-in` or a path).
    pub calibration: String,
    /// The calibration's description (its models and the command that made it).
    pub description: String,
    /// The target model-level false-positive rate α.
    pub target_fpr: f64,
    /// The fused class score a class must reach to be flagged (with this many classes).
    pub threshold: f64,
    /// The highest fused class score.
    pub model_score: f64,
    /// The calibrated probability that a clean model scores this high somewhere; the model is
    /// flagged when it is at most `target_fpr`.
    pub model_p_value: f64,
    /// The detectors that entered the score.
    pub detectors: Vec<String>,
    /// Their weights.
    pub weights: BTreeMap<String, f64>,
    /// Calibration classes the fused null was fitted on.
    pub null_classes: usize,
    /// The classes the decision chose among: every audited class, also those an adaptive audit's screen
    /// dismissed (absent in reports written before it was recorded: the classes listed). The
    /// model-level p-value counts them all, unless `shortlist_null` is set.
    pub classes_tested: Option<usize>,
    /// Whether this adaptive audit's shortlist was judged against the shortlists of clean models'
    /// adaptive audits (a calibration that has them): the model-level p-value then counts the classes
    /// listed, since those shortlists were chosen alike.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shortlist_null: bool,
    /// When the calibration matches robustness: the calibration models this model was judged against.
    pub robustness_match: Option<RobustnessMatch>,
}

/// The calibration models a model was judged against when the calibration matches robustness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RobustnessMatch {
    /// The audited model's adversarial accuracy (the robustness check).
    pub adversarial_accuracy: f64,
    /// Calibration models used: the nearest in adversarial accuracy.
    pub models: usize,
    /// Their lowest and highest adversarial accuracy.
    pub range: [f64; 2],
}

impl RobustnessMatch {
    /// One phrase for the table and the evidence page.
    pub fn describe(&self) -> String {
        format!(
            "judged against the {} calibration models nearest in robustness (adversarial accuracy {:.3}–{:.3}; this \
             model {:.3})",
            self.models, self.range[0], self.range[1], self.adversarial_accuracy
        )
    }
}

/// Serialises an `f64` that may be infinite or NaN: a number when finite, `"inf"` or `"-inf"`, and
/// `null` for NaN; reads the same back (so a report's indices round-trip exactly).
mod nonfinite {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else if v.is_nan() {
            s.serialize_none()
        } else if *v > 0.0 {
            s.serialize_str("inf")
        } else {
            s.serialize_str("-inf")
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Value {
        Number(f64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        match Option::<Value>::deserialize(d)? {
            None => Ok(f64::NAN),
            Some(Value::Number(v)) => Ok(v),
            Some(Value::Text(t)) => match t.as_str() {
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                "nan" => Ok(f64::NAN),
                other => Err(serde::de::Error::custom(format!("'{other}' is not a number, inf or -inf"))),
            },
        }
    }
}

/// The kind of an evidence file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvidenceKind {
    /// t-SNE scatter of clean vs translated points, coloured by cluster.
    Scatter,
    /// Grid of translated images per cluster.
    ImageGrid,
    /// Bar chart (e.g. per-class reach rates).
    BarChart,
    /// Neural Cleanse mask and pattern.
    Mask,
}

/// One evidence file, its path relative to the evidence folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceFile {
    /// What it shows.
    pub kind: EvidenceKind,
    /// Path relative to [`EvidenceInfo::dir`], `/`-separated, never absolute nor with `..`.
    pub path: String,
    /// Caption.
    pub caption: String,
}

/// The result for one class.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassResult {
    /// Class index (model output).
    pub class: i64,
    /// Class name when known (untrusted: from the data or the model).
    pub name: Option<String>,
    /// Whether a backdoor is suspected for this class (it is a likely target label).
    pub flagged: bool,
    /// One sentence explaining the outcome with its numbers.
    pub summary: String,
    /// The method's measurements.
    pub details: ClassDetails,
    /// Evidence files for this class.
    #[serde(default)]
    pub evidence: Vec<EvidenceFile>,
}

impl ClassResult {
    /// `3` or `3 ("cat")`.
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) => format!("{} (\"{n}\")", self.class),
            None => self.class.to_string(),
        }
    }
}

/// The audit's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// No backdoor found.
    Clean,
    /// A backdoor is suspected in at least one class.
    Suspected,
    /// The method does not apply (precondition failed).
    NotApplicable,
}

/// Exit code: no backdoor found (or a subcommand succeeded).
pub const EXIT_CLEAN: u8 = 0;
/// Exit code: a backdoor is suspected in at least one class.
pub const EXIT_SUSPECTED: u8 = 1;
/// Exit code: usage or input error; nothing was concluded and no report was written.
pub const EXIT_ERROR: u8 = 2;
/// Exit code: the method does not apply to this model (the robustness precondition failed).
pub const EXIT_NOT_APPLICABLE: u8 = 3;

/// The most severe of several exit codes (one per model): 2 (error) > 1 (suspected) > 3 (not
/// applicable) > 0 (clean); 0 for none. An unknown code counts as an error.
pub fn most_severe_exit(codes: impl IntoIterator<Item = u8>) -> u8 {
    let rank = |code: u8| match code {
        EXIT_CLEAN => 0,
        EXIT_NOT_APPLICABLE => 1,
        EXIT_SUSPECTED => 2,
        _ => 3,
    };
    codes.into_iter().map(|c| if rank(c) == 3 { EXIT_ERROR } else { c }).max_by_key(|&c| rank(c)).unwrap_or(EXIT_CLEAN)
}

impl Verdict {
    /// The one verdict rule: `NotApplicable` when the method that ran does not apply to the model (its
    /// precondition failed), otherwise `Suspected` when a class is flagged, otherwise `Clean`.
    pub fn of(applicable: bool, any_flagged: bool) -> Verdict {
        if !applicable {
            Verdict::NotApplicable
        } else if any_flagged {
            Verdict::Suspected
        } else {
            Verdict::Clean
        }
    }

    /// The process exit code a gate uses: 0 clean, 1 suspected, 3 not applicable (2 is an error, which
    /// has no verdict).
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Clean => EXIT_CLEAN,
            Verdict::Suspected => EXIT_SUSPECTED,
            Verdict::NotApplicable => EXIT_NOT_APPLICABLE,
        }
    }

    /// Upper-case word for the table.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Clean => "CLEAN",
            Verdict::Suspected => "BACKDOOR SUSPECTED",
            Verdict::NotApplicable => "METHOD NOT APPLICABLE",
        }
    }
}

/// Severity of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Something failed (e.g. a class could not be analysed).
    Error,
    /// Something the user should know (e.g. fewer images than asked).
    Warning,
    /// Information.
    Note,
}

/// A message about the run itself (not a finding).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Severity.
    pub level: Level,
    /// The message.
    pub message: String,
    /// The class concerned, if any.
    pub class: Option<i64>,
}

/// Where evidence files were written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceInfo {
    /// The evidence folder as given (`--evidence DIR`).
    pub dir: String,
    /// The index page, relative to `dir` (`index.html`).
    pub index: String,
    /// Files not tied to one class (e.g. the reach bar chart), relative to `dir`.
    #[serde(default)]
    pub files: Vec<EvidenceFile>,
}

/// Wall time of each phase of one model's audit, in seconds; 0 for a phase that did not run. With
/// several models the data is read once: its time counts for the first model that needed it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timings {
    /// Reading, decoding and validating the model file.
    pub load: f64,
    /// Finding the image input, logits and feature tensor.
    pub analysis: f64,
    /// Building the gradient graph.
    pub graph_build: f64,
    /// Creating the ONNX Runtime session (and its one probing run).
    pub session: f64,
    /// Reading the dataset (both splits).
    pub data: f64,
    /// The robustness precondition.
    pub precondition: f64,
    /// AEGIS: translating the seed images toward each class (PGD).
    pub translation: f64,
    /// AEGIS: the features of the clean class images.
    pub features: f64,
    /// AEGIS: PCA and t-SNE.
    pub embedding: f64,
    /// AEGIS: the bandwidth and the clustering.
    pub clustering: f64,
    /// AEGIS, the whole detector (its translation, features, embedding and clustering are the phases
    /// above).
    pub aegis: f64,
    /// Neural Cleanse, the whole detector.
    pub neural_cleanse: f64,
    /// Reach, the whole detector.
    pub reach: f64,
    /// Universal reach, the whole detector.
    pub universal: f64,
    /// The cross-class decision and the verdict.
    pub decision: f64,
    /// Writing evidence (plots, image grids, index page).
    pub evidence: f64,
    /// Assembling the report.
    pub report: f64,
    /// Everything above, from the start of loading.
    pub total: f64,
}

impl Timings {
    /// The phases with their names, in order (`total` last).
    pub fn phases(&self) -> [(&'static str, f64); 18] {
        [
            ("load", self.load),
            ("analysis", self.analysis),
            ("graph_build", self.graph_build),
            ("session", self.session),
            ("data", self.data),
            ("precondition", self.precondition),
            ("translation", self.translation),
            ("features", self.features),
            ("embedding", self.embedding),
            ("clustering", self.clustering),
            ("aegis", self.aegis),
            ("neural_cleanse", self.neural_cleanse),
            ("reach", self.reach),
            ("universal", self.universal),
            ("decision", self.decision),
            ("evidence", self.evidence),
            ("report", self.report),
            ("total", self.total),
        ]
    }
}

/// The memory an audit was allowed and took.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryInfo {
    /// The limit on ONNX Runtime's working memory, bytes (`--memory-limit`).
    pub limit_bytes: u64,
    /// Activation elements of one image on the model's input→logits path.
    pub activations_per_image: u64,
    /// Estimated working memory of one image in one evaluation, bytes.
    pub bytes_per_image: u64,
    /// Sessions sharing the limit (the gradient session, and per worker an evaluation and a step session).
    pub sessions: usize,
    /// The most images one evaluation took (larger batches ran in pieces).
    pub images_per_evaluation: usize,
    /// Peak resident memory of the process by the end of this model's audit, bytes (absent where
    /// the system does not say; with several models, it includes those audited before).
    pub peak_resident_bytes: Option<u64>,
}

/// How an audit spread its effort across classes ([`crate::audit::EffortParams`]), and what each class
/// cost.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EffortInfo {
    /// `full` (every detector's full effort on every audited class) or `adaptive` (a screen over every
    /// class, then the full effort on a shortlist).
    pub mode: String,
    /// Classes audited.
    pub classes: usize,
    /// The adaptive audit's screen and shortlist.
    pub screen: Option<ScreenInfo>,
    /// Per audited class, what the audit spent on it: the images evaluated (forward and backward) with
    /// the class as their label (the target of an attack toward it, or for the clean predictions the
    /// true label), and the share of the evaluation time they took.
    pub per_class: Vec<ClassCost>,
}

/// The screen of an adaptive audit and the shortlist it chose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScreenInfo {
    /// The detector that screened (universal reach with fewer images and steps).
    pub detector: String,
    /// Its source images.
    pub images: usize,
    /// Its steps per budget level.
    pub steps_per_level: usize,
    /// Its wall time, seconds.
    pub seconds: f64,
    /// Its gradient evaluations (images).
    pub gradient_evaluations: u64,
    /// The screen's anomaly index of every audited class, in class order.
    pub indices: Vec<(usize, f64)>,
    /// The classes it ranked most suspicious, most suspicious first: measured in full.
    pub candidates: Vec<usize>,
    /// The seeded random reference classes: measured in full.
    pub reference: Vec<usize>,
    /// The classes it dismissed: not measured in full, not flaggable.
    pub dismissed: Vec<usize>,
}

/// What one class cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassCost {
    /// The class.
    pub class: usize,
    /// Whether every detector measured it in full.
    pub full_effort: bool,
    /// Seconds of evaluation attributed to it.
    pub seconds: f64,
    /// Images evaluated with it as their label.
    pub gradient_evaluations: u64,
}

/// Everything an audit found, for every writer.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditReport {
    /// The tool.
    pub tool: ToolInfo,
    /// The command line, program name first.
    pub command_line: Vec<String>,
    /// The model audited.
    pub model: ModelInfo,
    /// The data used.
    pub dataset: DatasetInfo,
    /// The method and why.
    pub method: MethodInfo,
    /// Every parameter and seed, by name (e.g. `seed`, `pgd.epsilon`, `tsne.perplexity`).
    pub parameters: BTreeMap<String, serde_json::Value>,
    /// The robustness precondition, when checked.
    pub precondition: Option<Precondition>,
    /// Per-class results, in class order.
    pub classes: Vec<ClassResult>,
    /// Every detector that ran, with its per-class statistics (what `aegis-audit decide` and
    /// `calibrate` read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub detectors: Vec<DetectorReport>,
    /// The fused decision's numbers (`--method auto`).
    pub fused: Option<FusedInfo>,
    /// The outcome.
    pub verdict: Verdict,
    /// Wall time of the audit in seconds, from the robustness check to the end of the decision (model
    /// preparation, data reading and evidence excluded; see `timings` for every phase).
    pub wall_time_s: f64,
    /// Wall time of each phase, in seconds.
    #[serde(default)]
    pub timings: Timings,
    /// The memory budget and the peak resident memory.
    pub memory: Option<MemoryInfo>,
    /// Evidence files, when `--evidence` was given.
    pub evidence: Option<EvidenceInfo>,
    /// How the effort was spread across classes, and what each class cost (absent in reports written
    /// before it was recorded).
    pub effort: Option<EffortInfo>,
    /// Messages about the run.
    #[serde(default)]
    pub notifications: Vec<Notification>,
}

impl AuditReport {
    /// The verdict the report's contents imply under [`Verdict::of`], the rule the audit applies: not
    /// applicable when the method needs a robust model and the precondition failed.
    pub fn derived_verdict(&self) -> Verdict {
        let robust = self.precondition.as_ref().is_none_or(|p| p.passed);
        Verdict::of(self.method.method.applies(robust, self.model.linear), self.classes.iter().any(|c| c.flagged))
    }

    /// The flagged classes.
    pub fn flagged(&self) -> impl Iterator<Item = &ClassResult> {
        self.classes.iter().filter(|c| c.flagged)
    }

    /// Whether the run completed without an error-level notification.
    pub fn execution_successful(&self) -> bool {
        !self.notifications.iter().any(|n| n.level == Level::Error)
    }
}
