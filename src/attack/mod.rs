//! Batched projected gradient descent (PGD) over a gradient model: targeted (minimise the loss toward
//! a class: the translation AEGIS uses) and untargeted (maximise the loss of the true class: the
//! robustness check), L2 with per-example normalised steps or L-infinity with sign steps, projection
//! onto the ε-ball around the start, clamping to [0, 1]; and the same attack on one perturbation shared
//! by every image (universal reach's search, [`Pgd::run_shared`]). On ONNX Runtime a whole step runs inside
//! one session run ([`step_graph`]).

mod model;
mod onnx_model;
mod pgd;
mod shared;
pub mod step_graph;

pub use model::{GradOutput, GradientModel, PgdStepper, StepRequest};
pub use onnx_model::{default_workers, OnnxGradModel, GRAD_OUTPUTS};
pub use pgd::{argmax_rows, Goal, Norm, Pgd, PgdParams, PgdResult};
pub use shared::SharedPgdResult;

use thiserror::Error;

/// Errors of the `attack` module.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AttackError {
    /// A PGD parameter is out of range.
    #[error("invalid PGD parameter {name} = {value}: {rule}")]
    InvalidParam {
        /// Parameter name.
        name: &'static str,
        /// Its value.
        value: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// Images and labels disagree, or images do not match the model's input shape.
    #[error("PGD input mismatch: {0}")]
    Shape(String),
    /// The gradient model failed.
    #[error("gradient model failed: {0}")]
    Model(String),
    /// The model returned NaN or infinite gradients.
    #[error("gradient model returned a non-finite gradient at step {step} (example {example})")]
    NonFinite {
        /// PGD step.
        step: usize,
        /// Example index in the whole input.
        example: usize,
    },
}
