//! Auditing one prepared model with its data, in order: the robustness precondition, the method
//! choice, the chosen detector (which owns its decision), the one decision step over the detectors'
//! outcomes, the evidence, and the report.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::decision::{decide, Decision};
use super::evidence::{self, EvidenceFiles};
use super::method::{choose, MethodDecision};
use super::plan::AuditPlan;
use super::prepare::PreparedModel;
use super::progress::{bar, PartBars};
use crate::attack::GradientModel;
use crate::data::{sample_indices, ImageSet};
use crate::detect::aegis::run_aegis;
use crate::detect::neural_cleanse::run_neural_cleanse;
use crate::detect::precondition::{check_robustness, PreconditionResult};
use crate::detect::reach::run_reach;
use crate::detect::sample::gather;
use crate::detect::{DetectorEvidence, DetectorOutcome};
use crate::report::{
    AuditReport, ClassDetails, ClassResult, DatasetInfo, Level, Method, MethodInfo, Notification, Precondition,
    Timings, ToolInfo,
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
    let device = format!("{:?}", prepared.model.device()).to_lowercase();
    let parameters = plan.parameters(&device, &prepared.analysis.feature.name);

    let precondition = match (&plan.precondition, plan.method) {
        (_, super::MethodChoice::NeuralCleanse) => None,
        (Some(p), _) => {
            let started = Instant::now();
            if p.images > data.test.n {
                notifications.push(capped("precondition.images", p.images, data.test.n, "test"));
            }
            let r = run_precondition(plan, p, &mut prepared.model, &data.test, progress)?;
            timings.precondition = started.elapsed().as_secs_f64();
            Some(r)
        }
        (None, _) => {
            notifications.push(Notification {
                level: Level::Warning,
                message: "robustness precondition skipped (--skip-precondition): AEGIS is only valid for \
                          adversarially robust models"
                    .into(),
                class: None,
            });
            None
        }
    };
    let MethodDecision { method, reason, applicable } = choose(plan.method, precondition.as_ref());
    let audited = plan.audited(k);
    let mut outcomes = Vec::new();
    if applicable {
        let started = Instant::now();
        let outcome = run_detector(plan, method, prepared, data, &audited, progress, &mut notifications)?;
        if let DetectorEvidence::Aegis(r) = &outcome.evidence {
            timings.translation = r.timings.translation;
            timings.features = r.timings.features;
            timings.embedding = r.timings.embedding;
            timings.clustering = r.timings.clustering;
            timings.decision = r.timings.decision;
        } else {
            timings.detector = started.elapsed().as_secs_f64();
        }
        outcomes.push(outcome);
    }
    let started = Instant::now();
    let decision = decide(&outcomes, applicable);
    timings.decision += started.elapsed().as_secs_f64();
    let wall_time_s = start.elapsed().as_secs_f64();

    let started = Instant::now();
    let files = match (evidence_target, outcomes.first()) {
        (Some(t), Some(outcome)) => evidence::write(&t.stage, outcome, &decision.flagged, &data.train)?,
        _ => EvidenceFiles::default(),
    };
    timings.evidence = started.elapsed().as_secs_f64();

    let started = Instant::now();
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
        classes: outcomes.first().map_or_else(Vec::new, |o| class_results(o, &decision, &files, data)),
        verdict: decision.verdict,
        wall_time_s,
        timings: Timings::default(),
        evidence: None,
        notifications,
    };
    debug_assert_eq!(report.verdict, report.derived_verdict(), "one verdict rule");
    timings.report = started.elapsed().as_secs_f64();
    if let Some(t) = evidence_target {
        let started = Instant::now();
        report.evidence = Some(evidence::finish(&t.stage, &t.dir, &report, files.all)?);
        timings.evidence += started.elapsed().as_secs_f64();
    }
    report.timings = timings;
    Ok(report)
}

/// A note that a count was capped by the data.
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
        split: "train".to_string(),
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

/// Runs the chosen detector on the audited classes.
fn run_detector(
    plan: &AuditPlan,
    method: Method,
    prepared: &mut PreparedModel,
    data: &AuditData,
    audited: &[usize],
    progress: bool,
    notifications: &mut Vec<Notification>,
) -> Result<DetectorOutcome> {
    let k = prepared.model.num_classes();
    Ok(match method {
        Method::Aegis => {
            let seeds = plan.aegis.translation.seeds_per_class;
            if seeds > data.train.n {
                notifications.push(capped("translation.seeds_per_class", seeds, data.train.n, "train"));
            }
            let mut bars = PartBars::new(progress);
            let r = run_aegis(
                &mut prepared.model,
                &data.train.pixels,
                &data.train.labels,
                audited,
                &plan.aegis,
                plan.runs,
                |p| {
                    bars.set((p.class, p.run), p.total, p.done, || {
                        format!("class {} run {}/{}", p.class, p.run + 1, p.runs)
                    })
                },
            )?;
            bars.finish();
            r.into_outcome()
        }
        Method::NeuralCleanse => {
            let params = &plan.neural_cleanse;
            if params.images > data.test.n {
                notifications.push(capped("neural_cleanse.images", params.images, data.test.n, "test"));
            }
            let pb = bar(k * params.epochs, "Neural Cleanse (epochs)".into(), progress);
            let mut done = vec![0usize; k];
            let r =
                run_neural_cleanse(&mut prepared.model, &data.test.pixels, &data.test.labels, params, |class, e| {
                    if class < k {
                        done[class] = e;
                    }
                    pb.set_position(done.iter().sum::<usize>() as u64);
                })?;
            pb.finish_and_clear();
            r.into_outcome(audited)
        }
        Method::Reach => {
            let pb = bar(0, "reach".into(), progress);
            let r = run_reach(&mut prepared.model, &data.test.pixels, &data.test.labels, &plan.reach, |p| {
                pb.set_length(p.total as u64);
                pb.set_position(p.done as u64);
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
                cluster_flagged: c.cluster_flagged,
                clusters: first.clusters,
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
    }
}
