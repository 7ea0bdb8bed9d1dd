//! Output paths, checked before any work: a report is written only to a new path or over a regular file
//! (by rename), never through a device, a FIFO or a socket and never onto a folder; its folder must exist
//! and be writable; and no two outputs of one run may be the same file, compared by device and inode
//! once links are resolved, or by the resolved path when the file does not exist yet (as GNU `install`
//! and `rsync` refuse to write a file onto itself). Reports are created with mode 0666 less the umask
//! ([`FILE_MODE`]), as other tools' outputs are.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{io_text, kind_of, FileError};

/// The mode reports are created with before the umask applies (0644 under the usual umask 022).
pub const FILE_MODE: u32 = 0o666;

/// What makes two output paths the same file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Identity {
    /// An existing file: its device and inode.
    Inode(u64, u64),
    /// A file still to be created: its folder's resolved path and its name.
    Path(PathBuf),
}

/// A checked output path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputTarget {
    /// The path as given.
    pub path: PathBuf,
    identity: Identity,
}

/// The folder a file path lives in (`.` for a bare name).
pub fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Checks an output file path: it must name a file, be absent or a regular file (links followed), and
/// its folder must exist and be writable (tried with a temporary file, removed at once).
pub fn check_output(path: &Path) -> Result<OutputTarget, FileError> {
    let bad = |problem: String| FileError::Output { path: path.to_path_buf(), problem };
    let Some(name) = path.file_name() else {
        return Err(bad("not a file path".into()));
    };
    let existing = match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => return Err(bad("is a folder; give a file path".into())),
        Ok(meta) if !meta.is_file() => {
            return Err(bad(format!(
                "is {}; a report is written only to a new path or over a regular file",
                kind_of(&meta.file_type())
            )))
        }
        Ok(meta) => Some(Identity::Inode(meta.dev(), meta.ino())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(bad(io_text(&e))),
    };
    let dir = folder_of(path);
    let resolved = match std::fs::metadata(&dir) {
        Ok(meta) if meta.is_dir() => {
            dir.canonicalize().map_err(|e| bad(format!("{}: {}", dir.display(), io_text(&e))))?
        }
        Ok(meta) => return Err(bad(format!("{} is {}, not a folder", dir.display(), kind_of(&meta.file_type())))),
        Err(_) => return Err(bad(format!("folder {} does not exist", dir.display()))),
    };
    tempfile::Builder::new()
        .prefix(".aegis-write-check.")
        .tempfile_in(&dir)
        .map(drop)
        .map_err(|e| bad(format!("cannot write in folder {}: {}", dir.display(), io_text(&e))))?;
    let identity = existing.unwrap_or_else(|| Identity::Path(resolved.join(name)));
    Ok(OutputTarget { path: path.to_path_buf(), identity })
}

/// Refuses two outputs that are the same file: `outputs` are `(flag, target)`; the error names the
/// second flag's path and the first flag.
pub fn check_distinct(outputs: &[(&str, &OutputTarget)]) -> Result<(), FileError> {
    for (i, (flag, target)) in outputs.iter().enumerate() {
        if let Some((first, _)) = outputs[..i].iter().find(|(_, t)| t.identity == target.identity) {
            return Err(FileError::Output {
                path: target.path.clone(),
                problem: format!(
                    "is the same file as the {first} output; {flag} and {first} would overwrite each other"
                ),
            });
        }
    }
    Ok(())
}

/// Refuses an output that would replace one of the run's inputs (a report written over the model it
/// audits, or over a file of its data): `inputs` are `(what, path)`, e.g. `("the model", path)`; an
/// input folder (a dataset) covers the files below it that `read_in_folder` says may be read. Only an
/// output that exists can be an input; it is compared by device and inode with an input file, and by
/// its resolved path with an input folder.
pub fn check_not_input(
    target: &OutputTarget,
    inputs: &[(&str, &Path)],
    read_in_folder: impl Fn(&Path) -> bool,
) -> Result<(), FileError> {
    let Identity::Inode(dev, ino) = target.identity else {
        return Ok(());
    };
    let refuse = |what: &str| FileError::Output {
        path: target.path.clone(),
        problem: format!("is {what}; an output is never written over an input of the run"),
    };
    let same_file = |input: &Path| std::fs::metadata(input).is_ok_and(|m| (m.dev(), m.ino()) == (dev, ino));
    if let Some((what, input)) = inputs.iter().find(|(_, input)| same_file(input)) {
        return Err(refuse(&format!("{what} ({})", input.display())));
    }
    let folder = target.path.canonicalize().ok().and_then(|resolved| input_folder_holding(&resolved, inputs));
    match folder {
        Some((what, input)) if read_in_folder(&target.path) => {
            Err(refuse(&format!("a file inside {what} ({})", input.display())))
        }
        _ => Ok(()),
    }
}

/// The first of `inputs` (`(what, path)`) that is a folder holding the resolved path `resolved` (or is
/// it), compared by resolved paths.
pub fn input_folder_holding<'a>(resolved: &Path, inputs: &[(&'a str, &'a Path)]) -> Option<(&'a str, &'a Path)> {
    inputs
        .iter()
        .copied()
        .find(|(_, input)| input.is_dir() && input.canonicalize().is_ok_and(|d| resolved.starts_with(d)))
}

/// Checks, just before a rename, that the destination is still absent or a regular file (so that a
/// device or FIFO put there since the first check is not replaced).
pub fn recheck(path: &Path) -> Result<(), FileError> {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => Err(FileError::Output {
            path: path.to_path_buf(),
            problem: format!(
                "is {}; a report is written only to a new path or over a regular file",
                kind_of(&meta.file_type())
            ),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::{check_distinct, check_not_input, check_output};

    #[test]
    fn special_files_and_folders_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = check_output(dir.path()).unwrap_err().to_string();
        assert!(err.ends_with("is a folder; give a file path"), "{err}");
        let link = dir.path().join("null");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        let err = check_output(&link).unwrap_err().to_string();
        assert!(err.ends_with("is a character device; a report is written only to a new path or over a regular file"));
        let err = check_output(&dir.path().join("no/r.json")).unwrap_err().to_string();
        assert!(err.ends_with("/no does not exist"), "{err}");
    }

    #[test]
    fn the_same_file_twice_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("o")).unwrap();
        let a = check_output(&dir.path().join("o/same.out")).unwrap();
        let b = check_output(&dir.path().join("o/../o/same.out")).unwrap();
        let err = check_distinct(&[("--sarif", &a), ("--json", &b)]).unwrap_err().to_string();
        assert!(err.ends_with("is the same file as the --sarif output; --json and --sarif would overwrite each other"));
        std::fs::write(dir.path().join("o/same.out"), b"x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("o/same.out"), dir.path().join("link")).unwrap();
        let a = check_output(&dir.path().join("o/same.out")).unwrap();
        let b = check_output(&dir.path().join("link")).unwrap();
        assert!(check_distinct(&[("--sarif", &a), ("--json", &b)]).is_err());
        let c = check_output(&dir.path().join("other")).unwrap();
        assert!(check_distinct(&[("--sarif", &a), ("--json", &c)]).is_ok());
    }
    #[test]
    fn an_input_is_never_an_output() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.onnx");
        std::fs::write(&model, b"model").unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        let images = dir.path().join("data/images.idx");
        std::fs::write(&images, b"data").unwrap();
        std::os::unix::fs::symlink(&model, dir.path().join("link.json")).unwrap();
        let inputs = [("the model", model.as_path()), ("the --data folder", &dir.path().join("data"))];
        for out in [model.clone(), dir.path().join("link.json"), dir.path().join("./data/../m.onnx")] {
            let err = check_not_input(&check_output(&out).unwrap(), &inputs, |_| true).unwrap_err().to_string();
            assert!(err.contains("is the model ("), "{err}");
            assert!(err.ends_with("an output is never written over an input of the run"), "{err}");
        }
        let err = check_not_input(&check_output(&images).unwrap(), &inputs, |_| true).unwrap_err().to_string();
        assert!(err.contains("is a file inside the --data folder ("), "{err}");
        // A file the folder's reader would not read may be replaced (a report kept beside the data).
        let kept = |p: &std::path::Path| p.extension().is_some_and(|e| e == "idx");
        std::fs::write(dir.path().join("data/old.json"), b"{}").unwrap();
        assert!(check_not_input(&check_output(&dir.path().join("data/old.json")).unwrap(), &inputs, kept).is_ok());
        assert!(check_not_input(&check_output(&images).unwrap(), &inputs, kept).is_err());
        // A new file in the data folder replaces nothing, nor does an existing file elsewhere.
        assert!(check_not_input(&check_output(&dir.path().join("data/new.json")).unwrap(), &inputs, |_| true).is_ok());
        std::fs::write(dir.path().join("old.json"), b"{}").unwrap();
        assert!(check_not_input(&check_output(&dir.path().join("old.json")).unwrap(), &inputs, |_| true).is_ok());
    }
}
