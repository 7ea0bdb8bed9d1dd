//! The crate-wide error type: one variant per module, each wrapping that module's own error enum.

use thiserror::Error;

/// Any error aegis-audit's library can return.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading, validating or analysing an ONNX model failed.
    #[error(transparent)]
    Onnx(#[from] crate::onnx::OnnxError),
    /// Building the gradient graph failed.
    #[error(transparent)]
    Grad(#[from] crate::grad::GradError),
    /// Loading ONNX Runtime or running a session failed.
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
    /// An adversarial attack (PGD) could not run.
    #[error(transparent)]
    Attack(#[from] crate::attack::AttackError),
    /// Dimensionality reduction failed.
    #[error(transparent)]
    Embed(#[from] crate::embed::EmbedError),
    /// Clustering failed.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    /// Reading a dataset or feature file failed.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// A detector could not reach a verdict.
    #[error(transparent)]
    Detect(#[from] crate::detect::DetectError),
    /// The fused decision or its calibration failed.
    #[error(transparent)]
    Decide(#[from] crate::decide::DecideError),
    /// Writing a report or evidence failed.
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    /// An option, a preset, an output path or the data is unusable for the audit.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
