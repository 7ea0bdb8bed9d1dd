//! `aegis-audit export-grad MODEL -o OUT` writes a gradient graph that ONNX Runtime opens, with
//! inputs `x`, `y` and outputs `logits`, `features`, `loss`, `grad`; an unusable model exits 2.

mod common;

use std::process::Command;

use aegis_audit::runtime::Session;

#[test]
fn export_grad_writes_a_model_onnx_runtime_opens() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.grad.onnx");
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/grad/resnet_block.onnx");
    let st = Command::new(env!("CARGO_BIN_EXE_aegis-audit"))
        .args(["export-grad", model, "-o"])
        .arg(&out)
        .args(["--threads", "1"])
        .status()
        .unwrap();
    assert!(st.success(), "{st:?}");
    common::init_ort();
    let s = Session::from_bytes(&std::fs::read(&out).unwrap(), &common::config()).unwrap();
    let mut ins = s.input_names();
    ins.sort();
    assert_eq!(ins, ["x", "y"]);
    assert_eq!(s.output_names(), ["logits", "features", "loss", "grad"]);
}

#[test]
fn export_grad_of_a_non_onnx_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.onnx");
    std::fs::write(&bad, b"not a model").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aegis-audit")).args(["export-grad"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.onnx"));
}
