//! Detectors that turn model behaviour into per-class verdicts: AEGIS, targeted reachability and Neural Cleanse, and the robustness precondition.

use thiserror::Error;

/// Errors of the `detect` module.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DetectError {
    /// Placeholder until the module's real variants land.
    #[error("{0}")]
    Other(String),
}
