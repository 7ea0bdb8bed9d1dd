//! aegis-audit: an ONNX-native backdoor (trojan) scanner for image classifiers.
//!
//! [`audit`] is the front door: options → checked plan → prepared model → PGD → statistics → decision
//! → report. Underneath, data flows one way through the modules:
//! model + data → [`onnx`] (read, validate) → [`analysis`] (image input, logits, feature tensor)
//! → [`grad`] (feature head + gradient graph) → [`runtime`] (ONNX Runtime sessions) → [`attack`] (PGD)
//! → features → [`embed`] (PCA, t-SNE) → [`cluster`] (mean shift, HDBSCAN, affinity propagation)
//! → [`detect`] (per-class statistics and flags) → [`report`] (SARIF, JSON, table, evidence). [`data`]
//! reads datasets and feature matrices; [`fit_input`] holds the input checks `embed` and `cluster` share; [`fsio`] opens
//! inputs and checks outputs safely (special files, bounds, interruption). [`audit`] also owns the
//! crate-wide [`Error`] and [`Result`], which wrap every module's own error type. The binary
//! (`src/main.rs`, `src/cli/`) is a thin layer of argument handling over [`audit`] and [`report`]. The
//! layers and what each module may import: `docs/architecture.md`, enforced by `tests/architecture.rs`.
#![deny(missing_docs)]

/// The analysis of a loaded model (image input, logits, feature tensor, the differentiable path), a layer
/// above [`onnx`] and [`grad`].
pub mod analysis;
pub mod attack;
pub mod audit;
pub mod cluster;
pub mod data;
pub mod decide;
pub mod detect;
pub mod embed;
pub mod escape;
pub mod fit_input;
pub mod fsio;
pub mod grad;
pub mod onnx;
pub mod report;
pub mod runtime;

pub use audit::{Error, Result};
