//! Clustering of embeddings: mean shift (scikit-learn semantics) with `estimate_bandwidth`, HDBSCAN and affinity propagation.

use thiserror::Error;

/// Errors of the `cluster` module.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// Placeholder until the module's real variants land.
    #[error("{0}")]
    Other(String),
}
