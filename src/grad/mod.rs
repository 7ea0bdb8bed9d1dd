//! Reverse-mode differentiation written as standard ONNX ops: turns a classifier into a graph with inputs `x`, `y` and outputs `logits`, `features`, `loss`, `grad`. One file per op family holds its backward rule.

use thiserror::Error;

/// Errors of the `grad` module.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GradError {
    /// Placeholder until the module's real variants land.
    #[error("{0}")]
    Other(String),
}
