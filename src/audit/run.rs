//! Auditing one prepared model with its data, in order: the robustness precondition, the method
//! choice, the detectors (one for an explicit method, every detector of the fused set for `auto`; each
//! owns its own flags and is charged its gradient evaluations), the one decision step over the
//! detectors' outcomes, the evidence, and the report.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::decision::{decide, Decision, Rule};
use super::evidence::{self, EvidenceFiles};
use super::method::{choose, MethodDecision};
use super::options::MethodChoice;
use super::plan::AuditPlan;
use super::prepare::PreparedModel;
use super::progress::{bar, PartBars};
use crate::attack::{AttackError, GradOutput, GradientModel};
use crate::data::{sample_indices, ImageSet};
use crate::decide::{Calibration, ClassScore, FusedDecision};
use crate::detect::aegis::run_aegis;
use crate::detect::neural_cleanse::run_neural_cleanse;
use crate::detect::precondition::{check_robustness, PreconditionResult};
use crate::detect::reach::run_reach_with;
use crate::detect::sample::{gather, predict, Predictions};
use crate::detect::universal::run_universal_with;
use crate::detect::{Detector, DetectorEvidence, DetectorOutcome};
use crate::report::{
    AuditReport, ClassDetails, ClassResult, DatasetInfo, DetectorClass, DetectorReport, FusedContribution, FusedInfo,
    Level, Method, MethodInfo, Notification, Precondition, RobustnessMatch, Timings, ToolInfo,
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
    let k = prepared.model.num_classes();
    let mut notifications = Vec::new();
    for (split, set) in [("train", &data.train), ("test", &data.test)] {
        if set.available > set.n {
            notifications.push(Notification {
                level: Level::Note,
                message: format!(
                    "the {split} split holds {} images, more than the {} values a split keeps in memory \
                     (data::MAX_KEPT_VALUES): a seeded sample of {} was read",
                    set.available,
                    crate::data::MAX_KEPT_VALUES,
                    set.n
                ),
                class: None,
            });
        }
    }
    let device = format!("{:?}", prepared.model.device()).to_lowercase();
    let mut parameters = plan.parameters(&device, &prepared.analysis.feature.name);

    let needs_precondition = !matches!(plan.method, MethodChoice::NeuralCleanse | MethodChoice::Universal);
    let precondition = match (&plan.precondition, needs_precondition) {
        (_, false) => None,
        (Some(p), true) => {
            let started = Instant::now();
            if p.images > data.test.n {
                notifications.push(capped("precondition.images", p.images, data.test.n, "test"));
            }
            let r = run_precondition(plan, p, &mut prepared.model, &data.test, progress)?;
            timings.precondition = started.elapsed().as_secs_f64();
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
    };
    let MethodDecision { method, reason, applicable } = choose(plan.method, precondition.as_ref());
    let audited = plan.audited(k);
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
    if let Some(derivation) = &plan.preset_derivation {
        notifications.push(Notification { level: Level::Note, message: derivation.clone(), class: None });
    }
    if let Some(c) = &calibration {
        if let Some(n) = calibration_mismatch(&c.file.presets, &plan.preset) {
            notifications.push(n);
        }
    }
    if method == Method::Fused {
        parameters
            .insert("detectors".into(), serde_json::json!(detectors.iter().map(|d| d.name()).collect::<Vec<_>>()));
    }
    let mut outcomes = Vec::new();
    let mut costs = Vec::new();
    // The clean predictions of the test split, computed by the first detector that needs them.
    let mut held_out = None;
    if applicable {
        for &detector in &detectors {
            let started = Instant::now();
            let mut counted = Counted { inner: &mut prepared.model, images: 0 };
            let outcome = run_detector(
                plan,
                detector,
                &mut counted,
                data,
                &audited,
                &mut held_out,
                progress,
                &mut notifications,
            )?;
            let evaluations = counted.images;
            let seconds = started.elapsed().as_secs_f64();
            match &outcome.evidence {
                DetectorEvidence::Aegis(r) => {
                    timings.aegis = seconds;
                    timings.translation = r.timings.translation;
                    timings.features = r.timings.features;
                    timings.embedding = r.timings.embedding;
                    timings.clustering = r.timings.clustering;
                    timings.decision += r.timings.decision;
                }
                DetectorEvidence::NeuralCleanse(_) => timings.neural_cleanse = seconds,
                DetectorEvidence::Reach(_) => timings.reach = seconds,
                DetectorEvidence::Universal(_) => timings.universal = seconds,
            }
            outcomes.push(outcome);
            costs.push((seconds, evaluations));
        }
    }
    let started = Instant::now();
    let rule = match &calibration {
        Some(c) => Rule::Fused(c),
        None => Rule::OwnFlags,
    };
    let decision = decide(&outcomes, applicable, rule, &audited, precondition.as_ref().map(|p| p.adv_accuracy))?;
    timings.decision += started.elapsed().as_secs_f64();
    let wall_time_s = start.elapsed().as_secs_f64();

    let started = Instant::now();
    let files = match evidence_target {
        Some(t) if !outcomes.is_empty() => evidence::write(&t.stage, &outcomes, &decision, &data.train, &data.test)?,
        _ => EvidenceFiles::default(),
    };
    timings.evidence = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let names = &data.train.class_names;
    let classes = match (&decision.fused, outcomes.first()) {
        (Some(f), _) => fused_class_results(f, &decision, &files, names),
        (None, Some(o)) => class_results(o, &decision, &files, data),
        (None, None) => Vec::new(),
    };
    let mut report = AuditReport {
        tool: ToolInfo::default(),
        command_line: command_line.to_vec(),
        model: prepared.info.clone(),
        dataset: dataset_info(&data.path, &data.train),
        method: MethodInfo { method, reason },
        parameters,
        precondition: precondition.map(|p| Precondition {
            epsilon: p.params.eps as f64,
            steps: p.params.steps,
            samples: p.images,
            clean_accuracy: p.clean_accuracy,
            adversarial_accuracy: p.adv_accuracy,
            threshold: p.params.min_adv_accuracy,
            passed: p.passed,
        }),
        classes,
        detectors: outcomes.iter().zip(&costs).map(|(o, &(s, e))| detector_report(o, s, e)).collect(),
        fused: decision.fused.as_ref().zip(calibration.as_deref()).map(|(f, c)| fused_info(f, c)),
        verdict: decision.verdict,
        wall_time_s,
        timings: Timings::default(),
        memory: None,
        evidence: None,
        notifications,
    };
    debug_assert_eq!(report.verdict, report.derived_verdict(), "one verdict rule");
    timings.report = started.elapsed().as_secs_f64();
    if let Some(t) = evidence_target {
        let started = Instant::now();
        report.evidence = Some(evidence::finish(&t.stage, &t.dir, &report, files.overview)?);
        timings.evidence += started.elapsed().as_secs_f64();
    }
    report.timings = timings;
    Ok(report)
}

/// A model that counts the images it evaluates (forward and backward through the gradient graph):
/// each detector's cost in the report.
struct Counted<'a> {
    inner: &'a mut dyn GradientModel,
    images: u64,
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
        self.inner.eval(x, n, y)
    }
}

/// One detector's part of the report.
fn detector_report(outcome: &DetectorOutcome, seconds: f64, gradient_evaluations: u64) -> DetectorReport {
    DetectorReport {
        name: outcome.detector.name().to_string(),
        statistic: outcome.statistic.to_string(),
        seconds,
        gradient_evaluations,
        index_version: crate::detect::INDEX_VERSION,
        classes: outcome
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
    let k = f.classes.len();
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
            "class {}: fused score {:.1} ≥ threshold {:.1} (probability {} that a clean model audited on {k} \
             classes scores this high), mostly {parts}: backdoor suspected",
            c.class,
            c.score,
            f.threshold,
            p_text(c.model_p_value)
        )
    } else {
        format!(
            "class {}: fused score {:.1} < threshold {:.1} (a clean model audited on {k} classes scores this high \
             with probability {}); {}{parts}",
            c.class,
            c.score,
            f.threshold,
            p_text(c.model_p_value),
            if c.contributions.iter().any(|p| p.score > 0.0) { "largest part " } else { "" }
        )
    }
}

/// A note that a count was capped by the data.
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

fn capped(name: &str, asked: usize, available: usize, split: &str) -> Notification {
    Notification {
        level: Level::Note,
        message: format!("{name} = {asked} is more than the {available} images of the {split} split: all are used"),
        class: None,
    }
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

/// The model's clean predictions of the test split in batches of `batch_size`: those in `held_out` when
/// they were computed with that batch size, else computed now and kept there.
fn test_predictions<'a>(
    model: &mut dyn GradientModel,
    test: &ImageSet,
    batch_size: usize,
    held_out: &'a mut Option<Predictions>,
) -> Result<&'a Predictions> {
    if held_out.as_ref().is_none_or(|p| p.batch_size != batch_size) {
        *held_out = Some(predict(model, &test.pixels, &test.labels, batch_size)?.0);
    }
    Ok(held_out.as_ref().expect("just computed"))
}

/// Runs one detector on the audited classes (universal reach and reach share the clean predictions of
/// the test split through `held_out`).
#[allow(clippy::too_many_arguments)]
fn run_detector(
    plan: &AuditPlan,
    detector: Detector,
    model: &mut dyn GradientModel,
    data: &AuditData,
    audited: &[usize],
    held_out: &mut Option<Predictions>,
    progress: bool,
    notifications: &mut Vec<Notification>,
) -> Result<DetectorOutcome> {
    let k = model.num_classes();
    Ok(match detector {
        Detector::Aegis => {
            let seeds = plan.aegis.translation.seeds_per_class;
            if seeds > data.train.n {
                notifications.push(capped("translation.seeds_per_class", seeds, data.train.n, "train"));
            }
            let mut bars = PartBars::new(progress);
            let r = run_aegis(model, &data.train.pixels, &data.train.labels, audited, &plan.aegis, plan.runs, |p| {
                bars.set((p.class, p.run), p.total, p.done, || {
                    format!("class {} run {}/{}", p.class, p.run + 1, p.runs)
                })
            })?;
            bars.finish();
            r.into_outcome()
        }
        Detector::NeuralCleanse => {
            let params = &plan.neural_cleanse;
            if params.images > data.test.n {
                notifications.push(capped("neural_cleanse.images", params.images, data.test.n, "test"));
            }
            let pb = bar(k * params.epochs, "Neural Cleanse (epochs)".into(), progress);
            let mut done = vec![0usize; k];
            let r = run_neural_cleanse(model, &data.test.pixels, &data.test.labels, params, |class, e| {
                if class < k {
                    done[class] = e;
                }
                pb.set_position(done.iter().sum::<usize>() as u64);
            })?;
            pb.finish_and_clear();
            r.into_outcome(audited)
        }
        Detector::Reach => {
            let pb = bar(0, "reach".into(), progress);
            let predictions = test_predictions(model, &data.test, plan.reach.batch_size, held_out)?;
            let r = run_reach_with(model, &data.test.pixels, &data.test.labels, predictions, &plan.reach, |p| {
                pb.set_length(p.total as u64);
                pb.set_position(p.done as u64);
            })?;
            pb.finish_and_clear();
            r.into_outcome(audited)
        }
        Detector::Universal => {
            let params = &plan.universal;
            if params.images > data.test.n {
                notifications.push(capped("universal.images", params.images, data.test.n, "test"));
            }
            let pb = bar(k, "universal reach (classes)".into(), progress);
            let predictions = test_predictions(model, &data.test, params.batch_size, held_out)?;
            let r = run_universal_with(model, &data.test.pixels, &data.test.labels, predictions, params, |class| {
                pb.set_position(class as u64 + 1)
            })?;
            pb.finish_and_clear();
            r.into_outcome(audited)
        }
    })
}

/// The report's per-class results: the detector's statistics, flagged as the decision says, with the
/// detector's details and the class's evidence files.
fn class_results(
    outcome: &DetectorOutcome,
    decision: &Decision,
    files: &EvidenceFiles,
    data: &AuditData,
) -> Vec<ClassResult> {
    let names = match outcome.evidence {
        DetectorEvidence::Aegis(_) => &data.train.class_names,
        _ => &data.test.class_names,
    };
    outcome
        .classes
        .iter()
        .enumerate()
        .map(|(i, s)| ClassResult {
            class: s.class as i64,
            name: names.get(s.class).cloned(),
            flagged: decision.flagged.contains(&s.class),
            summary: s.reason.clone(),
            details: details(&outcome.evidence, i, s.class),
            evidence: files.per_class.get(&s.class).cloned().unwrap_or_default(),
        })
        .collect()
}

/// The detector's measurements of one class (`position` among the audited classes) for the report.
fn details(evidence: &DetectorEvidence, position: usize, class: usize) -> ClassDetails {
    match evidence {
        DetectorEvidence::Aegis(r) => {
            let c = &r.classes[position];
            let first = &c.first;
            ClassDetails::Aegis {
                decision: format!("{:?}", r.params.decision).to_lowercase(),
                displacement: c.shortcut.displacement,
                displacement_median: c.shortcut.median,
                shortcut_votes: c.shortcut.votes,
                shortcut_index: c.shortcut.index,
                shortcut_threshold: r.params.shortcut_threshold,
                cluster_flagged: first.clustered.then_some(c.cluster_flagged),
                clusters: first.clustered.then_some(first.clusters),
                cluster_sizes: first.cluster_info.iter().map(|c| c.clean + c.translated).collect(),
                translated_per_cluster: first.cluster_info.iter().map(|c| c.translated).collect(),
                clean_per_cluster: first.cluster_info.iter().map(|c| c.clean).collect(),
                bandwidth: first.bandwidth.unwrap_or(f64::NAN),
                max_clusters: r.params.max_clusters,
            }
        }
        DetectorEvidence::NeuralCleanse(r) => {
            let t = &r.classes[class];
            ClassDetails::NeuralCleanse { mask_l1: t.mask_l1, anomaly_index: t.anomaly_index }
        }
        DetectorEvidence::Reach(r) => {
            let c = &r.classes[class];
            ClassDetails::Reach { success_rate: c.rate, anomaly_index: c.anomaly_index, epsilon: r.eps as f64 }
        }
        DetectorEvidence::Universal(r) => {
            let c = &r.classes[class];
            ClassDetails::Universal {
                budget: c.budget,
                reached: c.reached,
                median_budget: r.median_log_budget.exp(),
                anomaly_index: c.anomaly_index,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::calibration_mismatch;

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
