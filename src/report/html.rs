//! The evidence index page (`index.html`): the verdict and its reason first (the flagged classes, their
//! scores against the threshold and what each detector contributed), the images that show the trigger,
//! the per-class charts, the run's facts, each class, and the embedding scatter plots last, with
//! relative links. Every string from the model, the data or the command line is HTML-escaped: the model is
//! untrusted.

use std::fmt::Write;
use std::path::{Component, Path, PathBuf};

use super::model::{AuditReport, ClassDetails, EvidenceFile, EvidenceKind, Verdict};
use super::{write_atomic, ReportError};

/// Escapes `&`, `<`, `>`, `"` and `'` for HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A safe relative link to an evidence file: relative, no `..`, percent-encoded segments.
fn link(path: &str) -> Result<String, ReportError> {
    let p = Path::new(path);
    let ok = !path.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !ok || path.contains('\\') {
        return Err(ReportError::UnsafePath(path.to_string()));
    }
    Ok(super::relative_uri(p, Path::new("")))
}

/// One `<figure>` per evidence file.
fn figures<'a>(out: &mut String, files: impl IntoIterator<Item = &'a EvidenceFile>) -> Result<(), ReportError> {
    for f in files {
        let href = link(&f.path)?;
        let _ = writeln!(
            out,
            "<figure><a href=\"{href}\"><img src=\"{href}\" alt=\"{cap}\"></a><figcaption>{cap}</figcaption></figure>",
            cap = escape(&f.caption)
        );
    }
    Ok(())
}

/// A p-value in words: two decimals down to 0.01, then scientific.
fn p_text(p: f64) -> String {
    if p >= 0.01 {
        format!("{p:.2}")
    } else {
        format!("{p:.1e}")
    }
}

/// The verdict's reason: the flagged classes with their numbers (the fused score against the
/// threshold and each detector's part), or why nothing was flagged.
fn reason(o: &mut String, report: &AuditReport) {
    let _ = writeln!(o, "<h2>Why</h2>");
    if let Some(f) = &report.fused {
        let _ = writeln!(
            o,
            "<p>Fused, calibrated decision over {} (calibration: {}; {} clean calibration classes). A class is \
             flagged when its fused score reaches {:.2}, the score a clean model audited on {} classes reaches \
             somewhere with probability {} (the target false-positive rate). This model's highest score is {:.2} \
             (model p-value {}).</p>",
            escape(&f.detectors.join(", ")),
            escape(&f.calibration),
            f.null_classes,
            f.threshold,
            report.classes.len(),
            f.target_fpr,
            f.model_score,
            p_text(f.model_p_value)
        );
        if let Some(r) = &f.robustness_match {
            let _ = writeln!(o, "<p>The model was {}.</p>", escape(&r.describe()));
        }
        let _ = writeln!(o, "<p class=\"note\">{}</p>", escape(&f.description));
    }
    let flagged: Vec<_> = report.flagged().collect();
    if flagged.is_empty() {
        let text = match (report.verdict, &report.fused) {
            (Verdict::NotApplicable, _) => {
                format!("{} does not apply: {}", report.method.method.name(), report.method.reason)
            }
            (_, Some(f)) => format!(
                "No class reaches the threshold {:.2}: the highest fused score is {:.2}.",
                f.threshold, f.model_score
            ),
            _ => format!("{} flags no class.", report.method.method.name()),
        };
        let _ = writeln!(o, "<p>{}</p>", escape(&text));
        return;
    }
    for c in flagged {
        let _ = writeln!(o, "<h3 class=\"flag\">Class {}</h3>\n<p>{}</p>", escape(&c.label()), escape(&c.summary));
        if let ClassDetails::Fused { contributions, .. } = &c.details {
            let _ = writeln!(
                o,
                "<table><tr><th>detector</th><th>anomaly index</th><th>p-value</th><th>weight</th><th>score w·(−ln p)</th></tr>"
            );
            for p in contributions {
                let _ = writeln!(
                    o,
                    "<tr><td>{}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{:.2}</td></tr>",
                    escape(&p.detector),
                    p.index,
                    p_text(p.p_value),
                    p.weight,
                    p.score
                );
            }
            let _ = writeln!(o, "</table>");
        }
    }
}

/// Renders the index page for `report` (links relative to the evidence folder): the verdict and its
/// reason first, then the images that show the trigger of each flagged class, the charts, the run's
/// facts, each class, and last the embedding scatter plots (only where the clustering ran).
pub fn render_index(report: &AuditReport) -> Result<String, ReportError> {
    let mut o = String::new();
    let verdict = report.verdict.word();
    let _ = writeln!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src 'self'; style-src 'unsafe-inline'\">\n\
         <title>aegis-audit: {} ({verdict})</title>\n<style>\n\
         body{{font-family:sans-serif;margin:2em;max-width:1200px}} table{{border-collapse:collapse}}\n\
         td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}} .flag{{color:#b00;font-weight:bold}}\n\
         .note{{color:#555}} figure{{display:inline-block;margin:8px;vertical-align:top}} \
         img{{max-width:560px;image-rendering:pixelated}}\n\
         pre{{white-space:pre-wrap;overflow-wrap:anywhere;background:#f6f6f6;padding:6px}}\n\
         </style>\n</head>\n<body>",
        escape(&report.model.path)
    );
    let _ = writeln!(o, "<h1>{verdict}</h1>");
    let _ = writeln!(
        o,
        "<p>{} (sha256 {}), {} {}</p>",
        escape(&report.model.path),
        escape(&report.model.sha256),
        escape(&report.tool.name),
        escape(&report.tool.version)
    );
    reason(&mut o, report);
    let trigger: Vec<_> = report
        .flagged()
        .map(|c| (c, c.evidence.iter().filter(|f| f.kind != EvidenceKind::Scatter).collect::<Vec<_>>()))
        .filter(|(_, files)| !files.is_empty())
        .collect();
    if !trigger.is_empty() {
        let _ = writeln!(o, "<h2>What shows the trigger</h2>");
        for (c, files) in trigger {
            let _ = writeln!(o, "<h3 class=\"flag\">Class {}</h3>", escape(&c.label()));
            figures(&mut o, files)?;
        }
    }
    if let Some(ev) = &report.evidence {
        if !ev.files.is_empty() {
            let _ = writeln!(o, "<h2>Scores per class</h2>");
            figures(&mut o, &ev.files)?;
        }
    }
    let _ = writeln!(o, "<h2>Run</h2>\n<table>");
    let mut row = |k: &str, v: String| {
        let _ = writeln!(o, "<tr><th>{k}</th><td>{v}</td></tr>");
    };
    row("model", escape(&report.model.path));
    row("sha256", escape(&report.model.sha256));
    row("size", format!("{} bytes", report.model.size_bytes));
    let d = &report.dataset;
    row(
        "data",
        escape(&format!(
            "{} ({}, {} split, {} images {:?}, {} classes)",
            d.path, d.format, d.split, d.images, d.image_shape, d.classes
        )),
    );
    row("method", escape(&format!("{} ({})", report.method.method.name(), report.method.reason)));
    if let Some(p) = &report.precondition {
        row("robustness", escape(&format!("{}: {}", if p.passed { "passed" } else { "failed" }, p.describe())));
    }
    for det in &report.detectors {
        let own: Vec<String> = det.classes.iter().filter(|c| c.flagged).map(|c| c.class.to_string()).collect();
        row(
            &format!("detector {}", escape(&det.name)),
            escape(&format!(
                "{}; {:.1} s, {} gradient evaluations; its own rule flags: {}",
                det.statistic,
                det.seconds,
                det.gradient_evaluations,
                if own.is_empty() { "none".to_string() } else { own.join(", ") }
            )),
        );
    }
    row("command", escape(&report.command_line.join(" ")));
    row("wall time", format!("{:.1} s", report.wall_time_s));
    let _ = writeln!(o, "</table>");
    if !report.notifications.is_empty() {
        let _ = writeln!(o, "<h2>Notifications</h2>\n<ul>");
        for n in &report.notifications {
            let _ = writeln!(o, "<li>{:?}: {}</li>", n.level, escape(&n.message));
        }
        let _ = writeln!(o, "</ul>");
    }
    let _ = writeln!(o, "<h2>Classes</h2>");
    for c in &report.classes {
        let class = if c.flagged { " class=\"flag\"" } else { "" };
        let status = if c.flagged { "backdoor suspected" } else { "clean" };
        let _ = writeln!(
            o,
            "<section>\n<h3{class}>Class {}: {status}</h3>\n<p>{}</p>",
            escape(&c.label()),
            escape(&c.summary)
        );
        let reasons: Vec<&str> = report
            .detectors
            .iter()
            .filter(|_| report.detectors.len() > 1)
            .flat_map(|d| d.classes.iter().filter(|s| s.class == c.class).map(|s| s.reason.as_str()))
            .collect();
        if !reasons.is_empty() {
            let _ = writeln!(o, "<ul>");
            for r in reasons {
                let _ = writeln!(o, "<li>{}</li>", escape(r));
            }
            let _ = writeln!(o, "</ul>");
        }
        let details = serde_json::to_string(&c.details)?;
        let _ = writeln!(o, "<pre>{}</pre>", escape(&details));
        figures(&mut o, c.evidence.iter().filter(|f| f.kind != EvidenceKind::Scatter))?;
        let _ = writeln!(o, "</section>");
    }
    let scatter: Vec<&EvidenceFile> =
        report.classes.iter().flat_map(|c| c.evidence.iter().filter(|f| f.kind == EvidenceKind::Scatter)).collect();
    if !scatter.is_empty() {
        let _ = writeln!(o, "<h2>Embeddings (where the clustering ran)</h2>");
        figures(&mut o, scatter)?;
    }
    let _ = writeln!(o, "</body>\n</html>");
    Ok(o)
}

/// Writes the index page into `dir` (named as in `report.evidence`, `index.html` by default) atomically and
/// returns its path. Fails on an evidence path that is absolute or contains `..`.
pub fn index_html(dir: &Path, report: &AuditReport) -> Result<PathBuf, ReportError> {
    let name = report.evidence.as_ref().map_or("index.html", |e| e.index.as_str());
    link(name)?;
    let path = dir.join(name);
    write_atomic(&path, render_index(report)?.as_bytes())?;
    Ok(path)
}
