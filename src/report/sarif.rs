//! SARIF 2.1.0 output, shaped for GitHub code scanning: rules with help text and `security-severity`, one
//! location per result (the model file, relative URI, `startLine: 1`), stable `partialFingerprints`, the model's
//! SHA-256 in `artifacts[].hashes`, the invocation with every parameter and seed, and notifications.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::model::{AuditReport, ClassResult, Level, ToolInfo, Verdict, EXIT_ERROR};
use super::relative_uri;

/// SARIF schema URI written in `$schema`.
pub const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";
/// Rule: a class looks like a backdoor target.
pub const RULE_SUSPECTED: &str = "AEGIS001";
/// Rule: the method's precondition failed, nothing was concluded.
pub const RULE_NOT_APPLICABLE: &str = "AEGIS002";
/// Rule: a class was analysed and found clean (only with [`SarifOptions::include_passes`]).
pub const RULE_CLASS_CLEAN: &str = "AEGIS003";
/// Key of the partial fingerprint: the one GitHub code scanning matches alerts by. upload-sarif fills it
/// only when it is missing, by hashing the text around the result's line, which for ONNX files from one
/// exporter is the same bytes: every finding would collapse into one alert. We write it ourselves.
pub const FINGERPRINT_KEY: &str = "primaryLocationLineHash";
/// Where a reader of the log learns about the tool (`tool.driver.informationUri`): the project's repository,
/// Cargo.toml's `repository` (the README is its front page), the address the README's Action and pre-commit
/// examples and the wheels' project URLs give too.
pub const INFORMATION_URI: &str = env!("CARGO_PKG_REPOSITORY");

/// How to write the SARIF log.
#[derive(Debug, Clone, PartialEq)]
pub struct SarifOptions {
    /// Folder URIs are made relative to (the SARIF file's folder or the working directory).
    pub base: PathBuf,
    /// Also write a `kind: "pass"` result for each clean class (off by default: GitHub shows every result).
    pub include_passes: bool,
}

impl SarifOptions {
    /// URIs relative to the working directory, no pass results.
    pub fn from_cwd() -> Self {
        SarifOptions { base: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")), include_passes: false }
    }
}

/// The report as a SARIF 2.1.0 log, URIs relative to the working directory (see [`to_sarif_with`]).
pub fn to_sarif(report: &AuditReport) -> Value {
    to_sarif_with(report, &SarifOptions::from_cwd())
}

/// The report as a SARIF 2.1.0 log.
pub fn to_sarif_with(report: &AuditReport, opts: &SarifOptions) -> Value {
    let model_uri = relative_uri(Path::new(&report.model.path), &opts.base);
    let mut results = Vec::new();
    if report.verdict == Verdict::NotApplicable {
        results.push(not_applicable_result(report, &model_uri));
    }
    for class in &report.classes {
        if class.flagged {
            results.push(class_result(report, opts, &model_uri, class, RULE_SUSPECTED));
        } else if opts.include_passes {
            results.push(class_result(report, opts, &model_uri, class, RULE_CLASS_CLEAN));
        }
    }
    json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": driver(&report.tool) },
            "automationDetails": { "id": format!("{}/{model_uri}/", report.tool.name) },
            "invocations": [invocation(report)],
            "artifacts": [{
                "location": { "uri": model_uri },
                "length": report.model.size_bytes,
                "hashes": { "sha-256": report.model.sha256 },
                "roles": ["analysisTarget"],
            }],
            "results": results,
            "properties": run_properties(report, opts),
        }],
    })
}

/// One model's part of a several-model SARIF log.
#[derive(Debug, Clone, Copy)]
pub enum RunInput<'a> {
    /// The model was audited.
    Report(&'a AuditReport),
    /// The model could not be audited.
    Failed {
        /// The model path as given.
        model: &'a str,
        /// Why, in one line.
        error: &'a str,
        /// The command line, program name first.
        command_line: &'a [String],
    },
}

/// Several models as one SARIF log: one run per model, in order, each with its own
/// `automationDetails.id`. A model that could not be audited gets a run with no results,
/// `executionSuccessful: false` and an error notification.
pub fn to_sarif_log(inputs: &[RunInput<'_>], opts: &SarifOptions) -> Value {
    let runs: Vec<Value> = inputs
        .iter()
        .map(|input| match *input {
            RunInput::Report(report) => to_sarif_with(report, opts)["runs"][0].take(),
            RunInput::Failed { model, error, command_line } => failed_run(model, error, command_line, opts),
        })
        .collect();
    json!({ "$schema": SCHEMA_URI, "version": "2.1.0", "runs": runs })
}

/// The run of a model that could not be audited.
fn failed_run(model: &str, error: &str, command_line: &[String], opts: &SarifOptions) -> Value {
    let tool = ToolInfo::default();
    let model_uri = relative_uri(Path::new(model), &opts.base);
    json!({
        "tool": { "driver": driver(&tool) },
        "automationDetails": { "id": format!("{}/{model_uri}/", tool.name) },
        "invocations": [{
            "commandLine": command_line.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" "),
            "arguments": command_line.iter().skip(1).collect::<Vec<_>>(),
            "executionSuccessful": false,
            "exitCode": EXIT_ERROR,
            "toolExecutionNotifications": [{ "level": "error", "message": { "text": error } }],
        }],
        "artifacts": [{ "location": { "uri": model_uri }, "roles": ["analysisTarget"] }],
        "results": [],
        "properties": { "exitCode": EXIT_ERROR, "error": error },
    })
}

/// `tool.driver`: name, version and the rules.
fn driver(tool: &ToolInfo) -> Value {
    json!({
        "name": tool.name,
        "version": tool.version,
        "semanticVersion": tool.version,
        "informationUri": INFORMATION_URI,
        "rules": rules(),
    })
}

/// The three rules, in index order.
fn rules() -> Value {
    json!([
        {
            "id": RULE_SUSPECTED,
            "name": "backdoor-suspected",
            "shortDescription": { "text": "Backdoor (trojan) suspected in an image classifier" },
            "fullDescription": { "text": "The model behaves as if a hidden trigger maps inputs to this class. \
                With the default fused decision (--method auto) every detector measures each class (universal \
                reach: the L2 budget of one perturbation shared by many images that sends them to the class; AEGIS: \
                how little images move when translated toward it; Neural Cleanse: the size of the smallest reversed \
                trigger; reach: the targeted success rate), each per-class anomaly index becomes a p-value against \
                the same detector on known-clean calibration models, and the class is flagged when the weighted \
                sum of −ln p reaches the threshold at which a clean model is flagged at most at the calibrated \
                false-positive rate (the result's properties give the fused score, the class and model p-values, \
                the threshold and each detector's contribution). An explicit --method flags the class by that \
                detector's own rule (an anomalously small displacement, mask or shared budget, an anomalous \
                targeted success rate, or with --aegis-decision clusters more clusters than clean classes)." },
            "help": { "text": "Do not deploy this model. Inspect the evidence (the shared perturbation and the \
                images it sends to the class, the shortest translations beside their seeds, the reversed trigger \
                mask, where a trigger often becomes visible), retrain from trusted data or prune \
                and fine-tune, and audit the training pipeline for poisoned samples." },
            "defaultConfiguration": { "level": "error" },
            "properties": {
                "security-severity": "9.0",
                "tags": ["security", "backdoor", "machine-learning"],
                "precision": "medium",
                "problem.severity": "error",
            },
        },
        {
            "id": RULE_NOT_APPLICABLE,
            "name": "method-not-applicable",
            "shortDescription": { "text": "Backdoor scan method does not apply to this model" },
            "fullDescription": { "text": "The method does not apply to this model, so nothing was concluded \
                about backdoors: an explicit AEGIS or reach needs an adversarially robust model (untargeted L2 \
                PGD must leave at least the threshold accuracy), and the fused decision is not validated on a \
                linear model of the image (no convolution, no hidden layer). The result's message says which." },
            "help": { "text": "The model was not verified. For a model that is not robust, run the default \
                fused decision (--method auto) or --method neural-cleanse or universal, or adversarially train \
                the model before auditing; a linear model cannot be cleared by the fused decision." },
            "defaultConfiguration": { "level": "warning" },
            "properties": {
                "security-severity": "5.0",
                "tags": ["security", "precondition"],
                "precision": "high",
                "problem.severity": "warning",
            },
        },
        {
            "id": RULE_CLASS_CLEAN,
            "name": "class-clean",
            "shortDescription": { "text": "No backdoor found for this class" },
            "fullDescription": { "text": "The class's measurement is within the normal range." },
            "help": { "text": "Nothing to do." },
            "defaultConfiguration": { "level": "none" },
            "properties": { "tags": ["backdoor"], "precision": "medium" },
        },
    ])
}

/// Index of a rule in [`rules`].
fn rule_index(rule: &str) -> usize {
    match rule {
        RULE_SUSPECTED => 0,
        RULE_NOT_APPLICABLE => 1,
        _ => 2,
    }
}

/// The single location every result has: the model file, line 1.
fn model_location(model_uri: &str) -> Value {
    json!([{
        "physicalLocation": {
            "artifactLocation": { "uri": model_uri, "index": 0 },
            "region": { "startLine": 1 },
        },
    }])
}

/// The finding's identity for GitHub: SHA-256 over the model's SHA-256, the rule, the method's report name
/// (`aegis`, `reach`, `neural-cleanse`) and the class, so it is the same in every run on the same model
/// and distinct per finding; a retrained model (another hash) gives new alerts.
fn fingerprint(report: &AuditReport, rule: &str, class: &str) -> Value {
    let method = serde_json::to_value(report.method.method).ok();
    let method = method.as_ref().and_then(Value::as_str).unwrap_or_else(|| report.method.method.name());
    let key = format!("aegis-audit/v1\0{}\0{rule}\0{method}\0{class}", report.model.sha256);
    let digest = Sha256::digest(key.as_bytes());
    json!({ FINGERPRINT_KEY: format!("{digest:x}") })
}

/// The result for one class (flagged or pass).
fn class_result(report: &AuditReport, opts: &SarifOptions, model_uri: &str, class: &ClassResult, rule: &str) -> Value {
    let (level, kind, what) = if rule == RULE_SUSPECTED {
        ("error", "fail", "backdoor suspected")
    } else {
        ("none", "pass", "no backdoor found")
    };
    let evidence: Vec<String> = match &report.evidence {
        Some(ev) => {
            class.evidence.iter().map(|f| relative_uri(&Path::new(&ev.dir).join(&f.path), &opts.base)).collect()
        }
        None => Vec::new(),
    };
    let mut props = Map::new();
    props.insert("class".into(), json!(class.class));
    if let Some(name) = &class.name {
        props.insert("className".into(), json!(name));
    }
    props.insert("method".into(), json!(report.method.method));
    props.insert("details".into(), json!(class.details));
    let per_detector: Vec<Value> = report
        .detectors
        .iter()
        .flat_map(|d| {
            d.classes.iter().filter(|c| c.class == class.class).map(|c| {
                json!({ "detector": d.name, "value": c.value, "anomalyIndex": c.anomaly_index, "flagged": c.flagged })
            })
        })
        .collect();
    if !per_detector.is_empty() {
        props.insert("detectors".into(), json!(per_detector));
    }
    if let Some(f) = &report.fused {
        props.insert(
            "fusedDecision".into(),
            json!({ "calibration": f.calibration, "targetFpr": f.target_fpr, "threshold": f.threshold, "detectors": f.detectors }),
        );
    }
    props.insert("evidence".into(), json!(evidence));
    json!({
        "ruleId": rule,
        "ruleIndex": rule_index(rule),
        "kind": kind,
        "level": level,
        "message": { "text": format!("Class {}: {what} ({}). {}", class.label(), report.method.method.name(), class.summary) },
        "locations": model_location(model_uri),
        "partialFingerprints": fingerprint(report, rule, &class.class.to_string()),
        "properties": props,
    })
}

/// The result saying the method does not apply.
fn not_applicable_result(report: &AuditReport, model_uri: &str) -> Value {
    // The method's reason says why (a failed robustness check, or a linear model); a failed check's
    // numbers follow.
    let check = match &report.precondition {
        Some(p) if !p.passed && report.method.method.requires_robust_model() => {
            format!(" (robustness check failed: {})", p.describe())
        }
        _ => String::new(),
    };
    let text = format!(
        "{} does not apply to this model: {}{check}. No backdoor verdict was reached.",
        report.method.method.name(),
        report.method.reason
    );
    json!({
        "ruleId": RULE_NOT_APPLICABLE,
        "ruleIndex": rule_index(RULE_NOT_APPLICABLE),
        "kind": "fail",
        "level": "warning",
        "message": { "text": text },
        "locations": model_location(model_uri),
        "partialFingerprints": fingerprint(report, RULE_NOT_APPLICABLE, "model"),
        "properties": { "precondition": report.precondition },
    })
}

/// `invocations[0]`: command line, arguments, success, every parameter and seed, notifications.
fn invocation(report: &AuditReport) -> Value {
    let notifications: Vec<Value> = report
        .notifications
        .iter()
        .map(|n| {
            let mut v = json!({
                "level": match n.level { Level::Error => "error", Level::Warning => "warning", Level::Note => "note" },
                "message": { "text": n.message },
            });
            if let Some(c) = n.class {
                v["properties"] = json!({ "class": c });
            }
            v
        })
        .collect();
    let arguments: Vec<&String> = report.command_line.iter().skip(1).collect();
    json!({
        "commandLine": report.command_line.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" "),
        "arguments": arguments,
        "executionSuccessful": report.execution_successful(),
        "toolExecutionNotifications": notifications,
        "properties": {
            "parameters": report.parameters,
            "method": report.method,
            "dataset": report.dataset,
            "precondition": report.precondition,
            "wallTimeSeconds": report.wall_time_s,
            "timings": report.timings,
        },
    })
}

/// Run-level properties: the verdict, its exit code, and every class's details (flagged or not).
fn run_properties(report: &AuditReport, opts: &SarifOptions) -> Value {
    let index = report.evidence.as_ref().map(|ev| relative_uri(&Path::new(&ev.dir).join(&ev.index), &opts.base));
    json!({
        "verdict": report.verdict,
        "exitCode": report.verdict.exit_code(),
        "modelSha256": report.model.sha256,
        "classes": report.classes,
        "fused": report.fused,
        "detectors": report.detectors.iter().map(|d| json!({
            "name": d.name, "statistic": d.statistic, "seconds": d.seconds,
            "gradientEvaluations": d.gradient_evaluations,
        })).collect::<Vec<_>>(),
        "evidenceIndex": index,
    })
}

/// Quotes an argument for a POSIX shell when it needs it.
fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}
