//! The readable summary printed on stdout: header lines (method, robustness, the fused decision's
//! threshold, each detector's cost), one row per class, and the verdict.

use std::fmt::Write;

use super::model::{AuditReport, ClassDetails, Level};

/// Untrusted text (class names, paths, messages quoting them) for the terminal: control characters
/// (terminal escapes) and the invisible characters that reorder or hide text (bidirectional
/// overrides) written as escapes ([`crate::escape::escape`]), as in every error line.
pub fn clean(text: &str) -> String {
    crate::escape::escape(text).into_owned()
}

/// The details column for one class.
fn details(d: &ClassDetails) -> String {
    match d {
        ClassDetails::Aegis {
            displacement,
            shortcut_index,
            clusters,
            cluster_sizes,
            translated_per_cluster,
            bandwidth,
            ..
        } => match clusters {
            Some(clusters) => format!(
                "displacement {displacement:.2} (index {shortcut_index:.2}); {clusters} clusters, sizes \
                 {cluster_sizes:?}, translated {translated_per_cluster:?}, bandwidth {bandwidth:.3}"
            ),
            None => format!("displacement {displacement:.2} (index {shortcut_index:.2}); clusters not computed"),
        },
        ClassDetails::Universal { budget, reached, anomaly_index, .. } => format!(
            "shared perturbation budget {budget:.3}{} (index {anomaly_index:.2})",
            if *reached { "" } else { ", not reached" }
        ),
        ClassDetails::Fused { score, model_p_value, contributions, .. } => {
            let parts: Vec<String> =
                contributions.iter().map(|c| format!("{} {:.2}→{:.1}", c.detector, c.index, c.score)).collect();
            format!("fused {score:.1} (p {}): {}", p_text(*model_p_value), parts.join(", "))
        }
        ClassDetails::Reach { success_rate, anomaly_index, epsilon } => {
            format!("success {:.1}%, anomaly index {anomaly_index:.2}, ε {epsilon}", success_rate * 100.0)
        }
        ClassDetails::NeuralCleanse { mask_l1, anomaly_index } => {
            format!("mask L1 {mask_l1:.2}, anomaly index {anomaly_index:.2}")
        }
    }
}

/// A p-value in words: two decimals down to 0.01, then scientific.
fn p_text(p: f64) -> String {
    if p >= 0.01 {
        format!("{p:.2}")
    } else {
        format!("{p:.1e}")
    }
}

/// Renders the report as a plain-text table for a terminal.
pub fn render(report: &AuditReport) -> String {
    let mut out = String::new();
    let m = &report.model;
    let _ = writeln!(out, "{} {}", report.tool.name, report.tool.version);
    let _ = writeln!(out, "model    {} ({} bytes, sha256 {})", clean(&m.path), m.size_bytes, m.sha256);
    let d = &report.dataset;
    let _ = writeln!(
        out,
        "data     {} ({}, {} split, {} images {:?}, {} classes)",
        clean(&d.path),
        d.format,
        d.split,
        d.images,
        d.image_shape,
        d.classes
    );
    let _ = writeln!(out, "method   {} ({})", report.method.method.name(), clean(&report.method.reason));
    if let Some(p) = &report.precondition {
        let _ = writeln!(out, "robust   {}: {}", if p.passed { "passed" } else { "FAILED" }, p.describe());
    }
    if let Some(f) = &report.fused {
        let _ = writeln!(
            out,
            "fused    threshold {:.2} at α = {} ({} calibration classes, calibration {}); highest score {:.2}, model \
             p-value {}",
            f.threshold,
            f.target_fpr,
            f.null_classes,
            clean(&f.calibration),
            f.model_score,
            p_text(f.model_p_value)
        );
        if let Some(r) = &f.robustness_match {
            let _ = writeln!(out, "         {}", r.describe());
        }
    }
    if let Some(s) = report.effort.as_ref().and_then(|e| e.screen.as_ref()) {
        let _ = writeln!(
            out,
            "effort   adaptive: {} classes screened in {:.1} s; full effort on {} (candidates {}; {} reference), {} \
             dismissed",
            s.indices.len(),
            s.seconds,
            s.candidates.len() + s.reference.len(),
            s.candidates.iter().map(usize::to_string).collect::<Vec<_>>().join(", "),
            s.reference.len(),
            s.dismissed.len()
        );
    }
    for d in &report.detectors {
        let own: Vec<String> = d.classes.iter().filter(|c| c.flagged).map(|c| c.class.to_string()).collect();
        let _ = writeln!(
            out,
            "detector {:<14} {:>7.1} s, {:>9} gradient evaluations; own rule flags {}",
            d.name,
            d.seconds,
            d.gradient_evaluations,
            if own.is_empty() { "none".to_string() } else { own.join(", ") }
        );
    }
    if !report.classes.is_empty() {
        let labels: Vec<String> = report.classes.iter().map(|c| clean(&c.label())).collect();
        let width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0).max(5);
        let _ = writeln!(out, "\n{:<width$}  {:<8}  details", "class", "status");
        for (c, label) in report.classes.iter().zip(&labels) {
            let status = if c.flagged { "SUSPECT" } else { "ok" };
            let _ = writeln!(out, "{label:<width$}  {status:<8}  {}", details(&c.details));
        }
    }
    for n in &report.notifications {
        let level = match n.level {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Note => "note",
        };
        let _ = writeln!(out, "{level}: {}", clean(&n.message));
    }
    if let Some(ev) = &report.evidence {
        let _ = writeln!(out, "\nevidence {}/{}", clean(&ev.dir), clean(&ev.index));
    }
    if let Some(m) = &report.memory {
        let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
        let peak = m.peak_resident_bytes.map_or("not known".to_string(), |b| format!("{:.0} MiB", mib(b)));
        let _ = writeln!(
            out,
            "\nmemory   peak {peak}; limit {:.0} MiB, about {:.1} MiB per image, at most {} images per evaluation",
            mib(m.limit_bytes),
            mib(m.bytes_per_image),
            m.images_per_evaluation
        );
    }
    let flagged: Vec<String> = report.flagged().map(|c| c.class.to_string()).collect();
    let suffix = if flagged.is_empty() { String::new() } else { format!(" (classes {})", flagged.join(", ")) };
    let _ = writeln!(
        out,
        "\nverdict  {}{suffix}, exit code {}, {:.1} s",
        report.verdict.word(),
        report.verdict.exit_code(),
        report.wall_time_s
    );
    out
}
