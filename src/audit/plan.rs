//! The resolved audit plan: every detector's parameters after a preset and the options met
//! ([`crate::audit::Preset::apply`]), and the checks that run before any work. [`AuditPlan::check`]
//! needs no model and runs before any model or data is loaded; [`AuditPlan::check_classes`] needs the
//! model's class count and runs right after analysis; [`AuditPlan::check_data`] runs right after the
//! data is read, before any attack. Every count has a documented upper bound, declared with its flag ([`super::flags`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};

use super::detectors::Detector;
use super::error::AuditError;
use super::flags::{bounds, broken_bound, ClusteringSettings, FlagGroup, GeneralSettings};
use super::options::{MethodChoice, Options};
use super::preset::EmbeddingParams;
use crate::data::ImageSet;
use crate::decide::{Calibration, DecideError};
use crate::detect::aegis::{AegisParams, DecisionRule, SHORTCUT_MIN_CLASSES};
use crate::detect::neural_cleanse::NeuralCleanseParams;
use crate::detect::precondition::PreconditionParams;
use crate::detect::reach::ReachParams;
use crate::detect::universal::UniversalParams;
use crate::detect::DetectError;

/// The fewest classes a model may have: every detector scores a class by how far it stands out from
/// the model's other classes, and of two neither can.
pub const MIN_MODEL_CLASSES: usize = 3;

/// Everything an audit runs with besides the model and the data.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditPlan {
    /// The preset the parameters came from.
    pub preset: String,
    /// The presets file it is in (`built-in ...` or a path).
    pub preset_origin: String,
    /// How the preset was derived, for an input shape no preset matches (`None`: a preset of the file).
    pub preset_derivation: Option<String>,
    /// The detector.
    pub method: MethodChoice,
    /// AEGIS parameters (seed and batch size included).
    pub aegis: AegisParams,
    /// Neural Cleanse parameters.
    pub neural_cleanse: NeuralCleanseParams,
    /// Targeted-reachability parameters.
    pub reach: ReachParams,
    /// Universal-reach parameters.
    pub universal: UniversalParams,
    /// The fused decision's detectors as asked for (`--detectors`); `None`: those the calibration
    /// weights.
    pub detectors: Option<Vec<Detector>>,
    /// The fused decision's calibration file (`--calibration`); `None`: the built-in one.
    pub calibration_path: Option<PathBuf>,
    /// The calibration, once loaded (the audit loads it once, before any model, and
    /// [`AuditPlan::check`] then checks `--detectors` against it).
    pub calibration: Option<Arc<Calibration>>,
    /// Independent AEGIS runs (seeds `seed`, `seed + 1`, …); a class is flagged by majority.
    pub runs: usize,
    /// Classes to examine (all when `None`).
    pub classes: Option<Vec<usize>>,
    /// The effort across classes (full, or adaptive above a class count).
    pub effort: super::EffortParams,
    /// Seconds each model's audit may take (`--time-budget`): the effort is planned to fit.
    pub time_budget: Option<f64>,
    /// The model's input normalisation (`--input-mean`, `--input-std`), put in front of it; `None`:
    /// the model takes pixels in [0, 1].
    pub input_normalisation: Option<crate::grad::InputNormalisation>,
    /// The robustness check, or `None` to skip it.
    pub precondition: Option<PreconditionParams>,
    /// With `--skip-precondition`: the robustness check's parameters as resolved anyway, so that its
    /// flags (`--precondition-eps -1`, `--min-adv-accuracy NaN`) are refused rather than ignored.
    pub skipped_precondition: Option<PreconditionParams>,
    /// The options the plan was resolved from (to name the flag behind a value in messages).
    pub given: Options,
}

/// The largest `--time-budget`, seconds (a week).
pub const MAX_TIME_BUDGET: f64 = 604_800.0;

/// The bounds as lines for `--help` and the docs: `--flag  at most N`.
pub fn bounds_help() -> String {
    let mut text = String::from("Upper bounds (checked before any work; a preset's values too):\n");
    for b in bounds() {
        let what =
            if ["reach.eps_sweep", "universal.levels", "classes"].contains(&b.name.as_str()) { " values" } else { "" };
        text.push_str(&format!("  {:<26} at most {}{what}\n", b.flag, b.max));
    }
    text
}

impl AuditPlan {
    /// Where the preset's values came from, for messages.
    fn preset_text(&self) -> String {
        if self.preset.contains(", ") {
            // Checked before the model is known, against every preset it may select.
            format!("every preset ({}) of {}", self.preset, self.preset_origin)
        } else {
            format!("preset '{}' of {}", self.preset, self.preset_origin)
        }
    }

    /// The origin of a detector's parameters: the preset, and the flags given for that detector (the
    /// group whose section the problem names).
    fn group_origin(&self, problem: &str) -> String {
        let g = &self.given;
        // Every detector but Neural Cleanse and the precondition evaluates in batches of --batch-size.
        let batch = || g.general.given().into_iter().filter(|f| *f == "--batch-size").collect::<Vec<_>>();
        let flags = if problem.starts_with("precondition.") {
            g.precondition.given()
        } else if problem.starts_with("neural-cleanse ") {
            g.neural_cleanse.given()
        } else if problem.starts_with("reach.") {
            [g.reach.given(), batch()].concat()
        } else if problem.starts_with("universal.") {
            [g.universal.given(), batch()].concat()
        } else {
            [g.translation.given(), g.embedding.given(), g.clustering.given(), g.decision.given(), batch()].concat()
        };
        match flags.as_slice() {
            [] => self.preset_text(),
            _ => format!("{} with {}", self.preset_text(), flags.join(", ")),
        }
    }

    /// Every count against its bound ([`super::flags`]), each section as resolved.
    fn check_bounds(&self) -> Result<(), AuditError> {
        let (g, a) = (&self.given, &self.aegis);
        let precondition = self.precondition.as_ref().or(self.skipped_precondition.as_ref());
        let embedding = EmbeddingParams { pca_dims: a.pca_dims, perplexity: a.perplexity };
        let broken = broken_bound(&g.translation, &a.translation)
            .or_else(|| broken_bound(&g.embedding, &embedding))
            .or_else(|| broken_bound(&g.clustering, &g.clustering.resolve(ClusteringSettings::defaults())))
            .or_else(|| broken_bound(&g.general, &g.general.resolve(GeneralSettings::default())))
            .or_else(|| broken_bound(&g.runtime, &g.runtime.settings()))
            .or_else(|| precondition.and_then(|p| broken_bound(&g.precondition, p)))
            .or_else(|| broken_bound(&g.neural_cleanse, &self.neural_cleanse))
            .or_else(|| broken_bound(&g.reach, &self.reach))
            .or_else(|| broken_bound(&g.universal, &self.universal));
        match broken {
            None => Ok(()),
            Some((name, value, max, flag)) => Err(AuditError::Param {
                name,
                value: value.to_string(),
                origin: flag.map_or_else(|| self.preset_text(), str::to_string),
                rule: format!("must be at most {max} (the documented bound)"),
            }),
        }
    }

    fn detector_check(&self, result: Result<(), DetectError>) -> Result<(), AuditError> {
        result.map_err(|e| {
            let problem = match e {
                DetectError::InvalidParam(text) => text,
                other => other.to_string(),
            };
            AuditError::Params { origin: self.group_origin(&problem), problem }
        })
    }

    /// The largest batch any detector asks one evaluation for (the memory budget never needs to
    /// allow more).
    pub fn largest_batch(&self) -> usize {
        [self.aegis.batch_size, self.neural_cleanse.batch_size, self.reach.batch_size, self.universal.batch_size]
            .into_iter()
            .max()
            .unwrap_or(1)
    }

    /// Every check that needs no model: each count within its bound, `runs` at least 1, no class
    /// listed twice, each detector's parameter rules. Errors name the parameter, its value and where it
    /// came from.
    pub fn check(&self) -> Result<(), AuditError> {
        self.check_bounds()?;
        if self.runs == 0 {
            return Err(AuditError::Usage("--runs 0: must be at least 1".into()));
        }
        if let Some(classes) = &self.classes {
            if classes.is_empty() {
                return Err(AuditError::Usage("--classes: the list is empty".into()));
            }
            let mut seen = BTreeSet::new();
            if let Some(dup) = classes.iter().find(|&&c| !seen.insert(c)) {
                return Err(AuditError::Usage(format!("--classes: class {dup} is listed more than once")));
            }
        }
        if let Some(n) = &self.input_normalisation {
            n.check().map_err(AuditError::Usage)?;
        }
        if let Some(b) = self.time_budget {
            if !(b.is_finite() && b > 0.0 && b <= MAX_TIME_BUDGET) {
                return Err(AuditError::Usage(format!(
                    "--time-budget {b}: must be a number of seconds above 0 and at most {MAX_TIME_BUDGET} (a week)"
                )));
            }
            if self.method != MethodChoice::Auto {
                return Err(AuditError::Usage(format!(
                    "--time-budget plans the fused decision's effort across classes (--method auto), not --method {}",
                    self.method.name()
                )));
            }
            if self.effort.mode == super::EffortMode::Full {
                return Err(AuditError::Usage(
                    "--time-budget with --effort full: a budget may need the adaptive effort; give one or the other"
                        .into(),
                ));
            }
        }
        self.detector_check(self.aegis.check())?;
        if let Some(p) = self.precondition.as_ref().or(self.skipped_precondition.as_ref()) {
            self.detector_check(p.check())?;
        }
        self.detector_check(self.neural_cleanse.check())?;
        self.detector_check(self.reach.check())?;
        self.detector_check(self.universal.check())?;
        if self.method == MethodChoice::Auto {
            // The calibration is read once per audit ([`AuditPlan::load_calibration`]), not per preset.
            if let Some(calibration) = &self.calibration {
                self.fused_detectors(calibration)?;
            }
        } else {
            if self.detectors.is_some() {
                return Err(AuditError::Usage(format!(
                    "--detectors: only the fused decision (--method auto) runs several detectors, not --method {}",
                    self.method.name()
                )));
            }
            if self.calibration_path.is_some() {
                return Err(AuditError::Usage(format!(
                    "--calibration: only the fused decision (--method auto) uses a calibration, not --method {}",
                    self.method.name()
                )));
            }
        }
        Ok(())
    }

    /// Reads and checks the fused decision's calibration: `--calibration FILE`, or the built-in one.
    pub fn load_calibration(&self) -> Result<Arc<Calibration>, AuditError> {
        let calibration = match &self.calibration_path {
            Some(path) => Calibration::load(path)?,
            None => Calibration::builtin()?,
        };
        super::stored_reports::check_detector_names(&calibration)?;
        Ok(Arc::new(calibration))
    }

    /// The detectors the fused decision runs: `--detectors` (at least one of them weighted in the
    /// calibration), or every detector the calibration weights (each one this aegis-audit has).
    pub fn fused_detectors(&self, calibration: &Calibration) -> Result<Vec<Detector>, AuditError> {
        let weighted: Vec<&str> =
            calibration.file.detectors.iter().filter(|d| d.weight > 0.0).map(|d| d.name.as_str()).collect();
        let bad = |text: String| AuditError::Calibration(DecideError::Calibration(text));
        match &self.detectors {
            Some(asked) => {
                if !asked.iter().any(|d| weighted.contains(&d.name())) {
                    return Err(AuditError::Usage(format!(
                        "--detectors {}: none of them is weighted in the calibration {} (weighted: {})",
                        asked.iter().map(|d| d.name()).collect::<Vec<_>>().join(","),
                        calibration.origin,
                        weighted.join(", ")
                    )));
                }
                Ok(asked.clone())
            }
            None => {
                let mut out = Vec::new();
                for name in &weighted {
                    let d = Detector::from_name(name).ok_or_else(|| {
                        bad(format!(
                            "{}: detector '{name}' is weighted but this aegis-audit has no such detector (it has {})",
                            calibration.origin,
                            Detector::ALL.iter().map(|d| d.name()).collect::<Vec<_>>().join(", ")
                        ))
                    })?;
                    out.push(d);
                }
                // In the order the fused decision runs them.
                out.sort_by_key(|d| Detector::ALL.iter().position(|a| a == d));
                Ok(out)
            }
        }
    }

    /// The shortcut decision compares the audited classes: at least three. Checked with the class count
    /// (after a listed class is known to exist, the more basic error).
    fn check_shortcut_classes(&self, audited: usize) -> Result<(), AuditError> {
        let aegis_may_run = match self.method {
            MethodChoice::Aegis => true,
            MethodChoice::Auto => self.detectors.as_ref().is_none_or(|d| d.contains(&Detector::Aegis)),
            _ => false,
        };
        if aegis_may_run && self.aegis.decision == DecisionRule::Shortcut && audited < SHORTCUT_MIN_CLASSES {
            return Err(AuditError::Usage(format!(
                "--classes: the shortcut decision compares the audited classes and needs at least \
                 {SHORTCUT_MIN_CLASSES} (got {audited}); add classes or pass --aegis-decision clusters"
            )));
        }
        Ok(())
    }

    /// The checks that need the model's class count `k`: a model of fewer than three classes is refused
    /// (every detector compares each class with the others: of two classes, neither can stand out), every
    /// listed class exists, and the shortcut decision has at least three classes to compare.
    pub fn check_classes(&self, k: usize) -> Result<(), AuditError> {
        if self.classes.is_none() && k < MIN_MODEL_CLASSES {
            return Err(AuditError::Usage(format!(
                "the model has {k} classes: every detector compares each class with the others and needs at \
                 least {MIN_MODEL_CLASSES}, so a binary classifier cannot be audited (docs/limits.md)"
            )));
        }
        if let Some(bad) = self.classes.iter().flatten().find(|&&c| c >= k) {
            return Err(AuditError::Usage(format!(
                "--classes: class {bad} does not exist (the model has {k} classes)"
            )));
        }
        self.check_shortcut_classes(self.audited(k).len())
    }

    /// The checks on a split of the data read for a model with `k` classes: every label is a class of the
    /// model.
    pub fn check_data(&self, path: &Path, split: &'static str, set: &ImageSet, k: usize) -> Result<(), AuditError> {
        if let Some(&bad) = set.labels.iter().find(|&&l| l < 0 || l as usize >= k) {
            // Where the format names its classes (ImageFolder's folders, CIFAR-10's meta), the class too.
            let named = usize::try_from(bad).ok().and_then(|i| set.class_names.get(i));
            let (name, data) = match named {
                Some(n) => (
                    format!(" (class '{}')", crate::escape::escape(n)),
                    format!("; the data has {} classes", set.class_names.len()),
                ),
                None => (String::new(), String::new()),
            };
            return Err(AuditError::Data {
                path: path.to_path_buf(),
                split,
                problem: format!("label {bad}{name} out of range (the model has {k} classes{data})"),
            });
        }
        Ok(())
    }

    /// The audited classes of a model with `k` classes, in the order given.
    pub fn audited(&self, k: usize) -> Vec<usize> {
        self.classes.clone().unwrap_or_else(|| (0..k).collect())
    }

    /// Every parameter and seed, by name, for the report: AEGIS's as its params serialise, then the
    /// rest of the plan's.
    pub fn parameters(&self, device: &str, feature_tensor: &str) -> BTreeMap<String, Value> {
        let aegis = match json!(self.aegis) {
            Value::Object(fields) => fields.into_iter().collect(),
            _ => Vec::new(),
        };
        let detectors = self.detectors.as_ref().map(|d| d.iter().map(|d| d.name()).collect::<Vec<_>>());
        let memory_limit = self.given.memory_limit.unwrap_or(super::memory::DEFAULT_MEMORY_LIMIT);
        [
            ("method", json!(self.method.name())),
            ("runs", json!(self.runs)),
            ("precondition", json!(self.precondition)),
            ("neural_cleanse", json!(self.neural_cleanse)),
            ("reach", json!(self.reach)),
            ("universal", json!(self.universal)),
            ("detectors", json!(detectors)),
            ("calibration", json!(self.calibration.as_ref().map(|c| c.origin.clone()))),
            ("classes", json!(self.classes)),
            ("effort", json!(self.effort)),
            ("time_budget", json!(self.time_budget)),
            ("device", json!(device)),
            ("threads", json!(self.given.runtime.settings().threads)),
            ("memory_limit", json!(memory_limit)),
            ("preset", json!(self.preset)),
            ("feature_tensor", json!(feature_tensor)),
        ]
        .into_iter()
        .chain(self.preset_derivation.as_ref().map(|d| ("preset_derivation", json!(d))))
        .chain(self.input_normalisation.as_ref().map(|n| ("input_normalisation", json!(n))))
        .chain((self.given.resize != crate::data::Resize::None).then(|| ("resize", json!(self.given.resize))))
        .map(|(k, v)| (k.to_string(), v))
        .chain(aegis)
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::options::Options;
    use super::super::preset::PresetFile;
    use crate::audit::flags::{GeneralFlags, PreconditionFlags, RuntimeFlags, TranslationFlags};

    fn plan(o: &Options) -> super::AuditPlan {
        let file = PresetFile::builtin();
        file.presets["mnist"].apply("mnist", &file.origin, o)
    }

    #[test]
    fn the_builtin_presets_pass_every_check() {
        PresetFile::builtin().check().unwrap();
    }

    #[test]
    fn each_error_names_the_flag_that_broke_it() {
        let translation = TranslationFlags { seeds_per_class: Some(1_000_000_000_000), ..TranslationFlags::default() };
        let precondition = PreconditionFlags { steps: Some(0), ..PreconditionFlags::default() };
        let threads = RuntimeFlags { threads: Some(5000), ..RuntimeFlags::default() };
        for (o, want) in [
            (
                Options { translation, ..Options::default() },
                "translation.seeds_per_class = 1000000000000 (--seeds-per-class): must be at most 100000 (the \
                 documented bound)",
            ),
            (
                // A detector's rule names the preset and the flags given for that detector.
                Options { precondition, ..Options::default() },
                "precondition.steps = 0: must be >= 1 (preset 'mnist' of built-in config/presets.yaml with \
                 --precondition-steps)",
            ),
            (
                Options { runtime: threads, ..Options::default() },
                "threads = 5000 (--threads): must be at most 1024 (the documented bound)",
            ),
        ] {
            let err = plan(&o).check().unwrap_err().to_string();
            assert!(err.ends_with(want), "{err}");
        }
    }

    #[test]
    fn a_label_out_of_range_names_its_class_where_the_data_names_classes() {
        let mut set = crate::data::ImageSet {
            n: 2,
            c: 1,
            h: 1,
            w: 1,
            available: 2,
            pixels: vec![0.0, 1.0],
            labels: vec![1, 10],
            class_names: Vec::new(),
            source: "test".into(),
            format: crate::data::DatasetFormat::ImageFolder,
        };
        let p = plan(&Options::default());
        let err = |set: &crate::data::ImageSet| {
            p.check_data(std::path::Path::new("d"), "train", set, 10).unwrap_err().to_string()
        };
        assert!(err(&set).ends_with("label 10 out of range (the model has 10 classes)"), "{}", err(&set));
        set.class_names = (0..11).map(|i| format!("c{i}")).collect();
        set.class_names[10] = "extra\u{202e}".into();
        let e = err(&set);
        assert!(
            e.ends_with(
                "label 10 (class 'extra\\u{202e}') out of range (the model has 10 classes; the data has 11 classes)"
            ),
            "{e}"
        );
        set.labels = vec![1, 2];
        p.check_data(std::path::Path::new("d"), "train", &set, 10).unwrap();
    }

    #[test]
    fn docs_list_every_bound() {
        let doc = include_str!("../../docs/options.md");
        for b in crate::audit::flags::bounds() {
            let line = doc.lines().find(|l| l.starts_with(&format!("| `{}` |", b.flag)));
            assert!(line.is_some_and(|l| l.ends_with(&format!("| {} |", b.max))), "docs/options.md: {}", b.flag);
        }
    }

    #[test]
    fn counts_of_zero_duplicates_and_runs_are_refused() {
        let translation = |t: TranslationFlags| Options { translation: t, ..Options::default() };
        let general = |g: GeneralFlags| Options { general: g, ..Options::default() };
        for (o, want) in [
            (
                translation(TranslationFlags { steps: Some(0), ..Default::default() }),
                "translation.steps = 0: must be >= 1",
            ),
            (general(GeneralFlags { batch_size: Some(0), ..Default::default() }), "batch_size = 0: must be >= 1"),
            (general(GeneralFlags { runs: Some(0), ..Default::default() }), "--runs 0: must be at least 1"),
            (
                general(GeneralFlags { classes: Some(vec![1, 1, 1]), ..Default::default() }),
                "class 1 is listed more than once",
            ),
            (
                translation(TranslationFlags { seeds_per_class: Some(0), ..Default::default() }),
                "translation.seeds_per_class = 0",
            ),
        ] {
            let err = plan(&o).check().unwrap_err().to_string();
            assert!(err.contains(want), "{o:?}: {err}");
        }
    }

    #[test]
    fn classes_and_labels_are_checked_against_the_model() {
        let classes = |c: Vec<usize>| Options {
            general: GeneralFlags { classes: Some(c), ..GeneralFlags::default() },
            ..Options::default()
        };
        let p = plan(&classes(vec![0, 3, 12]));
        p.check().unwrap();
        let err = p.check_classes(10).unwrap_err().to_string();
        assert_eq!(err, "--classes: class 12 does not exist (the model has 10 classes)");
        let p = plan(&classes(vec![12, 3]));
        assert!(p.check_classes(10).unwrap_err().to_string().contains("class 12 does not exist"));
        let p = plan(&classes(vec![1, 2]));
        assert!(p.check_classes(10).unwrap_err().to_string().contains("needs at least 3 (got 2)"));
        let p = plan(&Options::default());
        let err = p.check_classes(2).unwrap_err().to_string();
        assert!(err.starts_with("the model has 2 classes") && err.contains("binary classifier"), "{err}");
        p.check_classes(10).unwrap();
    }
}
