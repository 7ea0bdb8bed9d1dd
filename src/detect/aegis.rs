//! AEGIS (Soremekun et al., arXiv 2003.00865) for one model: per class, translate random training
//! images toward the class, embed the features of the translated and of clean class images (PCA,
//! t-SNE), cluster the embedding, and flag the class when there are more than two clusters.
//!
//! The cluster count must not depend on the embedding's scale: the paper's fixed bandwidths (35 / 28 /
//! 21) were tuned to the coordinate scale of an old t-SNE and mean nothing for today's (PCA
//! initialisation, automatic learning rate). [`BandwidthRule`] therefore offers, besides the paper's
//! rules, a bandwidth relative to the embedding's own spread, and clusters holding less than
//! `min_cluster_fraction` of the points are not counted (mean shift with a small bandwidth always finds
//! a few stray points at the fringe).

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::translate::{translate_class, ClassSamples, TranslationParams};
use super::DetectError;
use crate::attack::GradientModel;
use crate::cluster::{estimate_bandwidth, Clusterer};
use crate::embed::Reducer;

/// How the mean-shift bandwidth is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "rule", deny_unknown_fields)]
pub enum BandwidthRule {
    /// scikit-learn's `estimate_bandwidth` at this quantile (the paper's automatic choice: 0.3).
    Estimate {
        /// Neighbour quantile.
        quantile: f64,
    },
    /// A fixed bandwidth in embedding units (the paper's 35 / 28 / 21; scale-dependent).
    Fixed {
        /// The bandwidth.
        value: f64,
    },
    /// `factor` × the embedding's RMS distance to its centroid (scale-invariant).
    Relative {
        /// The factor.
        factor: f64,
    },
}

impl BandwidthRule {
    /// The bandwidth for `points`.
    pub fn bandwidth(&self, points: &Array2<f64>, seed: u64) -> Result<f64, DetectError> {
        Ok(match *self {
            BandwidthRule::Estimate { quantile } => estimate_bandwidth(points, quantile, None, seed)?,
            BandwidthRule::Fixed { value } => value,
            BandwidthRule::Relative { factor } => factor * rms_radius(points),
        })
    }
}

/// Root-mean-square distance of the rows of `points` to their centroid.
pub fn rms_radius(points: &Array2<f64>) -> f64 {
    let n = points.nrows().max(1) as f64;
    let centroid = points.sum_axis(ndarray::Axis(0)) / n;
    let ss: f64 = points.rows().into_iter().map(|r| (&r - &centroid).mapv(|v| v * v).sum()).sum();
    (ss / n).sqrt()
}

/// AEGIS parameters beyond the translation.
#[derive(Debug, Clone, PartialEq)]
pub struct AegisParams {
    /// How images are translated toward each class.
    pub translation: TranslationParams,
    /// Dimensionality reduction before clustering.
    pub reducer: Reducer,
    /// PCA dimensions before t-SNE (the paper: 150).
    pub pca_dims: usize,
    /// t-SNE perplexity.
    pub perplexity: f64,
    /// The clustering algorithm.
    pub clusterer: Clusterer,
    /// Mean-shift bandwidth rule.
    pub bandwidth: BandwidthRule,
    /// HDBSCAN's minimum cluster size.
    pub min_cluster_size: usize,
    /// Clusters with fewer than this fraction of all points (clean + translated) are not counted.
    pub min_cluster_fraction: f64,
    /// A class with more clusters than this is flagged (the paper: 2).
    pub max_clusters: usize,
    /// Images per model evaluation.
    pub batch_size: usize,
    /// Seed of every random choice.
    pub seed: u64,
}

/// One cluster of a class's embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterInfo {
    /// Cluster label.
    pub label: i64,
    /// Clean class images in it.
    pub clean: usize,
    /// Translated images in it.
    pub translated: usize,
    /// Whether it is large enough to count.
    pub counted: bool,
}

/// The AEGIS outcome for one class.
#[derive(Debug, Clone)]
pub struct AegisClass {
    /// The class.
    pub class: usize,
    /// Counted clusters.
    pub clusters: usize,
    /// Every cluster found (noise excluded), largest first.
    pub cluster_info: Vec<ClusterInfo>,
    /// Bandwidth used (mean shift only).
    pub bandwidth: Option<f64>,
    /// t-SNE's final KL divergence, when t-SNE ran.
    pub kl_divergence: Option<f64>,
    /// Whether the class is flagged.
    pub flagged: bool,
    /// Fraction of translated images the model assigns to the class.
    pub reached: f64,
    /// The 2-D (or reduced) embedding: clean points first, then translated ones.
    pub embedding: Array2<f64>,
    /// Cluster label per embedded point (same order).
    pub labels: Vec<i64>,
    /// The translation's samples (images, features, indices).
    pub samples: ClassSamples,
}

/// Runs AEGIS on one class.
pub fn aegis_class(
    model: &mut dyn GradientModel,
    images: &[f32],
    labels: &[i64],
    class: usize,
    params: &AegisParams,
    progress: impl FnMut(usize),
) -> Result<AegisClass, DetectError> {
    let samples =
        translate_class(model, images, labels, class, &params.translation, params.batch_size, params.seed, progress)?;
    let fdim = model.feature_dim();
    let n_clean = samples.clean_features.len() / fdim.max(1);
    let n_trans = samples.translated_features.len() / fdim.max(1);
    let mut x = Array2::<f64>::zeros((n_clean + n_trans, fdim));
    for (i, v) in samples.clean_features.iter().chain(&samples.translated_features).enumerate() {
        x[[i / fdim, i % fdim]] = *v as f64;
    }
    let reduced = params.reducer.reduce_with(&x, params.pca_dims, params.perplexity, params.seed)?;
    let bandwidth = match params.clusterer {
        Clusterer::MeanShift => Some(params.bandwidth.bandwidth(&reduced.points, params.seed)?),
        _ => None,
    };
    let clustering = params.clusterer.cluster(&reduced.points, bandwidth, params.min_cluster_size, params.seed)?;
    let min_points = (params.min_cluster_fraction * (n_clean + n_trans) as f64).ceil() as usize;
    let mut info: Vec<ClusterInfo> = (0..clustering.n_clusters as i64)
        .map(|label| {
            let clean = clustering.labels[..n_clean].iter().filter(|&&l| l == label).count();
            let translated = clustering.labels[n_clean..].iter().filter(|&&l| l == label).count();
            ClusterInfo { label, clean, translated, counted: clean + translated >= min_points.max(1) }
        })
        .collect();
    info.sort_by_key(|c| std::cmp::Reverse(c.clean + c.translated));
    let clusters = info.iter().filter(|c| c.counted).count();
    Ok(AegisClass {
        class,
        clusters,
        cluster_info: info,
        bandwidth: clustering.bandwidth.or(bandwidth),
        kl_divergence: reduced.kl_divergence,
        flagged: clusters > params.max_clusters,
        reached: samples.reached,
        embedding: reduced.points,
        labels: clustering.labels,
        samples,
    })
}
