//! Reading datasets (IDX, CIFAR-10 binary batches, ImageFolder) into model-ready images, and feature matrices (NPY, CSV).

pub mod features;

use std::path::PathBuf;

use thiserror::Error;

/// Errors of the `data` module.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DataError {
    /// Placeholder until the module's real variants land.
    #[error("{0}")]
    Other(String),
    /// A feature matrix file is malformed (format, dtype, shape, values).
    #[error("feature file {path}: {reason}")]
    FeatureFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, with values.
        reason: String,
    },
    /// A feature matrix file could not be read or written.
    #[error("feature file {path}: {source}")]
    FeatureIo {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
