//! Writing an audit's visual evidence, in one place, after the decision: for the fused decision the
//! per-class fused scores against the threshold; then each detector's own evidence
//! ([`super::detectors::Measurements::evidence`], in the detector's file: charts of its statistic and, for
//! flagged classes, what shows the backdoor); then the `index.html` that links them. Classes are flagged
//! as the decision says (with the fused decision, every detector draws its evidence for the fused
//! flags). Paths in the report are relative to the evidence folder.

use std::collections::BTreeMap;
use std::path::Path;

use super::detectors::{DetectorRun, EvidenceRequest};
use super::one_model::AuditData;
use super::verdict::Decision;
use crate::decide::FusedDecision;
use crate::report::evidence::BarChart;
use crate::report::{html, AuditReport, EvidenceFile, EvidenceInfo, EvidenceKind, ReportError};
use crate::Result;

/// The evidence files written: those of each class, and those not tied to one class (charts), in the
/// order written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvidenceFiles {
    /// Files of each class.
    pub per_class: BTreeMap<usize, Vec<EvidenceFile>>,
    /// Files not tied to one class (the fused chart first, then each detector's).
    pub overview: Vec<EvidenceFile>,
}

impl EvidenceFiles {
    /// Adds `files` to those of `class`.
    pub(super) fn class(&mut self, class: usize, files: Vec<EvidenceFile>) {
        self.per_class.entry(class).or_default().extend(files);
    }
}

/// Writes the evidence of every detector's run into `dir`, the classes flagged as `decision` says.
pub fn write(dir: &Path, runs: &[DetectorRun], decision: &Decision, data: &AuditData) -> Result<EvidenceFiles> {
    create_dir(dir)?;
    let mut out = EvidenceFiles::default();
    if let Some(f) = &decision.fused {
        out.overview.push(fused_chart(dir, f)?);
    }
    for run in runs {
        let request = EvidenceRequest { dir, outcome: &run.outcome, flagged: &decision.flagged, data };
        let files = run.measured.evidence(&request)?;
        out.overview.extend(files.overview);
        for (class, files) in files.per_class {
            out.per_class.entry(class).or_default().extend(files);
        }
    }
    Ok(out)
}

/// The fused score of every audited class against the threshold (flagged classes in red).
fn fused_chart(dir: &Path, f: &FusedDecision) -> Result<EvidenceFile> {
    let labels = class_labels(f.classes.iter().map(|c| c.class));
    let scores: Vec<f64> = f.classes.iter().map(|c| c.score).collect();
    let marks: Vec<bool> = f.classes.iter().map(|c| c.flagged).collect();
    let top = scores.iter().copied().fold(f.threshold, f64::max) * 1.1;
    let title = format!("fused score per class (threshold {:.1} at α = {})", f.threshold, f.target_fpr);
    let chart = BarChart {
        labels: &labels,
        values: &scores,
        highlight: &marks,
        title: &title,
        y_max: Some(top),
        threshold: Some(f.threshold),
    };
    let caption = format!(
        "Fused score Σ w·(−ln p) of each class over {}; the line is the threshold a class must reach for a \
         model-level false-positive rate of {} (flagged classes in red)",
        f.detectors.join(", "),
        f.target_fpr
    );
    bar_chart(dir, "fused-scores.png", &chart, caption)
}

/// Each class's label on a chart: its index.
pub(super) fn class_labels(classes: impl Iterator<Item = usize>) -> Vec<String> {
    classes.map(|c| c.to_string()).collect()
}

/// Writes `chart` into `dir` as `name` and describes it for the report.
pub(super) fn bar_chart(dir: &Path, name: &str, chart: &BarChart<'_>, caption: String) -> Result<EvidenceFile> {
    chart.write_png(&dir.join(name))?;
    Ok(EvidenceFile { kind: EvidenceKind::BarChart, path: name.to_string(), caption })
}

/// Creates `dir` (and its parents) when missing.
pub(super) fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io { path: dir.to_path_buf(), source })?;
    Ok(())
}

/// Writes `index.html` into `dir` for the finished report, whose evidence will live in `final_dir`, and
/// returns the evidence summary.
pub fn finish(dir: &Path, final_dir: &Path, report: &AuditReport, files: Vec<EvidenceFile>) -> Result<EvidenceInfo> {
    create_dir(dir)?;
    let info = EvidenceInfo { dir: final_dir.display().to_string(), index: "index.html".to_string(), files };
    let mut with = report.clone();
    with.evidence = Some(info.clone());
    html::index_html(dir, &with)?;
    Ok(info)
}
