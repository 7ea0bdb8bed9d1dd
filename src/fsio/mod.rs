//! Files an attacker may control, opened safely: every input opened once, checked to be a regular file
//! (or a folder where one is expected) and read with a bound ([`input`]); every output path checked
//! before any work to be a new path or a regular file, and distinct from the run's other outputs
//! ([`output`]); the temporary files and staging folders a run creates removed when it is interrupted
//! by SIGINT or SIGTERM ([`cleanup`]). A leaf: every module (and the binary) may use it.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::escape::escape;

pub mod cleanup;
pub mod input;
pub mod output;

pub use input::{check_folder, open_input, read_input, read_text};
pub use output::{check_distinct, check_output, OutputTarget, FILE_MODE};

/// Errors of the `fsio` module: one line naming the path and the problem.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FileError {
    /// The path could not be opened, inspected or read.
    #[error("{}: {problem}", esc_path(.path))]
    Io {
        /// The path.
        path: PathBuf,
        /// The operating system's message, without its error number.
        problem: String,
    },
    /// An input that must be a regular file is something else (a FIFO, a device, a socket, a folder).
    #[error("{}: is {kind}, not a regular file", esc_path(.path))]
    NotRegular {
        /// The path.
        path: PathBuf,
        /// What it is ("a FIFO", "a character device", ...).
        kind: &'static str,
    },
    /// A path that must be a folder is something else.
    #[error("{}: is {kind}, not a folder", esc_path(.path))]
    NotFolder {
        /// The path.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// An input larger than its bound.
    #[error("{}: {len} bytes, more than the {max} bytes {what} may have", esc_path(.path))]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// Its size (or the bytes read before stopping).
        len: u64,
        /// The bound.
        max: u64,
        /// What the file is ("a report", "a calibration file", ...).
        what: &'static str,
    },
    /// An output path that cannot be written as asked.
    #[error("{}: {problem}", esc_path(.path))]
    Output {
        /// The path.
        path: PathBuf,
        /// Why.
        problem: String,
    },
}

impl FileError {
    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            FileError::Io { path, .. }
            | FileError::NotRegular { path, .. }
            | FileError::NotFolder { path, .. }
            | FileError::TooLarge { path, .. }
            | FileError::Output { path, .. } => path,
        }
    }

    /// The problem without the path (for callers that name the path themselves, with a flag).
    pub fn problem(&self) -> String {
        let full = self.to_string();
        let prefix = format!("{}: ", esc_path(self.path()));
        full.strip_prefix(&prefix).map_or(full.clone(), str::to_string)
    }

    pub(crate) fn io(path: &Path, e: &std::io::Error) -> Self {
        FileError::Io { path: path.to_path_buf(), problem: io_text(e) }
    }
}

/// A path as printed in messages, escaped like every name from outside.
fn esc_path(path: &Path) -> String {
    escape(&path.display().to_string()).into_owned()
}

/// An I/O error's text without Rust's " (os error N)" suffix, lower-cased first letter kept as the OS
/// gives it.
pub fn io_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// What a file type is, in words, for messages ("a FIFO", "a character device", ...).
pub fn kind_of(ft: &std::fs::FileType) -> &'static str {
    use std::fs::FileType;
    use std::os::unix::fs::FileTypeExt;
    /// Whether a file type is of one kind.
    type IsKind = fn(&FileType) -> bool;
    /// Each kind's test and name, tried in this order.
    const KINDS: [(IsKind, &str); 7] = [
        (FileType::is_dir, "a folder"),
        (FileType::is_file, "a regular file"),
        (FileType::is_fifo, "a FIFO"),
        (FileType::is_char_device, "a character device"),
        (FileType::is_block_device, "a block device"),
        (FileType::is_socket, "a socket"),
        (FileType::is_symlink, "a symbolic link"),
    ];
    KINDS.iter().find(|(is, _)| is(ft)).map_or("a special file", |&(_, kind)| kind)
}
