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
    /// The `onnxruntime` package of the Python environment the executable was installed into (a wheel
    /// install: `ENV/bin/aegis-audit` beside `ENV/lib/python3.X/site-packages/onnxruntime/capi/`).
    InstalledEnvironment,
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

/// Finds the library without loading it: `explicit` (from `--ort-lib`), then `ORT_DYLIB_PATH`, then the
/// `onnxruntime` package of the Python environment the executable was installed into (see
/// [`installed_environment_dirs`]), then a `.ort/` folder (beside the crate it was built from, above the
/// executable, or above the current directory), then the `onnxruntime` package of `python3`.
pub fn find_library(explicit: Option<&Path>) -> Result<(PathBuf, LibrarySource), RuntimeError> {
    if let Some(path) = explicit {
        return existing(path, "--ort-lib").map(|p| (p, LibrarySource::Flag));
    }
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty()) {
        return existing(Path::new(&path), "ORT_DYLIB_PATH").map(|p| (p, LibrarySource::Env));
    }
    let mut searched = vec!["--ort-lib".to_string(), "ORT_DYLIB_PATH".to_string()];
    if let Ok(exe) = std::env::current_exe() {
        for dir in installed_environment_dirs(&exe) {
            let candidate = dir.join(LIBRARY_FILE);
            if candidate.is_file() {
                return Ok((candidate, LibrarySource::InstalledEnvironment));
            }
            searched.push(dir.display().to_string());
        }
    }
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

/// The `onnxruntime/capi/` folders of the Python environment an executable at `exe` was installed into:
/// `exe` sits in the environment's `bin/` (a virtual environment, conda, `pip install --user`, pipx or
/// `uv tool`, whose `bin/` links resolve to the real environment), and the package lies in
/// `lib/python3.*/site-packages` (`lib64/` on Fedora-style layouts, `dist-packages` for Debian's
/// system Python). Only folders that exist are returned, in a fixed order (newest Python first).
pub fn installed_environment_dirs(exe: &Path) -> Vec<PathBuf> {
    let Some(prefix) = exe.parent().and_then(Path::parent) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for lib in ["lib", "lib64"] {
        let Ok(entries) = std::fs::read_dir(prefix.join(lib)) else {
            continue;
        };
        let mut pythons: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with("python3")))
            .map(|e| e.path())
            .collect();
        // python3.13 before python3.9: compare the minor version numerically.
        pythons.sort_by_key(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            std::cmp::Reverse(name.trim_start_matches("python3.").parse::<u32>().unwrap_or(0))
        });
        for python in pythons {
            for packages in ["site-packages", "dist-packages"] {
                let dir = python.join(packages).join("onnxruntime").join("capi");
                if dir.is_dir() && !out.iter().any(|d: &PathBuf| same_dir(d, &dir)) {
                    out.push(dir);
                }
            }
        }
    }
    out
}

/// Whether two existing folders are the same (`lib64` is often a link to `lib`).
fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn touch_dir(path: &Path) -> PathBuf {
        std::fs::create_dir_all(path).unwrap();
        path.to_path_buf()
    }

    #[test]
    fn finds_onnxruntime_in_the_environment_the_executable_is_installed_in() {
        let tmp = tempfile::tempdir().unwrap();
        let env = tmp.path().join("venv");
        let exe = touch_dir(&env.join("bin")).join("aegis-audit");
        std::fs::write(&exe, b"").unwrap();
        let new = touch_dir(&env.join("lib/python3.12/site-packages/onnxruntime/capi"));
        let old = touch_dir(&env.join("lib/python3.9/site-packages/onnxruntime/capi"));
        let debian = touch_dir(&env.join("lib/python3.11/dist-packages/onnxruntime/capi"));
        touch_dir(&env.join("lib/python3.10/site-packages/numpy"));
        touch_dir(&env.join("lib/perl5/site-packages/onnxruntime/capi"));
        #[cfg(unix)]
        std::os::unix::fs::symlink("lib", env.join("lib64")).unwrap();
        assert_eq!(installed_environment_dirs(&exe), vec![new, debian, old]);
    }

    #[test]
    fn an_executable_outside_an_environment_has_no_installed_package() {
        let tmp = tempfile::tempdir().unwrap();
        let exe = touch_dir(&tmp.path().join("target/release")).join("aegis-audit");
        assert!(installed_environment_dirs(&exe).is_empty());
        assert!(installed_environment_dirs(Path::new("aegis-audit")).is_empty());
        // Fedora-style: platform packages under lib64 only.
        let env = tmp.path().join("usr");
        let capi = touch_dir(&env.join("lib64/python3.13/site-packages/onnxruntime/capi"));
        assert_eq!(installed_environment_dirs(&env.join("bin/aegis-audit")), vec![capi]);
    }
}
