//! Batched projected gradient descent (PGD) over a gradient model: targeted and untargeted, L2 and L-infinity.

use thiserror::Error;

/// Errors of the `attack` module.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AttackError {
    /// Placeholder until the module's real variants land.
    #[error("{0}")]
    Other(String),
}
