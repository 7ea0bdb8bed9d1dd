//! Clustering of embeddings: mean shift (scikit-learn semantics) with `estimate_bandwidth`, HDBSCAN and affinity propagation.
//!
//! `linfa-clustering` 0.8 has none of these three, so they are written here after scikit-learn
//! 1.7's implementations (see each file). Each is a params struct with builder setters whose `fit`
//! validates and returns a fit with `labels` (`-1` is noise, HDBSCAN only). [`Clusterer`] names the
//! choice the CLI and the audit offer (`--clusterer meanshift|hdbscan|affinity`).

mod affinity;
mod bandwidth;
mod distance;
mod hdbscan;
mod mean_shift;

pub use affinity::{AffinityPropagation, AffinityPropagationFit, AffinityPropagationParams};
pub use bandwidth::estimate_bandwidth;
pub use hdbscan::{Hdbscan, HdbscanFit, HdbscanParams};
pub use mean_shift::{MeanShift, MeanShiftFit, MeanShiftParams};

use ndarray::Array2;

pub use crate::fit_input::{FitError, Result};

/// Which clustering runs on the embedding (`--clusterer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Clusterer {
    /// Mean shift, flat kernel (AEGIS).
    #[default]
    #[value(name = "meanshift")]
    MeanShift,
    /// HDBSCAN (RQ7 ablation).
    Hdbscan,
    /// Affinity propagation (RQ7 ablation).
    Affinity,
}

/// The common outcome of any [`Clusterer`].
#[derive(Debug, Clone, PartialEq)]
pub struct Clustering {
    /// Label per sample; `-1` marks noise (HDBSCAN only).
    pub labels: Vec<i64>,
    /// Number of clusters (noise excluded).
    pub n_clusters: usize,
    /// The mean-shift bandwidth used, when mean shift ran.
    pub bandwidth: Option<f64>,
}

impl Clusterer {
    /// Clusters `x` with default parameters, except mean shift's `bandwidth` (`None`: estimated
    /// with quantile 0.3 over all points) and HDBSCAN's `min_cluster_size`.
    pub fn cluster(
        self,
        x: &Array2<f64>,
        bandwidth: Option<f64>,
        min_cluster_size: usize,
        seed: u64,
    ) -> Result<Clustering> {
        match self {
            Clusterer::MeanShift => {
                let fit = MeanShift::params().bandwidth(bandwidth).seed(seed).fit(x)?;
                Ok(Clustering {
                    n_clusters: fit.centers.nrows(),
                    labels: fit.labels.iter().map(|&l| l as i64).collect(),
                    bandwidth: Some(fit.bandwidth),
                })
            }
            Clusterer::Hdbscan => {
                let fit = Hdbscan::params(min_cluster_size).fit(x)?;
                Ok(Clustering { n_clusters: fit.n_clusters, labels: fit.labels, bandwidth: None })
            }
            Clusterer::Affinity => {
                let fit = AffinityPropagation::params().seed(seed).fit(x)?;
                Ok(Clustering { n_clusters: fit.cluster_centers_indices.len(), labels: fit.labels, bandwidth: None })
            }
        }
    }
}
