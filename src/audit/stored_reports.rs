//! The fused decision over reports already written, without running any model: [`calibrate`] builds a
//! calibration file from the audit reports of known-clean models (every class of every model becomes a
//! null class with each detector's anomaly index), and [`decide`] re-applies the fused decision to the
//! detectors' indices stored in reports. Both read single-model JSON reports and several-model JSON
//! documents; anything else is an input error naming the file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::error::AuditError;
use super::one_model::calibration_mismatch;
use super::options::Detector;
use super::verdict::fused;
use crate::decide::{Calibration, CalibrationFile, DetectorIndices, DetectorWeight, FusedDecision, NullClass};
use crate::detect::INDEX_VERSION;
use crate::fsio;
use crate::report::{
    most_severe_exit, write_atomic, DetectorReport, ToolInfo, Verdict, EXIT_ERROR, EXIT_NOT_APPLICABLE,
};
use crate::Result;

/// The largest report file read: 32 MiB (a ten-class report is about 35 kB; a thousand-class one about
/// 3.5 MB). Parsing one takes at most about 17 times its size in memory (docs/hardening.md).
pub const MAX_REPORT_BYTES: u64 = 32 << 20;

/// The largest magnitude of an anomaly index read from a report or a calibration file: far above any
/// index a detector gives (the built-in calibration's largest is below 100), far below where the fused
/// score's arithmetic loses meaning.
pub const MAX_ANOMALY_INDEX: f64 = 1e9;

/// The largest `fused.classes_tested` a stored report may give (a model's class count is bounded far
/// below it by the audit's own checks).
const MAX_CLASSES_TESTED: u64 = 1 << 24;

/// One model's entry in a report file.
#[derive(Debug, Clone)]
pub struct StoredModel {
    /// The file it was read from.
    pub file: PathBuf,
    /// The model path as the report names it.
    pub model: String,
    /// The model's SHA-256, when the report has it.
    pub sha256: Option<String>,
    /// What the report holds for the model.
    pub entry: StoredEntry,
}

/// What a report holds for one model.
#[derive(Debug, Clone)]
pub enum StoredEntry {
    /// An audit report.
    Report {
        /// Its verdict (`clean`, `suspected`, `not-applicable`).
        verdict: String,
        /// The detectors that ran, with their per-class indices (empty in reports without them).
        detectors: Vec<DetectorReport>,
        /// The adversarial accuracy of the robustness check (absent when it was skipped).
        robustness: Option<f64>,
        /// The preset the audit used (`parameters.preset`; absent in reports without it).
        preset: Option<String>,
        /// The classes the decision chose among (`fused.classes_tested`; absent in reports without
        /// it, where every class listed was tested).
        tested: Option<usize>,
        /// The seeded random reference classes of an adaptive audit (`effort.screen.reference`): the
        /// classes a calibration may take from it.
        reference: Option<Vec<i64>>,
    },
    /// The model could not be audited (a several-model document's `error` entry).
    Failed(String),
}

impl StoredModel {
    fn bad(&self, problem: impl std::fmt::Display) -> AuditError {
        AuditError::Usage(format!("{}: model {}: {problem}", self.file.display(), self.model))
    }

    /// The detectors and the classes they cover (the same classes, in the same order, for each), or an
    /// error naming what is missing or mismatched.
    fn detectors(&self) -> Result<(&[DetectorReport], Vec<i64>), AuditError> {
        let detectors = match &self.entry {
            StoredEntry::Report { detectors, verdict, .. } => {
                if detectors.is_empty() {
                    return Err(self.bad(format!(
                        "the report holds no detector indices (verdict {verdict}; written by an aegis-audit without \
                         them, or no detector ran)"
                    )));
                }
                detectors.as_slice()
            }
            StoredEntry::Failed(error) => return Err(self.bad(format!("its audit failed ({error})"))),
        };
        let classes: Vec<i64> = detectors[0].classes.iter().map(|c| c.class).collect();
        let mut names = BTreeSet::new();
        for d in detectors {
            if Detector::from_name(&d.name).is_none() {
                let known: Vec<&str> = Detector::ALL.iter().map(|d| d.name()).collect();
                return Err(self.bad(format!("detector '{}' is not a detector (one of {})", d.name, known.join(", "))));
            }
            if !names.insert(d.name.as_str()) {
                return Err(self.bad(format!("detector '{}' is listed twice", d.name)));
            }
            if let Some(c) = d.classes.iter().find(|c| c.anomaly_index.abs() > MAX_ANOMALY_INDEX) {
                return Err(self.bad(format!(
                    "detector '{}' class {}: anomaly index {} is outside [-{MAX_ANOMALY_INDEX:e}, {MAX_ANOMALY_INDEX:e}]",
                    d.name, c.class, c.anomaly_index
                )));
            }
            let these: Vec<i64> = d.classes.iter().map(|c| c.class).collect();
            if these != classes {
                return Err(self.bad(format!(
                    "detectors '{}' and '{}' cover different classes ({these:?} vs {classes:?})",
                    d.name, detectors[0].name
                )));
            }
        }
        if let Some(bad) = classes.iter().find(|&&c| c < 0) {
            return Err(self.bad(format!("class {bad} is negative")));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(dup) = classes.iter().find(|&&c| !seen.insert(c)) {
            return Err(self.bad(format!("class {dup} is listed twice")));
        }
        Ok((detectors, classes))
    }

    /// The preset the model's audit used, when the report says.
    fn preset(&self) -> Option<&str> {
        match &self.entry {
            StoredEntry::Report { preset, .. } => preset.as_deref(),
            StoredEntry::Failed(_) => None,
        }
    }

    /// The classes the model-level p-value counts, at least the `listed` ones.
    fn tested(&self, listed: usize) -> usize {
        match &self.entry {
            StoredEntry::Report { tested: Some(t), .. } => (*t).max(listed),
            _ => listed,
        }
    }

    /// Whether the report is of an adaptive audit: fewer classes `listed` than it tested.
    fn adaptive(&self, listed: usize) -> bool {
        self.tested(listed) > listed
    }

    /// The classes of an adaptive audit a calibration may take: its seeded random reference classes
    /// (measured in full and chosen without looking at them, unlike the screen's candidates); `None`
    /// for a full audit, whose every class serves.
    fn null_reference(&self) -> Option<&[i64]> {
        match &self.entry {
            StoredEntry::Report { reference: Some(r), tested: Some(_), .. } => Some(r),
            _ => None,
        }
    }

    /// The adversarial accuracy of the model's robustness check, when the report has one.
    fn robustness(&self) -> Option<f64> {
        match &self.entry {
            StoredEntry::Report { robustness, .. } => *robustness,
            StoredEntry::Failed(_) => None,
        }
    }
}

/// Reads every report file: single-model reports and several-model documents, in order.
pub fn read_reports(paths: &[PathBuf]) -> Result<Vec<StoredModel>, AuditError> {
    if paths.is_empty() {
        return Err(AuditError::Usage("no report given".into()));
    }
    let mut out = Vec::new();
    for path in paths {
        let bad = |problem: String| AuditError::Usage(format!("{}: {problem}", path.display()));
        let bytes = fsio::read_input(path, MAX_REPORT_BYTES, "a report").map_err(|e| bad(e.problem()))?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| bad(format!("not a JSON report: {e}")))?;
        drop(bytes);
        if let Some(models) = value.get("models").and_then(Value::as_array) {
            if models.is_empty() {
                return Err(bad("the report holds no model (an empty models list): nothing to decide".into()));
            }
            for (i, m) in models.iter().enumerate() {
                let name = m.get("model").and_then(Value::as_str).map_or_else(|| format!("#{}", i + 1), str::to_string);
                match (m.get("report"), m.get("error").and_then(Value::as_str)) {
                    (Some(r), _) => out.push(stored(path, r).map_err(|p| bad(format!("model {name}: {p}")))?),
                    (None, Some(error)) => out.push(StoredModel {
                        file: path.clone(),
                        model: name,
                        sha256: None,
                        entry: StoredEntry::Failed(error.to_string()),
                    }),
                    (None, None) => return Err(bad(format!("model {name}: neither a report nor an error"))),
                }
            }
        } else if value.get("verdict").is_some() && value.get("model").is_some() {
            out.push(stored(path, &value).map_err(bad)?);
        } else {
            return Err(bad("not an aegis-audit JSON report (no verdict and model, no models list)".into()));
        }
    }
    let mut by_hash: BTreeMap<&str, &StoredModel> = BTreeMap::new();
    for m in &out {
        if let Some(hash) = m.sha256.as_deref() {
            if let Some(first) = by_hash.insert(hash, m) {
                return Err(m.bad(format!(
                    "the same model (sha256 {hash}) as model {} of {}: each model may be given once",
                    first.model,
                    first.file.display()
                )));
            }
        }
    }
    Ok(out)
}

/// One audit report (a JSON object) as a stored model.
fn stored(path: &Path, r: &Value) -> Result<StoredModel, String> {
    let model = r
        .pointer("/model/path")
        .and_then(Value::as_str)
        .ok_or("not an aegis-audit JSON report (no model.path)")?
        .to_string();
    let verdict = r.get("verdict").and_then(Value::as_str).ok_or("not an aegis-audit JSON report (no verdict)")?;
    let detectors: Vec<DetectorReport> = match r.get("detectors") {
        None => Vec::new(),
        Some(d) => serde_json::from_value(d.clone()).map_err(|e| format!("model {model}: detectors: {e}"))?,
    };
    let detectors = reindexed(r, detectors).map_err(|p| format!("model {model}: {p}"))?;
    let robustness = match r.pointer("/precondition/adversarial_accuracy") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_f64().filter(|a| (0.0..=1.0).contains(a)).ok_or_else(|| {
            format!("model {model}: precondition.adversarial_accuracy {v} is not a number in [0, 1]")
        })?),
    };
    let preset = r.pointer("/parameters/preset").and_then(Value::as_str).map(str::to_string);
    let reference = match r.pointer("/effort/screen/reference") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            serde_json::from_value::<Vec<i64>>(v.clone())
                .map_err(|e| format!("model {model}: effort.screen.reference: {e}"))?,
        ),
    };
    let tested = match r.pointer("/fused/classes_tested") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().filter(|&t| t <= MAX_CLASSES_TESTED).ok_or_else(|| {
            format!("model {model}: fused.classes_tested {v} is not a count up to {MAX_CLASSES_TESTED}")
        })? as usize),
    };
    Ok(StoredModel {
        file: path.to_path_buf(),
        sha256: r.pointer("/model/sha256").and_then(Value::as_str).map(str::to_string),
        model,
        entry: StoredEntry::Report { verdict: verdict.to_string(), detectors, robustness, preset, tested, reference },
    })
}

/// The detectors of report `r` with every index brought to this aegis-audit's index version
/// ([`INDEX_VERSION`]): a section written with an older version has its indices computed again from its
/// stored per-class values (each detector's `reindex`), which needs every class of the model (and, for AEGIS, one
/// run); a section from a newer version is refused.
fn reindexed(r: &Value, mut detectors: Vec<DetectorReport>) -> Result<Vec<DetectorReport>, String> {
    for d in detectors.iter_mut() {
        if d.index_version > INDEX_VERSION {
            return Err(format!(
                "detector '{}': index version {} is newer than this aegis-audit's ({INDEX_VERSION}): decide with the \
                 aegis-audit that wrote the report",
                d.name, d.index_version
            ));
        }
        if d.index_version == INDEX_VERSION {
            continue;
        }
        let Some(detector) = Detector::from_name(&d.name) else { continue };
        let values: Vec<f64> = d.classes.iter().map(|c| c.value).collect();
        if !detector.implementation().reindexes() {
            d.index_version = INDEX_VERSION; // the same index in both versions
            continue;
        }
        let old = |why: &str| {
            format!(
                "detector '{}': its anomaly indices are of index version {} (raw scale) and {why}, so they cannot be \
                 computed again from the report; audit the model again",
                d.name, d.index_version
            )
        };
        let k = r.pointer("/dataset/classes").and_then(Value::as_u64);
        if !k.is_some_and(|k| d.classes.iter().map(|c| c.class).eq(0..k as i64)) {
            return Err(old("cover only some of the model's classes"));
        }
        let runs = r.pointer("/parameters/runs").and_then(Value::as_u64);
        let new = detector.implementation().reindex(&values, runs).map_err(old)?;
        for (c, a) in d.classes.iter_mut().zip(new) {
            c.anomaly_index = a;
        }
        d.index_version = INDEX_VERSION;
    }
    Ok(detectors)
}

/// What `calibrate` needs.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrateOptions {
    /// Audit reports of known-clean models (JSON reports or several-model documents).
    pub reports: Vec<PathBuf>,
    /// The calibration file to write.
    pub output: PathBuf,
    /// Detector weights; `None`: 1 for every detector present in every report.
    pub weights: Option<Vec<(String, f64)>>,
    /// Target model-level false-positive rate α.
    pub target_fpr: f64,
    /// Fraction of the null samples the exponential tail is fitted on.
    pub tail_fraction: f64,
    /// Judge each audited model against only this many calibration models, the nearest in adversarial
    /// accuracy (`None`: against all of them); every report must then have a robustness check.
    pub robustness_neighbours: Option<usize>,
    /// The description; `None`: the models, the tool version and the command line.
    pub description: Option<String>,
    /// The command line, program name first (for the default description).
    pub command_line: Vec<String>,
    /// Accept reports whose verdict was "backdoor suspected" as clean (`--allow-suspected`); by default
    /// they are refused, since a calibration on a backdoored model raises every threshold.
    pub allow_suspected: bool,
}

/// What `calibrate` wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrateOutcome {
    /// The file written.
    pub output: PathBuf,
    /// Models read.
    pub models: usize,
    /// Null classes written.
    pub null_classes: usize,
    /// Shortlist classes written (classes measured by adaptive audits).
    pub shortlist_classes: usize,
    /// The detectors and their weights.
    pub weights: Vec<(String, f64)>,
    /// Warnings for the user (reports audited with different presets).
    pub warnings: Vec<String>,
}

/// Each report's detectors and classes; a report of an adaptive audit must name its reference classes.
fn per_model_classes(models: &[StoredModel]) -> Result<Vec<(&StoredModel, ModelIndices<'_>)>> {
    let mut per_model = Vec::new();
    for m in models {
        let (detectors, classes) = m.detectors()?;
        if m.adaptive(classes.len()) && m.null_reference().is_none_or(|r| r.is_empty()) {
            return Err(m
                .bad(format!(
                    "its audit measured {} of its {} classes in full (adaptive effort) and names no reference \
                     classes: a calibration needs classes chosen without looking at them; audit it again with \
                     --effort full",
                    classes.len(),
                    m.tested(classes.len())
                ))
                .into());
        }
        per_model.push((m, (detectors, classes)));
    }
    Ok(per_model)
}

/// Every detector present in every report, each with weight 1.
fn shared_detectors(per_model: &[(&StoredModel, ModelIndices<'_>)]) -> Vec<(String, f64)> {
    let first: Vec<String> = per_model[0].1 .0.iter().map(|d| d.name.clone()).collect();
    first
        .into_iter()
        .filter(|n| per_model.iter().all(|(_, (d, _))| d.iter().any(|x| &x.name == n)))
        .map(|n| (n, 1.0))
        .collect()
}

/// Builds a calibration file from the reports of known-clean models and writes it (atomically); the
/// calibration is checked (every weighted detector and the fused score get a null distribution) before
/// anything is written.
pub fn calibrate(options: &CalibrateOptions) -> Result<CalibrateOutcome> {
    let inputs: Vec<(&str, &Path)> = options.reports.iter().map(|r| ("a report read", r.as_path())).collect();
    check_output(&options.output, "-o", &inputs)?;
    let models = read_reports(&options.reports)?;
    if !options.allow_suspected {
        if let Some(m) =
            models.iter().find(|m| matches!(&m.entry, StoredEntry::Report { verdict, .. } if verdict == "suspected"))
        {
            return Err(m
                .bad(
                    "its verdict was \"backdoor suspected\": a calibration is made from known-clean models only; \
                     if this model is known to be clean, pass --allow-suspected",
                )
                .into());
        }
    }
    let per_model = per_model_classes(&models)?;
    let weights = options.weights.clone().unwrap_or_else(|| shared_detectors(&per_model));
    if weights.is_empty() {
        return Err(
            AuditError::Usage("no detector is present in every report: name them with --detectors".into()).into()
        );
    }
    let used: Vec<&str> = weights.iter().filter(|(_, w)| *w > 0.0).map(|(n, _)| n.as_str()).collect();
    let (null_classes, shortlist_classes) = calibration_classes(&per_model, &used)?;
    let names: Vec<String> = models.iter().map(|m| m.model.clone()).collect();
    let description = options.description.clone().unwrap_or_else(|| {
        format!(
            "calibrated by {} {} on the audit reports of {} models assumed clean ({}); command: {}",
            ToolInfo::default().name,
            ToolInfo::default().version,
            models.len(),
            names.join(", "),
            options.command_line.join(" ")
        )
    });
    let file = CalibrationFile {
        version: crate::decide::CALIBRATION_VERSION,
        description,
        target_fpr: options.target_fpr,
        tail_fraction: options.tail_fraction,
        detectors: weights
            .iter()
            .map(|(name, weight)| DetectorWeight { name: name.clone(), weight: *weight })
            .collect(),
        robustness_neighbours: options.robustness_neighbours,
        presets: presets_of(models.iter()),
        shortlist_presets: if shortlist_classes.is_empty() {
            Vec::new()
        } else {
            presets_of(per_model.iter().filter(|(m, (_, classes))| m.adaptive(classes.len())).map(|(m, _)| *m))
        },
        null_classes,
        shortlist_classes,
    };
    if options.robustness_neighbours.is_some() {
        if let Some(m) = models.iter().find(|m| m.robustness().is_none()) {
            return Err(m
                .bad(
                    "the report has no robustness check, which --robustness-neighbours needs (audit without \
                      --skip-precondition)",
                )
                .into());
        }
    }
    check_fittable(&file, &options.output, &used)?;
    let mut text = serde_json::to_string_pretty(&file).map_err(crate::report::ReportError::from)?;
    text.push('\n');
    write_output(&options.output, &text)?;
    let warnings = calibration_warnings(&file, &models);
    Ok(CalibrateOutcome {
        output: options.output.clone(),
        models: models.len(),
        null_classes: file.null_classes.len(),
        shortlist_classes: file.shortlist_classes.len(),
        weights,
        warnings,
    })
}

/// A stored model's detectors and the classes they cover ([`StoredModel::detectors`]).
type ModelIndices<'a> = (&'a [DetectorReport], Vec<i64>);

/// The calibration's null classes and shortlist classes, each with the finite indices of its
/// detectors (an infinite index of a `used` detector is refused). The null classes: every class of every
/// model, of an adaptive audit its reference classes only (the screen's candidates are the classes it
/// found most suspicious, not a sample). The shortlist classes: every class an adaptive audit measured,
/// candidates and reference, as adaptive audits are judged against them ([`CalibrationFile`]).
fn calibration_classes(
    per_model: &[(&StoredModel, ModelIndices<'_>)],
    used: &[&str],
) -> Result<(Vec<NullClass>, Vec<NullClass>)> {
    let mut null_classes = Vec::new();
    let mut shortlist_classes = Vec::new();
    for (m, (detectors, classes)) in per_model {
        let adaptive = m.adaptive(classes.len());
        for (i, &class) in classes.iter().enumerate() {
            let in_null = m.null_reference().is_none_or(|r| r.contains(&class));
            let mut indices = BTreeMap::new();
            for d in detectors.iter() {
                let a = d.classes[i].anomaly_index;
                if a.is_nan() {
                    continue; // no comparison could be made: the class has no sample for this detector
                }
                if a.is_infinite() && used.contains(&d.name.as_str()) {
                    return Err(m
                        .bad(format!(
                            "class {class}: detector '{}' has an infinite anomaly index (its spread across classes \
                             was 0); calibrate without it (--detectors) or on other models",
                            d.name
                        ))
                        .into());
                }
                if a.is_finite() {
                    indices.insert(d.name.clone(), a);
                }
            }
            let c = NullClass {
                model: m.model.clone(),
                class: class as usize,
                indices,
                adversarial_accuracy: m.robustness(),
            };
            if adaptive {
                shortlist_classes.push(c.clone());
            }
            if in_null {
                null_classes.push(c);
            }
        }
    }
    Ok((null_classes, shortlist_classes))
}

/// Checks that `file` gives every `used` detector and the fused score a null distribution (for each
/// robustness neighbourhood too), by deciding one class of zeros.
fn check_fittable(file: &CalibrationFile, output: &Path, used: &[&str]) -> Result<()> {
    let origin = output.display().to_string();
    let calibration = Calibration::new(file.clone(), &origin)?;
    // The fused null must be fittable too: decide one class of zeros.
    let probe: Vec<DetectorIndices> =
        used.iter().map(|n| DetectorIndices { name: n.to_string(), indices: vec![0.0] }).collect();
    fused(&calibration, &probe, &[0], 1, None)?;
    if calibration.shortlists.is_some() {
        fused(&calibration, &probe, &[0], 2, None)?; // one class chosen among two: the shortlists' null
    }
    if file.robustness_neighbours.is_some() {
        for (_, a) in file.robustness_of_models() {
            fused(&calibration, &probe, &[0], 1, Some(a))?;
        }
    }
    Ok(())
}

/// The presets the `models`' audits were made with, each once, sorted (a report that names none adds none).
fn presets_of<'a>(models: impl Iterator<Item = &'a StoredModel>) -> Vec<String> {
    models.filter_map(|m| m.preset().map(str::to_string)).collect::<BTreeSet<_>>().into_iter().collect()
}

/// What a user should know about a calibration made from these `models`: several presets mixed, or
/// reports that do not name theirs.
fn calibration_warnings(file: &CalibrationFile, models: &[StoredModel]) -> Vec<String> {
    let mut warnings = Vec::new();
    if file.presets.len() > 1 {
        warnings.push(format!(
            "the reports were audited with different presets ({}): one calibration's thresholds are meant for \
             models of one kind; calibrate each kind on its own",
            file.presets.join(", ")
        ));
    }
    if let Some(m) = models.iter().find(|m| m.preset().is_none()) {
        warnings.push(format!(
            "{}: model {}: the report does not say which preset its audit used, so the calibration cannot say either",
            m.file.display(),
            m.model
        ));
    }
    warnings
}

/// Refuses a calibration that weights a name no detector has (the `decide` module fuses any names; the
/// audit knows which detectors exist).
pub(super) fn check_detector_names(calibration: &Calibration) -> Result<(), AuditError> {
    for d in &calibration.file.detectors {
        if Detector::from_name(&d.name).is_none() {
            let known: Vec<&str> = Detector::ALL.iter().map(|d| d.name()).collect();
            return Err(AuditError::Usage(format!(
                "calibration {}: detector '{}' is not a detector (one of {})",
                calibration.origin,
                d.name,
                known.join(", ")
            )));
        }
    }
    Ok(())
}

/// An output file: a new path or a regular file, in a writable folder (`fsio::check_output`), and none
/// of the command's `inputs` (`(what, path)`; `fsio::output::check_not_input`).
pub(super) fn check_output(path: &Path, flag: &'static str, inputs: &[(&str, &Path)]) -> Result<(), AuditError> {
    fsio::check_output(path)
        .and_then(|t| fsio::output::check_not_input(&t, inputs, |_| true))
        .map_err(|e| AuditError::Output { flag, path: path.to_path_buf(), problem: e.problem() })
}

/// Writes a command's one output file, renamed into place so that an interruption leaves the previous
/// file.
fn write_output(path: &Path, text: &str) -> Result<()> {
    fsio::cleanup::commit_section(|| write_atomic(path, text.as_bytes()))?;
    Ok(())
}

/// What `decide` needs.
#[derive(Debug, Clone, PartialEq)]
pub struct DecideOptions {
    /// Audit reports (JSON reports or several-model documents).
    pub reports: Vec<PathBuf>,
    /// The calibration file; `None`: the built-in one.
    pub calibration: Option<PathBuf>,
    /// Write the decisions as JSON here.
    pub json: Option<PathBuf>,
}

/// The fused decision for one model of a report.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredDecision {
    /// The report file.
    pub file: String,
    /// The model path as the report names it.
    pub model: String,
    /// The model's SHA-256.
    pub sha256: Option<String>,
    /// The model's exit code under the decision (2 for a model whose audit failed).
    pub exit_code: u8,
    /// The verdict (absent for a model whose audit failed).
    pub verdict: Option<Verdict>,
    /// The error of a model whose audit failed.
    pub error: Option<String>,
    /// Flagged classes.
    pub flagged: Vec<usize>,
    /// The fused decision's numbers: the detectors that entered the score, every class's fused score,
    /// p-values, flag and per-detector contributions, the model p-value and the threshold (absent for a
    /// model whose audit failed).
    pub fused: Option<FusedDecision>,
    /// Warnings, as the audit gives them (a calibration measured with other presets than the model's).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The decisions over every model of the reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecideRun {
    /// The tool.
    pub tool: ToolInfo,
    /// Where the calibration came from.
    pub calibration: String,
    /// The most severe exit code over the models (2 > 1 > 3 > 0).
    pub exit_code: u8,
    /// One decision per model, in the order read.
    pub models: Vec<StoredDecision>,
}

impl DecideRun {
    /// One line per model: the verdict, the model p-value and the flagged classes.
    pub fn lines(&self) -> String {
        let mut out = String::new();
        for m in &self.models {
            let line = match (&m.verdict, &m.error) {
                (_, Some(error)) => format!("{}: ERROR (exit 2): its audit failed: {error}", m.model),
                (Some(v), None) => match &m.fused {
                    // No fused decision (its method did not apply): the verdict alone.
                    None => format!("{}: {} (exit {})", m.model, v.word(), m.exit_code),
                    Some(f) => format!(
                        "{}: {} (exit {}), model p-value {}, highest fused score {:.2} vs threshold {:.2}, flagged: {}",
                        m.model,
                        v.word(),
                        m.exit_code,
                        p_text(f.model_p_value),
                        f.model_score,
                        f.threshold,
                        if m.flagged.is_empty() {
                            "none".to_string()
                        } else {
                            m.flagged.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
                        }
                    ),
                },
                (None, None) => format!("{}: exit {}", m.model, m.exit_code),
            };
            out.push_str(&crate::report::table::clean(&line));
            out.push('\n');
        }
        out
    }
}

fn p_text(p: f64) -> String {
    if p >= 0.01 {
        format!("{p:.2}")
    } else {
        format!("{p:.1e}")
    }
}

/// Re-applies the fused decision (the calibration given, or the built-in one) to the detectors'
/// indices stored in the reports, and writes the decisions as JSON when asked.
pub fn decide(options: &DecideOptions) -> Result<DecideRun> {
    if let Some(json) = &options.json {
        let mut inputs: Vec<(&str, &Path)> = options.reports.iter().map(|r| ("a report read", r.as_path())).collect();
        if let Some(c) = &options.calibration {
            inputs.push(("the --calibration file", c.as_path()));
        }
        check_output(json, "--json", &inputs)?;
    }
    let calibration = match &options.calibration {
        Some(path) => Calibration::load(path)?,
        None => Calibration::builtin()?,
    };
    check_detector_names(&calibration)?;
    let models = read_reports(&options.reports)?;
    let mut decisions = Vec::new();
    for m in &models {
        // Nothing to decide for a model whose audit failed, or whose method did not apply (no detector
        // ran, as for a linear model): it keeps its outcome.
        let undecided = match &m.entry {
            StoredEntry::Failed(error) => Some((EXIT_ERROR, None, Some(error.clone()))),
            StoredEntry::Report { verdict, detectors, .. } if verdict == "not-applicable" && detectors.is_empty() => {
                Some((EXIT_NOT_APPLICABLE, Some(Verdict::NotApplicable), None))
            }
            StoredEntry::Report { .. } => None,
        };
        if let Some((exit_code, verdict, error)) = undecided {
            decisions.push(StoredDecision {
                file: m.file.display().to_string(),
                model: m.model.clone(),
                sha256: m.sha256.clone(),
                exit_code,
                verdict,
                error,
                flagged: Vec::new(),
                fused: None,
                warnings: Vec::new(),
            });
            continue;
        }
        let (detectors, classes) = m.detectors()?;
        let classes: Vec<usize> = classes.iter().map(|&c| c as usize).collect();
        let indices: Vec<DetectorIndices> = detectors
            .iter()
            .map(|d| DetectorIndices {
                name: d.name.clone(),
                indices: d.classes.iter().map(|c| c.anomaly_index).collect(),
            })
            .collect();
        let decision =
            fused(&calibration, &indices, &classes, m.tested(classes.len()), m.robustness()).map_err(|e| m.bad(e))?;
        let judged = calibration.judged_presets(decision.fused.as_ref().is_some_and(|f| f.shortlist_null));
        let warnings = calibration_mismatch(judged, m.preset().unwrap_or("(not recorded)")).map(|n| n.message);
        decisions.push(StoredDecision {
            file: m.file.display().to_string(),
            model: m.model.clone(),
            sha256: m.sha256.clone(),
            exit_code: decision.verdict.exit_code(),
            verdict: Some(decision.verdict),
            error: None,
            flagged: decision.flagged,
            fused: decision.fused,
            warnings: warnings.into_iter().collect(),
        });
    }
    let exit_code = most_severe_exit(decisions.iter().map(|d| d.exit_code));
    let run =
        DecideRun { tool: ToolInfo::default(), calibration: calibration.origin.clone(), exit_code, models: decisions };
    if let Some(json) = &options.json {
        let mut text = serde_json::to_string_pretty(&run).map_err(crate::report::ReportError::from)?;
        text.push('\n');
        write_output(json, &text)?;
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::stored;
    use crate::audit::detectors::Detector;
    use crate::detect::INDEX_VERSION;

    /// A report of a 5-class model written before index versions: Neural Cleanse and AEGIS with raw
    /// indices (here nonsense, 9.0, to see them replaced), reach untouched.
    fn old_report(classes: &[i64], runs: u64) -> Value {
        let section = |name: &str, values: &[f64]| {
            json!({
                "name": name, "statistic": "s", "seconds": 1.0, "gradient_evaluations": 10,
                "classes": classes.iter().zip(values).map(|(c, v)| json!({
                    "class": c, "value": v, "anomaly_index": 9.0, "flagged": false, "reason": "r"
                })).collect::<Vec<_>>()
            })
        };
        json!({
            "model": { "path": "m.onnx" }, "verdict": "clean", "dataset": { "classes": 5 },
            "parameters": { "runs": runs },
            "detectors": [
                section("neural-cleanse", &[40.0, 42.0, 38.0, 45.0, 6.5]),
                section("aegis", &[5.0, 5.5, 6.0, 4.0, 5.2]),
                section("reach", &[0.1, 0.2, 0.1, 0.9, 0.1]),
            ]
        })
    }

    #[test]
    fn reports_of_the_first_index_version_are_reindexed_from_their_values() {
        let all = [0, 1, 2, 3, 4];
        let m = stored(std::path::Path::new("r.json"), &old_report(&all, 1)).unwrap();
        let super::StoredEntry::Report { detectors, .. } = m.entry else { panic!("not a report") };
        for (d, detector) in detectors.iter().zip([Detector::NeuralCleanse, Detector::Aegis]) {
            let values: Vec<f64> = d.classes.iter().map(|c| c.value).collect();
            let want = detector.implementation().reindex(&values, Some(1)).unwrap();
            let got: Vec<f64> = d.classes.iter().map(|c| c.anomaly_index).collect();
            assert_eq!(got, want, "{}", d.name);
            assert_eq!(d.index_version, INDEX_VERSION);
        }
        // 6.5 among 38..45 on the log scale: a low outlier, positive.
        assert!(detectors[0].classes[4].anomaly_index > 10.0, "{:?}", detectors[0].classes[4]);
        // Reach's index did not change between versions: kept as stored.
        assert!(detectors[2].classes.iter().all(|c| c.anomaly_index == 9.0));

        // Not every class, or several AEGIS runs: the indices cannot be computed again.
        let e = stored(std::path::Path::new("r.json"), &old_report(&[0, 1, 2, 3], 1)).unwrap_err();
        assert!(e.contains("only some of the model's classes") && e.contains("audit the model again"), "{e}");
        let e = stored(std::path::Path::new("r.json"), &old_report(&all, 3)).unwrap_err();
        assert!(e.contains("several AEGIS runs"), "{e}");
        // A report of this version keeps its indices; one of a newer version is refused.
        let mut current = old_report(&all, 1);
        for d in current["detectors"].as_array_mut().unwrap() {
            d["index_version"] = json!(INDEX_VERSION);
        }
        let m = stored(std::path::Path::new("r.json"), &current).unwrap();
        let super::StoredEntry::Report { detectors, .. } = m.entry else { panic!("not a report") };
        assert!(detectors.iter().all(|d| d.classes.iter().all(|c| c.anomaly_index == 9.0)));
        current["detectors"][0]["index_version"] = json!(INDEX_VERSION + 1);
        let e = stored(std::path::Path::new("r.json"), &current).unwrap_err();
        assert!(e.contains("newer than this aegis-audit's"), "{e}");
    }
}
