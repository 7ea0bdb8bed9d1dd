//! The fused, calibrated decision: every detector's per-class anomaly index becomes a p-value against
//! the same detector's indices on the classes of known-clean calibration models ([`EmpiricalNull`]);
//! the weighted sum of `−ln p` over detectors is a class's fused score, itself calibrated against the
//! calibration classes' fused scores; a class is flagged when the probability that a clean model of
//! `K` classes has a class scoring as high, `1 − (1 − p)^K`, is at most the target false-positive
//! rate. Everything here is arithmetic on numbers the detectors measured: it runs no model.

mod calibration;
mod fuse;
mod null;

pub use calibration::{
    Calibration, CalibrationFile, DetectorWeight, Neighbourhood, NullClass, CALIBRATION_VERSION, DEFAULT_CALIBRATION,
    MAX_FILE_BYTES, MAX_INDEX, MAX_WEIGHT,
};
pub use fuse::{fuse, fuse_among, ClassScore, Contribution, DetectorIndices, FusedDecision};
pub use null::EmpiricalNull;

use thiserror::Error;

/// Errors of the `decide` module.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DecideError {
    /// The calibration file or its data are unusable.
    #[error("calibration: {0}")]
    Calibration(String),
    /// Samples cannot make a null distribution (too few, not finite).
    #[error("{0}")]
    Null(String),
    /// The detectors' numbers cannot be fused (no calibrated detector ran, lengths differ, ...).
    #[error("fused decision: {0}")]
    Fuse(String),
}
