//! The evidence index page (`index.html`): the verdict, the run's facts and every evidence image, with
//! relative links. Every string from the model, the data or the command line is HTML-escaped: the model is
//! untrusted.

use std::fmt::Write;
use std::path::{Component, Path, PathBuf};

use super::model::{AuditReport, EvidenceFile};
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
fn figures(out: &mut String, files: &[EvidenceFile]) -> Result<(), ReportError> {
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

/// Renders the index page for `report` (links relative to the evidence folder).
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
         figure{{display:inline-block;margin:8px;vertical-align:top}} img{{max-width:560px;image-rendering:pixelated}}\n\
         </style>\n</head>\n<body>",
        escape(&report.model.path)
    );
    let _ = writeln!(o, "<h1>{} {}: {verdict}</h1>", escape(&report.tool.name), escape(&report.tool.version));
    let _ = writeln!(o, "<table>");
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
    if let Some(ev) = &report.evidence {
        if !ev.files.is_empty() {
            let _ = writeln!(o, "<h2>Overview</h2>");
            figures(&mut o, &ev.files)?;
        }
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
        let details = serde_json::to_string(&c.details)?;
        let _ = writeln!(o, "<pre>{}</pre>", escape(&details));
        figures(&mut o, &c.evidence)?;
        let _ = writeln!(o, "</section>");
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
