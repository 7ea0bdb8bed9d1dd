//! The fused decision (`--method auto`, the default) end to end through the binary, in a reduced
//! configuration: every detector runs and is reported with its per-class anomaly indices and cost, the
//! calibrated decision is in the JSON report, the SARIF log (schema-valid), the table and the evidence
//! page; `calibrate` turns the reports of clean models into a calibration file that `audit
//! --calibration` and `decide` apply with the same numbers; bad inputs to `calibrate` and `decide`
//! exit 2 with one line and write nothing.

mod cli_support;
mod onnx_common;

use std::path::Path;

use cli_support::{aegis, assert_refused, assert_schema_valid, read_json, stderr};
use serde_json::Value;

/// Every detector in a few seconds (the numbers mean little; the plumbing is what is tested).
const REDUCED: &[&str] = &[
    "--data",
    "fixtures/mnist-subset",
    "--quiet",
    "--seeds-per-class",
    "20",
    "--steps",
    "10",
    "--precondition-images",
    "50",
    "--precondition-steps",
    "5",
    "--nc-images",
    "40",
    "--nc-epochs",
    "2",
    "--reach-images",
    "10",
    "--reach-sweep-images",
    "5",
    "--reach-steps",
    "5",
    "--universal-images",
    "20",
    "--universal-steps",
    "2",
];

const DETECTORS: [&str; 4] = ["universal", "aegis", "neural-cleanse", "reach"];

/// The per-class anomaly index as the report writes it: a number, `"inf"`/`"-inf"`, or null (NaN).
fn index_of(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) if s == "inf" => f64::INFINITY,
        Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
        Value::Null => f64::NAN,
        other => panic!("not an anomaly index: {other}"),
    }
}

/// The number a detector's sentence gives after "anomaly index " (e.g. `-2.54`), as written.
fn index_in_sentence(reason: &str) -> &str {
    let at = reason.find("anomaly index ").unwrap_or_else(|| panic!("no anomaly index in: {reason}")) + 14;
    let rest = &reason[at..];
    let end = rest.find(|ch: char| !(ch == '-' || ch == '.' || ch.is_ascii_alphanumeric())).unwrap_or(rest.len());
    &rest[..end]
}

/// HTML text as the evidence page escapes it.
fn html_escaped(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

#[test]
fn fused_audit_reports_every_detector_and_the_calibrated_decision() {
    let dir = tempfile::tempdir().unwrap();
    let (sarif, json, ev) = (dir.path().join("r.sarif"), dir.path().join("r.json"), dir.path().join("ev"));
    let mut args = vec!["fixtures/zoo/robust_localised.onnx"];
    args.extend_from_slice(REDUCED);
    args.extend_from_slice(&["--sarif", sarif.to_str().unwrap(), "--json", json.to_str().unwrap()]);
    args.extend_from_slice(&["--evidence", ev.to_str().unwrap()]);
    let o = aegis(&args);
    let code = o.status.code().unwrap();
    assert!(code == 0 || code == 1, "exit {code}: {}", stderr(&o));
    let report = read_json(&json);
    assert_eq!(report["method"]["method"], "fused");
    assert!(report["method"]["reason"].as_str().unwrap().contains("not a switch"), "{}", report["method"]);
    // The robustness check is measured and reported beside the decision.
    assert!(report["precondition"]["adversarial_accuracy"].as_f64().is_some(), "{}", report["precondition"]);

    // Every detector, with its cost and one anomaly index per class.
    let detectors = report["detectors"].as_array().unwrap();
    let names: Vec<&str> = detectors.iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(names, DETECTORS);
    for d in detectors {
        assert!(d["seconds"].as_f64().unwrap() > 0.0, "{}", d["name"]);
        assert!(d["gradient_evaluations"].as_u64().unwrap() > 0, "{}", d["name"]);
        let classes = d["classes"].as_array().unwrap();
        let ids: Vec<i64> = classes.iter().map(|c| c["class"].as_i64().unwrap()).collect();
        assert_eq!(ids, (0..10).collect::<Vec<_>>(), "{}", d["name"]);
        for c in classes {
            assert!(!index_of(&c["anomaly_index"]).is_nan(), "{}: {c}", d["name"]);
            assert!(!c["reason"].as_str().unwrap().is_empty());
        }
    }
    // Every explanation line writes the anomaly index with the sign of its field (the table, the JSON
    // field and the sentence tell the same number); some of them are negative, so the sign is exercised.
    let mut negative = 0;
    for d in detectors {
        for c in d["classes"].as_array().unwrap() {
            let field = index_of(&c["anomaly_index"]);
            let reason = c["reason"].as_str().unwrap();
            let text = index_in_sentence(reason);
            assert_eq!(
                text.starts_with('-'),
                field.is_sign_negative(),
                "{}: field {field}, sentence: {reason}",
                d["name"]
            );
            let value: f64 = text.parse().unwrap();
            assert!(value == field || (value - field).abs() <= 0.005 + 1e-9, "{}: field {field}: {reason}", d["name"]);
            negative += usize::from(field < 0.0);
        }
    }
    assert!(negative > 0, "no negative anomaly index to check the sign of");
    assert!(report["timings"]["universal"].as_f64().unwrap() > 0.0);
    assert!(report["timings"]["neural_cleanse"].as_f64().unwrap() > 0.0);

    // The fused decision: the built-in calibration, its target rate, and a verdict that follows it.
    let fused = &report["fused"];
    assert_eq!(fused["calibration"], "built-in");
    assert!(fused["description"].as_str().unwrap().contains("calibration half"), "{fused}");
    let alpha = fused["target_fpr"].as_f64().unwrap();
    assert_eq!(alpha, 0.05);
    let threshold = fused["threshold"].as_f64().unwrap();
    let model_p = fused["model_p_value"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&model_p), "{fused}");
    assert_eq!(fused["detectors"].as_array().unwrap().len(), 4);
    let classes = report["classes"].as_array().unwrap();
    assert_eq!(classes.len(), 10);
    let mut flagged = Vec::new();
    let mut min_p = 1.0f64;
    for c in classes {
        let d = &c["details"];
        assert_eq!(d["method"], "fused", "{c}");
        let p = d["model_p_value"].as_f64().unwrap();
        min_p = min_p.min(p);
        assert_eq!(c["flagged"].as_bool().unwrap(), p <= alpha, "{c}");
        assert_eq!(c["flagged"].as_bool().unwrap(), d["score"].as_f64().unwrap() >= threshold, "{c}");
        let parts = d["contributions"].as_array().unwrap();
        assert_eq!(parts.len(), 4, "{c}");
        let sum: f64 = parts.iter().map(|p| p["score"].as_f64().unwrap()).sum();
        assert!((sum - d["score"].as_f64().unwrap()).abs() < 1e-9, "{c}");
        if c["flagged"] == true {
            flagged.push(c["class"].as_i64().unwrap());
            assert!(c["summary"].as_str().unwrap().contains("backdoor suspected"), "{c}");
        }
    }
    assert_eq!(model_p, min_p);
    assert_eq!(code, if flagged.is_empty() { 0 } else { 1 });

    // SARIF: schema-valid, the fused numbers in the run's and each result's properties.
    let log = read_json(&sarif);
    assert_schema_valid(&log);
    let run = &log["runs"][0];
    assert_eq!(run["properties"]["fused"]["model_p_value"], fused["model_p_value"]);
    let run_detectors: Vec<&str> =
        run["properties"]["detectors"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(run_detectors, DETECTORS);
    for r in run["results"].as_array().unwrap() {
        assert_eq!(r["properties"]["fusedDecision"]["targetFpr"], 0.05, "{r}");
        assert_eq!(r["properties"]["detectors"].as_array().unwrap().len(), 4, "{r}");
    }

    // The table leads with the fused threshold and each detector's cost.
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("fused    threshold"), "{stdout}");
    for d in DETECTORS {
        assert!(stdout.contains(&format!("detector {d}")), "{stdout}");
    }

    // The evidence page leads with the verdict and its reason; the fused chart is written.
    let index = std::fs::read_to_string(ev.join("index.html")).unwrap();
    let why = index.find("<h2>Why</h2>").expect("a Why section");
    assert!(why < index.find("<h2>Run</h2>").unwrap() && why < index.find("<h2>Classes</h2>").unwrap());
    // Each class lists every detector's sentence, signs included.
    for d in detectors {
        for c in d["classes"].as_array().unwrap() {
            let reason = html_escaped(c["reason"].as_str().unwrap());
            assert!(index.contains(&format!("<li>{reason}</li>")), "{reason} not on the evidence page");
        }
    }
    assert!(ev.join("fused-scores.png").is_file());
    assert!(ev.join("universal-budgets.png").is_file());
}

/// `calibrate` on the reports of three clean models (30 clean classes), then the same calibration
/// applied by `audit --calibration` and by `decide` to the stored report gives the same numbers.
#[test]
fn calibrate_then_decide_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let clean_json = dir.path().join("clean.json");
    let mut args = vec![
        "fixtures/zoo/robust_clean_s0.onnx",
        "fixtures/zoo/robust_clean_s1.onnx",
        "fixtures/zoo/standard_clean.onnx",
    ];
    args.extend_from_slice(REDUCED);
    args.extend_from_slice(&["--json", clean_json.to_str().unwrap()]);
    let o = aegis(&args);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));

    let cal = dir.path().join("cal.json");
    let o = aegis(&["calibrate", clean_json.to_str().unwrap(), "-o", cal.to_str().unwrap(), "--target-fpr", "0.1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("30 null classes from 3 models"), "{out}");
    let file = read_json(&cal);
    assert_eq!(file["version"], 2);
    assert_eq!(file["target_fpr"], 0.1);
    assert_eq!(file["null_classes"].as_array().unwrap().len(), 30);
    assert_eq!(file["presets"], serde_json::json!(["mnist"]), "the presets the reports were audited with");
    let weights: Vec<(&str, f64)> = file["detectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["name"].as_str().unwrap(), d["weight"].as_f64().unwrap()))
        .collect();
    assert_eq!(weights, DETECTORS.iter().map(|d| (*d, 1.0)).collect::<Vec<_>>());
    // Every null class holds the index the clean report gave it.
    let doc = read_json(&clean_json);
    let first = &doc["models"][0]["report"]["detectors"];
    let aegis_index = index_of(&first[1]["classes"][3]["anomaly_index"]);
    let null3 = &file["null_classes"][3];
    assert_eq!((null3["class"].as_i64(), null3["indices"]["aegis"].as_f64()), (Some(3), Some(aegis_index)));

    // An audit with that calibration, and `decide` on its report: the same numbers.
    let suspect = dir.path().join("suspect.json");
    let mut args = vec!["fixtures/zoo/robust_localised.onnx"];
    args.extend_from_slice(REDUCED);
    args.extend_from_slice(&["--calibration", cal.to_str().unwrap(), "--json", suspect.to_str().unwrap()]);
    let o = aegis(&args);
    let audit_code = o.status.code().unwrap();
    assert!(audit_code == 0 || audit_code == 1, "{}", stderr(&o));
    let report = read_json(&suspect);
    assert_eq!(report["fused"]["calibration"], cal.to_str().unwrap());
    assert_eq!(report["fused"]["target_fpr"], 0.1);
    let warned = report["notifications"].as_array().unwrap().iter().any(|n| n.to_string().contains("calibration"));
    assert!(!warned, "same preset as the calibration: no warning: {}", report["notifications"]);

    let decided = dir.path().join("decided.json");
    let o = aegis(&[
        "decide",
        suspect.to_str().unwrap(),
        clean_json.to_str().unwrap(),
        "--calibration",
        cal.to_str().unwrap(),
        "--json",
        decided.to_str().unwrap(),
    ]);
    let decide_code = o.status.code().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.lines().count(), 4, "one line per model: {out}");
    let d = read_json(&decided);
    let models = d["models"].as_array().unwrap();
    assert_eq!(models.len(), 4);
    let m = &models[0];
    assert_eq!(m["exit_code"], audit_code);
    assert_eq!(m["fused"]["model_p_value"], report["fused"]["model_p_value"]);
    assert_eq!(m["fused"]["threshold"], report["fused"]["threshold"]);
    let decided_flags: Vec<(i64, bool)> = m["fused"]["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["class"].as_i64().unwrap(), c["flagged"].as_bool().unwrap()))
        .collect();
    let audit_flags: Vec<(i64, bool)> = report["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["class"].as_i64().unwrap(), c["flagged"].as_bool().unwrap()))
        .collect();
    assert_eq!(decided_flags, audit_flags);
    for (c, r) in m["fused"]["classes"].as_array().unwrap().iter().zip(report["classes"].as_array().unwrap()) {
        assert_eq!(c["score"], r["details"]["score"]);
    }
    let codes: Vec<i64> = models.iter().map(|m| m["exit_code"].as_i64().unwrap()).collect();
    assert_eq!(decide_code as i64, *codes.iter().max().unwrap(), "{codes:?}");
    assert_eq!(d["exit_code"], decide_code);

    // Weights chosen at calibration: only the weighted detectors enter the decision.
    let cal2 = dir.path().join("cal2.json");
    let o = aegis(&[
        "calibrate",
        clean_json.to_str().unwrap(),
        "-o",
        cal2.to_str().unwrap(),
        "--detectors",
        "universal=1,aegis=0.5",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let decided2 = dir.path().join("decided2.json");
    let o = aegis(&[
        "decide",
        suspect.to_str().unwrap(),
        "--calibration",
        cal2.to_str().unwrap(),
        "--json",
        decided2.to_str().unwrap(),
    ]);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    let d2 = read_json(&decided2);
    assert_eq!(d2["models"][0]["fused"]["detectors"], serde_json::json!(["universal", "aegis"]));
    for c in d2["models"][0]["fused"]["classes"].as_array().unwrap() {
        let w: Vec<f64> =
            c["contributions"].as_array().unwrap().iter().map(|p| p["weight"].as_f64().unwrap()).collect();
        assert!(w == [1.0, 0.5] || w == [0.5, 1.0], "{c}");
    }
}

/// A hand-written report: one model, `classes` classes, one detector.
fn synthetic_report(classes: usize, detector: &str) -> Value {
    let cs: Vec<Value> = (0..classes)
        .map(|c| {
            serde_json::json!({"class": c, "value": 1.0, "anomaly_index": 0.1 * c as f64, "flagged": false,
                               "reason": "r"})
        })
        .collect();
    serde_json::json!({
        "model": {"path": "m.onnx", "sha256": "00", "size_bytes": 1},
        "verdict": "clean",
        "detectors": [{"name": detector, "statistic": "s", "seconds": 1.0, "gradient_evaluations": 1, "index_version": 2,
                       "classes": cs}],
    })
}

#[test]
fn bad_inputs_to_calibrate_and_decide_exit_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let out = p("cal.json");
    std::fs::write(p("notjson.json"), b"\x00\x01 not json").unwrap();
    std::fs::write(p("other.json"), br#"{"runs": []}"#).unwrap();
    std::fs::write(p("bare.json"), br#"{"model": {"path": "m.onnx"}, "verdict": "clean"}"#).unwrap();
    std::fs::write(p("small.json"), synthetic_report(3, "aegis").to_string()).unwrap();
    std::fs::write(p("good.json"), synthetic_report(25, "aegis").to_string()).unwrap();

    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (vec!["calibrate".into(), p("missing.json"), "-o".into(), out.clone()], vec!["missing.json"]),
        (
            vec!["calibrate".into(), p("notjson.json"), "-o".into(), out.clone()],
            vec!["notjson.json", "not a JSON report"],
        ),
        (vec!["calibrate".into(), p("other.json"), "-o".into(), out.clone()], vec!["other.json", "not an aegis-audit"]),
        (vec!["calibrate".into(), p("bare.json"), "-o".into(), out.clone()], vec!["bare.json", "no detector indices"]),
        (vec!["calibrate".into(), p("small.json"), "-o".into(), out.clone()], vec!["at least 20"]),
        (
            vec![
                "calibrate".into(),
                p("good.json"),
                "-o".into(),
                out.clone(),
                "--detectors".into(),
                "shortcut=1".into(),
            ],
            vec!["--detectors", "'shortcut' is not a detector"],
        ),
        (
            vec!["calibrate".into(), p("good.json"), "-o".into(), out.clone(), "--target-fpr".into(), "1.5".into()],
            vec!["--target-fpr", "must be in (0, 1)"],
        ),
        (
            vec!["calibrate".into(), p("good.json"), "-o".into(), dir.path().to_str().unwrap().into()],
            vec!["is a folder"],
        ),
        (vec!["decide".into(), p("missing.json")], vec!["missing.json"]),
        (vec!["decide".into(), p("other.json")], vec!["other.json", "not an aegis-audit"]),
        (
            vec!["decide".into(), p("good.json"), "--calibration".into(), p("missing-cal.json")],
            vec!["missing-cal.json"],
        ),
        (
            vec!["decide".into(), p("good.json"), "--calibration".into(), p("good.json")],
            vec!["calibration", "good.json"],
        ),
        (
            vec!["decide".into(), p("good.json"), "--json".into(), p("no/such/dir/d.json")],
            vec!["--json", "no/such/dir does not exist"],
        ),
    ];
    for (args, needles) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = aegis(&args);
        assert_refused(&o, &needles);
        assert!(!Path::new(&out).exists(), "{args:?} wrote a calibration");
    }

    // An audit asking for an unknown detector, or a calibration with a single-detector method.
    let o =
        aegis(&["fixtures/zoo/robust_clean_s0.onnx", "--data", "fixtures/mnist-subset", "--detectors", "aegis,bogus"]);
    assert_refused(&o, &["--detectors", "'bogus' is not a detector"]);
    let o = aegis(&[
        "fixtures/zoo/robust_clean_s0.onnx",
        "--data",
        "fixtures/mnist-subset",
        "--method",
        "aegis",
        "--calibration",
        "config/calibration.json",
    ]);
    assert_refused(&o, &["--calibration", "only the fused decision"]);
    let o = aegis(&[
        "fixtures/zoo/robust_clean_s0.onnx",
        "--data",
        "fixtures/mnist-subset",
        "--calibration",
        &p("other.json"),
    ]);
    assert_refused(&o, &["other.json"]);

    // The synthetic 25-class report calibrates (one detector, 25 clean classes) and decides.
    let o = aegis(&["calibrate", &p("good.json"), "-o", &out]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = aegis(&["decide", &p("good.json"), "--calibration", &out]);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
}

/// A hand-written report of one detector over 10 classes (indices `shift + 0.1·class`) whose robustness
/// check measured adversarial accuracy `adv`.
fn robust_report(name: &str, shift: f64, adv: f64) -> Value {
    let mut r = synthetic_report(10, "aegis");
    r["model"]["path"] = serde_json::json!(name);
    // Each model its own hash: calibrate and decide refuse the same model twice.
    r["model"]["sha256"] = serde_json::json!(format!("{name}-sha256"));
    for (c, class) in r["detectors"][0]["classes"].as_array_mut().unwrap().iter_mut().enumerate() {
        class["anomaly_index"] = serde_json::json!(shift + 0.1 * c as f64);
    }
    r["precondition"] = serde_json::json!({"epsilon": 1.5, "steps": 20, "samples": 200, "clean_accuracy": 0.99,
                                           "adversarial_accuracy": adv, "threshold": 0.5, "passed": adv >= 0.5});
    r
}

/// `calibrate --robustness-neighbours` records each model's adversarial accuracy; `decide` then judges a
/// model against the calibration models nearest to it in robustness, and says which.
#[test]
fn calibration_matched_on_robustness() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let accs = [0.1, 0.2, 0.8, 0.9];
    for (i, adv) in accs.iter().enumerate() {
        std::fs::write(p(&format!("m{i}.json")), robust_report(&format!("m{i}.onnx"), i as f64, *adv).to_string())
            .unwrap();
    }
    let reports: Vec<String> = (0..4).map(|i| p(&format!("m{i}.json"))).collect();
    let cal = p("cal.json");
    let mut args = vec!["calibrate"];
    args.extend(reports.iter().map(String::as_str));
    args.extend(["-o", cal.as_str(), "--robustness-neighbours", "2"]);
    let o = aegis(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let file = read_json(Path::new(&cal));
    assert_eq!(file["robustness_neighbours"], 2);
    let recorded: Vec<f64> =
        file["null_classes"].as_array().unwrap().iter().map(|c| c["adversarial_accuracy"].as_f64().unwrap()).collect();
    assert_eq!(recorded.len(), 40);
    assert!(recorded.chunks(10).zip(accs).all(|(c, a)| c.iter().all(|&x| x == a)));

    // A robust model with indices like models 2 and 3 is judged against those two only (20 classes);
    // a standard one against models 0 and 1.
    std::fs::write(p("robust.json"), robust_report("r.onnx", 2.5, 0.85).to_string()).unwrap();
    std::fs::write(p("standard.json"), robust_report("s.onnx", 2.5, 0.15).to_string()).unwrap();
    let json = p("d.json");
    let o = aegis(&["decide", &p("robust.json"), &p("standard.json"), "--calibration", &cal, "--json", &json]);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    let d = read_json(Path::new(&json));
    let robust = &d["models"][0]["fused"];
    assert_eq!(robust["neighbourhood"]["models"], 2);
    assert_eq!(robust["neighbourhood"]["range"], serde_json::json!([0.8, 0.9]));
    assert_eq!(robust["null_classes"], 20);
    let standard = &d["models"][1]["fused"];
    assert_eq!(standard["neighbourhood"]["range"], serde_json::json!([0.1, 0.2]));
    // The same indices are far out against the standard models' null and ordinary against the robust ones.
    assert!(standard["model_p_value"].as_f64().unwrap() < robust["model_p_value"].as_f64().unwrap());
    assert_eq!(d["models"][0]["flagged"], serde_json::json!([]));

    // Refused: a report without a robustness check, a neighbour count below 2, an accuracy out of [0, 1].
    std::fs::write(p("bare.json"), synthetic_report(10, "aegis").to_string()).unwrap();
    let mut bad = robust_report("b.onnx", 0.0, 0.5);
    bad["precondition"]["adversarial_accuracy"] = serde_json::json!(1.5);
    std::fs::write(p("bad.json"), bad.to_string()).unwrap();
    let out = p("cal2.json");
    for (extra, needles) in [
        (vec![p("bare.json"), "--robustness-neighbours".into(), "2".into()], vec!["bare.json", "no robustness check"]),
        (vec!["--robustness-neighbours".into(), "1".into()], vec!["--robustness-neighbours"]),
        (vec![p("bad.json")], vec!["bad.json", "adversarial_accuracy 1.5"]),
    ] {
        let mut args: Vec<&str> = vec!["calibrate"];
        args.extend(reports.iter().map(String::as_str));
        args.extend(extra.iter().map(String::as_str));
        args.extend(["-o", out.as_str()]);
        let o = aegis(&args);
        assert_refused(&o, &needles);
        assert!(!Path::new(&out).exists());
    }
}

/// A linear model of the image (Flatten, Gemm: no convolution, no hidden layer) is audited, not refused:
/// its feature tensor is the classifier's input, and the fused decision says it does not apply (exit
/// 3, reports written with the reason), since backdoored linear models passed it as clean.
#[test]
fn the_fused_decision_does_not_apply_to_a_linear_model() {
    use onnx_common::{attr_i, model, node, tempdir, tensor_f32, value_info, write_model, D};
    let graph = aegis_audit::onnx::proto::GraphProto {
        node: vec![
            node("Flatten", "flat", &["x"], &["f"], vec![]),
            node("Gemm", "fc", &["f", "w", "b"], &["logits"], vec![attr_i("transB", 1)]),
        ],
        initializer: vec![tensor_f32("w", &[10, 784]), tensor_f32("b", &[10])],
        input: vec![value_info("x", &[D::S("N"), D::N(1), D::N(28), D::N(28)])],
        output: vec![value_info("logits", &[D::S("N"), D::N(10)])],
        ..Default::default()
    };
    let dir = tempdir();
    let path = write_model(dir.path(), "linear.onnx", &model(graph));
    let (json, sarif) = (dir.path().join("r.json"), dir.path().join("r.sarif"));
    let out = aegis(
        &[&[path.to_str().unwrap(), "--json", json.to_str().unwrap(), "--sarif", sarif.to_str().unwrap()], REDUCED]
            .concat(),
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let report = read_json(&json);
    assert_eq!(report["verdict"], "not-applicable");
    let reason = report["method"]["reason"].as_str().unwrap();
    assert!(reason.contains("linear in the image") && reason.contains("does not apply"), "{reason}");
    assert_eq!(report["parameters"]["feature_tensor"], "f");
    assert_eq!(report["model"]["linear"], true);
    assert!(report.get("detectors").is_none(), "no detector runs: {}", report["detectors"]);
    assert_schema_valid(&read_json(&sarif));
    // Decided again, it stays not applicable; a calibration cannot be made from it.
    let out = aegis(&["decide", json.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("METHOD NOT APPLICABLE (exit 3)\n"));
    let cal = dir.path().join("cal.json");
    let out = aegis(&["calibrate", json.to_str().unwrap(), "-o", cal.to_str().unwrap()]);
    assert_refused(&out, &["holds no detector indices"]);
}

#[test]
fn a_model_that_leaves_its_input_size_open_is_audited_at_the_datas_size() {
    use aegis_audit::onnx::proto::{tensor_shape_proto::dimension::Value as Dim, type_proto::Value as TypeValue};
    let fixed = Path::new("fixtures/zoo/robust_clean_s0.onnx");
    let mut proto = aegis_audit::onnx::decode(&std::fs::read(fixed).unwrap()).unwrap();
    let input = &mut proto.graph.as_mut().unwrap().input[0];
    let Some(TypeValue::TensorType(t)) = input.r#type.as_mut().and_then(|t| t.value.as_mut()) else { panic!() };
    let dims = &mut t.shape.as_mut().unwrap().dim;
    dims[2].value = Some(Dim::DimParam("H".into()));
    dims[3].value = Some(Dim::DimParam("W".into()));
    let dir = onnx_common::tempdir();
    let open_model = dir.path().join("open.onnx");
    std::fs::write(&open_model, aegis_audit::onnx::encode(&proto)).unwrap();
    let (a, b) = (dir.path().join("open.json"), dir.path().join("fixed.json"));
    for (model, json) in [(open_model.as_path(), &a), (fixed, &b)] {
        let out = aegis(&[&[model.to_str().unwrap(), "--json", json.to_str().unwrap()], REDUCED].concat());
        assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    }
    let (open, fixed) = (read_json(&a), read_json(&b));
    assert_eq!(open["model"]["open_dims_fixed"], "H = 28, W = 28");
    assert!(fixed["model"].get("open_dims_fixed").is_none());
    let note = open["notifications"][0]["message"].as_str().unwrap();
    assert!(note.contains("leaves its size open") && note.contains("H = 28, W = 28"), "{note}");
    // The same model at the same size: the same numbers.
    for key in ["classes", "fused", "verdict", "dataset"] {
        assert_eq!(open[key], fixed[key], "{key}");
    }
    for (x, y) in open["detectors"].as_array().unwrap().iter().zip(fixed["detectors"].as_array().unwrap()) {
        assert_eq!(x["classes"], y["classes"]);
    }
    // Without data whose size can be read, the open dims are refused as before, naming them.
    let out = aegis(&[open_model.to_str().unwrap(), "--data", dir.path().to_str().unwrap(), "--quiet"]);
    assert_refused(&out, &["dynamic dims that cannot be resolved", "[N, 1, H, W]"]);
}

#[test]
fn a_float16_model_is_audited_in_float32_and_the_report_says_so() {
    use aegis_audit::onnx::proto::{tensor_proto::DataType, type_proto::Value as TypeValue};
    let mut proto = aegis_audit::onnx::decode(&std::fs::read("fixtures/zoo/robust_clean_s0.onnx").unwrap()).unwrap();
    let g = proto.graph.as_mut().unwrap();
    for t in &mut g.initializer {
        if t.data_type != Some(DataType::Float as i32) {
            continue;
        }
        let values = aegis_audit::onnx::tensor::tensor_f32(t).unwrap();
        // float32 → float16 by truncating the mantissa (the weights are normal numbers or zero).
        let half = |v: f32| -> [u8; 2] {
            let b = v.to_bits();
            let exp = ((b >> 23) & 0xff) as i32 - 112;
            let bits = if exp <= 0 { 0 } else { ((exp as u32) << 10) | ((b >> 13) & 0x3ff) };
            ((((b >> 16) & 0x8000) | bits) as u16).to_le_bytes()
        };
        t.raw_data = Some(values.iter().flat_map(|&v| half(v)).collect());
        t.float_data.clear();
        t.data_type = Some(DataType::Float16 as i32);
    }
    for vi in g.input.iter_mut().chain(g.output.iter_mut()).chain(g.value_info.iter_mut()) {
        if let Some(TypeValue::TensorType(t)) = vi.r#type.as_mut().and_then(|t| t.value.as_mut()) {
            t.elem_type = Some(DataType::Float16 as i32);
        }
    }
    let dir = onnx_common::tempdir();
    let (model, json) = (dir.path().join("half.onnx"), dir.path().join("r.json"));
    std::fs::write(&model, aegis_audit::onnx::encode(&proto)).unwrap();
    let out = aegis(&[&[model.to_str().unwrap(), "--json", json.to_str().unwrap()], REDUCED].concat());
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    let report = read_json(&json);
    assert_eq!(report["model"]["widened_from"], "float16");
    let notes: Vec<&str> =
        report["notifications"].as_array().unwrap().iter().filter_map(|n| n["message"].as_str()).collect();
    assert!(notes.iter().any(|n| n.contains("stored in float16: audited in float32")), "{notes:?}");
    assert_eq!(report["detectors"].as_array().unwrap().len(), DETECTORS.len(), "every detector ran");
}
