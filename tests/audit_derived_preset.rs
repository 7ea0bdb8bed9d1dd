//! A model whose input shape no preset matches (issue 29 item 3): a 100-class classifier of 1×28×56
//! images (the shape of two-digit composites), written here with the graph builder, goes through the
//! whole fused audit on IDX files of that shape generated here. No exit 2 for the new shape: the
//! settings are derived from the nearest preset (`mnist`, L2 budgets × √2), the report names the
//! derived preset and says how it was derived, and every one of the 100 classes is decided under
//! `--effort full`; by default (issue 33) a screen chooses the classes that get the full effort.

mod cli_support;

use std::path::Path;
use std::process::Command;

use aegis_audit::onnx::builder::{attr_int, attr_ints, Dim, GraphBuilder};
use aegis_audit::onnx::proto::tensor_proto::DataType;
use prost::Message;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

const H: usize = 28;
const W: usize = 56;
const K: usize = 100;

/// Conv(1→6, 3×3, stride 2) → ReLU → GlobalAveragePool → Flatten → Gemm(100).
fn composite_model(path: &Path) {
    let mut rng = ChaCha8Rng::seed_from_u64(29);
    let mut rand = |n: usize, scale: f32| (0..n).map(|_| rng.gen_range(-scale..scale)).collect::<Vec<f32>>();
    let mut b = GraphBuilder::new();
    b.input(
        "image",
        DataType::Float,
        &[Dim::Param("N".into()), Dim::Fixed(1), Dim::Fixed(H as i64), Dim::Fixed(W as i64)],
    );
    let w1 = b.const_f32("w1", &[6, 1, 3, 3], &rand(54, 0.5));
    let c1 = b.op("Conv", &["image", &w1], vec![attr_ints("strides", &[2, 2]), attr_ints("pads", &[1, 1, 1, 1])]);
    let r1 = b.op("Relu", &[&c1], vec![]);
    let p = b.op("GlobalAveragePool", &[&r1], vec![]);
    let f = b.op("Flatten", &[&p], vec![attr_int("axis", 1)]);
    let w = b.const_f32("w", &[K as i64, 6], &rand(6 * K, 1.0));
    let bias = b.const_f32("b", &[K as i64], &rand(K, 0.1));
    let logits = b.op("Gemm", &[&f, &w, &bias], vec![attr_int("transB", 1)]);
    b.output(&logits, DataType::Float, None);
    std::fs::write(path, b.into_model("composite", 17, 8).encode_to_vec()).unwrap();
}

/// Writes a split's IDX images and labels files into `dir`: `per_class` images of each of the `K`
/// classes, in class order repeated, each made by `image(rng, class)` from one generator seeded `seed`.
fn write_split(
    dir: &Path,
    split: &str,
    per_class: usize,
    seed: u64,
    mut image: impl FnMut(&mut ChaCha8Rng, usize) -> Vec<u8>,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = per_class * K;
    let mut images = vec![0, 0, 8, 3];
    for d in [n, H, W] {
        images.extend_from_slice(&(d as u32).to_be_bytes());
    }
    let mut labels = vec![0, 0, 8, 1];
    labels.extend_from_slice(&(n as u32).to_be_bytes());
    for i in 0..n {
        let k = i % K;
        labels.push(k as u8);
        images.extend(image(&mut rng, k));
    }
    std::fs::write(dir.join(format!("{split}-images-idx3-ubyte")), images).unwrap();
    std::fs::write(dir.join(format!("{split}-labels-idx1-ubyte")), labels).unwrap();
}

/// An IDX images file and its labels file: `per_class` noisy images per class, class `k` brighter in a
/// band of its own.
fn idx_pair(dir: &Path, split: &str, per_class: usize, seed: u64) {
    write_split(dir, split, per_class, seed, |rng, k| {
        let mut pixels = Vec::with_capacity(H * W);
        for y in 0..H {
            for x in 0..W {
                let on = (x + y * 3 + k) % 17 < 4;
                pixels.push(if on { rng.gen_range(150..=255) } else { rng.gen_range(0..60) });
            }
        }
        pixels
    });
}

/// A 100-class template matcher of 1×28×56 images: Flatten → Gemm → ReLU → Gemm (identity), whose
/// first Gemm's class-k row is class k's
/// seeded binary template (centred); on [`template_data`] it classifies every image right, so every
/// class has correctly classified images of other classes to attack toward it.
fn template_model(path: &Path) {
    let mut b = GraphBuilder::new();
    b.input(
        "image",
        DataType::Float,
        &[Dim::Param("N".into()), Dim::Fixed(1), Dim::Fixed(H as i64), Dim::Fixed(W as i64)],
    );
    let f = b.op("Flatten", &["image"], vec![attr_int("axis", 1)]);
    let weights: Vec<f32> =
        (0..K).flat_map(|k| template(k).into_iter().map(|t| if t { 0.05 } else { -0.05 })).collect();
    let w = b.const_f32("w", &[K as i64, (H * W) as i64], &weights);
    let bias = b.const_f32("b", &[K as i64], &vec![0.0; K]);
    let hidden = b.op("Gemm", &[&f, &w, &bias], vec![attr_int("transB", 1)]);
    let relu = b.op("Relu", &[&hidden], vec![]);
    let identity: Vec<f32> = (0..K * K).map(|i| if i / K == i % K { 1.0 } else { 0.0 }).collect();
    let w2 = b.const_f32("w2", &[K as i64, K as i64], &identity);
    let b2 = b.const_f32("b2", &[K as i64], &vec![0.0; K]);
    let logits = b.op("Gemm", &[&relu, &w2, &b2], vec![attr_int("transB", 1)]);
    b.output(&logits, DataType::Float, None);
    std::fs::write(path, b.into_model("templates", 17, 8).encode_to_vec()).unwrap();
}

/// Class `k`'s template: a seeded half of the pixels.
fn template(k: usize) -> Vec<bool> {
    let mut rng = ChaCha8Rng::seed_from_u64(1000 + k as u64);
    (0..H * W).map(|_| rng.gen_bool(0.5)).collect()
}

/// IDX files of `per_class` images per class: the class's template, bright, under noise.
fn template_data(dir: &Path, split: &str, per_class: usize, seed: u64) {
    write_split(dir, split, per_class, seed, |rng, k| {
        template(k).into_iter().map(|on| if on { rng.gen_range(120..=255) } else { rng.gen_range(0..100) }).collect()
    });
}

/// Runs the reduced fused audit of a 100-class model (`templates`: [`template_model`] on its data,
/// else the composite model) in a fresh folder with `extra` arguments; returns the JSON report, the
/// SARIF log and stdout.
fn audit(templates: bool, extra: &[&str]) -> (Value, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.onnx");
    if templates {
        template_model(&model);
        template_data(dir.path(), "train", 3, 1);
        template_data(dir.path(), "t10k", 2, 2);
    } else {
        composite_model(&model);
        idx_pair(dir.path(), "train", 3, 1);
        idx_pair(dir.path(), "t10k", 2, 2);
    }
    let json = dir.path().join("report.json");
    let sarif = dir.path().join("report.sarif");
    let o = Command::new(env!("CARGO_BIN_EXE_aegis-audit"))
        .arg(&model)
        .arg("--data")
        .arg(dir.path())
        .args(["--seeds-per-class", "2", "--steps", "2", "--precondition-images", "20", "--precondition-steps", "2"])
        .args(["--nc-images", "10", "--nc-epochs", "1"])
        .args(["--detectors", "aegis,neural-cleanse"])
        .args(extra)
        .args(["--threads", "1", "--quiet", "--json"])
        .arg(&json)
        .arg("--sarif")
        .arg(&sarif)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(matches!(o.status.code(), Some(0 | 1)), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let sarif: Value = serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    (report, sarif, stdout.into_owned())
}

#[test]
fn a_new_input_shape_with_100_classes_gets_derived_settings_and_a_decision() {
    let (report, sarif, _) = audit(false, &[]);
    assert_eq!(report["parameters"]["preset"], "derived-1x28x56", "{}", report["parameters"]);
    let how = report["parameters"]["preset_derivation"].as_str().unwrap();
    assert!(how.contains("derived from preset 'mnist'") && how.contains("× 1.414"), "{how}");
    assert!(report["notifications"].to_string().contains("derived from preset 'mnist'"), "{}", report["notifications"]);
    // The L2 budgets are mnist's × √2 (the fused decision's translation bound 100, radius 1.5).
    let eps = report["parameters"]["translation"]["eps"].as_f64().unwrap();
    assert!((eps - 100.0 * 2f64.sqrt()).abs() < 1e-3, "{eps}");
    let radius = report["parameters"]["precondition"]["eps"].as_f64().unwrap();
    assert!((radius - 1.5 * 2f64.sqrt()).abs() < 1e-5, "{radius}");
    assert_eq!(report["dataset"]["image_shape"], serde_json::json!([1, H, W]), "{}", report["dataset"]);
    assert_eq!(report["dataset"]["classes"], K, "{}", report["dataset"]);
    // This model classifies 2 of the 200 images right: too few sources for the adaptive screen, so the
    // audit says so and gives every class the full effort; every class is decided, and the Šidák
    // correction uses all 100.
    assert_eq!(report["effort"]["mode"], "full");
    assert!(report["notifications"].to_string().contains("the screen could not rank the classes"));
    assert_eq!(report["classes"].as_array().unwrap().len(), K);
    assert_eq!(report["fused"]["classes_tested"], K);
    assert!(report["fused"]["model_p_value"].as_f64().is_some(), "{}", report["fused"]);
    // Judged against the built-in calibration's full audits (preset mnist): the report warns.
    assert_ne!(report["fused"]["shortlist_null"], true, "{}", report["fused"]);
    assert!(
        report["notifications"]
            .to_string()
            .contains("measured on models audited with preset mnist, this model with preset derived-1x28x56"),
        "{}",
        report["notifications"]
    );
    for d in report["detectors"].as_array().unwrap() {
        assert_eq!(d["classes"].as_array().unwrap().len(), K, "{}", d["name"]);
    }
    assert_eq!(sarif["version"], "2.1.0");
}

/// Issue 33 item 2: above 16 classes the default effort is adaptive. The screen looks at every class,
/// the full effort goes to its candidates and a seeded reference sample, the decision covers those and
/// judges the shortlist against the built-in calibration's shortlists of clean 100-class models' adaptive
/// audits, and the report says which classes were dismissed and what each class cost.
#[test]
fn a_100_class_model_gets_a_screen_and_the_full_effort_on_a_shortlist() {
    let evidence = tempfile::tempdir().unwrap();
    let ev = evidence.path().join("ev");
    let (report, sarif, stdout) =
        audit(true, &["--evidence", ev.to_str().unwrap(), "--reducer", "pca", "--bandwidth", "1.0"]);
    // The evidence covers the shortlisted classes.
    assert!(ev.join("index.html").is_file(), "{stdout}");
    let effort = &report["effort"];
    assert_eq!(effort["mode"], "adaptive", "{effort}");
    assert_eq!(effort["classes"], K);
    let screen = &effort["screen"];
    let ids = |v: &Value| -> Vec<u64> { v.as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).collect() };
    assert_eq!(screen["indices"].as_array().unwrap().len(), K, "{screen}");
    let (candidates, reference, dismissed) =
        (ids(&screen["candidates"]), ids(&screen["reference"]), ids(&screen["dismissed"]));
    assert!((6..=12).contains(&candidates.len()), "{candidates:?}");
    assert_eq!(reference.len(), 16, "{reference:?}");
    assert_eq!(candidates.len() + reference.len() + dismissed.len(), K);
    // The candidates are the screen's highest indices.
    let index = |c: u64| screen["indices"][c as usize][1].as_f64().unwrap_or(f64::NEG_INFINITY);
    let lowest_candidate = candidates.iter().map(|&c| index(c)).fold(f64::INFINITY, f64::min);
    assert!(dismissed.iter().chain(&reference).all(|&c| index(c) <= lowest_candidate), "{screen}");
    // Every detector and the decision cover the shortlist exactly, chosen among all 100 classes, judged
    // against the shortlists of clean models' adaptive audits.
    let mut measured: Vec<u64> = candidates.iter().chain(&reference).copied().collect();
    measured.sort_unstable();
    let classes: Vec<u64> =
        report["classes"].as_array().unwrap().iter().map(|c| c["class"].as_u64().unwrap()).collect();
    assert_eq!(classes, measured);
    for d in report["detectors"].as_array().unwrap() {
        let these: Vec<u64> = d["classes"].as_array().unwrap().iter().map(|c| c["class"].as_u64().unwrap()).collect();
        assert_eq!(these, measured, "{}", d["name"]);
    }
    assert_eq!(report["fused"]["classes_tested"], K);
    assert_eq!(report["fused"]["shortlist_null"], true, "{}", report["fused"]);
    assert!(report["fused"]["model_p_value"].as_f64().is_some());
    // The shortlists that judged it come from adaptive audits of this preset (derived-1x28x56): no
    // warning that the calibration was measured on other models.
    assert!(
        !report["notifications"].to_string().contains("the calibration was measured"),
        "{}",
        report["notifications"]
    );
    // Per-class cost: every class was screened, and the classes' costs add up to the screen's and the
    // detectors' evaluations.
    let costs = effort["per_class"].as_array().unwrap();
    assert_eq!(costs.len(), K);
    assert!(costs.iter().all(|c| c["gradient_evaluations"].as_u64().unwrap() > 0), "{effort}");
    let full: Vec<u64> =
        costs.iter().filter(|c| c["full_effort"] == true).map(|c| c["class"].as_u64().unwrap()).collect();
    assert_eq!(full, measured);
    let per_class: u64 = costs.iter().map(|c| c["gradient_evaluations"].as_u64().unwrap()).sum();
    let detectors: u64 =
        report["detectors"].as_array().unwrap().iter().map(|d| d["gradient_evaluations"].as_u64().unwrap()).sum();
    assert_eq!(per_class, screen["gradient_evaluations"].as_u64().unwrap() + detectors);
    assert!(costs.iter().all(|c| c["seconds"].as_f64().unwrap() >= 0.0));
    // The report says it, in the table and in the SARIF log's notifications.
    assert!(stdout.contains("adaptive effort"), "{stdout}");
    assert!(sarif.to_string().contains("adaptive effort"), "{}", sarif);
    cli_support::assert_schema_valid(&sarif);

    // `calibrate` takes an adaptive report's reference classes only (chosen at random, unlike the
    // screen's candidates) as clean classes; without a reference list it refuses the report.
    let dir = tempfile::tempdir().unwrap();
    // (A null needs 20 classes: the report, and a copy standing for a second model.)
    let (stored, cal) = (dir.path().join("adaptive.json"), dir.path().join("cal.json"));
    let second = dir.path().join("second.json");
    std::fs::write(&stored, report.to_string()).unwrap();
    let mut copy = report.clone();
    copy["model"]["sha256"] = Value::from("00".repeat(32));
    copy["model"]["path"] = Value::from("second.onnx");
    std::fs::write(&second, copy.to_string()).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_aegis-audit"))
        .args(["calibrate", stored.to_str().unwrap(), second.to_str().unwrap(), "-o", cal.to_str().unwrap()])
        .args(["--allow-suspected"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let cal: Value = serde_json::from_str(&std::fs::read_to_string(&cal).unwrap()).unwrap();
    let null: Vec<u64> = cal["null_classes"].as_array().unwrap().iter().map(|c| c["class"].as_u64().unwrap()).collect();
    assert_eq!(null, [reference.clone(), reference.clone()].concat());
    // Every class the audit measured, candidates too, goes to the shortlist classes that judge adaptive
    // audits.
    let shortlisted: Vec<u64> =
        cal["shortlist_classes"].as_array().unwrap().iter().map(|c| c["class"].as_u64().unwrap()).collect();
    assert_eq!(shortlisted, [measured.clone(), measured.clone()].concat());
    assert_eq!(cal["shortlist_presets"], serde_json::json!(["derived-1x28x56"]), "{}", cal["shortlist_presets"]);
    // `decide` on the stored adaptive report decides as the audit did: the same p-value.
    let decided = dir.path().join("decided.json");
    let o = Command::new(env!("CARGO_BIN_EXE_aegis-audit"))
        .args(["decide", stored.to_str().unwrap(), "--json", decided.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&o.stderr));
    let decided: Value = serde_json::from_str(&std::fs::read_to_string(&decided).unwrap()).unwrap();
    assert_eq!(decided["models"][0]["fused"]["classes_tested"], K);
    assert_eq!(decided["models"][0]["fused"]["shortlist_null"], true, "{}", decided["models"][0]["fused"]);
    assert_eq!(decided["models"][0]["fused"]["model_p_value"], report["fused"]["model_p_value"]);
    assert!(decided["models"][0].get("warnings").is_none(), "{}", decided["models"][0]);
    let mut bare = report.clone();
    bare["effort"].as_object_mut().unwrap().remove("screen");
    std::fs::write(&stored, bare.to_string()).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_aegis-audit"))
        .args(["calibrate", stored.to_str().unwrap(), second.to_str().unwrap()])
        .args(["-o", dir.path().join("no.json").to_str().unwrap()])
        .args(["--allow-suspected"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("names no reference classes"));
}

/// `--effort full`: no screen, every detector on every class, whatever their number.
#[test]
fn effort_full_measures_every_class() {
    let (report, _, _) = audit(true, &["--effort", "full"]);
    assert_eq!(report["effort"]["mode"], "full");
    assert!(report["effort"].get("screen").is_none(), "{}", report["effort"]);
    assert_eq!(report["classes"].as_array().unwrap().len(), K);
    for d in report["detectors"].as_array().unwrap() {
        assert_eq!(d["classes"].as_array().unwrap().len(), K, "{}", d["name"]);
    }
    assert_eq!(report["parameters"]["effort"]["mode"], "full", "{}", report["parameters"]);
}

/// `--time-budget` on 100 classes: a budget below even the fewest classes a shortlist holds gets a
/// screen and 10 classes in full (3 candidates, 7 reference), with the warnings that it cannot be met
/// and was overrun; a generous one the default shortlist.
#[test]
fn a_time_budget_sizes_the_shortlist() {
    let (tight, _, _) = audit(true, &["--time-budget", "0.01"]);
    let screen = &tight["effort"]["screen"];
    assert_eq!(tight["effort"]["mode"], "adaptive", "{}", tight["effort"]);
    assert_eq!(screen["candidates"].as_array().unwrap().len(), 3, "{screen}");
    assert_eq!(screen["reference"].as_array().unwrap().len(), 7, "{screen}");
    assert_eq!(tight["classes"].as_array().unwrap().len(), 10);
    let notes = tight["notifications"].to_string();
    assert!(
        notes.contains("so 10 classes get it (the fewest a shortlist holds: the budget will be exceeded)"),
        "{notes}"
    );
    assert!(notes.contains("over its time budget"), "{notes}");
    assert!(notes.contains("as planned above") && !notes.contains("was short"), "{notes}");
    // Fewer classes than the default shortlist: the note says so, and what budgets did on the benchmark.
    assert!(notes.contains("fewer than the 22 of the default effort"), "{notes}");
    let (generous, _, _) = audit(true, &["--time-budget", "3600"]);
    let screen = &generous["effort"]["screen"];
    assert_eq!(screen["reference"].as_array().unwrap().len(), 16, "{screen}");
    assert!((6..=12).contains(&screen["candidates"].as_array().unwrap().len()), "{screen}");
    assert!(generous["notifications"].to_string().contains("time budget 3600 s"));
    assert!(!generous["notifications"].to_string().contains("of the default effort"));
}
