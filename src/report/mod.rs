//! Audit reports: the [`AuditReport`] model, SARIF 2.1.0, JSON, the readable table, visual evidence (PNG
//! plots, image grids, index.html), and atomic writing so that no partial report is ever left behind.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::fsio;

pub mod evidence;
pub mod html;
mod model;
pub mod sarif;
pub mod table;
mod uri;

pub use model::{
    most_severe_exit, AuditReport, ClassCost, ClassDetails, ClassResult, DatasetInfo, DetectorClass, DetectorReport,
    EffortInfo, EvidenceFile, EvidenceInfo, EvidenceKind, FusedContribution, FusedInfo, Level, MemoryInfo, Method,
    MethodInfo, ModelInfo, Notification, Precondition, RobustnessMatch, ScreenInfo, Timings, ToolInfo, Verdict,
    EXIT_CLEAN, EXIT_ERROR, EXIT_NOT_APPLICABLE, EXIT_SUSPECTED,
};
pub use uri::relative_uri;

/// Errors of the `report` module.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReportError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The report cannot be serialised.
    #[error("cannot serialise the report: {0}")]
    Serialize(#[from] serde_json::Error),
    /// Plot or image input is inconsistent (lengths, channels, sizes).
    #[error("{what}: {problem}")]
    InvalidInput {
        /// The output being made (file name).
        what: String,
        /// What is wrong, with values.
        problem: String,
    },
    /// Drawing a plot failed.
    #[error("drawing {path}: {problem}")]
    Plot {
        /// The output file.
        path: PathBuf,
        /// The backend's message.
        problem: String,
    },
    /// An evidence path is unusable in a link (absolute or with `..`).
    #[error("evidence path '{0}' must be relative to the evidence folder, without '..'")]
    UnsafePath(String),
}

/// The report as pretty-printed JSON (`--format json`), with a trailing newline.
pub fn to_json(report: &AuditReport) -> Result<String, ReportError> {
    let mut text = serde_json::to_string_pretty(report)?;
    text.push('\n');
    Ok(text)
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, flushed and synced, then
/// renamed over `path`. On any failure `path` is untouched and the temporary file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    StagedFile::stage(path, bytes)?.commit()
}

/// A file written and synced under a temporary name in its destination's folder, waiting for
/// [`StagedFile::commit`] to rename it over the destination; dropped uncommitted, it is removed (and on
/// SIGINT/SIGTERM, by `fsio::cleanup`). It is created with mode 0666 less the umask, as other tools'
/// outputs are.
#[derive(Debug)]
pub struct StagedFile {
    tmp: tempfile::NamedTempFile,
    path: PathBuf,
    // After `tmp`: the file is removed before it leaves the registry.
    _registered: fsio::cleanup::Registered,
}

impl StagedFile {
    /// Writes `bytes` into a temporary file beside `path`.
    pub fn stage(path: &Path, bytes: &[u8]) -> Result<StagedFile, ReportError> {
        let io = |e: std::io::Error| ReportError::Io { path: path.to_path_buf(), source: e };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = path
            .file_name()
            .ok_or_else(|| io(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path")))?;
        let (mut tmp, registered) = fsio::cleanup::track(
            || {
                tempfile::Builder::new()
                    .prefix(&format!(".{}.", name.to_string_lossy()))
                    .suffix(".tmp")
                    .permissions(std::fs::Permissions::from_mode(fsio::FILE_MODE))
                    .tempfile_in(dir)
            },
            |t| t.path().to_path_buf(),
            false,
        )
        .map_err(io)?;
        tmp.write_all(bytes).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        Ok(StagedFile { tmp, path: path.to_path_buf(), _registered: registered })
    }

    /// The destination.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the temporary file over the destination, after checking once more that the destination
    /// is absent or a regular file (never a device, FIFO, socket or folder).
    pub fn commit(self) -> Result<(), ReportError> {
        let StagedFile { tmp, path, _registered } = self;
        fsio::output::recheck(&path)
            .map_err(|e| ReportError::Io { path: path.clone(), source: std::io::Error::other(e.problem()) })?;
        tmp.persist(&path).map_err(|e| ReportError::Io { path: path.clone(), source: e.error })?;
        Ok(())
    }
}
