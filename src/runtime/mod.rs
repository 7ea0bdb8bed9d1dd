//! ONNX Runtime: locating and loading the shared library (`--ort-lib`, `ORT_DYLIB_PATH`, the Python
//! environment the executable was installed into, the project's `.ort/` folder, the `onnxruntime` package
//! of `python3`), execution providers (CPU, CUDA), sessions that evaluate graphs built by aegis-audit, and
//! the shape probe that runs a model for the shapes static inference cannot determine. No custom-operator
//! library is ever registered. ONNX Runtime's own logging is silenced and its error texts become one-line
//! messages; a panic in the `ort` bindings is caught at this boundary and returned as
//! [`RuntimeError::Internal`].

mod error_text;
mod library;
mod probe;
mod session;

pub use library::{find_library, init, installed_environment_dirs, LibrarySource};
pub use probe::probe_shapes;
pub use session::{Device, Session, SessionConfig, TensorData, Values};

use std::path::PathBuf;

use thiserror::Error;

use crate::escape::escape;

/// Errors of the `runtime` module.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// No ONNX Runtime shared library was found anywhere aegis-audit looks.
    #[error(
        "ONNX Runtime 1.31 not found (looked in: {searched}); install it with `pip install \
         onnxruntime==1.31.1` into the environment aegis-audit is installed in (`pip install aegis-audit` \
         does), or `bash scripts/setup.sh --runtime` in a checkout, or pass --ort-lib PATH / set \
         ORT_DYLIB_PATH to libonnxruntime.so.1.31.1"
    )]
    LibraryNotFound {
        /// Where it looked, in order.
        searched: String,
    },
    /// The library given explicitly does not exist.
    #[error("ONNX Runtime library {path} ({source_name}) does not exist")]
    LibraryMissing {
        /// The path given.
        path: PathBuf,
        /// Where the path came from (`--ort-lib`, `ORT_DYLIB_PATH`).
        source_name: &'static str,
    },
    /// The library could not be loaded or has the wrong version.
    #[error("cannot use ONNX Runtime library {path}: {reason}")]
    LibraryUnusable {
        /// The library path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The CUDA execution provider was requested but cannot be used.
    #[error("--device cuda: the CUDA execution provider is not usable: {0} (install onnxruntime-gpu==1.31.1 with `AEGIS_GPU=1 bash scripts/setup.sh`, or use --device cpu|auto)")]
    CudaUnavailable(String),
    /// ONNX Runtime rejected the model while creating a session.
    #[error("ONNX Runtime could not create a session: {}", escape(.0))]
    Session(String),
    /// A run failed or returned something unexpected.
    #[error("ONNX Runtime run failed: {}", escape(.0))]
    Run(String),
    /// The `ort` bindings panicked (caught at the boundary): a defect, never an expected refusal.
    #[error("internal error in the ONNX Runtime bindings while {}", escape(.0))]
    Internal(String),
    /// An input tensor's data does not match its shape.
    #[error("input '{}': shape {shape:?} needs {expected} values, got {got}", escape(.name))]
    InputShape {
        /// Input name.
        name: String,
        /// The declared shape.
        shape: Vec<i64>,
        /// Product of the shape.
        expected: usize,
        /// Values supplied.
        got: usize,
    },
}
