//! RGB end to end (issue 16 item 5, the part that needs no trained model): a 3×32×32 classifier
//! written here with the graph builder goes through the whole audit binary on a CIFAR-10
//! binary-batch dataset generated here (synthetic coloured stripes, one orientation and colour per
//! class; no copy of CIFAR-10 is available). The `cifar10` preset is chosen from the model's input
//! shape, the data are read as CIFAR-10, and the untrained model fails the robustness precondition:
//! exit 3, `not-applicable`, with a SARIF log and JSON written.

use std::path::Path;
use std::process::Command;

use aegis_audit::onnx::builder::{attr_int, attr_ints, Dim, GraphBuilder};
use aegis_audit::onnx::proto::tensor_proto::DataType;
use prost::Message;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

/// Conv(3→8, stride 2) → ReLU → Conv(8→8) → ReLU → GlobalAveragePool → Flatten → Gemm(10).
fn rgb_model(path: &Path) {
    let mut rng = ChaCha8Rng::seed_from_u64(16);
    let mut rand = |n: usize, scale: f32| (0..n).map(|_| rng.gen_range(-scale..scale)).collect::<Vec<f32>>();
    let mut b = GraphBuilder::new();
    b.input("image", DataType::Float, &[Dim::Param("N".into()), Dim::Fixed(3), Dim::Fixed(32), Dim::Fixed(32)]);
    let w1 = b.const_f32("w1", &[8, 3, 3, 3], &rand(216, 0.4));
    let c1 = b.op("Conv", &["image", &w1], vec![attr_ints("strides", &[2, 2]), attr_ints("pads", &[1, 1, 1, 1])]);
    let r1 = b.op("Relu", &[&c1], vec![]);
    let w2 = b.const_f32("w2", &[8, 8, 3, 3], &rand(576, 0.3));
    let c2 = b.op("Conv", &[&r1, &w2], vec![attr_ints("pads", &[1, 1, 1, 1])]);
    let r2 = b.op("Relu", &[&c2], vec![]);
    let p = b.op("GlobalAveragePool", &[&r2], vec![]);
    let f = b.op("Flatten", &[&p], vec![attr_int("axis", 1)]);
    let w = b.const_f32("w", &[10, 8], &rand(80, 1.0));
    let bias = b.const_f32("b", &[10], &rand(10, 0.1));
    let logits = b.op("Gemm", &[&f, &w, &bias], vec![attr_int("transB", 1)]);
    b.output(&logits, DataType::Float, None);
    std::fs::write(path, b.into_model("rgb", 17, 8).encode_to_vec()).unwrap();
}

/// `n` CIFAR-10 records per class: label byte, then the red, green and blue 32×32 planes. Class
/// `k` has stripes of period 2 + k % 5, horizontal for k < 5, in a colour of its own, plus noise.
fn cifar_batch(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(10 * n * 3073);
    for i in 0..10 * n {
        let k = i % 10;
        out.push(k as u8);
        let colour = [(k * 25) as f32, (255 - k * 20) as f32, ((k * 70) % 256) as f32];
        for c in colour {
            for y in 0..32 {
                for x in 0..32 {
                    let along = if k < 5 { y } else { x };
                    let on = (along / (2 + k % 5)) % 2 == 0;
                    let v = if on { c } else { 255.0 - c } + rng.gen_range(-20.0f32..20.0);
                    out.push(v.clamp(0.0, 255.0) as u8);
                }
            }
        }
    }
    out
}

#[test]
fn rgb_model_on_cifar_batches_runs_the_whole_audit() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("rgb.onnx");
    rgb_model(&model);
    let data = dir.path().join("cifar-10-batches-bin");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("data_batch_1.bin"), cifar_batch(12, 1)).unwrap();
    std::fs::write(data.join("test_batch.bin"), cifar_batch(6, 2)).unwrap();
    let names = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
    std::fs::write(data.join("batches.meta.txt"), names).unwrap();
    let (json, sarif) = (dir.path().join("report.json"), dir.path().join("report.sarif"));
    let o = Command::new(env!("CARGO_BIN_EXE_aegis-audit"))
        .arg(&model)
        .arg("--data")
        .arg(dir.path())
        .args(["--method", "aegis", "--seeds-per-class", "5", "--steps", "5", "--precondition-images", "60"])
        .args(["--threads", "1", "--quiet", "--json"])
        .arg(&json)
        .arg("--sarif")
        .arg(&sarif)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(3), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["parameters"]["preset"], "cifar10", "{report:#}");
    assert_eq!(report["dataset"]["format"], "cifar10", "{report:#}");
    assert_eq!(report["dataset"]["image_shape"], serde_json::json!([3, 32, 32]), "{report:#}");
    assert_eq!(report["dataset"]["classes"], 10, "{report:#}");
    assert_eq!(report["verdict"], "not-applicable");
    assert_eq!(report["precondition"]["passed"], false, "{report:#}");
    let sarif: Value = serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    assert_eq!(sarif["version"], "2.1.0");

    // The fused decision (the default) runs on it too, and says that the built-in calibration was
    // measured on MNIST models, not on models of this preset (universal and reach need correctly
    // classified images, which this untrained model has too few of).
    let o = Command::new(env!("CARGO_BIN_EXE_aegis-audit"))
        .arg(&model)
        .arg("--data")
        .arg(dir.path())
        .args(["--seeds-per-class", "4", "--steps", "3", "--precondition-images", "20", "--precondition-steps", "2"])
        .args(["--nc-images", "20", "--nc-epochs", "1", "--reach-images", "4", "--reach-sweep-images", "2"])
        .args(["--reach-steps", "2", "--universal-images", "20", "--universal-steps", "1"])
        .args(["--detectors", "aegis,neural-cleanse"])
        .args(["--threads", "1", "--quiet", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(matches!(o.status.code(), Some(0 | 1)), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["method"]["method"], "fused", "{report:#}");
    let warning = "the calibration was measured on models audited with preset mnist, this model with preset cifar10";
    assert!(report["notifications"].to_string().contains(warning), "{}", report["notifications"]);
    assert!(stdout.contains(warning), "{stdout}");
}
