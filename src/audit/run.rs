//! Running a plan: the robustness precondition, the chosen detector per class (with repeated runs
//! and a majority vote), and assembling the report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use super::evidence;
use super::PreparedModel;
use crate::attack::GradientModel;
use crate::data::{sample_indices, ImageSet};
use crate::detect::aegis::{aegis_class, shortcut_decision, AegisClass, AegisParams, DecisionRule, ShortcutDecision};
use crate::detect::neural_cleanse::{run_neural_cleanse, NeuralCleanseParams};
use crate::detect::precondition::{check_robustness, PreconditionParams, PreconditionResult};
use crate::detect::reach::{run_reach, ReachParams};
use crate::detect::translate::gather;
use crate::report::{
    AuditReport, ClassDetails, ClassResult, DatasetInfo, Level, Method, MethodInfo, ModelInfo, Notification,
    Precondition, ToolInfo, Verdict,
};
use crate::Result;

/// Which detector the audit runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodChoice {
    /// The robustness precondition decides: AEGIS on a robust model, Neural Cleanse otherwise.
    Auto,
    /// AEGIS, after the precondition unless it is skipped.
    Aegis,
    /// Neural Cleanse (for standard, non-robust models); no precondition.
    NeuralCleanse,
    /// Targeted reachability (robust models), after the precondition unless it is skipped.
    Reach,
}

/// Everything an audit run needs besides the model and the data.
#[derive(Debug, Clone)]
pub struct AuditPlan {
    /// The preset the parameters came from.
    pub preset: String,
    /// The detector.
    pub method: MethodChoice,
    /// AEGIS parameters (seed included).
    pub aegis: AegisParams,
    /// Neural Cleanse parameters.
    pub neural_cleanse: NeuralCleanseParams,
    /// Targeted-reachability parameters.
    pub reach: ReachParams,
    /// Independent AEGIS runs (seeds `seed`, `seed + 1`, …); a class is flagged by majority.
    pub runs: usize,
    /// Classes to examine (all when `None`).
    pub classes: Option<Vec<usize>>,
    /// The robustness check, or `None` to skip it.
    pub precondition: Option<PreconditionParams>,
    /// Where evidence goes, if anywhere.
    pub evidence_dir: Option<PathBuf>,
    /// Show progress bars on stderr.
    pub progress: bool,
    /// Every parameter, for the report (the CLI adds runtime settings).
    pub parameters: BTreeMap<String, Value>,
    /// The command line, for the report.
    pub command_line: Vec<String>,
}

fn bar(len: usize, msg: String, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len as u64);
    pb.set_style(
        ProgressStyle::with_template("{msg:28} [{bar:30}] {pos}/{len} images ({elapsed})")
            .expect("static template")
            .progress_chars("=> "),
    );
    pb.set_message(msg);
    pb
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

/// Runs `plan` on `prepared` with training images `train` (seeds, clean class samples) and held-out
/// images `test` (the robustness check).
pub fn run_audit(
    plan: &AuditPlan,
    model_path: &Path,
    data_path: &Path,
    prepared: &mut PreparedModel,
    train: &ImageSet,
    test: &ImageSet,
) -> Result<AuditReport> {
    let start = Instant::now();
    let k = prepared.model.num_classes();
    let mut notifications = Vec::new();
    let mut parameters = plan.parameters.clone();
    parameters.insert("preset".into(), json!(plan.preset));
    parameters.insert("feature_tensor".into(), json!(prepared.analysis.feature.name));

    let precondition = match (&plan.precondition, plan.method) {
        (_, MethodChoice::NeuralCleanse) => None,
        (Some(p), _) => Some(run_precondition(plan, p, &mut prepared.model, test)?),
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
    let robust = precondition.as_ref().is_none_or(|p| p.passed);
    let describe = |p: &PreconditionResult, verb: &str| {
        format!(
            "adversarial accuracy {:.3} {verb} {:.3} at L2 ε = {}",
            p.adv_accuracy, p.params.min_adv_accuracy, p.params.eps
        )
    };
    let (method, reason) = match (plan.method, &precondition) {
        (MethodChoice::NeuralCleanse, _) => (Method::NeuralCleanse, "--method neural-cleanse".to_string()),
        (MethodChoice::Aegis, Some(p)) if !p.passed => (
            Method::Aegis,
            format!("--method aegis, but {}: the model is not robust, so AEGIS does not apply", describe(p, "<")),
        ),
        (MethodChoice::Aegis, _) => (Method::Aegis, "--method aegis".to_string()),
        (MethodChoice::Reach, Some(p)) if !p.passed => (
            Method::Reach,
            format!("--method reach, but {}: the model is not robust, so reach does not apply", describe(p, "<")),
        ),
        (MethodChoice::Reach, _) => (Method::Reach, "--method reach".to_string()),
        (MethodChoice::Auto, Some(p)) if p.passed => (
            Method::Aegis,
            format!("--method auto: {}: the model counts as robust, so AEGIS applies", describe(p, "≥")),
        ),
        (MethodChoice::Auto, Some(p)) => (
            Method::NeuralCleanse,
            format!(
                "--method auto: {}: the model is not robust, so Neural Cleanse (which targets standard models) runs",
                describe(p, "<")
            ),
        ),
        (MethodChoice::Auto, None) => (Method::Aegis, "--method auto with --skip-precondition".to_string()),
    };
    let not_applicable = matches!(method, Method::Aegis | Method::Reach) && !robust;
    let mut classes = Vec::new();
    let mut evidence_files = Vec::new();
    let selected: Vec<usize> = plan.classes.clone().unwrap_or_else(|| (0..k).collect());
    match method {
        Method::Aegis if !not_applicable => {
            let mut runs = Vec::with_capacity(selected.len());
            for &class in &selected {
                runs.push(aegis_runs(plan, prepared, train, class)?);
            }
            let shortcut = shortcut_votes(plan, &runs)?;
            let displacements: Vec<f64> = shortcut.iter().map(|s| s.displacement).collect();
            for (r, s) in runs.into_iter().zip(&shortcut) {
                let (result, files) = aegis_result(plan, prepared, train, r, s)?;
                evidence_files.extend(files.iter().cloned());
                classes.push(result);
            }
            if let Some(dir) = &plan.evidence_dir {
                let flagged: Vec<bool> = classes.iter().map(|c| c.flagged).collect();
                evidence_files.push(evidence::displacement_chart(dir, &selected, &displacements, &flagged)?);
            }
        }
        Method::Reach if !not_applicable => {
            let (results, files) = reach(plan, prepared, test, &selected)?;
            evidence_files.extend(files);
            classes = results;
        }
        Method::NeuralCleanse => {
            let (results, files) = neural_cleanse(plan, prepared, test, &selected)?;
            evidence_files.extend(files);
            classes = results;
        }
        _ => {}
    }
    let method = MethodInfo { method, reason };
    let mut report = AuditReport {
        tool: ToolInfo::default(),
        command_line: plan.command_line.clone(),
        model: ModelInfo::from_file(model_path)?,
        dataset: dataset_info(data_path, train),
        method,
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
        verdict: Verdict::Clean,
        wall_time_s: 0.0,
        evidence: None,
        notifications,
    };
    report.verdict = if not_applicable {
        Verdict::NotApplicable
    } else if report.classes.iter().any(|c| c.flagged) {
        Verdict::Suspected
    } else {
        Verdict::Clean
    };
    report.wall_time_s = start.elapsed().as_secs_f64();
    if let Some(dir) = &plan.evidence_dir {
        report.evidence = Some(evidence::finish(dir, &report, evidence_files)?);
    }
    Ok(report)
}

fn run_precondition(
    plan: &AuditPlan,
    params: &PreconditionParams,
    model: &mut dyn GradientModel,
    test: &ImageSet,
) -> Result<PreconditionResult> {
    let n = params.images.min(test.n);
    let idx = sample_indices(test.n, n, plan.aegis.seed)?;
    let dim = test.c * test.h * test.w;
    let x = gather(&test.pixels, dim, &idx);
    let y: Vec<i64> = idx.iter().map(|&i| test.labels[i]).collect();
    let pb = bar(n, "robustness check".into(), plan.progress);
    let r = check_robustness(model, &x, &y, params, plan.aegis.batch_size, |d| pb.set_position(d as u64))?;
    pb.finish_and_clear();
    Ok(r)
}

/// One class's AEGIS runs: the first run (kept for evidence), each run's counted clusters and mean
/// displacement.
struct ClassRuns {
    first: AegisClass,
    counts: Vec<usize>,
    displacements: Vec<f64>,
}

/// One class's shortcut outcome over the runs: means over runs, and how many runs flagged it.
struct ShortcutClass {
    displacement: f64,
    median: f64,
    index: f64,
    votes: usize,
}

/// The shortcut decision of every run (each compares the audited classes of that run), per class.
/// Under the cluster rule a comparison that cannot be made (fewer than 3 classes) reports NaN.
fn shortcut_votes(plan: &AuditPlan, runs: &[ClassRuns]) -> Result<Vec<ShortcutClass>> {
    let n_runs = runs.first().map_or(0, |r| r.displacements.len());
    let mut out: Vec<ShortcutClass> =
        runs.iter().map(|_| ShortcutClass { displacement: 0.0, median: 0.0, index: 0.0, votes: 0 }).collect();
    for r in 0..n_runs {
        let column: Vec<f64> = runs.iter().map(|c| c.displacements[r]).collect();
        let decision = match (shortcut_decision(&column, plan.aegis.shortcut_threshold), plan.aegis.decision) {
            (Ok(d), _) => d,
            (Err(e), DecisionRule::Shortcut) => return Err(e.into()),
            (Err(_), DecisionRule::Clusters) => {
                ShortcutDecision { median: f64::NAN, indices: vec![f64::NAN; column.len()], flagged: Vec::new() }
            }
        };
        for (i, c) in out.iter_mut().enumerate() {
            c.displacement += column[i] / n_runs as f64;
            c.median += decision.median / n_runs as f64;
            c.index += decision.indices[i] / n_runs as f64;
            c.votes += decision.flagged.contains(&i) as usize;
        }
    }
    Ok(out)
}

/// Runs AEGIS `plan.runs` times on one class.
fn aegis_runs(plan: &AuditPlan, prepared: &mut PreparedModel, train: &ImageSet, class: usize) -> Result<ClassRuns> {
    let runs = plan.runs.max(1);
    let mut first: Option<AegisClass> = None;
    let mut counts = Vec::with_capacity(runs);
    let mut displacements = Vec::with_capacity(runs);
    for r in 0..runs {
        let params = AegisParams { seed: plan.aegis.seed.wrapping_add(r as u64), ..plan.aegis.clone() };
        let pb = bar(params.translation.seeds_per_class, format!("class {class} run {}/{runs}", r + 1), plan.progress);
        let result = aegis_class(&mut prepared.model, &train.pixels, &train.labels, class, &params, |d| {
            pb.set_position(d as u64)
        })?;
        pb.finish_and_clear();
        displacements.push(result.displacement);
        counts.push(result.clusters);
        if first.is_none() {
            first = Some(result);
        }
    }
    Ok(ClassRuns { first: first.expect("at least one run"), counts, displacements })
}

/// Turns one class's runs into its result under the plan's decision rule; either rule flags a class
/// when more than half of the runs do.
fn aegis_result(
    plan: &AuditPlan,
    prepared: &PreparedModel,
    train: &ImageSet,
    runs: ClassRuns,
    shortcut: &ShortcutClass,
) -> Result<(ClassResult, Vec<crate::report::EvidenceFile>)> {
    let ClassRuns { first, counts, .. } = runs;
    let class = first.class;
    let n_runs = counts.len();
    let votes = counts.iter().filter(|&&c| c > plan.aegis.max_clusters).count();
    let cluster_flagged = votes * 2 > n_runs;
    let shortcut_flagged = shortcut.votes * 2 > n_runs;
    let (displacement, index) = (shortcut.displacement, shortcut.index);
    let flagged = match plan.aegis.decision {
        DecisionRule::Shortcut => shortcut_flagged,
        DecisionRule::Clusters => cluster_flagged,
    };
    let shortcut_text = format!(
        "mean translation displacement {displacement:.2} vs median {:.2} over the audited classes, anomaly index \
         {index:.2} (runs flagging: {}/{n_runs})",
        shortcut.median, shortcut.votes
    );
    let cluster_text = format!(
        "{} clusters (counted, min {:.0}% of points) in the {} embedding (runs with more than {}: {votes}/{n_runs}, counts {counts:?})",
        first.clusters,
        plan.aegis.min_cluster_fraction * 100.0,
        format!("{:?}", plan.aegis.reducer).to_lowercase(),
        plan.aegis.max_clusters,
    );
    let summary = match plan.aegis.decision {
        DecisionRule::Shortcut => format!(
            "class {class}: {shortcut_text}{}; {cluster_text}; translation reached the class for {:.1}% of seeds",
            if flagged {
                format!(" > {}: translation shortcut, backdoor suspected", plan.aegis.shortcut_threshold)
            } else {
                String::new()
            },
            first.reached * 100.0
        ),
        DecisionRule::Clusters => format!(
            "class {class}: {cluster_text}{}; {shortcut_text}; translation reached the class for {:.1}% of seeds",
            if flagged { ": more clusters than allowed, backdoor suspected" } else { "" },
            first.reached * 100.0
        ),
    };
    let details = ClassDetails::Aegis {
        decision: format!("{:?}", plan.aegis.decision).to_lowercase(),
        displacement,
        displacement_median: shortcut.median,
        shortcut_votes: shortcut.votes,
        shortcut_index: index,
        shortcut_threshold: plan.aegis.shortcut_threshold,
        cluster_flagged,
        clusters: first.clusters,
        cluster_sizes: first.cluster_info.iter().map(|c| c.clean + c.translated).collect(),
        translated_per_cluster: first.cluster_info.iter().map(|c| c.translated).collect(),
        clean_per_cluster: first.cluster_info.iter().map(|c| c.clean).collect(),
        bandwidth: first.bandwidth.unwrap_or(f64::NAN),
        max_clusters: plan.aegis.max_clusters,
    };
    let files = match &plan.evidence_dir {
        Some(dir) => evidence::aegis_class(dir, &first, flagged, prepared.image_shape(), &train.pixels, &train.labels)?,
        None => Vec::new(),
    };
    let name = train.class_names.get(class).cloned();
    Ok((ClassResult { class: class as i64, name, flagged, summary, details, evidence: files.clone() }, files))
}

/// Runs Neural Cleanse on held-out images and keeps the selected classes' results.
fn neural_cleanse(
    plan: &AuditPlan,
    prepared: &mut PreparedModel,
    test: &ImageSet,
    selected: &[usize],
) -> Result<(Vec<ClassResult>, Vec<crate::report::EvidenceFile>)> {
    let k = prepared.model.num_classes();
    let pb = bar(k * plan.neural_cleanse.epochs, "Neural Cleanse (epochs)".into(), plan.progress);
    let mut done = vec![0usize; k];
    let r =
        run_neural_cleanse(&mut prepared.model, &test.pixels, &test.labels, &plan.neural_cleanse, |class, epochs| {
            if class < k {
                done[class] = epochs;
            }
            pb.set_position(done.iter().sum::<usize>() as u64);
        })?;
    pb.finish_and_clear();
    let (c, h, w) = r.image_shape;
    let mut out = Vec::new();
    let mut all_files = Vec::new();
    for t in r.classes.iter().filter(|t| selected.contains(&t.class)) {
        let flagged = r.flagged.contains(&t.class);
        let mut files = Vec::new();
        if let Some(dir) = &plan.evidence_dir {
            std::fs::create_dir_all(dir)
                .map_err(|source| crate::report::ReportError::Io { path: dir.clone(), source })?;
            let name = format!("class-{}-nc-mask.png", t.class);
            crate::report::evidence::mask_png(&dir.join(&name), &t.mask, &t.pattern, c, h, w, 4)?;
            files.push(crate::report::EvidenceFile {
                kind: crate::report::EvidenceKind::Mask,
                path: name,
                caption: format!("Class {}: reversed mask and mask⊙pattern (‖m‖₁ = {:.2})", t.class, t.mask_l1),
            });
        }
        all_files.extend(files.iter().cloned());
        out.push(ClassResult {
            class: t.class as i64,
            name: test.class_names.get(t.class).cloned(),
            flagged,
            summary: format!(
                "class {}: smallest reversed trigger ‖m‖₁ = {:.2} (median {:.2}), anomaly index {:.2}{}; reversed trigger success {:.3}",
                t.class,
                t.mask_l1,
                r.median_l1,
                t.anomaly_index,
                if flagged { format!(" > {} on the small side: backdoor suspected", plan.neural_cleanse.anomaly_threshold) } else { String::new() },
                t.success_rate
            ),
            details: ClassDetails::NeuralCleanse { mask_l1: t.mask_l1, anomaly_index: t.anomaly_index },
            evidence: files,
        });
    }
    Ok((out, all_files))
}

/// Runs targeted reachability on held-out images and keeps the selected classes' results.
fn reach(
    plan: &AuditPlan,
    prepared: &mut PreparedModel,
    test: &ImageSet,
    selected: &[usize],
) -> Result<(Vec<ClassResult>, Vec<crate::report::EvidenceFile>)> {
    let pb = bar(0, "reach".into(), plan.progress);
    let r = run_reach(&mut prepared.model, &test.pixels, &test.labels, &plan.reach, |p| {
        pb.set_length(p.total as u64);
        pb.set_position(p.done as u64);
    })?;
    pb.finish_and_clear();
    let (c, h, w) = prepared.image_shape();
    let mut all_files = Vec::new();
    if let Some(dir) = &plan.evidence_dir {
        std::fs::create_dir_all(dir).map_err(|source| crate::report::ReportError::Io { path: dir.clone(), source })?;
        let labels: Vec<String> = r.classes.iter().map(|c| c.class.to_string()).collect();
        let flagged: Vec<bool> = r.classes.iter().map(|c| c.flagged).collect();
        let name = "reach-rates.png".to_string();
        crate::report::evidence::bar_chart_png(
            &dir.join(&name),
            &labels,
            &r.rates(),
            &flagged,
            &format!("targeted L2 PGD success rate per class at ε = {:.3}", r.eps),
            Some(1.0),
        )?;
        all_files.push(crate::report::EvidenceFile {
            kind: crate::report::EvidenceKind::BarChart,
            path: name,
            caption: format!("Success rate of targeted L2 PGD (ε = {:.3}) toward each class", r.eps),
        });
    }
    let mut out = Vec::new();
    for cr in r.classes.iter().filter(|cr| selected.contains(&cr.class)) {
        let mut files = Vec::new();
        if let (Some(dir), true) = (&plan.evidence_dir, cr.flagged && !cr.evidence.is_empty()) {
            let images: Vec<f32> = cr.evidence.iter().flat_map(|e| e.image.iter().copied()).collect();
            let name = format!("class-{}-reach.png", cr.class);
            crate::report::evidence::image_grid_png(&dir.join(&name), &images, cr.evidence.len(), c, h, w, 4, 3)?;
            files.push(crate::report::EvidenceFile {
                kind: crate::report::EvidenceKind::ImageGrid,
                path: name,
                caption: format!("Class {}: perturbed images that reached it within ε = {:.3}", cr.class, r.eps),
            });
        }
        all_files.extend(files.iter().cloned());
        out.push(ClassResult {
            class: cr.class as i64,
            name: test.class_names.get(cr.class).cloned(),
            flagged: cr.flagged,
            summary: format!(
                "class {}: targeted L2 PGD at ε = {:.3} reached it from {}/{} other-class images ({:.2}; median {:.2}), anomaly index {:.2}{}",
                cr.class,
                r.eps,
                cr.reached,
                cr.attempts,
                cr.rate,
                r.decision.median_rate,
                cr.anomaly_index,
                if cr.flagged { ": backdoor suspected" } else { "" }
            ),
            details: ClassDetails::Reach { success_rate: cr.rate, anomaly_index: cr.anomaly_index, epsilon: r.eps as f64 },
            evidence: files,
        });
    }
    Ok((out, all_files))
}
