//! A model whose input shape no preset matches (issue 29 item 3): a 100-class classifier of 1×28×56
//! images (the shape of two-digit composites), written here with the graph builder, goes through the
//! whole fused audit on IDX files of that shape generated here. No exit 2 for the new shape: the
//! settings are derived from the nearest preset (`mnist`, L2 budgets × √2), the report names the
//! derived preset and says how it was derived, and every one of the 100 classes is decided.

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

/// An IDX images file and its labels file: `per_class` noisy images per class, class `k` brighter in a
/// band of its own.
fn idx_pair(dir: &Path, split: &str, per_class: usize, seed: u64) {
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
        for y in 0..H {
            for x in 0..W {
                let on = (x + y * 3 + k) % 17 < 4;
                images.push(if on { rng.gen_range(150..=255) } else { rng.gen_range(0..60) });
            }
        }
    }
    std::fs::write(dir.join(format!("{split}-images-idx3-ubyte")), images).unwrap();
    std::fs::write(dir.join(format!("{split}-labels-idx1-ubyte")), labels).unwrap();
}

#[test]
fn a_new_input_shape_with_100_classes_gets_derived_settings_and_a_decision() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("composite.onnx");
    composite_model(&model);
    idx_pair(dir.path(), "train", 3, 1);
    idx_pair(dir.path(), "t10k", 2, 2);
    let json = dir.path().join("report.json");
    let sarif = dir.path().join("report.sarif");
    let o = Command::new(env!("CARGO_BIN_EXE_aegis-audit"))
        .arg(&model)
        .arg("--data")
        .arg(dir.path())
        .args(["--seeds-per-class", "2", "--steps", "2", "--precondition-images", "20", "--precondition-steps", "2"])
        .args(["--nc-images", "10", "--nc-epochs", "1"])
        .args(["--detectors", "aegis,neural-cleanse"])
        .args(["--threads", "1", "--quiet", "--json"])
        .arg(&json)
        .arg("--sarif")
        .arg(&sarif)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(matches!(o.status.code(), Some(0 | 1)), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
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
    // Every class is decided, and the Šidák correction uses all 100.
    assert_eq!(report["classes"].as_array().unwrap().len(), K);
    assert!(report["fused"]["model_p_value"].as_f64().is_some(), "{}", report["fused"]);
    for d in report["detectors"].as_array().unwrap() {
        assert_eq!(d["classes"].as_array().unwrap().len(), K, "{}", d["name"]);
    }
    let sarif: Value = serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
}
