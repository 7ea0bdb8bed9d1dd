//! Detectors that turn model behaviour into per-class verdicts: AEGIS, targeted reachability, universal
//! reach and Neural Cleanse, and the robustness precondition that says whether AEGIS and reach apply.
//!
//! Each detector owns its decision (its cross-class comparison, and AEGIS's vote over runs) and returns
//! its own result, from which it builds the common [`DetectorOutcome`]: per audited class a statistic,
//! its anomaly index, the detector's flag and a reason. The shared types ([`outcome`]) name no detector;
//! the audit's detector registry (`audit::detectors`) runs each one behind one interface. Detectors see a
//! [`crate::attack::GradientModel`] and images, never files, presets or reports.

pub mod aegis;
pub mod anomaly;
pub mod neural_cleanse;
pub mod outcome;
pub mod precondition;
pub mod reach;
mod rules;
pub mod sample;
pub mod universal;

pub use outcome::{signed_index, ClassStatistic, DetectorOutcome, INDEX_VERSION};

use thiserror::Error;

/// Errors of the `detect` module.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DetectError {
    /// Not enough data to run a detector.
    #[error("not enough data: {0}")]
    NoData(String),
    /// A detector parameter is invalid.
    #[error("invalid detector parameter: {0}")]
    InvalidParam(String),
    /// The attack underneath failed.
    #[error(transparent)]
    Attack(#[from] crate::attack::AttackError),
    /// Embedding or clustering failed.
    #[error(transparent)]
    Fit(#[from] crate::embed::FitError),
}
