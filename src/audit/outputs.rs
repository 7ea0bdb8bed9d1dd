//! The audit's output paths: checked before the audit starts (`fsio::check_output`: a new path or a
//! regular file, never a device, FIFO, socket or folder, in a writable folder; no two outputs the same
//! file; the evidence path is a folder or can be made one), evidence written into a
//! staging folder beside its destination while the audit runs, and every report of a run committed
//! together at the end: the SARIF and JSON files are staged as temporary files, the evidence moved into
//! place, then the reports renamed over their paths. A failure before the commit leaves no report and
//! replaces none.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::fsio::{self, cleanup::Registered, OutputTarget};

use super::error::AuditError;
use crate::report::{self, ReportError};

/// The checked output paths of an audit, and the staging folder of its evidence.
#[derive(Debug)]
pub struct Outputs {
    /// The SARIF log's path.
    pub sarif: Option<PathBuf>,
    /// The JSON report's path.
    pub json: Option<PathBuf>,
    /// The evidence folder.
    pub evidence: Option<PathBuf>,
    /// The checked report files, with their flags (for checks against inputs found later).
    targets: Vec<(&'static str, OutputTarget)>,
    // The registration after the folder: the folder is removed before it leaves the registry.
    staging: Option<(TempDir, Registered)>,
}

/// An I/O error without Rust's "(os error N)" suffix.
fn io_text(e: &std::io::Error) -> String {
    fsio::io_text(e)
}

/// A report path (`fsio::check_output`) that replaces none of the run's `inputs`
/// (`fsio::output::check_not_input`; inside a data folder, only the files a dataset reader may read).
fn check_file(flag: &'static str, path: &Path, inputs: &[(&str, &Path)]) -> Result<OutputTarget, AuditError> {
    fsio::check_output(path)
        .and_then(|t| fsio::output::check_not_input(&t, inputs, crate::data::is_dataset_file_name).map(|()| t))
        .map_err(|e| AuditError::Output { flag, path: path.to_path_buf(), problem: e.problem() })
}

impl Outputs {
    /// Checks every output path before the audit starts and creates the evidence staging folder. No
    /// output may replace one of the run's `inputs` (`(what, path)`: the models, the data, the
    /// calibration file), and the evidence folder may not lie inside an input folder (it would add
    /// files to the dataset).
    pub fn check(
        sarif: Option<&Path>,
        json: Option<&Path>,
        evidence: Option<&Path>,
        inputs: &[(&str, &Path)],
    ) -> Result<Outputs, AuditError> {
        let mut targets: Vec<(&'static str, OutputTarget)> = Vec::new();
        for (flag, path) in [("--sarif", sarif), ("--json", json)] {
            if let Some(p) = path {
                targets.push((flag, check_file(flag, p, inputs)?));
            }
        }
        let pairs: Vec<(&str, &OutputTarget)> = targets.iter().map(|(f, t)| (*f, t)).collect();
        fsio::check_distinct(&pairs).map_err(|e| AuditError::Output {
            flag: "--json",
            path: e.path().to_path_buf(),
            problem: e.problem(),
        })?;
        let staging = match evidence {
            Some(dir) => Some(Self::stage_evidence(dir, inputs)?),
            None => None,
        };
        Ok(Outputs {
            sarif: sarif.map(Path::to_path_buf),
            json: json.map(Path::to_path_buf),
            evidence: evidence.map(Path::to_path_buf),
            targets,
            staging,
        })
    }

    /// Refuses a report path that is one of `inputs` found only once a model is read (its external-data
    /// files): checked before anything is written, so the run ends with no report and replaces nothing.
    pub fn refuse_inputs(&self, inputs: &[(&str, &Path)]) -> Result<(), AuditError> {
        for (flag, target) in &self.targets {
            fsio::output::check_not_input(target, inputs, |_| false).map_err(|e| AuditError::Output {
                flag,
                path: target.path.clone(),
                problem: e.problem(),
            })?;
        }
        Ok(())
    }

    /// The evidence folder must be a folder or not exist; its staging folder is made in it, or in the
    /// nearest existing folder above it (so that the commit renames within one file system).
    fn stage_evidence(dir: &Path, inputs: &[(&str, &Path)]) -> Result<(TempDir, Registered), AuditError> {
        let bad = |problem: String| AuditError::Output { flag: "--evidence", path: dir.to_path_buf(), problem };
        if dir.exists() && !dir.is_dir() {
            return Err(bad("exists and is not a folder".into()));
        }
        let mut base = dir.to_path_buf();
        while !base.is_dir() {
            base = match base.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            if base.exists() && !base.is_dir() {
                return Err(bad(format!("{} is not a folder", base.display())));
            }
        }
        let resolved = base.canonicalize().ok();
        if let Some((what, input)) = resolved.and_then(|r| fsio::output::input_folder_holding(&r, inputs)) {
            return Err(bad(format!(
                "is inside {what} ({}); evidence is never written into an input folder",
                input.display()
            )));
        }
        fsio::cleanup::track(
            || tempfile::Builder::new().prefix(".aegis-evidence.").tempdir_in(&base),
            |t| t.path().to_path_buf(),
            true,
        )
        .map_err(|e| bad(format!("cannot write in folder {}: {}", base.display(), io_text(&e))))
    }

    /// Where the evidence of model `slot` is written during the audit (`None` without `--evidence`):
    /// the staging folder itself, or a sub-folder per model when several models are audited.
    pub fn evidence_stage(&self, slot: Option<&str>) -> Option<PathBuf> {
        let root = self.staging.as_ref()?.0.path();
        Some(match slot {
            Some(name) => root.join(name),
            None => root.to_path_buf(),
        })
    }

    /// Writes every report and moves the evidence into place, all or nothing as far as the file system
    /// allows: `files` (path → bytes) are staged as temporary files first; a failure there leaves no
    /// report and replaces none.
    ///
    /// The evidence folder keeps a list of the files its last run wrote (`.aegis-evidence-files`); a run into
    /// the same folder removes the files of that list it did not write again, so the folder never
    /// shows a class's evidence from an earlier audit beside this one's. Nothing else in the folder is
    /// touched.
    pub fn commit(self, files: BTreeMap<PathBuf, Vec<u8>>) -> Result<(), AuditError> {
        let mut staged = Vec::with_capacity(files.len());
        for (path, bytes) in &files {
            staged.push(report::StagedFile::stage(path, bytes).map_err(|e| output_error(&self, path, e))?);
        }
        let evidence = match (&self.staging, &self.evidence) {
            (Some((staging, _)), Some(dir)) => {
                let bad = |problem: String| AuditError::Output { flag: "--evidence", path: dir.clone(), problem };
                let mut written = files_under(staging.path(), Path::new("")).map_err(bad)?;
                let list: String = written.iter().map(|p| format!("{}\n", p.display())).collect();
                std::fs::write(staging.path().join(EVIDENCE_LIST), list)
                    .map_err(|e| bad(format!("cannot write its file list: {}", io_text(&e))))?;
                written.push(PathBuf::from(EVIDENCE_LIST));
                Some((staging.path(), dir, written, previous_evidence(dir)))
            }
            _ => None,
        };
        fsio::cleanup::commit_section(|| {
            if let Some((staging, dir, written, previous)) = &evidence {
                move_files(staging, dir, written).map_err(|problem| AuditError::Output {
                    flag: "--evidence",
                    path: dir.to_path_buf(),
                    problem,
                })?;
                remove_stale(dir, previous, written);
            }
            for file in staged {
                let path = file.path().to_path_buf();
                file.commit().map_err(|e| output_error(&self, &path, e))?;
            }
            Ok(())
        })
    }
}

fn output_error(outputs: &Outputs, path: &Path, e: ReportError) -> AuditError {
    let flag = if outputs.sarif.as_deref() == Some(path) { "--sarif" } else { "--json" };
    let problem = match e {
        ReportError::Io { source, .. } => io_text(&source),
        other => other.to_string(),
    };
    AuditError::Output { flag, path: path.to_path_buf(), problem }
}

/// The file in an evidence folder that lists, one relative path per line, the files the last run wrote.
pub const EVIDENCE_LIST: &str = ".aegis-evidence-files";

/// The largest file list read back (a folder's list is a few kilobytes).
const MAX_EVIDENCE_LIST_BYTES: u64 = 1 << 20;

/// The files under `dir` (relative to it, prefixed by `prefix`), sorted.
fn files_under(dir: &Path, prefix: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {}", dir.display(), io_text(&e)))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_text(&e))?;
        let rel = prefix.join(entry.file_name());
        if entry.file_type().map_err(|e| io_text(&e))?.is_dir() {
            out.extend(files_under(&entry.path(), &rel)?);
        } else {
            out.push(rel);
        }
    }
    out.sort();
    Ok(out)
}

/// The files an earlier run wrote into `dir`, from its list: only plain relative paths (no `..`, no
/// root) to evidence files (`.png`, `.html`), so that a list someone else wrote cannot name anything
/// else. No list, or one that is not a regular file of sensible size: none.
fn previous_evidence(dir: &Path) -> Vec<PathBuf> {
    let path = dir.join(EVIDENCE_LIST);
    // Not a link; then opened once, without blocking on a FIFO, as a regular file of bounded size.
    let text = match std::fs::symlink_metadata(&path) {
        Ok(m) if m.is_file() => fsio::read_text(&path, MAX_EVIDENCE_LIST_BYTES, "an evidence file list"),
        _ => Ok(String::new()),
    };
    let text = text.unwrap_or_default();
    text.lines()
        .map(PathBuf::from)
        .filter(|p| {
            p.components().all(|c| matches!(c, std::path::Component::Normal(_)))
                && p.extension().is_some_and(|e| e == "png" || e == "html")
        })
        .collect()
}

/// Removes the files of `previous` that `written` does not hold again (regular files only, never through
/// a link), and the sub-folders that leaves empty. A file that cannot be removed is left.
fn remove_stale(dir: &Path, previous: &[PathBuf], written: &[PathBuf]) {
    for rel in previous.iter().filter(|p| !written.contains(p)) {
        let path = dir.join(rel);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) && std::fs::remove_file(&path).is_ok() {
            let mut parent = path.parent();
            while let Some(p) = parent.filter(|p| *p != dir && p.starts_with(dir)) {
                if std::fs::remove_dir(p).is_err() {
                    break;
                }
                parent = p.parent();
            }
        }
    }
}

/// Moves `files` (paths relative to `from`) into the same place under `to` (folders made where missing),
/// replacing files of the same name; a rename, or a copy where the two are on different file systems.
fn move_files(from: &Path, to: &Path, files: &[PathBuf]) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("cannot create it: {}", io_text(&e)))?;
    for rel in files {
        let (src, dst) = (from.join(rel), to.join(rel));
        if let Some(folder) = dst.parent() {
            std::fs::create_dir_all(folder).map_err(|e| format!("{}: {}", folder.display(), io_text(&e)))?;
        }
        if std::fs::rename(&src, &dst).is_err() {
            std::fs::copy(&src, &dst).map_err(|e| format!("{}: {}", dst.display(), io_text(&e)))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::Outputs;

    #[test]
    fn a_folder_for_a_file_and_a_file_for_the_evidence_are_refused_once() {
        let dir = tempfile::tempdir().unwrap();
        let err = Outputs::check(None, Some(dir.path()), None, &[]).unwrap_err().to_string();
        assert!(err.starts_with("--json ") && err.ends_with("is a folder; give a file path"), "{err}");
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let err = Outputs::check(None, None, Some(&file), &[]).unwrap_err().to_string();
        assert_eq!(err, format!("--evidence {}: exists and is not a folder", file.display()));
        let missing = dir.path().join("no/such/report.sarif");
        let err = Outputs::check(Some(&missing), None, None, &[]).unwrap_err().to_string();
        assert!(err.ends_with("/no/such does not exist"), "{err}");
        let same = dir.path().join("same.out");
        let err = Outputs::check(Some(&same), Some(&dir.path().join("x/../same.out")), None, &[]);
        assert!(err.is_err(), "x does not exist, so x/.. does not resolve: refused either way");
        let err = Outputs::check(Some(&same), Some(&dir.path().join(".").join("same.out")), None, &[]).unwrap_err();
        assert!(err
            .to_string()
            .ends_with("is the same file as the --sarif output; --json and --sarif would overwrite each other"));
    }

    #[test]
    fn reports_respect_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let sarif = dir.path().join("r.sarif");
        let out = Outputs::check(Some(&sarif), None, None, &[]).unwrap();
        out.commit(BTreeMap::from([(sarif.clone(), b"{}".to_vec())])).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let umask = status.lines().find_map(|l| l.strip_prefix("Umask:")).unwrap().trim();
        let umask = u32::from_str_radix(umask, 8).unwrap();
        let mode = std::fs::metadata(&sarif).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666 & !umask, "mode {mode:o} under umask {umask:o}");
    }

    #[test]
    fn commit_writes_reports_and_moves_evidence() {
        let dir = tempfile::tempdir().unwrap();
        let (sarif, ev) = (dir.path().join("r.sarif"), dir.path().join("a/b/evidence"));
        let out = Outputs::check(Some(&sarif), None, Some(&ev), &[]).unwrap();
        let stage = out.evidence_stage(None).unwrap();
        std::fs::write(stage.join("index.html"), b"<html>").unwrap();
        assert!(!ev.exists() && !sarif.exists());
        out.commit(BTreeMap::from([(sarif.clone(), b"{}".to_vec())])).unwrap();
        assert_eq!(std::fs::read(&sarif).unwrap(), b"{}");
        assert_eq!(std::fs::read(ev.join("index.html")).unwrap(), b"<html>");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 2, "no staging folder or temporary file is left: {left:?}");
    }

    #[test]
    fn a_second_run_into_an_evidence_folder_removes_what_the_first_wrote_and_it_did_not() {
        let dir = tempfile::tempdir().unwrap();
        let ev = dir.path().join("evidence");
        let run = |files: &[&str]| {
            let out = Outputs::check(None, None, Some(&ev), &[]).unwrap();
            let stage = out.evidence_stage(None).unwrap();
            for f in files {
                let p = stage.join(f);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, f.as_bytes()).unwrap();
            }
            out.commit(BTreeMap::new()).unwrap();
        };
        run(&["index.html", "class-3-reach.png", "m1/class-7-nc-mask.png"]);
        // The user's own files in the folder, and one outside it, are never removed.
        std::fs::write(ev.join("notes.png"), b"mine").unwrap();
        std::fs::write(dir.path().join("outside.png"), b"mine").unwrap();
        run(&["index.html", "class-5-reach.png"]);
        let mut left: Vec<String> = super::files_under(&ev, std::path::Path::new(""))
            .unwrap()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        left.sort();
        assert_eq!(left, [super::EVIDENCE_LIST, "class-5-reach.png", "index.html", "notes.png"]);
        assert_eq!(std::fs::read(ev.join("index.html")).unwrap(), b"index.html");
        // A list naming paths outside the folder, a link, or other kinds of file removes none of them.
        std::os::unix::fs::symlink(dir.path().join("outside.png"), ev.join("link.png")).unwrap();
        std::fs::write(ev.join("data.bin"), b"mine").unwrap();
        let list = "../outside.png\n/tmp/x.png\nlink.png\ndata.bin\nnotes.png\nclass-5-reach.png\n";
        std::fs::write(ev.join(super::EVIDENCE_LIST), list).unwrap();
        run(&["index.html"]);
        assert!(dir.path().join("outside.png").exists() && ev.join("data.bin").exists());
        assert!(std::fs::symlink_metadata(ev.join("link.png")).is_ok());
        assert!(!ev.join("notes.png").exists(), "listed, so written by an earlier run");
        assert!(!ev.join("class-5-reach.png").exists());
    }

    #[test]
    fn a_dropped_run_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let ev = dir.path().join("evidence");
        let out = Outputs::check(None, None, Some(&ev), &[]).unwrap();
        std::fs::write(out.evidence_stage(None).unwrap().join("x.png"), b"png").unwrap();
        drop(out);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
    #[test]
    fn no_output_replaces_an_input() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.onnx");
        std::fs::write(&model, b"model").unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("train/0")).unwrap();
        let inputs = [("the model", model.as_path()), ("the --data folder", data.as_path())];
        let err = Outputs::check(None, Some(&model), None, &inputs).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "--json {}: is the model ({}); an output is never written over an input of the run",
                model.display(),
                model.display()
            )
        );
        for ev in [data.clone(), data.join("train/evidence")] {
            let err = Outputs::check(None, None, Some(&ev), &inputs).unwrap_err().to_string();
            assert!(err.ends_with("; evidence is never written into an input folder"), "{err}");
        }
        assert!(Outputs::check(Some(&dir.path().join("r.sarif")), None, Some(&dir.path().join("ev")), &inputs).is_ok());
    }
}
