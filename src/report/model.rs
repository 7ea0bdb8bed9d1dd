//! The audit report's data model: one serde-serialisable [`AuditReport`] that every detector (AEGIS,
//! reachability, Neural Cleanse) fills and every writer (SARIF, JSON, table, evidence index) reads.

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
    /// SHA-256 of the file, lower-case hex.
    pub sha256: String,
    /// Size in bytes.
    pub size_bytes: u64,
}

impl ModelInfo {
    /// Hashes the file at `path` (streamed, SHA-256) and records its size.
    pub fn from_file(path: &std::path::Path) -> Result<Self, super::ReportError> {
        use sha2::{Digest, Sha256};
        let io = |e| super::ReportError::Io { path: path.to_path_buf(), source: e };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let mut hasher = Sha256::new();
        let size_bytes = std::io::copy(&mut file, &mut hasher).map_err(io)?;
        Ok(ModelInfo { path: path.display().to_string(), sha256: format!("{:x}", hasher.finalize()), size_bytes })
    }
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
}

impl Method {
    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Method::Aegis => "AEGIS",
            Method::Reach => "reach",
            Method::NeuralCleanse => "Neural Cleanse",
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
        /// Whether the cluster rule flags the class (majority over runs).
        cluster_flagged: bool,
        /// Number of clusters.
        clusters: usize,
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
        /// Anomaly index of the success rate among classes (robust z-score, MAD).
        anomaly_index: f64,
        /// The ε budget chosen.
        epsilon: f64,
    },
    /// Neural Cleanse.
    NeuralCleanse {
        /// L1 norm of the smallest mask that flips images into the class.
        mask_l1: f64,
        /// Anomaly index of the norm among classes.
        anomaly_index: f64,
    },
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassResult {
    /// Class index (model output).
    pub class: i64,
    /// Class name when known (untrusted: from the data or the model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

impl Verdict {
    /// The process exit code a gate uses: 0 clean, 1 suspected, 3 not applicable.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Clean => 0,
            Verdict::Suspected => 1,
            Verdict::NotApplicable => 3,
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Severity.
    pub level: Level,
    /// The message.
    pub message: String,
    /// The class concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

/// Everything an audit found, for every writer.
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precondition: Option<Precondition>,
    /// Per-class results, in class order.
    pub classes: Vec<ClassResult>,
    /// The outcome.
    pub verdict: Verdict,
    /// Wall time of the audit in seconds.
    pub wall_time_s: f64,
    /// Evidence files, when `--evidence` was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<EvidenceInfo>,
    /// Messages about the run.
    #[serde(default)]
    pub notifications: Vec<Notification>,
}

impl AuditReport {
    /// The verdict the report's contents imply: `NotApplicable` when the precondition failed, `Suspected`
    /// when a class is flagged, `Clean` otherwise.
    pub fn derived_verdict(&self) -> Verdict {
        if self.precondition.as_ref().is_some_and(|p| !p.passed) {
            Verdict::NotApplicable
        } else if self.classes.iter().any(|c| c.flagged) {
            Verdict::Suspected
        } else {
            Verdict::Clean
        }
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
