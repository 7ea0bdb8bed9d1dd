//! SARIF output: every report validates against the committed OASIS SARIF 2.1.0 schema (draft 4) and meets
//! GitHub code scanning's constraints; JSON and table outputs carry the same facts. With `AEGIS_SARIF_DUMP`
//! set, every valid log is also written there, for `scripts/check_sarif.py` (Microsoft's SARIF Multitool
//! with GitHub's rules) after `cargo test`.

mod report_support;
mod sarif_dump;

use std::path::{Path, PathBuf};

use aegis_audit::report::sarif::{
    to_sarif_with, SarifOptions, FINGERPRINT_KEY, INFORMATION_URI, RULE_NOT_APPLICABLE, RULE_SUSPECTED,
};
use aegis_audit::report::Method;
use aegis_audit::report::{table, to_json, AuditReport, Level, Notification, Verdict};
use serde_json::Value;

fn schema_validator() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/schemas/sarif-schema-2.1.0.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::options().with_draft(jsonschema::Draft::Draft4).should_validate_formats(true).build(&schema).unwrap()
}

fn sarif(report: &AuditReport) -> Value {
    let opts = SarifOptions { base: PathBuf::from("/work/repo"), include_passes: false };
    to_sarif_with(report, &opts)
}

fn assert_valid(log: &Value) {
    let validator = schema_validator();
    let errors: Vec<String> = validator.iter_errors(log).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "SARIF invalid: {errors:#?}");
    sarif_dump::dump("report_sarif", log);
}

/// `partialFingerprints.primaryLocationLineHash` of result `i`.
fn fingerprint(log: &Value, i: usize) -> String {
    log["runs"][0]["results"][i]["partialFingerprints"][FINGERPRINT_KEY].as_str().unwrap().to_string()
}

/// GitHub constraints: one relative location per result with startLine, our own line-hash fingerprint,
/// rule metadata (help text; for finding rules a string `security-severity` with the `security` tag, and a
/// precision), the tool's information URI.
fn assert_github_ready(log: &Value) {
    let run = &log["runs"][0];
    let info = run["tool"]["driver"]["informationUri"].as_str().unwrap();
    assert!(info.starts_with("https://") && info == INFORMATION_URI, "{info}");
    for rule in run["tool"]["driver"]["rules"].as_array().unwrap() {
        assert!(rule["help"]["text"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(rule["shortDescription"]["text"].is_string() && rule["fullDescription"]["text"].is_string());
        let props = &rule["properties"];
        assert!(["very-high", "high", "medium", "low"].contains(&props["precision"].as_str().unwrap()), "{rule}");
        if rule["defaultConfiguration"]["level"] != "none" {
            let severity: f64 = props["security-severity"].as_str().expect("severity as a string").parse().unwrap();
            assert!((0.1..=10.0).contains(&severity), "{rule}");
            assert!(props["tags"].as_array().unwrap().contains(&"security".into()), "{rule}");
        }
    }
    for result in run["results"].as_array().unwrap() {
        let locations = result["locations"].as_array().unwrap();
        assert_eq!(locations.len(), 1);
        let loc = &locations[0]["physicalLocation"];
        let uri = loc["artifactLocation"]["uri"].as_str().unwrap();
        assert!(!uri.starts_with('/') && !uri.contains("://"), "uri {uri}");
        assert_eq!(loc["region"]["startLine"], 1);
        let hash = result["partialFingerprints"][FINGERPRINT_KEY].as_str().unwrap();
        assert!(hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()), "{hash}");
        assert!(result["message"]["text"].as_str().is_some_and(|t| !t.is_empty()));
    }
    assert_eq!(run["artifacts"][0]["hashes"]["sha-256"], "ab".repeat(32));
}

#[test]
fn clean_report_is_valid_with_no_result() {
    let log = sarif(&report_support::report(Verdict::Clean));
    assert_valid(&log);
    assert_github_ready(&log);
    assert_eq!(log["runs"][0]["results"].as_array().unwrap().len(), 0);
    assert_eq!(log["runs"][0]["properties"]["exitCode"], 0);
    assert_eq!(log["runs"][0]["properties"]["classes"].as_array().unwrap().len(), 10);
}

#[test]
fn suspected_report_flags_the_class_with_details_and_evidence() {
    let log = sarif(&report_support::report(Verdict::Suspected));
    assert_valid(&log);
    assert_github_ready(&log);
    let run = &log["runs"][0];
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    let r = &results[0];
    assert_eq!(r["ruleId"], RULE_SUSPECTED);
    assert_eq!(r["level"], "error");
    assert_eq!(r["properties"]["class"], 7);
    assert_eq!(r["properties"]["details"]["clusters"], 4);
    assert_eq!(r["properties"]["details"]["bandwidth"], 0.87);
    assert_eq!(r["properties"]["evidence"][0], "evidence/class_7_tsne.png");
    assert_eq!(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], "models/mnist%20robust.onnx");
    let rule = &run["tool"]["driver"]["rules"][0];
    assert_eq!(rule["id"], RULE_SUSPECTED);
    let severity: f64 = rule["properties"]["security-severity"].as_str().unwrap().parse().unwrap();
    assert!(severity >= 9.0);
    assert!(rule["properties"]["tags"].as_array().unwrap().contains(&"security".into()));
    let inv = &run["invocations"][0];
    assert_eq!(inv["properties"]["parameters"]["seed"], 42);
    assert_eq!(inv["arguments"].as_array().unwrap().len(), 5);
    assert!(inv["commandLine"].as_str().unwrap().contains("'models/mnist robust.onnx'"));
    assert_eq!(inv["executionSuccessful"], true);
    assert_eq!(inv["toolExecutionNotifications"][0]["level"], "warning");
}

#[test]
fn fingerprints_are_stable_and_distinct_per_class() {
    let mut report = report_support::report(Verdict::Suspected);
    report.classes[2].flagged = true;
    let a = sarif(&report);
    let b = sarif(&report);
    assert_eq!(fingerprint(&a, 0), fingerprint(&b, 0));
    assert_ne!(fingerprint(&a, 0), fingerprint(&a, 1));
}

#[test]
fn fingerprints_are_github_line_hashes_fixed_across_runs_and_paths() {
    // The value is part of the output contract: GitHub matches alerts across runs by it, so a change of
    // formula would close every open alert and reopen it. Expected values computed independently
    // (Python hashlib) from "aegis-audit/v1\0{model sha256}\0{rule}\0{method}\0{class}".
    let report = report_support::report(Verdict::Suspected);
    let log = sarif(&report);
    assert_valid(&log);
    assert_eq!(fingerprint(&log, 0), "aed341da3bde3632c697cadbf018fc6bfa529505d6da1094efe1713207ed3c51");
    let na = sarif(&report_support::report(Verdict::NotApplicable));
    assert_eq!(fingerprint(&na, 0), "fd0b43a92cb66f6742147c3b3c75dddf9fe99094707185040a236d94d6e20455");

    // The same model audited from elsewhere, later, with other parameters: same finding, same hash.
    let mut moved = report.clone();
    moved.model.path = "/srv/registry/model-v3.onnx".into();
    moved.wall_time_s = 9.0;
    moved.command_line.push("--steps".into());
    let moved_log = to_sarif_with(&moved, &SarifOptions { base: PathBuf::from("/tmp"), include_passes: true });
    assert_valid(&moved_log);
    let moved_flagged: Vec<&Value> =
        moved_log["runs"][0]["results"].as_array().unwrap().iter().filter(|r| r["kind"] == "fail").collect();
    assert_eq!(moved_flagged[0]["partialFingerprints"][FINGERPRINT_KEY], fingerprint(&log, 0));

    // Distinct per model, per method and per rule.
    let mut other_model = report.clone();
    other_model.model.sha256 = "cd".repeat(32);
    assert_ne!(fingerprint(&sarif(&other_model), 0), fingerprint(&log, 0));
    let mut other_method = report.clone();
    other_method.method.method = Method::Reach;
    assert_ne!(fingerprint(&sarif(&other_method), 0), fingerprint(&log, 0));
    let all = to_sarif_with(&report, &SarifOptions { base: PathBuf::from("/work/repo"), include_passes: true });
    let mut hashes: Vec<&str> = all["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["partialFingerprints"][FINGERPRINT_KEY].as_str().unwrap())
        .collect();
    hashes.sort_unstable();
    hashes.dedup();
    assert_eq!(hashes.len(), 10, "pass and fail results of 10 classes: 10 distinct hashes");
}

#[test]
fn not_applicable_report_has_one_warning_result() {
    let mut report = report_support::report(Verdict::NotApplicable);
    report.notifications.push(Notification {
        level: Level::Error,
        message: "PGD diverged on 3 images".into(),
        class: None,
    });
    let log = sarif(&report);
    assert_valid(&log);
    assert_github_ready(&log);
    let results = log["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["ruleId"], RULE_NOT_APPLICABLE);
    assert_eq!(results[0]["level"], "warning");
    assert!(results[0]["message"]["text"].as_str().unwrap().contains("adversarial accuracy 0.020 vs threshold 0.400"));
    assert_eq!(log["runs"][0]["invocations"][0]["executionSuccessful"], false);
    assert_eq!(log["runs"][0]["properties"]["exitCode"], 3);
}

#[test]
fn pass_results_and_absolute_paths_stay_valid_and_relative() {
    let mut report = report_support::report(Verdict::Suspected);
    report.model.path = "/elsewhere/model.onnx".into();
    let opts = SarifOptions { base: PathBuf::from("/work/repo"), include_passes: true };
    let log = to_sarif_with(&report, &opts);
    assert_valid(&log);
    assert_github_ready(&log);
    let results = log["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 10);
    assert_eq!(results.iter().filter(|r| r["kind"] == "pass").count(), 9);
    assert_eq!(results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], "model.onnx");
}

#[test]
fn json_round_trips_and_table_shows_verdict() {
    let report = report_support::report(Verdict::Suspected);
    let text = to_json(&report).unwrap();
    let back: AuditReport = serde_json::from_str(&text).unwrap();
    assert_eq!(back, report);
    assert_eq!(back.derived_verdict(), Verdict::Suspected);
    let table = table::render(&report);
    assert!(table.contains("BACKDOOR SUSPECTED (classes 7), exit code 1"), "{table}");
    assert!(table.contains("7 (\"digit 7\")  SUSPECT"), "{table}");
    assert!(table.contains("4 clusters, sizes [120, 90, 60, 30]"), "{table}");
    let memory = "memory   peak 400 MiB; limit 4096 MiB, about 0.2 MiB per image, at most 100 images per evaluation";
    assert!(table.contains(memory), "{table}");
    let na = table::render(&report_support::report(Verdict::NotApplicable));
    assert!(na.contains("robust   FAILED") && na.contains("exit code 3"), "{na}");
}

#[test]
fn table_neutralises_terminal_escapes_in_class_names() {
    let mut report = report_support::report(Verdict::Clean);
    report.classes[0].name = Some("evil\u{1b}[2Jname".into());
    report.classes[1].name = Some("7\u{202e}lave".into());
    let table = table::render(&report);
    assert!(!table.contains('\u{1b}') && !table.contains('\u{202e}'));
    assert!(table.contains("evil\\u{1b}[2Jname"), "{table}");
    assert!(table.contains("7\\u{202e}lave"), "{table}");
}

#[test]
fn schema_validation_catches_broken_logs() {
    let mut log = sarif(&report_support::report(Verdict::Suspected));
    log["runs"][0]["results"][0]["message"] = serde_json::json!({ "markdown": 3 });
    assert!(!schema_validator().is_valid(&log), "a result message without text must fail");
    let mut log = sarif(&report_support::report(Verdict::Clean));
    log["version"] = "2.0.0".into();
    assert!(!schema_validator().is_valid(&log), "another version must fail");
}

/// The README, docs/ci.md and the wheels' metadata give the address SARIF's `informationUri` gives (Cargo.toml's
/// `repository`): the pre-commit `repo:` and the Action's `uses: OWNER/NAME@TAG` point at it; and every rule a log
/// declares is documented in the README, docs/ci.md and docs/reports.md.
#[test]
fn the_docs_give_the_logs_address_and_every_rule() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    let slug = INFORMATION_URI.strip_prefix("https://github.com/").expect("a GitHub repository");
    let tag = format!("v{}", env!("CARGO_PKG_VERSION"));
    for doc in ["README.md", "docs/ci.md"] {
        let text = read(doc);
        assert!(text.contains(&format!("repo: {INFORMATION_URI}")), "{doc}: pre-commit repo is not {INFORMATION_URI}");
        assert!(text.contains(&format!("rev: {tag}")), "{doc}: pre-commit rev is not {tag}");
        assert!(text.contains(&format!("uses: {slug}@{tag}")), "{doc}: the Action is not {slug}@{tag}");
        assert!(!text.contains("OWNER/"), "{doc}: a placeholder owner");
    }
    for meta in ["pyproject.toml", "packaging/gpu/pyproject.toml"] {
        assert!(read(meta).contains(&format!("Repository = \"{INFORMATION_URI}\"")), "{meta}");
    }
    let log = sarif(&report_support::report(Verdict::Suspected));
    for rule in log["runs"][0]["tool"]["driver"]["rules"].as_array().unwrap() {
        let (id, name) = (rule["id"].as_str().unwrap(), rule["name"].as_str().unwrap());
        for doc in ["README.md", "docs/ci.md", "docs/reports.md"] {
            assert!(read(doc).contains(&format!("`{id}` {name}")), "{doc} does not list rule `{id}` {name}");
        }
    }
}
