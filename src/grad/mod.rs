//! Reverse-mode differentiation written as standard ONNX ops: turns a classifier into a graph with inputs `x`, `y` and outputs `logits`, `features`, `loss`, `grad`. One file per op family holds its backward rule.

use thiserror::Error;

/// ONNX op types (default domain) that the gradient builder can differentiate through.
/// `inspect` reports ops outside this list on the input→logits path as not differentiable.
pub const SUPPORTED_OPS: &[&str] = &[
    "Conv",
    "BatchNormalization",
    "Relu",
    "LeakyRelu",
    "Sigmoid",
    "Tanh",
    "Clip",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "Flatten",
    "Reshape",
    "Gemm",
    "MatMul",
    "Transpose",
    "Concat",
    "Pad",
    "Identity",
    "Dropout",
    "Constant",
    "Softmax",
    "LogSoftmax",
];

/// Whether the gradient builder has a backward rule for `op_type` (default ONNX domain).
pub fn is_supported(op_type: &str) -> bool {
    SUPPORTED_OPS.contains(&op_type)
}

/// Errors of the `grad` module.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GradError {
    /// Placeholder until the module's real variants land.
    #[error("{0}")]
    Other(String),
}
