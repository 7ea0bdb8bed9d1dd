//! The library entry points of the other subcommands, so that a front end needs only `audit` and
//! `report`: `inspect` (what aegis-audit sees in a model), `export-grad` (the gradient graph as ONNX),
//! `cluster` (the embedding and clustering step on a feature matrix), and `calibrate` and `decide` (the
//! fused decision over reports already written).

use std::path::{Path, PathBuf};

use super::options::{Clusterer, FeatureChoice, Reducer};
use crate::analysis;
use crate::cluster::Clustering;
use crate::data::features::{npy_bytes, read_features};
use crate::embed::Reduced;
use crate::grad::GradSpec;
use crate::onnx::{self, LoadLimits};
use crate::runtime::{self, SessionConfig};
use crate::Result;

pub use super::stored_reports::{
    calibrate, decide, read_reports, CalibrateOptions, CalibrateOutcome, DecideOptions, DecideRun, StoredDecision,
    StoredEntry, StoredModel,
};
pub use crate::analysis::Analysis;
pub use crate::onnx::shape::shape_string;
pub use crate::onnx::Dim;

/// Loads `path` safely and analyses it (image input, logits, feature tensor, ops); runs nothing.
pub fn inspect(path: &Path, feature: &FeatureChoice) -> Result<Analysis> {
    let model = onnx::load_model(path, &LoadLimits::default())?;
    Ok(analysis::analyze(&model, feature)?)
}

/// What `export-grad` needs: the model, optional tensor names overriding the analysis, and ONNX Runtime.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportGradOptions {
    /// The classifier.
    pub model: PathBuf,
    /// The image input's name (default: the analysis's).
    pub input: Option<String>,
    /// The logits tensor's name (default: the analysis's).
    pub logits: Option<String>,
    /// The feature tensor (default: the last conv block's output); `FeatureChoice::Named` with `input`
    /// and `logits` skips the analysis.
    pub feature: Option<FeatureChoice>,
    /// ONNX Runtime: the library, the execution provider and the threads of the probe (used once, to
    /// probe static shapes).
    pub runtime: super::RuntimeSettings,
}

/// The gradient graph of a model and the tensors it was built from.
#[derive(Debug, Clone, PartialEq)]
pub struct GradExport {
    /// The ONNX bytes (inputs `x`, `y`; outputs `logits`, `features`, `loss`, `grad`).
    pub graph: Vec<u8>,
    /// The tensor names used.
    pub spec: GradSpec,
    /// The external-data files the model's tensors were read from (canonical paths): the graph may
    /// not be written over them.
    pub external_files: Vec<PathBuf>,
}

/// Builds the gradient graph of `options.model`.
pub fn export_grad(options: &ExportGradOptions) -> Result<GradExport> {
    let model = onnx::load_model(&options.model, &LoadLimits::default())?;
    let feature = options.feature.clone().unwrap_or_default();
    let spec = match (&options.input, &options.logits, &feature) {
        (Some(input), Some(logits), FeatureChoice::Named(features)) => {
            GradSpec { input: input.clone(), logits: logits.clone(), features: features.clone() }
        }
        _ => {
            let analysis = analysis::analyze(&model, &feature)?;
            GradSpec {
                input: options.input.clone().unwrap_or(analysis.image_input.name),
                logits: options.logits.clone().unwrap_or(analysis.logits.name),
                features: analysis.feature.name,
            }
        }
    };
    runtime::init(options.runtime.ort_lib.as_deref())?;
    let config = SessionConfig { device: options.runtime.device, intra_threads: options.runtime.threads };
    let graph = super::gradient_graph(&model.proto, &spec, &config)?;
    Ok(GradExport { graph: onnx::encode(&graph), spec, external_files: model.external_files })
}

/// What `cluster` needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterOptions {
    /// Feature matrix file (NPY or CSV), one row per sample.
    pub features: PathBuf,
    /// Reduction before clustering.
    pub reducer: Reducer,
    /// Clustering algorithm.
    pub clusterer: Clusterer,
    /// Mean-shift bandwidth (`None`: estimated at quantile 0.3).
    pub bandwidth: Option<f64>,
    /// t-SNE perplexity.
    pub perplexity: f64,
    /// Seed of every random choice.
    pub seed: u64,
    /// HDBSCAN's minimum cluster size.
    pub min_cluster_size: usize,
}

/// What `cluster` found.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterOutcome {
    /// Rows of the matrix.
    pub n_samples: usize,
    /// Columns of the matrix.
    pub n_features: usize,
    /// The reduced points (and t-SNE's final KL divergence).
    pub reduced: Reduced,
    /// Each point's cluster, the clusters found and the mean-shift bandwidth used.
    pub clustering: Clustering,
}

/// Reads the feature matrix, reduces and clusters it as AEGIS does.
pub fn cluster_features(options: &ClusterOptions) -> Result<ClusterOutcome> {
    let x = read_features(&options.features)?;
    let reduced = options.reducer.reduce(&x, options.perplexity, options.seed)?;
    let clustering =
        options.clusterer.cluster(&reduced.points, options.bandwidth, options.min_cluster_size, options.seed)?;
    Ok(ClusterOutcome { n_samples: x.nrows(), n_features: x.ncols(), reduced, clustering })
}

/// Writes the reduced points as a float64 NPY file (staged, then renamed into place).
pub fn write_embedding(path: &Path, outcome: &ClusterOutcome) -> Result<()> {
    write_output(path, &npy_bytes(&outcome.reduced.points))
}

/// Checks an output file path (`fsio::check_output`: a new path or a regular file in a writable folder,
/// never a device, FIFO, socket or folder, and none of the command's `inputs`, each named by its `what`);
/// `flag` names it in the error.
pub fn check_output(flag: &'static str, path: &Path, inputs: &[(&str, &Path)]) -> Result<()> {
    Ok(super::stored_reports::check_output(path, flag, inputs)?)
}

/// Writes one output file of a command: staged beside it, renamed into place (an interruption leaves
/// the previous file).
pub fn write_output(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::fsio::cleanup::commit_section(|| crate::report::write_atomic(path, bytes))?;
    Ok(())
}
