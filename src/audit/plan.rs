//! The resolved audit plan: every detector's parameters after a preset and the options met
//! ([`crate::audit::Preset::apply`]), and the checks that run before any work. [`AuditPlan::check`]
//! needs no model and runs before any model or data is loaded; [`AuditPlan::check_classes`] needs the
//! model's class count and runs right after analysis; [`AuditPlan::check_data`] runs right after the
//! data is read, before any attack. Every count has a documented upper bound ([`BOUNDS`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};

use super::detectors::Detector;
use super::error::AuditError;
use super::options::{MethodChoice, Options};
use crate::data::ImageSet;
use crate::decide::{Calibration, DecideError};
use crate::detect::aegis::{AegisParams, DecisionRule, SHORTCUT_MIN_CLASSES};
use crate::detect::neural_cleanse::NeuralCleanseParams;
use crate::detect::precondition::PreconditionParams;
use crate::detect::reach::ReachParams;
use crate::detect::universal::UniversalParams;
use crate::detect::DetectError;

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

/// A count a user or a presets file can set, with its documented upper bound.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    /// The parameter, as in a presets file (or the flag's name for flag-only options).
    pub name: &'static str,
    /// The flag that sets it.
    pub flag: &'static str,
    /// The largest value accepted.
    pub max: usize,
    given: fn(&Options) -> bool,
    value: fn(&AuditPlan) -> usize,
}

/// The upper bound of every count (images, classes, steps, batch sizes, threads, runs), checked before
/// any work starts. They bound the work and the memory an audit may take, far above any useful value.
pub const BOUNDS: &[Bound] = &[
    Bound {
        name: "translation.seeds_per_class",
        flag: "--seeds-per-class",
        max: 100_000,
        given: |o| o.seeds_per_class.is_some(),
        value: |p| p.aegis.translation.seeds_per_class,
    },
    Bound {
        name: "translation.steps",
        flag: "--steps",
        max: 10_000,
        given: |o| o.steps.is_some(),
        value: |p| p.aegis.translation.steps,
    },
    Bound {
        name: "embedding.pca_dims",
        flag: "--pca-dims",
        max: 10_000,
        given: |o| o.pca_dims.is_some(),
        value: |p| p.aegis.pca_dims,
    },
    Bound {
        name: "min_cluster_size",
        flag: "--min-cluster-size",
        max: 100_000,
        given: |o| o.min_cluster_size.is_some(),
        value: |p| p.aegis.min_cluster_size,
    },
    Bound { name: "runs", flag: "--runs", max: 100, given: |o| o.runs.is_some(), value: |p| p.runs },
    Bound {
        name: "batch_size",
        flag: "--batch-size",
        max: 10_000,
        given: |o| o.batch_size.is_some(),
        value: |p| p.aegis.batch_size,
    },
    Bound {
        name: "threads",
        flag: "--threads",
        max: 1_024,
        given: |o| o.threads.is_some(),
        value: |p| p.given.threads.unwrap_or(0),
    },
    Bound {
        name: "classes",
        flag: "--classes",
        max: 100_000,
        given: |o| o.classes.is_some(),
        value: |p| p.classes.as_ref().map_or(0, Vec::len),
    },
    Bound {
        name: "precondition.images",
        flag: "--precondition-images",
        max: 100_000,
        given: |o| o.precondition_images.is_some(),
        value: |p| p.precondition.as_ref().map_or(0, |p| p.images),
    },
    Bound {
        name: "precondition.steps",
        flag: "--precondition-steps",
        max: 10_000,
        given: |o| o.precondition_steps.is_some(),
        value: |p| p.precondition.as_ref().map_or(0, |p| p.steps),
    },
    Bound {
        name: "neural_cleanse.images",
        flag: "--nc-images",
        max: 100_000,
        given: |o| o.nc_images.is_some(),
        value: |p| p.neural_cleanse.images,
    },
    Bound {
        name: "neural_cleanse.batch_size",
        flag: "--nc-batch",
        max: 10_000,
        given: |o| o.nc_batch.is_some(),
        value: |p| p.neural_cleanse.batch_size,
    },
    Bound {
        name: "neural_cleanse.epochs",
        flag: "--nc-epochs",
        max: 10_000,
        given: |o| o.nc_epochs.is_some(),
        value: |p| p.neural_cleanse.epochs,
    },
    Bound {
        name: "neural_cleanse.patience",
        flag: "--nc-patience",
        max: 10_000,
        given: |o| o.nc_patience.is_some(),
        value: |p| p.neural_cleanse.patience,
    },
    Bound {
        name: "neural_cleanse.early_stop_patience",
        flag: "--nc-early-stop-patience",
        max: 10_000,
        given: |o| o.nc_early_stop_patience.is_some(),
        value: |p| p.neural_cleanse.early_stop_patience,
    },
    Bound {
        name: "reach.images_per_class",
        flag: "--reach-images",
        max: 100_000,
        given: |o| o.reach_images.is_some(),
        value: |p| p.reach.images_per_class,
    },
    Bound {
        name: "reach.sweep_images_per_class",
        flag: "--reach-sweep-images",
        max: 100_000,
        given: |o| o.reach_sweep_images.is_some(),
        value: |p| p.reach.sweep_images_per_class,
    },
    Bound {
        name: "reach.steps",
        flag: "--reach-steps",
        max: 10_000,
        given: |o| o.reach_steps.is_some(),
        value: |p| p.reach.steps,
    },
    Bound {
        name: "reach.eps_sweep",
        flag: "--reach-eps-sweep",
        max: 100,
        given: |o| o.reach_eps_sweep.is_some(),
        value: |p| p.reach.eps_sweep.len(),
    },
    Bound {
        name: "reach.evidence_per_class",
        flag: "--reach-evidence",
        max: 1_000,
        given: |o| o.reach_evidence.is_some(),
        value: |p| p.reach.evidence_per_class,
    },
    Bound {
        name: "universal.images",
        flag: "--universal-images",
        max: 100_000,
        given: |o| o.universal_images.is_some(),
        value: |p| p.universal.images,
    },
    Bound {
        name: "universal.levels",
        flag: "--universal-levels",
        max: 100,
        given: |o| o.universal_levels.is_some(),
        value: |p| p.universal.levels.len(),
    },
    Bound {
        name: "universal.steps_per_level",
        flag: "--universal-steps",
        max: 10_000,
        given: |o| o.universal_steps.is_some(),
        value: |p| p.universal.steps_per_level,
    },
];

/// The bounds as lines for `--help` and the docs: `--flag  at most N`.
pub fn bounds_help() -> String {
    let mut text = String::from("Upper bounds (checked before any work; a preset's values too):\n");
    for b in BOUNDS {
        let what = if ["reach.eps_sweep", "universal.levels", "classes"].contains(&b.name) { " values" } else { "" };
        text.push_str(&format!("  {:<26} at most {}{what}\n", b.flag, b.max));
    }
    text
}

/// A flag and whether the options give it.
type GivenFlag = (&'static str, fn(&Options) -> bool);

/// The flags that set each detector's parameters, by the prefix of the parameter names.
const GROUP_FLAGS: &[(&str, &[GivenFlag])] = &[
    (
        "precondition.",
        &[
            ("--precondition-eps", |o| o.precondition_eps.is_some()),
            ("--precondition-steps", |o| o.precondition_steps.is_some()),
            ("--precondition-step", |o| o.precondition_step.is_some()),
            ("--precondition-images", |o| o.precondition_images.is_some()),
            ("--min-adv-accuracy", |o| o.min_adv_accuracy.is_some()),
        ],
    ),
    (
        "neural-cleanse ",
        &[
            ("--nc-images", |o| o.nc_images.is_some()),
            ("--nc-batch", |o| o.nc_batch.is_some()),
            ("--nc-epochs", |o| o.nc_epochs.is_some()),
            ("--nc-init-cost", |o| o.nc_init_cost.is_some()),
            ("--nc-target-success", |o| o.nc_target_success.is_some()),
            ("--nc-anomaly-threshold", |o| o.nc_anomaly_threshold.is_some()),
            ("--nc-reset-cost-to-zero", |o| o.nc_reset_cost_to_zero.is_some()),
            ("--nc-patience", |o| o.nc_patience.is_some()),
            ("--nc-cost-up", |o| o.nc_cost_up.is_some()),
            ("--nc-cost-down", |o| o.nc_cost_down.is_some()),
            ("--nc-early-stop-patience", |o| o.nc_early_stop_patience.is_some()),
            ("--nc-lr", |o| o.nc_lr.is_some()),
            ("--nc-beta1", |o| o.nc_beta1.is_some()),
            ("--nc-beta2", |o| o.nc_beta2.is_some()),
            ("--nc-adam-eps", |o| o.nc_adam_eps.is_some()),
        ],
    ),
    (
        "reach.",
        &[
            ("--reach-images", |o| o.reach_images.is_some()),
            ("--reach-sweep-images", |o| o.reach_sweep_images.is_some()),
            ("--reach-steps", |o| o.reach_steps.is_some()),
            ("--reach-step-factor", |o| o.reach_step_factor.is_some()),
            ("--reach-eps-sweep", |o| o.reach_eps_sweep.is_some()),
            ("--reach-median-level", |o| o.reach_median_level.is_some()),
            ("--reach-anomaly-threshold", |o| o.reach_anomaly_threshold.is_some()),
            ("--reach-min-ratio", |o| o.reach_min_ratio.is_some()),
            ("--reach-min-gap", |o| o.reach_min_gap.is_some()),
            ("--reach-evidence", |o| o.reach_evidence.is_some()),
            ("--batch-size", |o| o.batch_size.is_some()),
        ],
    ),
    (
        "universal.",
        &[
            ("--universal-images", |o| o.universal_images.is_some()),
            ("--universal-levels", |o| o.universal_levels.is_some()),
            ("--universal-steps", |o| o.universal_steps.is_some()),
            ("--universal-step-factor", |o| o.universal_step_factor.is_some()),
            ("--universal-success-level", |o| o.universal_success_level.is_some()),
            ("--universal-anomaly-threshold", |o| o.universal_anomaly_threshold.is_some()),
            ("--universal-min-spread", |o| o.universal_min_spread.is_some()),
            ("--batch-size", |o| o.batch_size.is_some()),
        ],
    ),
    (
        "",
        &[
            ("--seeds-per-class", |o| o.seeds_per_class.is_some()),
            ("--eps", |o| o.eps.is_some()),
            ("--step", |o| o.step.is_some()),
            ("--steps", |o| o.steps.is_some()),
            ("--pca-dims", |o| o.pca_dims.is_some()),
            ("--perplexity", |o| o.perplexity.is_some()),
            ("--bandwidth", |o| o.bandwidth.is_some()),
            ("--min-cluster-fraction", |o| o.min_cluster_fraction.is_some()),
            ("--min-cluster-size", |o| o.min_cluster_size.is_some()),
            ("--shortcut-threshold", |o| o.shortcut_threshold.is_some()),
            ("--batch-size", |o| o.batch_size.is_some()),
        ],
    ),
];

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

    /// The origin of a detector's parameters: the preset, and the flags given for that detector.
    fn group_origin(&self, problem: &str) -> String {
        let flags = GROUP_FLAGS
            .iter()
            .find(|(prefix, _)| problem.starts_with(prefix))
            .map(|(_, flags)| flags.iter().filter(|(_, given)| given(&self.given)).map(|(f, _)| *f).collect::<Vec<_>>())
            .unwrap_or_default();
        match flags.as_slice() {
            [] => self.preset_text(),
            _ => format!("{} with {}", self.preset_text(), flags.join(", ")),
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
        for b in BOUNDS {
            let value = (b.value)(self);
            if value > b.max {
                let origin = if (b.given)(&self.given) { b.flag.to_string() } else { self.preset_text() };
                let rule = format!("must be at most {} (the documented bound)", b.max);
                return Err(AuditError::Param { name: b.name.into(), value: value.to_string(), origin, rule });
            }
        }
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

    /// The checks that need the model's class count `k`: every listed class exists, and the shortcut
    /// decision has at least three classes to compare.
    pub fn check_classes(&self, k: usize) -> Result<(), AuditError> {
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
        if let Some(bad) = set.labels.iter().find(|&&l| l < 0 || l as usize >= k) {
            return Err(AuditError::Data {
                path: path.to_path_buf(),
                split,
                problem: format!("label {bad} out of range (the model has {k} classes)"),
            });
        }
        Ok(())
    }

    /// The audited classes of a model with `k` classes, in the order given.
    pub fn audited(&self, k: usize) -> Vec<usize> {
        self.classes.clone().unwrap_or_else(|| (0..k).collect())
    }

    /// Every parameter and seed, by name, for the report.
    pub fn parameters(&self, device: &str, feature_tensor: &str) -> BTreeMap<String, Value> {
        let a = &self.aegis;
        [
            ("method", json!(self.method.name())),
            ("translation", json!(a.translation)),
            ("reducer", json!(format!("{:?}", a.reducer).to_lowercase())),
            ("pca_dims", json!(a.pca_dims)),
            ("perplexity", json!(a.perplexity)),
            ("clusterer", json!(format!("{:?}", a.clusterer).to_lowercase())),
            ("bandwidth", json!(a.bandwidth)),
            ("min_cluster_fraction", json!(a.min_cluster_fraction)),
            ("min_cluster_size", json!(a.min_cluster_size)),
            ("max_clusters", json!(a.max_clusters)),
            ("decision", json!(a.decision)),
            ("shortcut_threshold", json!(a.shortcut_threshold)),
            ("runs", json!(self.runs)),
            ("seed", json!(a.seed)),
            ("batch_size", json!(a.batch_size)),
            ("precondition", json!(self.precondition)),
            ("neural_cleanse", json!(self.neural_cleanse)),
            ("reach", json!(self.reach)),
            ("universal", json!(self.universal)),
            ("detectors", json!(self.detectors.as_ref().map(|d| d.iter().map(|d| d.name()).collect::<Vec<_>>()))),
            ("calibration", json!(self.calibration.as_ref().map(|c| c.origin.clone()))),
            ("embed", json!(a.embed)),
            ("classes", json!(self.classes)),
            ("effort", json!(self.effort)),
            ("time_budget", json!(self.time_budget)),
            ("device", json!(device)),
            ("threads", json!(self.given.threads.unwrap_or(0))),
            ("memory_limit", json!(self.given.memory_limit.unwrap_or(super::memory::DEFAULT_MEMORY_LIMIT))),
            ("preset", json!(self.preset)),
            ("feature_tensor", json!(feature_tensor)),
        ]
        .into_iter()
        .chain(self.preset_derivation.as_ref().map(|d| ("preset_derivation", json!(d))))
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::options::Options;
    use super::super::preset::PresetFile;
    use super::BOUNDS;

    fn plan(o: &Options) -> super::AuditPlan {
        let file = PresetFile::builtin();
        file.presets["mnist"].apply("mnist", &file.origin, o)
    }

    #[test]
    fn the_builtin_presets_pass_every_check() {
        PresetFile::builtin().check().unwrap();
    }

    #[test]
    fn each_bound_names_the_flag_that_broke_it() {
        let o = Options { seeds_per_class: Some(1_000_000_000_000), ..Options::default() };
        let err = plan(&o).check().unwrap_err().to_string();
        assert_eq!(
            err,
            "translation.seeds_per_class = 1000000000000 (--seeds-per-class): must be at most 100000 (the documented \
             bound)"
        );
        let o = Options { threads: Some(5000), ..Options::default() };
        assert!(plan(&o).check().unwrap_err().to_string().contains("(--threads): must be at most 1024"));
        assert!(BOUNDS.iter().all(|b| b.max >= 100 && b.flag.starts_with("--")));
    }

    #[test]
    fn docs_list_every_bound() {
        let doc = include_str!("../../docs/options.md");
        for b in BOUNDS {
            let line = doc.lines().find(|l| l.starts_with(&format!("| `{}` |", b.flag)));
            assert!(line.is_some_and(|l| l.ends_with(&format!("| {} |", b.max))), "docs/options.md: {}", b.flag);
        }
    }

    #[test]
    fn counts_of_zero_duplicates_and_runs_are_refused() {
        for (o, want) in [
            (Options { steps: Some(0), ..Options::default() }, "translation.steps = 0: must be >= 1"),
            (Options { batch_size: Some(0), ..Options::default() }, "batch_size = 0: must be >= 1"),
            (Options { runs: Some(0), ..Options::default() }, "--runs 0: must be at least 1"),
            (Options { classes: Some(vec![1, 1, 1]), ..Options::default() }, "class 1 is listed more than once"),
            (Options { seeds_per_class: Some(0), ..Options::default() }, "translation.seeds_per_class = 0"),
        ] {
            let err = plan(&o).check().unwrap_err().to_string();
            assert!(err.contains(want), "{o:?}: {err}");
        }
    }

    #[test]
    fn detector_rules_name_the_preset_and_the_flags_given() {
        let o = Options { precondition_steps: Some(0), ..Options::default() };
        let err = plan(&o).check().unwrap_err().to_string();
        assert_eq!(
            err,
            "precondition.steps = 0: must be >= 1 (preset 'mnist' of built-in config/presets.yaml with \
             --precondition-steps)"
        );
    }

    #[test]
    fn classes_and_labels_are_checked_against_the_model() {
        let p = plan(&Options { classes: Some(vec![0, 3, 12]), ..Options::default() });
        p.check().unwrap();
        let err = p.check_classes(10).unwrap_err().to_string();
        assert_eq!(err, "--classes: class 12 does not exist (the model has 10 classes)");
        let p = plan(&Options { classes: Some(vec![12, 3]), ..Options::default() });
        assert!(p.check_classes(10).unwrap_err().to_string().contains("class 12 does not exist"));
        let p = plan(&Options { classes: Some(vec![1, 2]), ..Options::default() });
        assert!(p.check_classes(10).unwrap_err().to_string().contains("needs at least 3 (got 2)"));
        let p = plan(&Options::default());
        assert!(p.check_classes(2).unwrap_err().to_string().contains("needs at least 3 (got 2)"));
        p.check_classes(10).unwrap();
    }
}
