//! Detectors that turn model behaviour into per-class verdicts: AEGIS, targeted reachability and
//! Neural Cleanse, and the robustness precondition that decides whether AEGIS applies.

pub mod aegis;
pub mod anomaly;
pub mod neural_cleanse;
pub mod precondition;
pub mod preset;
pub mod reach;
pub mod translate;
pub mod universal;

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
    /// Embedding failed.
    #[error(transparent)]
    Embed(#[from] crate::embed::EmbedError),
    /// Clustering failed.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
}
