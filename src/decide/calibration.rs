//! The calibration file: which detectors the fused decision uses and with what weight, the target
//! model-level false-positive rate, and the raw per-class anomaly indices of known-clean calibration
//! models from which every null distribution is fitted at load time, with each calibration model's
//! adversarial accuracy (the robustness check) so that a model can be judged against the calibration
//! models of most similar robustness ([`Calibration::near`]). The built-in file
//! (`config/calibration.json`) comes from the calibration half of the project's benchmark;
//! `aegis-audit calibrate` writes one from any set of audited clean models.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::null::EmpiricalNull;
use super::DecideError;

/// The calibration file format this aegis-audit writes and reads: 2, whose null classes hold the anomaly
/// indices of the detectors' index version 2 (Neural Cleanse and AEGIS on the log scale; version 1
/// files held the first version's indices, which new audits no longer compute, so they are refused with
/// what to do).
pub const CALIBRATION_VERSION: u32 = 2;

/// The largest weight a detector may have in the fused score: the score is a weighted sum of
/// `−ln p` (each at most about 700), so weights above this only overflow it.
pub const MAX_WEIGHT: f64 = 1000.0;

/// The largest magnitude of an anomaly index in a calibration file (as in reports).
pub const MAX_INDEX: f64 = 1e9;

/// The largest calibration file read.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// The calibration compiled into the binary.
pub const DEFAULT_CALIBRATION: &str = include_str!("../../config/calibration.json");

/// A detector's part in the fused score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorWeight {
    /// The detector's name as in the report (`aegis`, `neural-cleanse`, `reach`, `universal`).
    pub name: String,
    /// Its weight in the fused score (`Σ weight · −ln p`); 0 keeps it in the report but out of the score.
    pub weight: f64,
}

/// One class of a known-clean calibration model: the anomaly index each detector gave it.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NullClass {
    /// The model it came from (name or hash), for provenance.
    pub model: String,
    /// The class.
    pub class: usize,
    /// Anomaly index per detector name (signed: larger is more suspicious).
    pub indices: BTreeMap<String, f64>,
    /// The model's adversarial accuracy in the robustness check (absent when it was not measured).
    pub adversarial_accuracy: Option<f64>,
}

/// The calibration file as stored (JSON).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationFile {
    /// Format version ([`CALIBRATION_VERSION`]).
    pub version: u32,
    /// Where the numbers come from (models, tool version, command).
    pub description: String,
    /// Target model-level false-positive rate α.
    pub target_fpr: f64,
    /// Fraction of the null samples the exponential tail is fitted on.
    pub tail_fraction: f64,
    /// The detectors and their weights.
    pub detectors: Vec<DetectorWeight>,
    /// When set, a model whose robustness check ran is judged against the null classes of only this many
    /// calibration models: those whose adversarial accuracy is nearest its own ([`Calibration::near`]).
    /// How far each detector's index can be trusted depends on the model's robustness (AEGIS's
    /// translations are meaningful on robust models, noisy on standard ones); p-values against clean
    /// models of similar robustness carry that into the fused score, with no threshold on robustness.
    pub robustness_neighbours: Option<usize>,
    /// The presets (data and input shape) of the calibration models' audits. The thresholds hold for
    /// models audited with one of them; a model audited with another preset is judged against null
    /// distributions measured on other data, and its report says so. Empty in files that do not say.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub presets: Vec<String>,
    /// The clean calibration classes.
    pub null_classes: Vec<NullClass>,
    /// The classes that adaptive audits of clean models measured in full (each audit's screen candidates
    /// and reference sample), with the indices those audits computed among their shortlist. An adaptive
    /// audit is judged against these when the file has them ([`Calibration::shortlists`]): they were
    /// chosen the way its own shortlist was, so its model-level p-value counts the classes it measured;
    /// otherwise against `null_classes`, counting every class the screen looked at. Empty in files that
    /// do not have them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shortlist_classes: Vec<NullClass>,
    /// The presets of the adaptive audits that gave `shortlist_classes`: an adaptive audit judged against
    /// the shortlists is told when its preset is not among them, as `presets` tells a full audit. Empty
    /// in files that do not say (then `presets` stands for both).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shortlist_presets: Vec<String>,
}

/// A checked calibration, its per-detector null distributions fitted.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    /// The file it came from.
    pub file: CalibrationFile,
    /// Where it was read from (`built-in` or a path), for the report.
    pub origin: String,
    /// Null distribution of each weighted detector's index.
    pub nulls: BTreeMap<String, EmpiricalNull>,
    /// The calibration of adaptive audits, fitted on the file's `shortlist_classes` (`None` when it has
    /// none).
    pub shortlists: Option<Box<Calibration>>,
}

impl CalibrationFile {
    /// Parses and checks a calibration file; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<CalibrationFile, DecideError> {
        let file: CalibrationFile =
            serde_json::from_str(text).map_err(|e| DecideError::Calibration(format!("{origin}: {e}")))?;
        file.check().map_err(|e| DecideError::Calibration(format!("{origin}: {e}")))?;
        Ok(file)
    }

    fn check(&self) -> Result<(), String> {
        if self.version == 1 {
            return Err(
                "version 1: its null classes hold the first version's anomaly indices, while this aegis-audit \
                 compares Neural Cleanse's and AEGIS's statistics on the log scale; make it again with \
                 `aegis-audit calibrate` from the same audit reports (their stored values are re-indexed)"
                    .into(),
            );
        }
        if self.version != CALIBRATION_VERSION {
            return Err(format!("version {} (aegis-audit reads version {CALIBRATION_VERSION})", self.version));
        }
        if !(self.target_fpr > 0.0 && self.target_fpr < 1.0) {
            return Err(format!("target_fpr {} must be in (0, 1)", self.target_fpr));
        }
        if !(self.tail_fraction > 0.0 && self.tail_fraction < 1.0) {
            return Err(format!("tail_fraction {} must be in (0, 1)", self.tail_fraction));
        }
        if self.detectors.is_empty() {
            return Err("no detectors".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for d in &self.detectors {
            if !seen.insert(d.name.as_str()) {
                return Err(format!("detector '{}' listed twice", d.name));
            }
            if !(d.weight.is_finite() && (0.0..=MAX_WEIGHT).contains(&d.weight)) {
                return Err(format!("detector '{}': weight {} must be in [0, {MAX_WEIGHT}]", d.name, d.weight));
            }
        }
        if !self.detectors.iter().any(|d| d.weight > 0.0) {
            return Err("every detector has weight 0".into());
        }
        if self.shortlist_classes.is_empty() && !self.shortlist_presets.is_empty() {
            return Err("shortlist_presets names presets but there are no shortlist_classes".into());
        }
        for c in self.null_classes.iter().chain(&self.shortlist_classes) {
            if let Some((name, v)) = c.indices.iter().find(|(_, v)| !(v.is_finite() && v.abs() <= MAX_INDEX)) {
                return Err(format!(
                    "model '{}' class {}: index of '{name}' is {v}, outside [-{MAX_INDEX:e}, {MAX_INDEX:e}]",
                    c.model, c.class
                ));
            }
            if let Some(a) = c.adversarial_accuracy.filter(|a| !(a.is_finite() && (0.0..=1.0).contains(a))) {
                return Err(format!(
                    "model '{}' class {}: adversarial accuracy {a} is not in [0, 1]",
                    c.model, c.class
                ));
            }
        }
        if let Some(n) = self.robustness_neighbours {
            let measured = self.robustness_of_models().len();
            if n < 2 || n > measured {
                return Err(format!(
                    "robustness_neighbours {n} must be between 2 and the {measured} calibration models whose \
                     adversarial accuracy is recorded"
                ));
            }
        }
        Ok(())
    }
}

impl CalibrationFile {
    /// Each calibration model's adversarial accuracy (models without one left out), in file order; a
    /// model is its name with its accuracy.
    pub fn robustness_of_models(&self) -> Vec<(&str, f64)> {
        let mut out: Vec<(&str, f64)> = Vec::new();
        for c in &self.null_classes {
            if let Some(a) = c.adversarial_accuracy {
                if !out.iter().any(|&(m, x)| m == c.model && x == a) {
                    out.push((&c.model, a));
                }
            }
        }
        out
    }
}

/// The calibration models a robustness-matched decision used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Neighbourhood {
    /// The audited model's adversarial accuracy.
    pub adversarial_accuracy: f64,
    /// Calibration models used (the nearest in adversarial accuracy).
    pub models: usize,
    /// Their lowest and highest adversarial accuracy.
    pub range: [f64; 2],
}

impl Calibration {
    /// The calibration to judge a model of adversarial accuracy `robustness` with: when the file sets
    /// `robustness_neighbours` N and `robustness` is known, a calibration fitted on the null classes of the
    /// N calibration models nearest in adversarial accuracy (ties: the earlier model in the file), with
    /// what it used; otherwise `None` (the whole calibration applies).
    pub fn near(&self, robustness: Option<f64>) -> Result<Option<(Calibration, Neighbourhood)>, DecideError> {
        let (Some(n), Some(a)) = (self.file.robustness_neighbours, robustness) else {
            return Ok(None);
        };
        if !a.is_finite() {
            return Ok(None);
        }
        let mut models = self.file.robustness_of_models();
        models.sort_by(|x, y| (x.1 - a).abs().total_cmp(&(y.1 - a).abs()));
        models.truncate(n);
        let lo = models.iter().map(|m| m.1).fold(f64::INFINITY, f64::min);
        let hi = models.iter().map(|m| m.1).fold(f64::NEG_INFINITY, f64::max);
        let kept = |c: &NullClass| models.iter().any(|&(m, x)| m == c.model && Some(x) == c.adversarial_accuracy);
        let file = CalibrationFile {
            robustness_neighbours: None,
            null_classes: self.file.null_classes.iter().filter(|c| kept(c)).cloned().collect(),
            shortlist_classes: Vec::new(), // adaptive audits are judged against `shortlists`
            ..self.file.clone()
        };
        let origin = format!("{} (the {n} calibration models nearest in adversarial accuracy)", self.origin);
        let near = Calibration::new(file, &origin)?;
        Ok(Some((near, Neighbourhood { adversarial_accuracy: a, models: n, range: [lo, hi] })))
    }

    /// Fits the null distribution of every weighted detector.
    pub fn new(file: CalibrationFile, origin: &str) -> Result<Calibration, DecideError> {
        file.check().map_err(|e| DecideError::Calibration(format!("{origin}: {e}")))?;
        let mut nulls = BTreeMap::new();
        for d in file.detectors.iter().filter(|d| d.weight > 0.0) {
            let samples: Vec<f64> = file.null_classes.iter().filter_map(|c| c.indices.get(&d.name).copied()).collect();
            let null = EmpiricalNull::fit(&samples, file.tail_fraction)
                .map_err(|e| DecideError::Calibration(format!("{origin}: detector '{}': {e}", d.name)))?;
            nulls.insert(d.name.clone(), null);
        }
        let shortlists = if file.shortlist_classes.is_empty() {
            None
        } else {
            let of_shortlists = CalibrationFile {
                robustness_neighbours: None,
                presets: if file.shortlist_presets.is_empty() {
                    file.presets.clone()
                } else {
                    file.shortlist_presets.clone()
                },
                null_classes: file.shortlist_classes.clone(),
                shortlist_classes: Vec::new(),
                shortlist_presets: Vec::new(),
                ..file.clone()
            };
            Some(Box::new(Calibration::new(of_shortlists, &format!("{origin}, shortlists of adaptive audits"))?))
        };
        Ok(Calibration { file, origin: origin.to_string(), nulls, shortlists })
    }

    /// The presets of the audits whose classes judged a decision: the shortlists' when it was judged
    /// against them (`shortlist_null`, [`crate::decide::FusedDecision::shortlist_null`]), else the
    /// file's.
    pub fn judged_presets(&self, shortlist_null: bool) -> &[String] {
        match (&self.shortlists, shortlist_null) {
            (Some(s), true) => &s.file.presets,
            _ => &self.file.presets,
        }
    }

    /// The built-in calibration.
    pub fn builtin() -> Result<Calibration, DecideError> {
        Calibration::new(CalibrationFile::parse(DEFAULT_CALIBRATION, "built-in calibration")?, "built-in")
    }

    /// Reads a calibration file (a regular file of at most [`MAX_FILE_BYTES`]).
    pub fn load(path: &Path) -> Result<Calibration, DecideError> {
        let bad = |problem: String| DecideError::Calibration(format!("{}: {problem}", path.display()));
        let text = crate::fsio::read_text(path, MAX_FILE_BYTES, "a calibration file").map_err(|e| bad(e.problem()))?;
        let origin = path.display().to_string();
        Calibration::new(CalibrationFile::parse(&text, &origin)?, &origin)
    }

    /// The weight of detector `name` (0 when it is not in the fused score).
    pub fn weight(&self, name: &str) -> f64 {
        self.file.detectors.iter().find(|d| d.name == name).map_or(0.0, |d| d.weight)
    }
}
