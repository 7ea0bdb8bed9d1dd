//! Reading datasets (IDX, CIFAR-10 binary batches, ImageFolder) into model-ready images, and feature matrices (NPY, CSV).

use thiserror::Error;

/// Errors of the `data` module.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DataError {
    /// Placeholder until the module's real variants land.
    #[error("{0}")]
    Other(String),
}
