//! Audit reports: SARIF 2.1.0, JSON, the readable table, and visual evidence (PNG plots, image grids, index.html).

use thiserror::Error;

/// Errors of the `report` module.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReportError {
    /// Placeholder until the module's real variants land.
    #[error("{0}")]
    Other(String),
}
