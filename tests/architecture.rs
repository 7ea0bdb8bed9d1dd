//! The layering of docs/architecture.md, checked on the source: every path into another top-level
//! module (`crate::x`, or `super::` climbing out of a module) must be one the importing module's rule
//! allows, and the binary (`src/main.rs`, `src/cli/`) may use only `aegis_audit::audit` and
//! `aegis_audit::report`. A new forbidden import fails this test with the file, the line and the rule.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What each top-level module of the library may import (besides itself). Lower layers first.
const RULES: &[(&str, &[&str])] = &[
    ("escape", &[]),
    ("fsio", &[]),
    ("onnx", &[]),
    ("runtime", &["onnx"]),
    ("data", &[]),
    ("fit_input", &[]),
    ("report", &[]),
    ("grad", &["onnx"]),
    // The analysis of a loaded model asks grad::path (the one definition of the differentiable path).
    ("analysis", &["onnx", "grad"]),
    // The PGD step graph is built as ONNX (attack::step_graph) and run on ONNX Runtime.
    ("attack", &["runtime", "onnx"]),
    ("embed", &["fit_input"]),
    ("cluster", &["fit_input"]),
    ("decide", &[]),
    ("detect", &["attack", "embed", "cluster", "data"]),
    // The top layer; it owns the crate-wide error (`crate::Error`, `crate::Result`), which wraps every
    // module's error type.
    (
        "audit",
        &["onnx", "analysis", "grad", "runtime", "attack", "data", "embed", "cluster", "detect", "decide", "report"],
    ),
    ("lib", &[]),
];

/// Leaf utilities every module (and the binary) may import: escaping names from a model before printing,
/// opening inputs and checking outputs safely.
const LEAVES: &[&str] = &["escape", "fsio"];

/// What the binary may use of the library.
const BINARY_MAY_USE: &[&str] = &["audit", "report", "escape", "fsio"];

/// Imports that break the rules, each with the reason, until the code is moved: none today. Each must
/// still occur: the test fails when one is no longer needed, so that it is deleted here.
const KNOWN_EXCEPTIONS: &[(&str, &str)] = &[];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file under `src/` (`src/detect/aegis/mod.rs` → `[detect, aegis]`,
/// `src/analysis.rs` → `[analysis]`, `src/lib.rs` → `[]`).
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let file = parts.pop().unwrap();
    let stem = file.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts
}

/// Code without comments (line comments, doc comments) and without string literals' contents.
fn code_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| {
            let mut out = String::new();
            let mut in_str = false;
            let mut chars = line.chars().peekable();
            while let Some(c) = chars.next() {
                if in_str {
                    if c == '\\' {
                        chars.next();
                    } else if c == '"' {
                        in_str = false;
                        out.push('"');
                    }
                    continue;
                }
                if c == '/' && chars.peek() == Some(&'/') {
                    break;
                }
                if c == '"' {
                    in_str = true;
                }
                out.push(c);
            }
            out
        })
        .collect()
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every `crate::x` and `super::…::x` path in `line`: `(supers, first segment after them)`, with
/// `supers = usize::MAX` for `crate::`.
fn paths(line: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let bytes: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let at_word_start = i == 0 || !is_ident(bytes[i - 1]) && bytes[i - 1] != '$';
        let rest: String = bytes[i..].iter().collect();
        if at_word_start && (rest.starts_with("crate::") || rest.starts_with("super::")) {
            let mut supers = 0;
            let mut j = i;
            let is_crate = rest.starts_with("crate::");
            if is_crate {
                j += "crate::".len();
            } else {
                while bytes[j..].iter().collect::<String>().starts_with("super::") {
                    supers += 1;
                    j += "super::".len();
                }
            }
            let name: String = bytes[j..].iter().take_while(|c| is_ident(**c)).collect();
            // `super::{a, b}` names several; the group is checked item by item below.
            if name.is_empty() && bytes.get(j) == Some(&'{') {
                let group: String = bytes[j + 1..].iter().take_while(|c| **c != '}').collect();
                for item in group.split(',') {
                    let item: String = item.trim().chars().take_while(|c| is_ident(*c)).collect();
                    if !item.is_empty() {
                        found.push((if is_crate { usize::MAX } else { supers }, item));
                    }
                }
            } else if !name.is_empty() {
                found.push((if is_crate { usize::MAX } else { supers }, name));
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    found
}

/// The top-level module a path lands in, from a line inside module `here` (file module plus inline
/// modules); `None` when it stays inside `here`'s top-level module or names something that is not a
/// module of the crate root.
fn target(here: &[String], supers: usize, name: &str, roots: &BTreeSet<String>) -> Option<String> {
    // `crate::` (supers = MAX), or enough `super::` to climb out of the top-level module.
    let resolved: Vec<String> = if supers >= here.len() {
        vec![name.to_string()]
    } else {
        let mut p = here[..here.len() - supers].to_vec();
        p.push(name.to_string());
        p
    };
    let top = resolved.first()?.clone();
    let own = here.first().cloned().unwrap_or_else(|| "lib".into());
    // `crate::Result` / `crate::Error` are the re-exports of the crate-wide error, which `audit` owns.
    let top = if top == "Result" || top == "Error" { "audit".to_string() } else { top };
    (roots.contains(&top) && top != own).then_some(top)
}

#[test]
fn every_import_keeps_the_layering() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let rules: BTreeMap<&str, &[&str]> = RULES.iter().copied().collect();
    let roots: BTreeSet<String> = RULES.iter().map(|(m, _)| m.to_string()).collect();
    let mut violations = Vec::new();
    let mut exceptions_seen = BTreeSet::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let text = std::fs::read_to_string(file).unwrap();
        let lines = code_lines(&text);
        let binary = rel.starts_with("cli") || rel == Path::new("main.rs");
        if binary {
            for (n, line) in lines.iter().enumerate() {
                let mut rest = line.as_str();
                while let Some(i) = rest.find("aegis_audit::") {
                    let after = &rest[i + "aegis_audit::".len()..];
                    let names: Vec<String> = if let Some(group) = after.strip_prefix('{') {
                        group.split('}').next().unwrap_or("").split(',').map(|s| s.trim().to_string()).collect()
                    } else {
                        vec![after.chars().take_while(|c| is_ident(*c)).collect()]
                    };
                    for name in names.iter().map(|n| n.split("::").next().unwrap_or("")) {
                        if !name.is_empty() && !BINARY_MAY_USE.contains(&name) {
                            violations.push(format!(
                                "src/{}:{}: the binary uses aegis_audit::{name}; it may use only {:?}",
                                rel.display(),
                                n + 1,
                                BINARY_MAY_USE
                            ));
                        }
                    }
                    rest = after;
                }
            }
            continue;
        }
        let module = module_path(rel);
        let own = module.first().cloned().unwrap_or_else(|| "lib".into());
        let allowed = rules.get(own.as_str()).unwrap_or_else(|| {
            panic!(
                "src/{}: module '{own}' has no rule in tests/architecture.rs and docs/architecture.md",
                rel.display()
            )
        });
        // Inline modules (`mod tests { … }`) deepen the path `super::` starts from.
        let mut inline: Vec<(String, i64)> = Vec::new();
        let mut depth: i64 = 0;
        for (n, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            let decl = trimmed.strip_prefix("pub ").unwrap_or(trimmed);
            if let Some(rest) = decl.strip_prefix("mod ") {
                let name: String = rest.chars().take_while(|c| is_ident(*c)).collect();
                if rest[name.len()..].trim_start().starts_with('{') {
                    inline.push((name, depth));
                }
            }
            let mut here = module.clone();
            here.extend(inline.iter().map(|(m, _)| m.clone()));
            for (supers, name) in paths(line) {
                if let Some(top) = target(&here, supers, &name, &roots) {
                    if allowed.contains(&top.as_str()) || LEAVES.contains(&top.as_str()) {
                        continue;
                    }
                    if KNOWN_EXCEPTIONS.contains(&(own.as_str(), top.as_str())) {
                        exceptions_seen.insert((own.clone(), top));
                        continue;
                    }
                    violations.push(format!(
                        "src/{}:{}: '{own}' imports '{top}'; it may import only {allowed:?} ({})",
                        rel.display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
            depth += line.matches('{').count() as i64 - line.matches('}').count() as i64;
            while inline.last().is_some_and(|(_, d)| depth <= *d) {
                inline.pop();
            }
        }
    }
    assert!(violations.is_empty(), "forbidden imports (docs/architecture.md):\n{}", violations.join("\n"));
    for (from, to) in KNOWN_EXCEPTIONS {
        assert!(
            exceptions_seen.contains(&(from.to_string(), to.to_string())),
            "'{from}' no longer imports '{to}': delete the exception from KNOWN_EXCEPTIONS in tests/architecture.rs"
        );
    }
}

#[test]
fn the_checker_sees_forbidden_paths() {
    let roots: BTreeSet<String> = RULES.iter().map(|(m, _)| m.to_string()).collect();
    let here = vec!["detect".to_string(), "aegis".to_string(), "tests".to_string()];
    let found: Vec<Option<String>> =
        paths("use crate::report::Verdict; let x = super::super::super::audit::run(); use super::{a, b};")
            .into_iter()
            .map(|(s, n)| target(&here, s, &n, &roots))
            .collect();
    assert_eq!(found, vec![Some("report".into()), Some("audit".into()), None, None]);
    assert!(code_lines("let s = \"crate::audit\"; // crate::report")[0].find("crate::").is_none());
    assert_eq!(module_path(Path::new("detect/aegis/mod.rs")), ["detect", "aegis"]);
    assert_eq!(module_path(Path::new("analysis.rs")), ["analysis"]);
    // The crate-wide error is the top layer's: a lower module naming it imports `audit`.
    assert_eq!(target(&["onnx".to_string()], usize::MAX, "Result", &roots), Some("audit".into()));
    assert_eq!(target(&["audit".to_string()], usize::MAX, "Error", &roots), None);
}
