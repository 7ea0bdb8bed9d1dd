//! AEGIS on one class for one seed: translate seed images toward the class and measure the displacement;
//! when asked ([`AegisParams::embed`]), embed the features of the translated and of clean class images,
//! cluster the embedding and count the clusters.

use std::time::Instant;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::shortcut::mean_displacement;
use super::translate::{translate_class, ClassSamples};
use super::AegisParams;
use crate::attack::GradientModel;
use crate::cluster::{Clusterer, Clustering};
use crate::detect::DetectError;
use crate::embed::Reduced;

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
    /// Whether the features were embedded and clustered ([`AegisParams::embed`]); when not, the
    /// cluster fields are empty and `flagged` is false.
    pub clustered: bool,
    /// Counted clusters.
    pub clusters: usize,
    /// Every cluster found (noise excluded), largest first.
    pub cluster_info: Vec<ClusterInfo>,
    /// Whether the cluster rule flags the class (`clusters > max_clusters`).
    pub flagged: bool,
    /// Mean L2 displacement of the translated images from their seeds (seeds of other classes).
    pub displacement: f64,
    /// Fraction of translated images the model assigns to the class.
    pub reached: f64,
    /// The 2-D (or reduced) embedding, clean points first, then translated ones (and t-SNE's final KL
    /// divergence); no points when not clustered.
    pub reduced: Reduced,
    /// Each embedded point's cluster (same order) and the mean-shift bandwidth used (mean shift only).
    pub clustering: Clustering,
    /// The translation's samples (images, features, indices).
    pub samples: ClassSamples,
    /// Wall time of PCA and t-SNE, seconds.
    pub embedding_s: f64,
    /// Wall time of the bandwidth and the clustering, seconds.
    pub clustering_s: f64,
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
    let t = &params.translation;
    let samples =
        translate_class(model, images, labels, class, t, params.batch_size, params.seed, params.embed, progress)?;
    let (c, h, w) = model.image_shape();
    let displacement = mean_displacement(images, labels, &samples, c * h * w);
    if !params.embed {
        return Ok(AegisClass {
            class,
            clustered: false,
            clusters: 0,
            cluster_info: Vec::new(),
            flagged: false,
            displacement,
            reached: samples.reached,
            reduced: Reduced { points: Array2::zeros((0, 2)), kl_divergence: None },
            clustering: Clustering { labels: Vec::new(), n_clusters: 0, bandwidth: None },
            samples,
            embedding_s: 0.0,
            clustering_s: 0.0,
        });
    }
    let fdim = model.feature_dim();
    let n_clean = samples.clean_features.len() / fdim.max(1);
    let n_trans = samples.translated_features.len() / fdim.max(1);
    let mut x = Array2::<f64>::zeros((n_clean + n_trans, fdim));
    for (i, v) in samples.clean_features.iter().chain(&samples.translated_features).enumerate() {
        x[[i / fdim, i % fdim]] = *v as f64;
    }
    let started = Instant::now();
    let reduced = params.reducer.reduce_with(&x, params.pca_dims, params.perplexity, params.seed)?;
    let embedding_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let bandwidth = match params.clusterer {
        Clusterer::MeanShift => Some(params.bandwidth.bandwidth(&reduced.points, params.seed)?),
        _ => None,
    };
    let mut clustering = params.clusterer.cluster(&reduced.points, bandwidth, params.min_cluster_size, params.seed)?;
    clustering.bandwidth = clustering.bandwidth.or(bandwidth);
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
    let clustering_s = started.elapsed().as_secs_f64();
    Ok(AegisClass {
        class,
        clustered: true,
        clusters,
        cluster_info: info,
        flagged: clusters > params.max_clusters,
        displacement,
        reached: samples.reached,
        reduced,
        clustering,
        samples,
        embedding_s,
        clustering_s,
    })
}
