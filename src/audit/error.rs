//! Errors of the audit layer: options and presets that break a rule, unusable output paths, data that
//! does not fit the model, and the model an error happened in. Each message is one line naming the flag,
//! the parameter, the file or the label.
//!
//! Also the crate-wide error type ([`Error`]: one variant per module, each wrapping that module's own
//! error enum) and [`Result`], re-exported at the crate root. They live here, in the top layer, because
//! they wrap every module's error; the lower modules return their own error types.

use std::path::PathBuf;

use thiserror::Error;

/// Errors of the `audit` module.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AuditError {
    /// An option is unusable on its own or with the others (e.g. `--classes 1,1,1`).
    #[error("{0}")]
    Usage(String),
    /// A parameter breaks its rule or its documented bound.
    #[error("{name} = {value} ({origin}): {rule}")]
    Param {
        /// The parameter, as in a presets file (`translation.seeds_per_class`) or its flag's name.
        name: String,
        /// Its value.
        value: String,
        /// Where the value came from: the flag, or the preset and its file.
        origin: String,
        /// The rule it breaks.
        rule: String,
    },
    /// A detector's own check rejected its parameters.
    #[error("{problem} ({origin})")]
    Params {
        /// The detector's message, naming the parameter, its value and the rule.
        problem: String,
        /// The preset (and file) and the flags that set the detector's parameters.
        origin: String,
    },
    /// The presets file cannot be read, is not YAML, or does not hold valid presets.
    #[error("presets file {origin}: {problem}")]
    Presets {
        /// The file (or `built-in ...`).
        origin: String,
        /// What is wrong, with the line and column where known.
        problem: String,
    },
    /// An output path cannot be written.
    #[error("{flag} {}: {problem}", path.display())]
    Output {
        /// The flag (`--sarif`, `--json`, `--evidence`).
        flag: &'static str,
        /// The path given.
        path: PathBuf,
        /// Why it cannot be written.
        problem: String,
    },
    /// The data does not fit the model (labels out of range, missing classes).
    #[error("{} ({split} split): {problem}", path.display())]
    Data {
        /// The dataset path given.
        path: PathBuf,
        /// `train` or `test`.
        split: &'static str,
        /// What is wrong, with the values.
        problem: String,
    },
    /// Reading a split of the dataset failed.
    #[error("reading the {split} split of {}", path.display())]
    DataRead {
        /// The dataset path given.
        path: PathBuf,
        /// `train` or `test`.
        split: &'static str,
        /// The reader's error.
        #[source]
        source: crate::data::DataError,
    },
    /// The fused decision's calibration is unusable, or does not fit the detectors asked for.
    #[error(transparent)]
    Calibration(#[from] crate::decide::DecideError),
    /// Auditing one model failed.
    #[error("model {}", path.display())]
    Model {
        /// The model path given.
        path: PathBuf,
        /// What failed.
        #[source]
        source: Box<Error>,
    },
}

/// Any error aegis-audit's library can return.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading, validating or analysing an ONNX model failed.
    #[error(transparent)]
    Onnx(#[from] crate::onnx::OnnxError),
    /// Building the gradient graph failed.
    #[error(transparent)]
    Grad(#[from] crate::grad::GradError),
    /// Loading ONNX Runtime or running a session failed.
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
    /// An adversarial attack (PGD) could not run.
    #[error(transparent)]
    Attack(#[from] crate::attack::AttackError),
    /// Dimensionality reduction or clustering failed.
    #[error(transparent)]
    Fit(#[from] crate::embed::FitError),
    /// Reading a dataset or feature file failed.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// A detector could not reach a verdict.
    #[error(transparent)]
    Detect(#[from] crate::detect::DetectError),
    /// The fused decision or its calibration failed.
    #[error(transparent)]
    Decide(#[from] crate::decide::DecideError),
    /// Writing a report or evidence failed.
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    /// An option, a preset, an output path or the data is unusable for the audit.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error with its whole chain of sources, joined by `": "` on one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let next = e.to_string();
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = e.source();
    }
    text
}
