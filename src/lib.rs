//! aegis-audit: an ONNX-native backdoor (trojan) scanner for image classifiers.
//!
//! Data flows one way through the modules:
//! model + data → [`onnx`] (read, validate, analyse) → [`grad`] (feature head + gradient graph)
//! → [`runtime`] (ONNX Runtime sessions) → [`attack`] (PGD) → features → [`embed`] (PCA, t-SNE)
//! → [`cluster`] (mean shift, HDBSCAN, affinity propagation) → [`detect`] (verdicts) → [`report`]
//! (SARIF, JSON, table, evidence). [`data`] reads datasets and feature matrices.
//! The binary (`src/main.rs`, `src/cli/`) is a thin layer of argument handling over this library.
#![deny(missing_docs)]

pub mod attack;
pub mod audit;
pub mod cluster;
pub mod data;
pub mod decide;
pub mod detect;
pub mod embed;
pub mod error;
pub mod grad;
pub mod onnx;
pub mod report;
pub mod runtime;

pub use error::{Error, Result};
