//! Finding and loading the ONNX Runtime shared library, once per process.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::RuntimeError;

/// The library file name of the ONNX Runtime release aegis-audit targets.
pub const LIBRARY_FILE: &str = "libonnxruntime.so.1.31.1";
/// The ONNX Runtime minor version (1.x) the `ort` bindings target.
const MINOR_VERSION: u32 = 31;

/// Where the loaded library came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibrarySource {
    /// `--ort-lib PATH`.
    Flag,
    /// The `ORT_DYLIB_PATH` environment variable.
    Env,
    /// The project's `.ort/` folder (written by `scripts/setup.sh`).
    ProjectFolder,
    /// An installed Python `onnxruntime` package.
    PythonPackage,
}

struct Loaded {
    path: PathBuf,
    env: ort::environment::Environment,
}

static LOADED: OnceLock<std::result::Result<Loaded, String>> = OnceLock::new();

/// Finds the library without loading it: `explicit` (from `--ort-lib`), then `ORT_DYLIB_PATH`, then a
/// `.ort/` folder (beside the crate it was built from, above the executable, or above the current
/// directory), then the `onnxruntime` package of `python3`.
pub fn find_library(explicit: Option<&Path>) -> Result<(PathBuf, LibrarySource), RuntimeError> {
    if let Some(path) = explicit {
        return existing(path, "--ort-lib").map(|p| (p, LibrarySource::Flag));
    }
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty()) {
        return existing(Path::new(&path), "ORT_DYLIB_PATH").map(|p| (p, LibrarySource::Env));
    }
    let mut searched = vec!["--ort-lib".to_string(), "ORT_DYLIB_PATH".to_string()];
    for dir in project_folders() {
        let candidate = dir.join(LIBRARY_FILE);
        if candidate.is_file() {
            return Ok((candidate, LibrarySource::ProjectFolder));
        }
        searched.push(dir.display().to_string());
    }
    if let Some(dir) = python_package_dir() {
        let candidate = dir.join(LIBRARY_FILE);
        if candidate.is_file() {
            return Ok((candidate, LibrarySource::PythonPackage));
        }
        searched.push(dir.display().to_string());
    } else {
        searched.push("python3 -c 'import onnxruntime'".to_string());
    }
    Err(RuntimeError::LibraryNotFound { searched: searched.join(", ") })
}

fn existing(path: &Path, source_name: &'static str) -> Result<PathBuf, RuntimeError> {
    if path.is_file() {
        Ok(path.to_path_buf())
    } else {
        Err(RuntimeError::LibraryMissing { path: path.to_path_buf(), source_name })
    }
}

/// Candidate `.ort/` folders, nearest first, without duplicates.
fn project_folders() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR"))];
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    let mut out: Vec<PathBuf> = Vec::new();
    for root in roots {
        let dir = root.join(".ort");
        if !out.contains(&dir) {
            out.push(dir);
        }
    }
    out
}

/// The `capi/` folder of the `onnxruntime` package that `python3` imports, if any.
fn python_package_dir() -> Option<PathBuf> {
    let out = std::process::Command::new("python3")
        .args(["-c", "import onnxruntime, os; print(os.path.join(os.path.dirname(onnxruntime.__file__), 'capi'))"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let dir = PathBuf::from(text.trim());
    dir.is_dir().then_some(dir)
}

/// Loads ONNX Runtime once per process and returns the library path in use. Later calls return the
/// first result (an explicit path given later is ignored if a library is already loaded).
pub fn init(explicit: Option<&Path>) -> Result<PathBuf, RuntimeError> {
    let loaded = LOADED.get_or_init(|| load(explicit).map_err(|e| e.to_string()));
    match loaded {
        Ok(l) => Ok(l.path.clone()),
        Err(msg) => Err(RuntimeError::LibraryUnusable { path: PathBuf::from("ONNX Runtime"), reason: msg.clone() }),
    }
}

fn load(explicit: Option<&Path>) -> Result<Loaded, RuntimeError> {
    let (path, _source) = find_library(explicit)?;
    let unusable = |reason: String| RuntimeError::LibraryUnusable { path: path.clone(), reason };
    match ort::util::probe(&path) {
        Some(MINOR_VERSION) => {}
        Some(minor) => {
            return Err(unusable(format!("it is ONNX Runtime 1.{minor}; aegis-audit needs 1.{MINOR_VERSION}")))
        }
        None => return Err(unusable("not an ONNX Runtime 1.x shared library".to_string())),
    }
    let env = ort::init_from(&path)
        .map_err(|e| unusable(e.to_string()))?
        .with_name("aegis-audit")
        .build()
        .map_err(|e| unusable(e.to_string()))?;
    Ok(Loaded { path, env })
}

/// The process's ONNX Runtime environment; `init` must have succeeded.
pub(super) fn environment() -> Result<&'static ort::environment::Environment, RuntimeError> {
    match LOADED.get() {
        Some(Ok(l)) => Ok(&l.env),
        Some(Err(msg)) => {
            Err(RuntimeError::LibraryUnusable { path: PathBuf::from("ONNX Runtime"), reason: msg.clone() })
        }
        None => init(None).and_then(|_| environment()),
    }
}
