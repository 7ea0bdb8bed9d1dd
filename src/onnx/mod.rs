//! Reading, validating, writing and analysing ONNX models: the vendored protobuf types, safe loading (limits, external data confined to the model's directory, no custom-op domains), graph topology, and finding the image input, logits and feature tensors.

pub mod builder;
pub mod proto;

use thiserror::Error;

/// Errors of the `onnx` module.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OnnxError {
    /// Placeholder until the module's real variants land.
    #[error("{0}")]
    Other(String),
}
