//! Dimensionality reduction of feature vectors: PCA and Barnes-Hut t-SNE, with scikit-learn's defaults.

use thiserror::Error;

/// Errors of the `embed` module.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EmbedError {
    /// Placeholder until the module's real variants land.
    #[error("{0}")]
    Other(String),
}
