//! Bad counts, presets, output paths and data are refused before any work, with exit 2, one line
//! naming the flag, the file or the label, and no report (an existing one is not replaced); and
//! several models in one call give one SARIF log with a run per model, one JSON document and the most
//! severe exit code.

mod cli_support;

use std::path::{Path, PathBuf};
use std::process::Output;

use cli_support::{aegis, assert_refused, assert_schema_valid, root, stderr};
use serde_json::Value;

const MODEL: &str = "fixtures/zoo/robust_clean_s0.onnx";
const DATA: &str = "fixtures/mnist-subset";

fn audit_with(extra: &[&str], sarif: &Path) -> Output {
    let sarif = sarif.to_str().unwrap();
    let mut args = vec![MODEL, "--data", DATA, "--quiet", "--sarif", sarif];
    args.extend_from_slice(extra);
    aegis(&args)
}

#[test]
fn absurd_and_zero_counts_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let sarif = dir.path().join("r.sarif");
    for (flags, needles) in [
        (&["--seeds-per-class", "1000000000000"][..], &["--seeds-per-class", "at most 100000"][..]),
        (&["--steps", "0"], &["translation.steps = 0", "--steps"]),
        (&["--batch-size", "0"], &["batch_size = 0", "--batch-size"]),
        (&["--classes", "1,1,1"], &["--classes", "class 1 is listed more than once"]),
        (&["--runs", "0"], &["--runs 0"]),
        (&["--runs", "1000"], &["--runs", "at most 100"]),
        (&["--threads", "100000"], &["--threads", "at most 1024"]),
        (&["--precondition-images", "1000000000"], &["--precondition-images", "at most 100000"]),
        (&["--nc-epochs", "99999999"], &["--nc-epochs", "at most 10000"]),
    ] {
        let o = audit_with(flags, &sarif);
        assert_refused(&o, needles);
        assert!(!sarif.exists(), "{flags:?}");
    }
    // A class the model does not have: right after analysis, before the data or the graph.
    let o = audit_with(&["--classes", "0,3,10"], &sarif);
    assert_refused(&o, &["--classes: class 10 does not exist (the model has 10 classes)"]);
}

#[test]
fn a_presets_file_is_checked_like_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    let sarif = dir.path().join("r.sarif");
    let presets = std::fs::read_to_string(root().join("config/presets.yaml")).unwrap();
    let huge = dir.path().join("huge.yaml");
    std::fs::write(&huge, presets.replace("seeds_per_class: 500", "seeds_per_class: 1000000000000")).unwrap();
    let o = audit_with(&["--config", huge.to_str().unwrap()], &sarif);
    assert_refused(&o, &["translation.seeds_per_class = 1000000000000", "huge.yaml", "at most 100000"]);
    // A YAML syntax error is a syntax error with its position, not an unknown field.
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, presets.replacen("  mnist:\n", "  mnist:\n   - [\n", 1)).unwrap();
    let o = audit_with(&["--config", broken.to_str().unwrap()], &sarif);
    assert_refused(&o, &["broken.yaml", "YAML syntax error", "line "]);
    assert!(!stderr(&o).contains("unknown field"));
    let unknown = dir.path().join("unknown.yaml");
    std::fs::write(&unknown, presets.replace("perplexity: 30.0", "perplexity: 30.0, perplexty: 5")).unwrap();
    let o = audit_with(&["--config", unknown.to_str().unwrap()], &sarif);
    assert_refused(&o, &["unknown.yaml", "perplexty"]);
    // The fused decision's sections are checked too.
    let fused = dir.path().join("fused.yaml");
    std::fs::write(&fused, presets.replace("epochs: 40,", "epochs: 0,")).unwrap();
    let o = audit_with(&["--config", fused.to_str().unwrap()], &sarif);
    assert_refused(&o, &["epochs = 0", "must be >= 1", "fused.yaml"]);
    assert!(!sarif.exists());
}

#[test]
fn output_paths_are_checked_first_and_a_failure_writes_no_report() {
    let dir = tempfile::tempdir().unwrap();
    let sarif = dir.path().join("r.sarif");
    std::fs::write(&sarif, "an earlier report").unwrap();
    // --json naming a folder, with a valid --sarif: exit 2, the SARIF file untouched.
    let o = audit_with(&["--json", dir.path().to_str().unwrap()], &sarif);
    assert_refused(&o, &["--json", "is a folder"]);
    assert_eq!(std::fs::read_to_string(&sarif).unwrap(), "an earlier report");
    let fresh = dir.path().join("fresh.sarif");
    let o = audit_with(&["--json", dir.path().to_str().unwrap()], &fresh);
    assert_refused(&o, &["--json", "is a folder"]);
    assert!(!fresh.exists(), "no SARIF log is written");
    // --evidence naming a file: one clear line.
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let o = audit_with(&["--evidence", file.to_str().unwrap()], &dir.path().join("s.sarif"));
    assert_refused(&o, &["--evidence", "exists and is not a folder"]);
    // A folder that does not exist.
    let o = audit_with(&[], &dir.path().join("no/such/r.sarif"));
    assert_refused(&o, &["--sarif", "does not exist"]);
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 2, "no temporary file or staging folder is left: {left:?}");
}

/// `fixtures/mnist-subset` with label 200 at position 5 of the train split.
fn data_with_label_200(dir: &Path) -> PathBuf {
    use std::io::Read;
    let data = dir.join("data");
    std::fs::create_dir(&data).unwrap();
    for name in ["train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        std::fs::copy(root().join(DATA).join(name), data.join(name)).unwrap();
    }
    let gz = std::fs::File::open(root().join(DATA).join("train-labels-idx1-ubyte.gz")).unwrap();
    let mut labels = Vec::new();
    flate2::read::GzDecoder::new(gz).read_to_end(&mut labels).unwrap();
    labels[8 + 5] = 200;
    std::fs::write(data.join("train-labels-idx1-ubyte"), labels).unwrap();
    data
}

#[test]
fn a_label_out_of_range_is_named_before_any_attack() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_with_label_200(dir.path());
    let sarif = dir.path().join("r.sarif");
    let o = aegis(&[MODEL, "--data", data.to_str().unwrap(), "--quiet", "--sarif", sarif.to_str().unwrap()]);
    assert_refused(&o, &["(train split): label 200 out of range (the model has 10 classes)"]);
    assert!(!stderr(&o).contains("GatherElements"));
    assert!(!sarif.exists());
}

const REDUCED: &[&str] = &[
    "--data",
    DATA,
    "--quiet",
    "--seeds-per-class",
    "20",
    "--steps",
    "5",
    "--reducer",
    "pca",
    "--precondition-images",
    "50",
    "--precondition-steps",
    "5",
    "--method",
    "aegis",
    "--classes",
    "0,1,7",
];

#[test]
fn several_models_give_one_log_with_a_run_each_and_the_most_severe_code() {
    let dir = tempfile::tempdir().unwrap();
    let (sarif, json, ev) = (dir.path().join("r.sarif"), dir.path().join("r.json"), dir.path().join("ev"));
    let bad = dir.path().join("corrupt.onnx");
    std::fs::write(&bad, b"\x08\x07garbage").unwrap();
    let mut args = vec!["fixtures/zoo/robust_clean_s0.onnx", bad.to_str().unwrap(), "fixtures/zoo/standard_clean.onnx"];
    args.extend_from_slice(REDUCED);
    let outs =
        ["--sarif", sarif.to_str().unwrap(), "--json", json.to_str().unwrap(), "--evidence", ev.to_str().unwrap()];
    args.extend_from_slice(&outs);
    let o = aegis(&args);
    assert_eq!(o.status.code(), Some(2), "the corrupt model makes it 2: {}", stderr(&o));
    let log: Value = serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    assert_schema_valid(&log);
    let runs = log["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    let ids: Vec<&str> = runs.iter().map(|r| r["automationDetails"]["id"].as_str().unwrap()).collect();
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2], "{ids:?}");
    assert_eq!(runs[0]["invocations"][0]["executionSuccessful"], true);
    let failed = &runs[1]["invocations"][0];
    assert_eq!(failed["executionSuccessful"], false);
    let note = failed["toolExecutionNotifications"][0]["message"]["text"].as_str().unwrap();
    assert!(note.contains("corrupt.onnx"), "{note}");
    assert!(runs[1]["results"].as_array().unwrap().is_empty());
    assert_eq!(runs[2]["properties"]["verdict"], "not-applicable", "a standard model fails the precondition");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["exit_code"], 2);
    let models = doc["models"].as_array().unwrap();
    assert_eq!(models.len(), 3);
    assert_eq!(models[0]["report"]["classes"].as_array().unwrap().len(), 3);
    assert!(models[1]["error"].as_str().unwrap().contains("corrupt.onnx"));
    assert_eq!(models[2]["exit_code"], 3);
    // The data is read once: the second audited model took no time reading it.
    assert!(models[0]["report"]["timings"]["data"].as_f64().unwrap() > 0.0);
    assert_eq!(models[2]["report"]["timings"]["data"].as_f64().unwrap(), 0.0);
    assert!(ev.join("robust_clean_s0/index.html").is_file());
    assert!(ev.join("standard_clean/index.html").is_file());
    assert!(!ev.join("corrupt").exists());
}

/// The configuration in which `tests/audit_cli.rs` finds exactly class 7 of `robust_localised`.
#[test]
fn the_exit_code_of_several_models_ranks_suspected_above_not_applicable() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let o = aegis(&[
        "fixtures/zoo/standard_clean.onnx",
        "fixtures/zoo/robust_localised.onnx",
        "--data",
        DATA,
        "--quiet",
        "--method",
        "aegis",
        "--seeds-per-class",
        "40",
        "--steps",
        "30",
        "--precondition-images",
        "100",
        "--reducer",
        "pca",
        "--json",
        json.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let codes: Vec<i64> = doc["models"].as_array().unwrap().iter().map(|m| m["exit_code"].as_i64().unwrap()).collect();
    assert_eq!(codes, vec![3, 1]);
    assert_eq!(doc["exit_code"], 1);
    let stdout: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(stdout, doc, "--format json prints the same document");
}

#[test]
fn a_model_given_twice_is_a_usage_error() {
    let o = aegis(&[MODEL, "./fixtures/zoo/robust_clean_s0.onnx", "--data", DATA]);
    assert_refused(&o, &["given twice"]);
}

#[test]
fn timings_are_in_the_report_and_on_verbose() {
    let dir = tempfile::tempdir().unwrap();
    let (sarif, json) = (dir.path().join("r.sarif"), dir.path().join("r.json"));
    let mut args = vec![MODEL];
    args.extend_from_slice(REDUCED);
    // With evidence: the features (a phase below) are computed only where the clustering or the
    // evidence's scatter plots need them.
    let ev = dir.path().join("ev");
    args.extend_from_slice(&["--evidence", ev.to_str().unwrap()]);
    args.extend_from_slice(&["--verbose", "--sarif", sarif.to_str().unwrap(), "--json", json.to_str().unwrap()]);
    let o = aegis(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let t = &report["timings"];
    for phase in ["load", "analysis", "graph_build", "session", "data", "precondition", "translation", "features"] {
        assert!(t[phase].as_f64().unwrap() > 0.0, "{phase}: {t}");
    }
    let parts: f64 = ["load", "analysis", "graph_build", "session", "data", "precondition", "translation"]
        .iter()
        .map(|p| t[*p].as_f64().unwrap())
        .sum();
    assert!(t["total"].as_f64().unwrap() >= parts, "{t}");
    let log: Value = serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    assert_eq!(log["runs"][0]["invocations"][0]["properties"]["timings"], *t);
    let err = stderr(&o);
    assert!(err.contains("graph_build") && err.contains("translation"), "{err}");
    // Each class's cost (issue 33 item 6): in the report, and on --verbose.
    let costs = report["effort"]["per_class"].as_array().unwrap();
    let audited: Vec<u64> = costs.iter().map(|c| c["class"].as_u64().unwrap()).collect();
    assert_eq!(audited, [0, 1, 7], "{}", report["effort"]); // REDUCED's --classes
    assert!(costs.iter().all(|c| c["full_effort"] == true && c["gradient_evaluations"].as_u64().unwrap() > 0));
    assert!(err.contains("cost per class (full effort") && err.contains("class 7"), "{err}");
}

/// `--data` naming one IDX images file (a gate's small held-out clean set): it serves every role, and the
/// report says so.
#[test]
fn one_held_out_file_serves_every_role() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let held_out = "fixtures/mnist-subset/t10k-images-idx3-ubyte.gz";
    let mut args = vec![MODEL, "--json", json.to_str().unwrap(), "--data", held_out];
    // REDUCED without its --data folder.
    args.extend(REDUCED.iter().skip(2));
    let o = aegis(&args);
    assert!(matches!(o.status.code(), Some(0 | 1 | 3)), "{}", stderr(&o));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["dataset"]["path"], held_out);
    assert_eq!(report["dataset"]["split"], "all");
    assert_eq!(report["dataset"]["images"], 1000);
}
