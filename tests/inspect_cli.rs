//! `aegis-audit inspect` through the binary: the aligned report, `--json` with stable keys, and
//! the feature flags.

mod onnx_common;

use onnx_common::{assert_input_error, inspect, plain_cnn, tempdir, write_model};

#[test]
fn human_report() {
    let dir = tempdir();
    let path = write_model(dir.path(), "cnn.onnx", &plain_cnn());
    let out = inspect(&path, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for needle in [
        "image input      x NCHW [N, 1, 8, 8] float32",
        "logits           logits [N, 10] from Gemm 'fc'",
        "classes          10",
        "feature          r1 (last-conv, output of Relu)",
        "ops              Conv×1 Flatten×1 Gemm×1 MaxPool×1 Relu×1",
        "differentiable   yes",
    ] {
        assert!(stdout.contains(needle), "missing '{needle}' in:\n{stdout}");
    }
}

#[test]
fn json_report_has_stable_keys() {
    let dir = tempdir();
    let path = write_model(dir.path(), "cnn.onnx", &plain_cnn());
    let out = inspect(&path, &["--json", "--feature-layer", "penultimate"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    for k in [
        "model",
        "image_input",
        "logits",
        "num_classes",
        "feature",
        "op_histogram",
        "path_ops",
        "unsupported_ops",
        "differentiable",
    ] {
        assert!(keys.contains(&k), "missing key {k} in {keys:?}");
    }
    assert_eq!(v["image_input"]["shape"], serde_json::json!(["N", 1, 8, 8]));
    assert_eq!(v["image_input"]["layout"], "NCHW");
    assert_eq!(v["logits"]["name"], "logits");
    assert_eq!(v["num_classes"], 10);
    assert_eq!(v["feature"]["name"], "f");
    assert_eq!(v["feature"]["choice"], "penultimate");
    assert_eq!(v["op_histogram"]["Conv"], 1);
    assert_eq!(v["differentiable"], true);
}

#[test]
fn feature_tensor_overrides_layer() {
    let dir = tempdir();
    let path = write_model(dir.path(), "cnn.onnx", &plain_cnn());
    let out = inspect(&path, &["--json", "--feature-layer", "penultimate", "--feature-tensor", "p1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["feature"]["name"], "p1");
    assert_eq!(v["feature"]["choice"], "named");
}

#[test]
fn unknown_feature_tensor_is_an_input_error() {
    let dir = tempdir();
    let path = write_model(dir.path(), "cnn.onnx", &plain_cnn());
    assert_input_error(&inspect(&path, &["--feature-tensor", "nope"]), "no tensor named 'nope'");
}
