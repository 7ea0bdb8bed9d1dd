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
//!
//! On the small robust CNNs measured here the cluster count does not separate backdoored from clean
//! classes (README, "The AEGIS decision rule"). [`DecisionRule::Shortcut`] decides from the same
//! translation instead: a backdoor is a shortcut, so images translated toward its target class move
//! less (they gain the trigger and keep their own digit) than images translated toward any other
//! class. The per-class mean L2 displacement is compared across classes with the MAD anomaly index,
//! which is free of scale: it depends neither on the embedding nor on the attack's step size.

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::anomaly::AnomalyIndex;
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

/// How AEGIS turns a class's translation into a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DecisionRule {
    /// The paper's rule: more than `max_clusters` counted clusters in the class's embedding.
    Clusters,
    /// Translation shortcut: the class's mean translation displacement is a low outlier across
    /// classes (MAD anomaly index above the threshold).
    #[default]
    Shortcut,
}

/// The shortcut decision over all audited classes.
#[derive(Debug, Clone, PartialEq)]
pub struct ShortcutDecision {
    /// Median of the per-class mean displacements.
    pub median: f64,
    /// Per-class anomaly index on the low side (negative above the median).
    pub indices: Vec<f64>,
    /// Positions (into the input) of the flagged classes.
    pub flagged: Vec<usize>,
}

/// The fewest classes the shortcut decision can compare.
pub const SHORTCUT_MIN_CLASSES: usize = 3;

/// Flags the classes whose mean displacement is a low outlier: `(median − d) / (1.4826 · MAD) >
/// threshold`. Needs at least three classes to compare.
pub fn shortcut_decision(displacements: &[f64], threshold: f64) -> Result<ShortcutDecision, DetectError> {
    if displacements.len() < SHORTCUT_MIN_CLASSES {
        return Err(DetectError::InvalidParam(format!(
            "the shortcut decision compares classes and needs at least {SHORTCUT_MIN_CLASSES}, got {}; audit more \
             classes or use the cluster decision (--aegis-decision clusters)",
            displacements.len()
        )));
    }
    let a = AnomalyIndex::of(displacements).ok_or_else(|| {
        DetectError::NoData(format!("a class has no translated seed of another class: displacements {displacements:?}"))
    })?;
    let indices = displacements.iter().zip(&a.indices).map(|(d, i)| if *d <= a.median { *i } else { -*i }).collect();
    Ok(ShortcutDecision { median: a.median, indices, flagged: a.low_outliers(displacements, threshold) })
}

/// L2 distance between each translated image and its seed, for the seeds whose label is not the
/// class (a seed of the class itself has nowhere to go): `(position among the seeds, distance)`.
pub fn seed_displacements(images: &[f32], labels: &[i64], samples: &ClassSamples, dim: usize) -> Vec<(usize, f64)> {
    samples
        .seed_indices
        .iter()
        .enumerate()
        .filter(|(_, &i)| labels[i] != samples.class as i64)
        .map(|(k, &i)| {
            let x0 = &images[i * dim..(i + 1) * dim];
            let x = &samples.translated_images[k * dim..(k + 1) * dim];
            (k, x0.iter().zip(x).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>().sqrt())
        })
        .collect()
}

/// Mean of [`seed_displacements`]; NaN when every seed is of the class.
pub fn mean_displacement(images: &[f32], labels: &[i64], samples: &ClassSamples, dim: usize) -> f64 {
    let d = seed_displacements(images, labels, samples, dim);
    if d.is_empty() {
        f64::NAN
    } else {
        d.iter().map(|(_, v)| v).sum::<f64>() / d.len() as f64
    }
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
    /// A class with more clusters than this is flagged by the cluster rule (the paper: 2).
    pub max_clusters: usize,
    /// Which rule flags a class.
    pub decision: DecisionRule,
    /// Shortcut rule: anomaly index (low side) above which a class is flagged.
    pub shortcut_threshold: f64,
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
    /// Whether the cluster rule flags the class (`clusters > max_clusters`).
    pub flagged: bool,
    /// Mean L2 displacement of the translated images from their seeds (seeds of other classes).
    pub displacement: f64,
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
    let (c, h, w) = model.image_shape();
    let displacement = mean_displacement(images, labels, &samples, c * h * w);
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
        displacement,
        reached: samples.reached,
        embedding: reduced.points,
        labels: clustering.labels,
        samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortcut_decision_flags_the_low_outlier_with_hand_worked_indices() {
        // median 6.5; |deviations| 0, .1, .1, 1.5, 0 → MAD 0.1, scale 0.14826.
        let d = shortcut_decision(&[6.5, 6.6, 6.4, 5.0, 6.5], 2.0).unwrap();
        assert!((d.median - 6.5).abs() < 1e-12);
        let want = [0.0, -0.1 / 0.14826, 0.1 / 0.14826, 1.5 / 0.14826, 0.0];
        for (got, want) in d.indices.iter().zip(want) {
            assert!((got - want).abs() < 1e-9, "{:?}", d.indices);
        }
        assert_eq!(d.flagged, vec![3]);
        // A high outlier (a class that is hard to reach) is not a shortcut.
        assert!(shortcut_decision(&[6.5, 6.6, 6.4, 9.0, 6.5], 2.0).unwrap().flagged.is_empty());
    }

    #[test]
    fn shortcut_decision_needs_three_finite_classes() {
        assert!(shortcut_decision(&[1.0, 2.0], 2.0).unwrap_err().to_string().contains("at least 3"));
        assert!(shortcut_decision(&[1.0, f64::NAN, 2.0], 2.0).is_err());
    }

    #[test]
    fn mean_displacement_skips_seeds_of_the_class() {
        // Three 2-pixel training images; seeds 0 (class 1) and 2 (class 0) translated toward class 1.
        let images = [0.0, 0.0, 1.0, 1.0, 0.5, 0.5];
        let labels = [1, 0, 0];
        let samples = ClassSamples {
            class: 1,
            seed_indices: vec![0, 2],
            translated_images: vec![9.0, 9.0, 0.5 + 3.0, 0.5 + 4.0],
            translated_features: vec![],
            reached: 1.0,
            clean_indices: vec![],
            clean_features: vec![],
        };
        assert!((mean_displacement(&images, &labels, &samples, 2) - 5.0).abs() < 1e-9);
    }
}
