//! ONNX Runtime: locating and loading the shared library (`--ort-lib`, `ORT_DYLIB_PATH`, project folder, Python package), execution providers (CPU, CUDA) and sessions that evaluate the gradient graph.

use thiserror::Error;

/// Errors of the `runtime` module.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// Placeholder until the module's real variants land.
    #[error("{0}")]
    Other(String),
}
