//! The audit end to end through the binary, in a reduced configuration, with each detector alone
//! (`--method`; the fused default is in `tests/audit_fused.rs`): a robust zoo model gives a verdict with
//! a schema-valid SARIF log, JSON and evidence; AEGIS on a standard model fails the robustness
//! precondition (exit 3); bad inputs exit 2 and write no report.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

mod sarif_dump;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn audit(model: &str, extra: &[&str], out: &Path) -> (i32, String, String) {
    audit_data(model, "fixtures/mnist-subset", extra, out)
}

fn audit_data(model: &str, data: &str, extra: &[&str], out: &Path) -> (i32, String, String) {
    audit_steps(model, data, "10", extra, out)
}

fn audit_steps(model: &str, data: &str, steps: &str, extra: &[&str], out: &Path) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_aegis-audit"))
        .current_dir(root())
        .arg(format!("fixtures/zoo/{model}.onnx"))
        .args(["--data", data, "--seeds-per-class", "40", "--steps", steps])
        .args(["--precondition-images", "100", "--quiet"])
        .arg("--sarif")
        .arg(out.join("report.sarif"))
        .arg("--json")
        .arg(out.join("report.json"))
        .args(extra)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

fn assert_schema_valid(log: &Value) {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/schemas/sarif-schema-2.1.0.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::options().with_draft(jsonschema::Draft::Draft4).build(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(log).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "SARIF invalid: {errors:#?}");
    sarif_dump::dump("audit_cli", log);
}

#[test]
fn robust_model_gives_verdict_sarif_json_and_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let ev = dir.path().join("evidence");
    let (code, stdout, stderr) = audit(
        "robust_localised",
        &["--method", "aegis", "--classes", "7,1", "--aegis-decision", "clusters", "--evidence", ev.to_str().unwrap()],
        dir.path(),
    );
    assert!(code == 0 || code == 1, "exit {code}: {stderr}");
    assert!(stdout.contains("verdict"), "{stdout}");
    let sarif: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.sarif")).unwrap()).unwrap();
    assert_schema_valid(&sarif);
    let run = &sarif["runs"][0];
    assert_eq!(run["properties"]["exitCode"], code);
    let inv = &run["invocations"][0];
    assert!(inv["properties"].to_string().contains("\"seed\":0"), "seed recorded: {inv}");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    let classes = json["classes"].as_array().unwrap();
    assert_eq!(classes.len(), 2);
    assert_eq!(json["precondition"]["passed"], true);
    assert_eq!(json["parameters"]["translation"]["seeds_per_class"], 40);
    for c in classes {
        let d = &c["details"];
        let total: u64 = d["cluster_sizes"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).sum();
        assert_eq!(total, 80, "40 clean + 40 translated points: {d}");
    }
    assert!(ev.join("index.html").is_file());
    assert!(ev.join("class-7-embedding.png").is_file());
    let png = image::open(ev.join("class-1-embedding.png")).unwrap();
    assert!(png.width() > 100 && png.height() > 100);
}

/// The shortcut decision in a reduced configuration (40 seeds, 30 steps, PCA instead of t-SNE):
/// the trigger's target class of `robust_localised` is the only low outlier of the translation
/// displacement; the clean robust model has none.
#[test]
fn shortcut_decision_flags_the_target_class_only() {
    for (model, want_code, want) in [("robust_localised", 1, vec![7]), ("robust_clean_s0", 0, vec![])] {
        let dir = tempfile::tempdir().unwrap();
        let ev = dir.path().join("evidence");
        let (code, stdout, stderr) = audit_steps(
            model,
            "fixtures/mnist-subset",
            "30",
            &["--method", "aegis", "--reducer", "pca", "--evidence", ev.to_str().unwrap()],
            dir.path(),
        );
        assert_eq!(code, want_code, "{model}: {stdout}{stderr}");
        let json: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
        let classes = json["classes"].as_array().unwrap();
        assert_eq!(classes.len(), 10);
        let flagged: Vec<i64> =
            classes.iter().filter(|c| c["flagged"] == true).map(|c| c["class"].as_i64().unwrap()).collect();
        assert_eq!(flagged, want, "{model}: {stdout}");
        for c in classes {
            let d = &c["details"];
            assert_eq!(d["decision"], "shortcut");
            let index = d["shortcut_index"].as_f64().unwrap();
            assert_eq!(c["flagged"].as_bool().unwrap(), index > 2.0, "{model}: {d}");
            assert!(d["displacement"].as_f64().unwrap() > 0.0);
        }
        let sarif: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.sarif")).unwrap()).unwrap();
        assert_schema_valid(&sarif);
        assert!(ev.join("aegis-displacement.png").is_file());
        for c in 0..10 {
            assert_eq!(ev.join(format!("class-{c}-shortest.png")).is_file(), want.contains(&c), "{model} class {c}");
        }
        let html = std::fs::read_to_string(ev.join("index.html")).unwrap();
        assert!(html.contains("aegis-displacement.png"));
    }
}

/// `--runs 3`: three independent translations (seeds 0, 1, 2); the class is flagged by majority and
/// the report says how many runs flagged it.
#[test]
fn shortcut_decision_votes_over_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = audit_steps(
        "robust_localised",
        "fixtures/mnist-subset",
        "30",
        &["--method", "aegis", "--reducer", "pca", "--runs", "3"],
        dir.path(),
    );
    assert_eq!(code, 1, "{stdout}{stderr}");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(json["parameters"]["runs"], 3);
    for c in json["classes"].as_array().unwrap() {
        let votes = c["details"]["shortcut_votes"].as_u64().unwrap();
        assert!(votes <= 3);
        assert_eq!(c["flagged"].as_bool().unwrap(), votes >= 2, "{c}");
        if c["class"] == 7 {
            assert!(votes >= 2, "{c}");
        }
    }
}

#[test]
fn shortcut_decision_needs_three_classes() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = audit("robust_localised", &["--classes", "7,1"], dir.path());
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("needs at least 3") && stderr.contains("--aegis-decision clusters"), "{stderr}");
    assert!(!dir.path().join("report.sarif").exists());
}

#[test]
fn aegis_on_a_standard_model_fails_the_precondition_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = audit("standard_clean", &["--method", "aegis"], dir.path());
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(json["verdict"], "not-applicable");
    assert_eq!(json["precondition"]["passed"], false);
    assert!(json["classes"].as_array().unwrap().is_empty());
    let sarif: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.sarif")).unwrap()).unwrap();
    assert_schema_valid(&sarif);
}

#[test]
fn neural_cleanse_on_a_standard_model_finds_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let ev = dir.path().join("evidence");
    let (code, stdout, stderr) = audit(
        "standard_localised",
        &["--method", "neural-cleanse", "--nc-images", "100", "--nc-epochs", "40", "--evidence", ev.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(json["method"]["method"], "neural-cleanse");
    assert_eq!(json["method"]["reason"], "--method neural-cleanse", "{}", json["method"]);
    let flagged: Vec<i64> = json["classes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["flagged"] == true)
        .map(|c| c["class"].as_i64().unwrap())
        .collect();
    assert_eq!(flagged, vec![7], "the trigger's target");
    assert!(ev.join("class-7-nc-mask.png").is_file());
    let sarif: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.sarif")).unwrap()).unwrap();
    assert_schema_valid(&sarif);
    assert_eq!(sarif["runs"][0]["results"][0]["ruleId"], "AEGIS001");
}

#[test]
fn reach_method_reports_rates_budget_and_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let ev = dir.path().join("evidence");
    let (code, stdout, stderr) = audit(
        "robust_clean_s0",
        &[
            "--method",
            "reach",
            "--reach-images",
            "20",
            "--reach-sweep-images",
            "10",
            "--reach-eps-sweep",
            "0.5,1,2,4",
            "--reach-step-factor",
            "2",
            "--reach-evidence",
            "3",
            "--evidence",
            ev.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(code == 0 || code == 1, "{stdout}\n{stderr}");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(json["method"]["method"], "reach");
    let reach = &json["parameters"]["reach"];
    assert_eq!(reach["images_per_class"], 20);
    assert_eq!(reach["sweep_images_per_class"], 10);
    assert_eq!(reach["eps_sweep"], serde_json::json!([0.5, 1.0, 2.0, 4.0]));
    assert_eq!(reach["step_factor"], 2.0);
    assert_eq!(reach["evidence_per_class"], 3);
    let classes = json["classes"].as_array().unwrap();
    assert_eq!(classes.len(), 10);
    for c in classes {
        let rate = c["details"]["success_rate"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&rate), "{c}");
        assert!(c["details"]["epsilon"].as_f64().unwrap() > 0.0);
    }
    assert!(ev.join("reach-rates.png").is_file());
    let sarif: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.sarif")).unwrap()).unwrap();
    assert_schema_valid(&sarif);
    assert_eq!(sarif["runs"][0]["invocations"][0]["properties"]["parameters"]["reach"], *reach);
}

#[test]
fn bad_inputs_exit_2_without_a_report() {
    let dir = tempfile::tempdir().unwrap();
    // Missing data folder.
    let (code, _, stderr) = audit_data("robust_localised", "no/such/dir", &[], dir.path());
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no/such/dir"), "{stderr}");
    assert!(!dir.path().join("report.sarif").exists() && !dir.path().join("report.json").exists());
    // A class the model does not have.
    let (code, _, stderr) = audit("robust_localised", &["--classes", "12"], dir.path());
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("class 12"), "{stderr}");
    // A corrupt model.
    let bad = dir.path().join("bad.onnx");
    std::fs::write(&bad, b"\x08\x07garbage").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_aegis-audit"))
        .current_dir(root())
        .arg(&bad)
        .args(["--data", "fixtures/mnist-subset", "--sarif"])
        .arg(dir.path().join("report.sarif"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));
    assert!(!dir.path().join("report.sarif").exists());
    assert!(!dir.path().join("report.json").exists());
}
