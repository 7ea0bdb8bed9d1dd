//! Auditing one prepared model with its data, in order: the robustness precondition, the method
//! choice, the detectors (one for an explicit method, every detector of the fused set for `auto`; each
//! owns its own flags and is charged its gradient evaluations), the one decision step over the
//! detectors' outcomes, the evidence, and the report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::detectors::{capped, test_predictions, Cost, DetectContext, Detector, DetectorRun};
use super::effort::{fit_budget, full_images_per_class, prior_levels, shortlist, BudgetFit, Shortlist, FEWEST_CLASSES};
use super::evidence::{self, EvidenceFiles};
use super::method::{choose, MethodDecision};
use super::options::MethodChoice;
use super::plan::AuditPlan;
use super::prepare::PreparedModel;
use super::progress::bar;
use super::verdict::{decide, Decision, Rule};
use crate::attack::{AttackError, GradOutput, GradientModel};
use crate::data::{sample_indices, ImageSet};
use crate::decide::{Calibration, ClassScore, FusedDecision};
use crate::detect::precondition::{check_robustness, PreconditionResult};
use crate::detect::sample::{gather, HeldOut, Predictions};
use crate::detect::universal::run_universal;
use crate::detect::DetectError;
use crate::report::{
    AuditReport, ClassCost, ClassDetails, ClassResult, DatasetInfo, DetectorClass, DetectorReport, EffortInfo,
    FusedContribution, FusedInfo, Level, Method, MethodInfo, ModelInfo, Notification, Precondition, RobustnessMatch,
    ScreenInfo, Timings, ToolInfo,
};
use crate::Result;

/// The data an audit reads: the train split (seeds, clean class samples) and the test split (the
/// robustness check, Neural Cleanse, reach).
#[derive(Debug)]
pub struct AuditData {
    /// The dataset path as given.
    pub path: PathBuf,
    /// The train split.
    pub train: ImageSet,
    /// The test split.
    pub test: ImageSet,
}

/// Where one model's evidence goes: written into `stage` during the audit, moved to `dir` at the end.
#[derive(Debug, Clone)]
pub struct EvidenceTarget {
    /// The staging folder written now.
    pub stage: PathBuf,
    /// The folder the evidence will live in (as the report names it).
    pub dir: PathBuf,
}

/// Audits `prepared` under `plan`; `timings` holds the preparation's phases and is completed here.
pub fn audit_model(
    plan: &AuditPlan,
    prepared: &mut PreparedModel,
    data: &AuditData,
    evidence_target: Option<&EvidenceTarget>,
    progress: bool,
    command_line: &[String],
    mut timings: Timings,
) -> Result<AuditReport> {
    let start = Instant::now();
    let clock =
        Clock { before: timings.load + timings.analysis + timings.graph_build + timings.session + timings.data, start };
    let k = prepared.model.num_classes();
    let mut notifications = sampling_notes(data);
    notifications.extend(model_notes(&prepared.info));
    let device = format!("{:?}", prepared.model.device()).to_lowercase();
    let mut parameters = plan.parameters(&device, &prepared.analysis.feature.name);
    let precondition = precondition_phase(plan, prepared, data, progress, &mut notifications, &mut timings)?;
    let MethodDecision { method, reason, applicable } =
        choose(plan.method, precondition.as_ref(), prepared.info.linear);
    let audited = plan.audited(k);
    let (calibration, detectors) = detector_set(plan, method, &mut notifications)?;
    if method == Method::Fused {
        parameters
            .insert("detectors".into(), serde_json::json!(detectors.iter().map(|d| d.name()).collect::<Vec<_>>()));
    }
    // The clean predictions of the test split, computed by the first detector that needs them.
    let mut held_out = None;
    let mut class_costs = ClassCosts::new(k);
    // Above `effort.full_classes` classes, or when the time budget does not pay for every class (fused
    // decision): a cheap screen of every class, then the full effort on its shortlist.
    let planned = if applicable && method == Method::Fused {
        let mut counted = Counted::new(&mut prepared.model, &mut class_costs);
        let effort = EffortRun { plan, detectors: &detectors, audited: &audited, clock: &clock, progress };
        effort.screen(&mut counted, data, &mut held_out, &mut notifications)?
    } else {
        PlannedEffort::default()
    };
    let screen = planned.screen;
    // The classes every detector measures: the shortlist, or (full effort) all of them.
    let measured: Option<Vec<usize>> = screen.as_ref().map(|(_, shortlist)| shortlist.measured.clone());
    let mut runs = Vec::new();
    if applicable {
        let mut run = DetectorsRun {
            plan,
            data,
            audited: &audited,
            measured: measured.as_deref(),
            clock: &clock,
            progress,
            held_out: &mut held_out,
            class_costs: &mut class_costs,
        };
        runs = run.all(&detectors, &mut prepared.model, &mut notifications, &mut timings)?;
    }
    notifications.extend(budget_overrun(plan, &clock, planned.overrun_foreseen));
    let started = Instant::now();
    let rule = match &calibration {
        Some(c) => Rule::Fused(c),
        None => Rule::OwnFlags,
    };
    let decided = measured.as_deref().unwrap_or(&audited);
    let robustness = precondition.as_ref().map(|p| p.adv_accuracy);
    let decision = decide(&runs, applicable, rule, decided, audited.len(), robustness)?;
    // Judged against the calibration's full audits, or (an adaptive audit) its shortlists: their presets.
    let shortlist_null = decision.fused.as_ref().is_some_and(|f| f.shortlist_null);
    notifications.extend(
        calibration.as_ref().and_then(|c| calibration_mismatch(c.judged_presets(shortlist_null), &plan.preset)),
    );
    timings.decision += started.elapsed().as_secs_f64();
    let wall_time_s = start.elapsed().as_secs_f64();

    let started = Instant::now();
    let files = match evidence_target {
        Some(t) if !runs.is_empty() => evidence::write(&t.stage, &runs, &decision, data)?,
        _ => EvidenceFiles::default(),
    };
    timings.evidence = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let findings = Findings {
        method: MethodInfo { method, reason },
        parameters,
        precondition,
        runs,
        calibration: calibration.as_deref(),
        effort: effort_info(&audited, screen.map(|(s, _)| s), measured.as_deref(), &class_costs),
        notifications,
    };
    let mut report = findings.report(&decision, &files, prepared, data, command_line, wall_time_s);
    timings.report = started.elapsed().as_secs_f64();
    if let Some(t) = evidence_target {
        let started = Instant::now();
        report.evidence = Some(evidence::finish(&t.stage, &t.dir, &report, files.overview)?);
        timings.evidence += started.elapsed().as_secs_f64();
    }
    report.timings = timings;
    Ok(report)
}

/// The notes that a split was sampled because it holds more than a split keeps in memory.
fn sampling_notes(data: &AuditData) -> Vec<Notification> {
    [("train", &data.train), ("test", &data.test)]
        .into_iter()
        .filter(|(_, set)| set.available > set.n)
        .map(|(split, set)| Notification {
            level: Level::Note,
            message: format!(
                "the {split} split holds {} images, more than the {} values a split keeps in memory \
                 (data::MAX_KEPT_VALUES): a seeded sample of {} was read",
                set.available,
                crate::data::MAX_KEPT_VALUES,
                set.n
            ),
            class: None,
        })
        .collect()
}

/// The notes on how the model was read: stored in half precision and widened, or its open input size
/// fixed to the data's.
fn model_notes(info: &ModelInfo) -> Vec<Notification> {
    let widened = info.widened_from.as_ref().map(|from| {
        format!(
            "the model is stored in {from}: audited in float32 (its weights widened exactly), the same function \
             up to its {from} roundings"
        )
    });
    let fixed = info.open_dims_fixed.as_ref().map(|fixed| {
        format!(
            "the model's image input leaves its size open: audited at the data's image size ({fixed}); a model \
             meant for another size is audited only at this one"
        )
    });
    widened.into_iter().chain(fixed).map(|message| Notification { level: Level::Note, message, class: None }).collect()
}

/// The robustness check where the method needs one (timed into `timings`), or the warning that it was
/// skipped.
fn precondition_phase(
    plan: &AuditPlan,
    prepared: &mut PreparedModel,
    data: &AuditData,
    progress: bool,
    notifications: &mut Vec<Notification>,
    timings: &mut Timings,
) -> Result<Option<PreconditionResult>> {
    let needs_precondition = !matches!(plan.method, MethodChoice::NeuralCleanse | MethodChoice::Universal);
    Ok(match (&plan.precondition, needs_precondition) {
        (_, false) => None,
        (Some(p), true) => {
            let started = Instant::now();
            notifications.extend(capped("precondition.images", p.images, data.test.n, "test"));
            let r = run_precondition(plan, p, &mut prepared.model, &data.test, progress)?;
            timings.precondition = started.elapsed().as_secs_f64();
            notifications.extend(low_accuracy_note(r.clean_accuracy, r.images, prepared.model.num_classes()));
            Some(r)
        }
        (None, true) => {
            notifications.push(Notification {
                level: Level::Warning,
                message: if plan.method == MethodChoice::Auto {
                    "robustness precondition skipped (--skip-precondition): the report has no robustness \
                     measurement beside the fused decision"
                        .into()
                } else {
                    "robustness precondition skipped (--skip-precondition): AEGIS and reach are only valid for \
                     adversarially robust models"
                        .into()
                },
                class: None,
            });
            None
        }
    })
}

/// The fused decision's calibration, and the detectors that run: the calibration's (or `--detectors`)
/// for the fused decision, else the one the method names; the notes on the preset's derivation and on a
/// calibration measured with other presets.
fn detector_set(
    plan: &AuditPlan,
    method: Method,
    notifications: &mut Vec<Notification>,
) -> Result<(Option<Arc<Calibration>>, Vec<Detector>)> {
    let calibration = match method {
        Method::Fused => Some(match &plan.calibration {
            Some(c) => c.clone(),
            None => plan.load_calibration()?,
        }),
        _ => None,
    };
    let detectors = match (&calibration, method) {
        (Some(c), _) => plan.fused_detectors(c)?,
        (None, Method::Aegis) => vec![Detector::Aegis],
        (None, Method::NeuralCleanse) => vec![Detector::NeuralCleanse],
        (None, Method::Reach) => vec![Detector::Reach],
        (None, Method::Universal | Method::Fused) => vec![Detector::Universal],
    };
    notifications.extend(plan.preset_derivation.iter().map(|d| Notification {
        level: Level::Note,
        message: d.clone(),
        class: None,
    }));
    Ok((calibration, detectors))
}

/// The warning that the audit overran its time budget by more than 10%, with why: the overrun the
/// planning already announced (`foreseen`: [`PlannedEffort::overrun_foreseen`]), or an estimate of a
/// class's cost that was short.
fn budget_overrun(plan: &AuditPlan, clock: &Clock, foreseen: bool) -> Option<Notification> {
    let b = plan.time_budget?;
    let took = clock.elapsed();
    (took > 1.1 * b).then(|| Notification {
        level: Level::Warning,
        message: format!(
            "the audit took {took:.0} s, {:.0}% over its time budget of {} s ({})",
            100.0 * (took / b - 1.0),
            budget_text(b),
            if foreseen {
                "the fewest classes the audit gives the full effort did not fit it, as planned above"
            } else {
                "the estimate of a class's cost was short"
            }
        ),
        class: None,
    })
}

/// Running every detector of the audit, one after the other, on the same classes.
struct DetectorsRun<'a> {
    plan: &'a AuditPlan,
    data: &'a AuditData,
    audited: &'a [usize],
    measured: Option<&'a [usize]>,
    clock: &'a Clock,
    progress: bool,
    held_out: &'a mut Option<Predictions>,
    class_costs: &'a mut ClassCosts,
}

impl DetectorsRun<'_> {
    /// Each detector's run with its cost (seconds, gradient evaluations); its time goes into `timings`.
    /// With `measured` (an adaptive audit's shortlist), every detector measures those classes only;
    /// otherwise AEGIS measures the audited classes and the others every class of the model (their
    /// indices compare every class). Universal reach and reach share the clean predictions of the test
    /// split through `held_out`.
    fn all(
        &mut self,
        detectors: &[Detector],
        model: &mut dyn GradientModel,
        notifications: &mut Vec<Notification>,
        timings: &mut Timings,
    ) -> Result<Vec<DetectorRun>> {
        let mut runs = Vec::with_capacity(detectors.len());
        for &detector in detectors {
            if let (Some(b), true) = (self.plan.time_budget, self.progress) {
                let open = self.measured.map_or(self.audited.len(), <[usize]>::len);
                eprintln!(
                    "aegis-audit: {}: {open} classes open, {:.0} s of the {} s budget left",
                    detector.name(),
                    b - self.clock.elapsed(),
                    budget_text(b)
                );
            }
            let started = Instant::now();
            let mut counted = Counted::new(model, self.class_costs);
            let mut ctx = DetectContext {
                plan: self.plan,
                data: self.data,
                model: &mut counted,
                audited: self.audited,
                measured: self.measured,
                held_out: self.held_out,
                progress: self.progress,
                notifications,
            };
            let (outcome, measured) = detector.implementation().run(&mut ctx)?;
            let cost = Cost { seconds: started.elapsed().as_secs_f64(), gradient_evaluations: counted.images };
            measured.record_time(cost.seconds, timings);
            runs.push(DetectorRun { detector, outcome, measured, cost });
        }
        Ok(runs)
    }
}

/// What one model's audit found, before it becomes the report.
struct Findings<'a> {
    method: MethodInfo,
    parameters: std::collections::BTreeMap<String, serde_json::Value>,
    precondition: Option<PreconditionResult>,
    /// Each detector's run.
    runs: Vec<DetectorRun>,
    calibration: Option<&'a Calibration>,
    effort: EffortInfo,
    notifications: Vec<Notification>,
}

impl Findings<'_> {
    /// The report of the findings under `decision`, with the evidence `files` per class.
    fn report(
        self,
        decision: &Decision,
        files: &EvidenceFiles,
        prepared: &PreparedModel,
        data: &AuditData,
        command_line: &[String],
        wall_time_s: f64,
    ) -> AuditReport {
        let names = &data.train.class_names;
        let classes = match (&decision.fused, self.runs.first()) {
            (Some(f), _) => fused_class_results(f, decision, files, names),
            (None, Some(run)) => class_results(run, decision, files, data),
            (None, None) => Vec::new(),
        };
        let report = AuditReport {
            tool: ToolInfo::default(),
            command_line: command_line.to_vec(),
            model: prepared.info.clone(),
            dataset: dataset_info(&data.path, &data.train),
            method: self.method,
            parameters: self.parameters,
            precondition: self.precondition.map(|p| Precondition {
                epsilon: p.params.eps as f64,
                steps: p.params.steps,
                samples: p.images,
                clean_accuracy: p.clean_accuracy,
                adversarial_accuracy: p.adv_accuracy,
                threshold: p.params.min_adv_accuracy,
                passed: p.passed,
            }),
            classes,
            detectors: self.runs.iter().map(detector_report).collect(),
            fused: decision.fused.as_ref().zip(self.calibration).map(|(f, c)| fused_info(f, c)),
            verdict: decision.verdict,
            wall_time_s,
            timings: Timings::default(),
            memory: None,
            evidence: None,
            effort: Some(self.effort),
            notifications: self.notifications,
        };
        debug_assert_eq!(report.verdict, report.derived_verdict(), "one verdict rule");
        report
    }
}

/// A model that counts the images it evaluates (forward and backward through the gradient graph):
/// each detector's cost in the report, and through `per_class` each class's.
struct Counted<'a> {
    inner: &'a mut dyn GradientModel,
    images: u64,
    per_class: &'a mut ClassCosts,
}

impl<'a> Counted<'a> {
    fn new(inner: &'a mut dyn GradientModel, per_class: &'a mut ClassCosts) -> Self {
        Counted { inner, images: 0, per_class }
    }
}

/// Per class: the images evaluated with it as their label, and their share of the evaluation time.
#[derive(Debug, Clone)]
struct ClassCosts {
    images: Vec<u64>,
    seconds: Vec<f64>,
}

impl ClassCosts {
    fn new(k: usize) -> Self {
        ClassCosts { images: vec![0; k], seconds: vec![0.0; k] }
    }

    /// Charges one evaluation of `labels` that took `seconds` to the labels' classes, per image.
    fn charge(&mut self, labels: &[i64], seconds: f64) {
        let share = seconds / labels.len().max(1) as f64;
        for &y in labels {
            if let Some(i) = usize::try_from(y).ok().filter(|&i| i < self.images.len()) {
                self.images[i] += 1;
                self.seconds[i] += share;
            }
        }
    }
}

impl GradientModel for Counted<'_> {
    fn image_shape(&self) -> (usize, usize, usize) {
        self.inner.image_shape()
    }

    fn num_classes(&self) -> usize {
        self.inner.num_classes()
    }

    fn feature_dim(&self) -> usize {
        self.inner.feature_dim()
    }

    fn eval(&mut self, x: &[f32], n: usize, y: &[i64]) -> std::result::Result<GradOutput, AttackError> {
        self.images += n as u64;
        let started = Instant::now();
        let out = self.inner.eval(x, n, y);
        self.per_class.charge(&y[..n.min(y.len())], started.elapsed().as_secs_f64());
        out
    }
}

/// One detector's part of the report.
fn detector_report(run: &DetectorRun) -> DetectorReport {
    DetectorReport {
        name: run.detector.name().to_string(),
        statistic: run.outcome.statistic.to_string(),
        seconds: run.cost.seconds,
        gradient_evaluations: run.cost.gradient_evaluations,
        index_version: crate::detect::INDEX_VERSION,
        classes: run
            .outcome
            .classes
            .iter()
            .map(|s| DetectorClass {
                class: s.class as i64,
                value: s.value,
                anomaly_index: s.anomaly_index,
                flagged: s.flagged,
                reason: s.reason.clone(),
            })
            .collect(),
    }
}

/// The fused decision's model-level numbers for the report.
fn fused_info(f: &FusedDecision, c: &Calibration) -> FusedInfo {
    FusedInfo {
        calibration: c.origin.clone(),
        description: c.file.description.clone(),
        target_fpr: f.target_fpr,
        threshold: f.threshold,
        model_score: f.model_score,
        model_p_value: f.model_p_value,
        detectors: f.detectors.clone(),
        weights: f.detectors.iter().map(|d| (d.clone(), c.weight(d))).collect(),
        null_classes: f.null_classes,
        classes_tested: Some(f.classes_tested),
        shortlist_null: f.shortlist_null,
        robustness_match: f.neighbourhood.as_ref().map(|n| RobustnessMatch {
            adversarial_accuracy: n.adversarial_accuracy,
            models: n.models,
            range: n.range,
        }),
    }
}

/// The report's per-class results under the fused decision.
fn fused_class_results(
    f: &FusedDecision,
    decision: &Decision,
    files: &EvidenceFiles,
    names: &[String],
) -> Vec<ClassResult> {
    f.classes
        .iter()
        .map(|c| ClassResult {
            class: c.class as i64,
            name: names.get(c.class).cloned(),
            flagged: decision.flagged.contains(&c.class),
            summary: fused_summary(c, f),
            details: ClassDetails::Fused {
                score: c.score,
                class_p_value: c.class_p_value,
                model_p_value: c.model_p_value,
                threshold: f.threshold,
                contributions: c
                    .contributions
                    .iter()
                    .map(|p| FusedContribution {
                        detector: p.detector.clone(),
                        index: p.index,
                        p_value: p.p_value,
                        weight: p.weight,
                        score: p.score,
                    })
                    .collect(),
            },
            evidence: files.per_class.get(&c.class).cloned().unwrap_or_default(),
        })
        .collect()
}

/// A p-value in words: two decimals down to 0.01, then scientific.
pub(crate) fn p_text(p: f64) -> String {
    if p >= 0.01 {
        format!("{p:.2}")
    } else {
        format!("{p:.1e}")
    }
}

/// Why a class is (or is not) flagged by the fused decision, with the detectors that made its score.
pub(crate) fn fused_summary(c: &ClassScore, f: &FusedDecision) -> String {
    let audited = if f.shortlist_null {
        format!("a clean model whose adaptive audit shortlisted {} classes", f.classes.len())
    } else {
        format!("a clean model audited on {} classes", f.classes_tested)
    };
    let part =
        |p: &crate::decide::Contribution| format!("{} (index {:.2}, p = {})", p.detector, p.index, p_text(p.p_value));
    // The largest contributions that make up three quarters of the score (at most three).
    let mut main = Vec::new();
    let mut sum = 0.0;
    for p in c.contributions.iter().filter(|p| p.score > 0.0).take(3) {
        main.push(part(p));
        sum += p.score;
        if sum >= 0.75 * c.score {
            break;
        }
    }
    let parts = match main.len() {
        0 => "no detector found the class unusual".to_string(),
        1 => main.remove(0),
        _ => {
            let last = main.pop().unwrap_or_default();
            format!("{} and {last}", main.join(", "))
        }
    };
    if c.flagged {
        format!(
            "class {}: fused score {:.1} ≥ threshold {:.1} (probability {} that {audited} scores this high), \
             mostly {parts}: backdoor suspected",
            c.class,
            c.score,
            f.threshold,
            p_text(c.model_p_value)
        )
    } else {
        format!(
            "class {}: fused score {:.1} < threshold {:.1} ({audited} scores this high with probability {}); \
             {}{parts}",
            c.class,
            c.score,
            f.threshold,
            p_text(c.model_p_value),
            if c.contributions.iter().any(|p| p.score > 0.0) { "largest part " } else { "" }
        )
    }
}

/// The warning a fused decision carries when its calibration was measured on models audited with
/// other presets (other data and input shapes) than this one's, or does not say which.
pub(super) fn calibration_mismatch(presets: &[String], preset: &str) -> Option<Notification> {
    let message = if presets.is_empty() {
        format!(
            "the calibration does not say which presets its models were audited with: its thresholds and \
             false-positive rate may not hold for this model (preset {preset})"
        )
    } else if !presets.iter().any(|p| p == preset) {
        format!(
            "the calibration was measured on models audited with preset {}, this model with preset {preset}: \
             its thresholds and false-positive rate are not known to hold here; calibrate on clean models of this \
             kind (aegis-audit calibrate) and pass --calibration",
            presets.join(", ")
        )
    } else {
        return None;
    };
    Some(Notification { level: Level::Warning, message, class: None })
}

fn dataset_info(path: &Path, set: &ImageSet) -> DatasetInfo {
    DatasetInfo {
        path: path.display().to_string(),
        format: format!("{:?}", set.format).to_lowercase(),
        // One file (a held-out set) serves every role; a folder gives the train split here.
        split: if path.is_file() { "all" } else { "train" }.to_string(),
        images: set.n,
        classes: set.num_classes(),
        image_shape: [set.c, set.h, set.w],
    }
}

/// Below this clean accuracy on the test images the report warns that the data may not be the model's.
const LOW_CLEAN_ACCURACY: f64 = 0.5;

/// A warning when the model classifies under [`LOW_CLEAN_ACCURACY`] of the `images` test images correctly:
/// every detector compares classes on images the model classifies, so data of another kind (other
/// classes, another order, another scaling) makes the statistics meaningless without failing.
fn low_accuracy_note(clean_accuracy: f64, images: usize, classes: usize) -> Option<Notification> {
    (clean_accuracy < LOW_CLEAN_ACCURACY).then(|| Notification {
        level: Level::Warning,
        message: format!(
            "the model classifies only {:.1}% of {images} test images correctly (chance: {:.1}%): check that \
             --data is the data it was trained for (the same classes in the same order, the same scaling); \
             the detectors' statistics assume it is",
            100.0 * clean_accuracy,
            100.0 / classes.max(1) as f64
        ),
        class: None,
    })
}

fn run_precondition(
    plan: &AuditPlan,
    params: &crate::detect::precondition::PreconditionParams,
    model: &mut dyn GradientModel,
    test: &ImageSet,
    progress: bool,
) -> Result<PreconditionResult> {
    let n = params.images.min(test.n);
    let idx = sample_indices(test.n, n, plan.aegis.seed)?;
    let dim = test.c * test.h * test.w;
    let x = gather(&test.pixels, dim, &idx);
    let y: Vec<i64> = idx.iter().map(|&i| test.labels[i]).collect();
    let pb = bar(n, "robustness check".into(), progress);
    let r = check_robustness(model, &x, &y, params, plan.aegis.batch_size, |d| pb.set_position(d as u64))?;
    pb.finish_and_clear();
    Ok(r)
}

/// The time since the model's audit began: its preparation (`before`, seconds) and since `start`.
struct Clock {
    before: f64,
    start: Instant,
}

impl Clock {
    fn elapsed(&self) -> f64 {
        self.before + self.start.elapsed().as_secs_f64()
    }
}

/// What planning the effort decided for one model.
#[derive(Default)]
struct PlannedEffort {
    /// The screen and the shortlist, or `None` for the full effort on every class.
    screen: Option<(ScreenInfo, Shortlist)>,
    /// Whether the plan already warned that the time budget will be exceeded (the fewest classes a
    /// shortlist holds do not fit it).
    overrun_foreseen: bool,
}

/// Planning the effort across classes for one model: whether to screen, the screen, and the
/// shortlist it chooses, sized to the time budget when there is one.
struct EffortRun<'a> {
    plan: &'a AuditPlan,
    detectors: &'a [Detector],
    audited: &'a [usize],
    clock: &'a Clock,
    progress: bool,
}

impl EffortRun<'_> {
    /// The screen and the shortlist, or none for the full effort on every class (few classes and no
    /// budget, a budget that pays for every class, or a screen the data cannot serve: then a warning).
    fn screen(
        &self,
        model: &mut Counted<'_>,
        data: &AuditData,
        held_out: &mut Option<Predictions>,
        notifications: &mut Vec<Notification>,
    ) -> Result<PlannedEffort> {
        let (plan, audited) = (self.plan, self.audited);
        let mut overrun_foreseen = false;
        let (prior_levels, prior_sweeps) = prior_levels(plan);
        let adaptive = match plan.time_budget {
            None => plan.effort.adaptive(audited.len()),
            Some(budget) => {
                let per_image = seconds_per_image(model.inner, &data.test, plan.universal.batch_size)?;
                let per_class = per_image * full_images_per_class(plan, self.detectors, prior_levels, prior_sweeps);
                let full = self.clock.elapsed() + audited.len() as f64 * per_class;
                if full > budget && audited.len() <= FEWEST_CLASSES {
                    overrun_foreseen = true;
                    notifications.push(Notification {
                        level: Level::Warning,
                        message: format!(
                            "time budget {} s: the full audit is estimated at {full:.0} s, but {} classes \
                             are no more than the {FEWEST_CLASSES} a shortlist holds (the calibration's class count): \
                             every class gets the full effort and the budget will be exceeded",
                            budget_text(budget),
                            audited.len()
                        ),
                        class: None,
                    });
                }
                plan.effort.adaptive(audited.len()) || (full > budget && audited.len() > FEWEST_CLASSES)
            }
        };
        if !adaptive {
            return Ok(PlannedEffort { screen: None, overrun_foreseen });
        }
        let started = Instant::now();
        let params = plan.effort.screen(&plan.universal);
        let pb = bar(audited.len(), "screen (classes)".into(), self.progress);
        let predictions = test_predictions(model, &data.test, params.batch_size, held_out)?;
        let mut done = 0;
        let held_out = HeldOut { predictions: Some(predictions), classes: Some(audited) };
        let r = run_universal(model, &data.test.pixels, &data.test.labels, held_out, &params, |_| {
            done += 1;
            pb.set_position(done)
        });
        pb.finish_and_clear();
        let r = match r {
            Ok(r) => r,
            Err(DetectError::NoData(why)) => {
                notifications.push(Notification {
                    level: Level::Warning,
                    message: format!(
                        "adaptive effort: the screen could not rank the classes ({why}); every class got the full effort"
                    ),
                    class: None,
                });
                return Ok(PlannedEffort { screen: None, overrun_foreseen });
            }
            Err(e) => return Err(e.into()),
        };
        let seconds = started.elapsed().as_secs_f64();
        let indices: Vec<(usize, f64)> = r.classes.iter().map(|c| (c.class, c.anomaly_index)).collect();
        let effort = match plan.time_budget {
            None => plan.effort.clone(),
            Some(budget) => {
                // The screen measured the speed and how far up the ladder the classes go.
                let per_image = seconds / model.images.max(1) as f64;
                let levels =
                    r.classes.iter().map(|c| c.rates.len() as f64).sum::<f64>() / r.classes.len().max(1) as f64;
                let (fit, note) = self.fit(budget, per_image, levels);
                notifications.push(note);
                overrun_foreseen |= !fit.fits;
                fit.params
            }
        };
        let list = shortlist(&indices, &effort);
        let info = ScreenInfo {
            detector: Detector::Universal.name().to_string(),
            images: params.images,
            steps_per_level: params.steps_per_level,
            seconds,
            gradient_evaluations: model.images,
            indices,
            candidates: list.candidates.clone(),
            reference: list.reference.clone(),
            dismissed: list.dismissed(audited),
        };
        notifications.push(self.shortlist_note(&info, list.measured.len()));
        if let (Some(b), true) = (plan.time_budget, self.progress) {
            eprintln!(
                "aegis-audit: screen done: {} classes open, {:.0} s of the {} s budget left",
                list.measured.len(),
                b - self.clock.elapsed(),
                budget_text(b)
            );
        }
        Ok(PlannedEffort { screen: Some((info, list)), overrun_foreseen })
    }

    /// What `budget` allows after the screen, at `per_image` seconds per image evaluation and with
    /// universal reach climbing `levels` budget levels per class; and the note that says so.
    fn fit(&self, budget: f64, per_image: f64, levels: f64) -> (BudgetFit, Notification) {
        let (_, prior_sweeps) = prior_levels(self.plan);
        let per_class = per_image * full_images_per_class(self.plan, self.detectors, levels, prior_sweeps);
        let left = budget - self.clock.elapsed();
        let fit = fit_budget(left, per_class, self.audited.len(), &self.plan.effort);
        let default = self.plan.effort.default_shortlist();
        let note = Notification {
            level: if fit.fits { Level::Note } else { Level::Warning },
            message: format!(
                "time budget {} s: {left:.0} s left after the screen; a class's full effort is estimated at \
                 {per_class:.1} s ({:.2} ms per image evaluation), so {} classes get it{}{}",
                budget_text(budget),
                per_image * 1e3,
                fit.classes,
                if fit.fits { "" } else { " (the fewest a shortlist holds: the budget will be exceeded)" },
                if fit.classes < default.min(self.audited.len()) {
                    format!(
                        "; fewer than the {default} of the default effort, so a target the screen ranks lower is \
                         more likely dismissed (measured on the benchmark's 19 100-class evaluation models at \
                         budgets of 90 and 150 s, which left fewer than 22 classes in full on 14 and 7 of \
                         them: as many backdoors found and no more clean models flagged as without a budget; \
                         docs/scaling.md)"
                    )
                } else {
                    String::new()
                }
            ),
            class: None,
        };
        (fit, note)
    }

    /// The note that says what the screen chose and dismissed.
    fn shortlist_note(&self, info: &ScreenInfo, measured: usize) -> Notification {
        let audited = self.audited.len();
        Notification {
            level: Level::Note,
            message: format!(
                "adaptive effort ({}): a universal-reach screen ({} images, {} steps per level) looked at all {audited} \
                 audited classes; every detector's full effort went to {measured} of them (the {} the screen ranked \
                 most suspicious: {}; and {} seeded reference classes); the other {} were dismissed and cannot be \
                 flagged; the fused decision judges the shortlist against clean models' shortlists where the \
                 calibration has them, otherwise its model p-value counts all {audited} (--effort full audits every \
                 class)",
                match self.plan.time_budget {
                    Some(b) => format!("--time-budget {b}"),
                    None => format!("--effort auto, more than {} classes", self.plan.effort.full_classes),
                },
                info.images,
                info.steps_per_level,
                info.candidates.len(),
                info.candidates.iter().map(usize::to_string).collect::<Vec<_>>().join(", "),
                info.reference.len(),
                info.dismissed.len(),
            ),
            class: None,
        }
    }
}

/// A budget in seconds as the user wrote it: whole seconds without decimals, else to a tenth.
fn budget_text(seconds: f64) -> String {
    if seconds.fract() == 0.0 {
        format!("{seconds:.0}")
    } else {
        format!("{seconds:.1}")
    }
}

/// Seconds one image's evaluation (forward and backward) takes: the second of two evaluations of a
/// batch of held-out images (the first warms the sessions up).
fn seconds_per_image(model: &mut dyn GradientModel, test: &ImageSet, batch_size: usize) -> Result<f64> {
    let n = batch_size.min(test.n).max(1);
    let dim = test.c * test.h * test.w;
    let (x, y) = (&test.pixels[..n * dim], &test.labels[..n]);
    model.eval(x, n, y)?;
    let started = Instant::now();
    model.eval(x, n, y)?;
    Ok(started.elapsed().as_secs_f64() / n as f64)
}

/// The report's effort section: the mode, the screen, and each audited class's cost.
fn effort_info(
    audited: &[usize],
    screen: Option<ScreenInfo>,
    measured: Option<&[usize]>,
    costs: &ClassCosts,
) -> EffortInfo {
    EffortInfo {
        mode: if screen.is_some() { "adaptive" } else { "full" }.to_string(),
        classes: audited.len(),
        screen,
        per_class: audited
            .iter()
            .map(|&class| ClassCost {
                class,
                full_effort: measured.is_none_or(|m| m.contains(&class)),
                seconds: costs.seconds.get(class).copied().unwrap_or(0.0),
                gradient_evaluations: costs.images.get(class).copied().unwrap_or(0),
            })
            .collect(),
    }
}

/// The report's per-class results: the detector's statistics, flagged as the decision says, with the
/// detector's details and the class's evidence files.
fn class_results(run: &DetectorRun, decision: &Decision, files: &EvidenceFiles, data: &AuditData) -> Vec<ClassResult> {
    let names = &run.measured.split(data).class_names;
    run.outcome
        .classes
        .iter()
        .enumerate()
        .map(|(i, s)| ClassResult {
            class: s.class as i64,
            name: names.get(s.class).cloned(),
            flagged: decision.flagged.contains(&s.class),
            summary: s.reason.clone(),
            details: run.measured.details(i, s.class),
            evidence: files.per_class.get(&s.class).cloned().unwrap_or_default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{calibration_mismatch, low_accuracy_note};

    #[test]
    fn data_the_model_does_not_classify_is_warned_about() {
        assert!(low_accuracy_note(0.5, 100, 10).is_none());
        assert!(low_accuracy_note(0.97, 100, 10).is_none());
        let w = low_accuracy_note(0.12, 200, 10).unwrap();
        assert!(w.message.starts_with("the model classifies only 12.0% of 200 test images correctly (chance: 10.0%)"));
        assert!(w.message.contains("--data"), "{}", w.message);
    }

    #[test]
    fn a_preset_outside_the_calibrations_is_warned_about() {
        let mnist = vec!["mnist".to_string()];
        assert!(calibration_mismatch(&mnist, "mnist").is_none());
        let w = calibration_mismatch(&mnist, "cifar10").unwrap();
        assert!(w.message.contains("audited with preset mnist, this model with preset cifar10"), "{}", w.message);
        assert!(w.message.contains("--calibration"), "{}", w.message);
        let w = calibration_mismatch(&[], "mnist").unwrap();
        assert!(w.message.contains("does not say which presets"), "{}", w.message);
    }
}
