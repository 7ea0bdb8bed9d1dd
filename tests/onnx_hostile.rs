//! Hostile and wrong inputs: each must end in a one-line error naming the problem, exit code 2
//! and no panic, both from the library and through `aegis-audit inspect`.

mod onnx_common;

use aegis_audit::onnx::proto::{FunctionProto, GraphProto, OperatorSetIdProto};
use aegis_audit::onnx::{load_model, LoadLimits};
use onnx_common::{
    assert_input_error, inspect, model, node, plain_cnn, tempdir, tensor_external, tensor_f32, value_info, write_model,
    D,
};
use rand::{RngCore, SeedableRng};

/// Writes `m`, checks the library error and the binary's exit code and message.
fn assert_rejected(m: &aegis_audit::onnx::proto::ModelProto, needle: &str) -> String {
    let dir = tempdir();
    let path = write_model(dir.path(), "model.onnx", m);
    assert_file_rejected(&path, needle)
}

fn assert_file_rejected(path: &std::path::Path, needle: &str) -> String {
    let lib = match load_model(path, &LoadLimits::default()) {
        Err(e) => e.to_string(),
        Ok(m) => match aegis_audit::analysis::analyze(&m, &Default::default()) {
            Err(e) => e.to_string(),
            Ok(a) => panic!("accepted: {a:?}"),
        },
    };
    assert!(lib.contains(needle), "expected '{needle}' in: {lib}");
    assert_input_error(&inspect(path, &[]), needle)
}

#[test]
fn truncated_file() {
    let dir = tempdir();
    let bytes = aegis_audit::onnx::encode(&plain_cnn());
    let path = dir.path().join("trunc.onnx");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert_file_rejected(&path, "not an ONNX model");
}

#[test]
fn random_bytes() {
    let dir = tempdir();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut bytes = vec![0u8; 4096];
    rng.fill_bytes(&mut bytes);
    let path = dir.path().join("random.onnx");
    std::fs::write(&path, &bytes).unwrap();
    assert_file_rejected(&path, "not an ONNX model");
}

#[test]
fn empty_file() {
    let dir = tempdir();
    let path = dir.path().join("empty.onnx");
    std::fs::write(&path, b"").unwrap();
    assert_file_rejected(&path, "empty");
}

#[test]
fn missing_file() {
    let dir = tempdir();
    let out = inspect(&dir.path().join("nope.onnx"), &[]);
    assert_input_error(&out, "nope.onnx");
}

/// plain_cnn with the Gemm weight `wf` stored externally.
fn cnn_with_external(location: &str, extra: &[(&str, &str)]) -> aegis_audit::onnx::proto::ModelProto {
    let mut m = plain_cnn();
    let g = m.graph.as_mut().unwrap();
    let i = g.initializer.iter().position(|t| t.name.as_deref() == Some("wf")).unwrap();
    g.initializer[i] = tensor_external("wf", &[10, 128], location, extra);
    m
}

#[test]
fn external_data_with_dotdot() {
    let outer = tempdir();
    let inner = outer.path().join("models");
    std::fs::create_dir(&inner).unwrap();
    std::fs::write(outer.path().join("secret.bin"), vec![0u8; 5120]).unwrap();
    let path = write_model(&inner, "model.onnx", &cnn_with_external("../secret.bin", &[]));
    assert_file_rejected(&path, "'..' in location");
}

#[test]
fn external_data_absolute_path() {
    let other = tempdir();
    let secret = other.path().join("secret.bin");
    std::fs::write(&secret, vec![0u8; 5120]).unwrap();
    let m = cnn_with_external(secret.to_str().unwrap(), &[]);
    assert_rejected(&m, "absolute path");
}

#[cfg(unix)]
#[test]
fn external_data_symlink_leaving_directory() {
    let other = tempdir();
    let secret = other.path().join("secret.bin");
    std::fs::write(&secret, vec![0u8; 5120]).unwrap();
    let dir = tempdir();
    std::os::unix::fs::symlink(&secret, dir.path().join("weights.bin")).unwrap();
    let path = write_model(dir.path(), "model.onnx", &cnn_with_external("weights.bin", &[]));
    assert_file_rejected(&path, "outside the model's directory");
}

#[test]
fn external_data_offset_beyond_file() {
    let dir = tempdir();
    std::fs::write(dir.path().join("weights.bin"), vec![0u8; 5120]).unwrap();
    let m = cnn_with_external("weights.bin", &[("offset", "4096"), ("length", "5120")]);
    let path = write_model(dir.path(), "model.onnx", &m);
    assert_file_rejected(&path, "beyond the end of the 5120-byte file");
}

#[test]
fn external_data_length_mismatch() {
    let dir = tempdir();
    std::fs::write(dir.path().join("weights.bin"), vec![0u8; 8192]).unwrap();
    let m = cnn_with_external("weights.bin", &[("length", "4096")]);
    let path = write_model(dir.path(), "model.onnx", &m);
    assert_file_rejected(&path, "length 4096 differs from the 5120 bytes");
}

#[test]
fn custom_domain_node() {
    let mut m = plain_cnn();
    let g = m.graph.as_mut().unwrap();
    g.node[1].domain = Some("com.evil".into());
    g.node[1].op_type = Some("EvilRelu".into());
    assert_rejected(&m, "custom-op domain 'com.evil'");
}

#[test]
fn non_default_opset_import() {
    let mut m = plain_cnn();
    m.opset_import.push(OperatorSetIdProto { domain: Some("ai.onnx.ml".into()), version: Some(3) });
    assert_rejected(&m, "opset import of domain 'ai.onnx.ml'");
}

#[test]
fn local_function() {
    let mut m = plain_cnn();
    m.functions.push(FunctionProto { name: Some("MyOp".into()), domain: Some("custom".into()), ..Default::default() });
    assert_rejected(&m, "local function 'MyOp'");
}

#[test]
fn ir_version_too_new() {
    let mut m = plain_cnn();
    m.ir_version = Some(14);
    assert_rejected(&m, "unsupported ONNX IR version 14");
}

#[test]
fn cyclic_graph() {
    let mut m = plain_cnn();
    let g = m.graph.as_mut().unwrap();
    // relu1 now reads the pooled tensor, which depends on relu1.
    g.node[1].input = vec!["p1".into()];
    assert_rejected(&m, "the graph is cyclic");
}

#[test]
fn undefined_node_input() {
    let mut m = plain_cnn();
    m.graph.as_mut().unwrap().node[1].input = vec!["ghost".into()];
    assert_rejected(&m, "reads tensor 'ghost'");
}

#[test]
fn duplicate_output() {
    let mut m = plain_cnn();
    m.graph.as_mut().unwrap().node[1].output = vec!["c1".into()];
    assert_rejected(&m, "tensor 'c1' is defined twice");
}

#[test]
fn absurd_initializer_dims() {
    let mut m = plain_cnn();
    let mut t = tensor_f32("wf", &[10, 128]);
    t.dims = vec![1 << 40];
    let g = m.graph.as_mut().unwrap();
    let i = g.initializer.iter().position(|t| t.name.as_deref() == Some("wf")).unwrap();
    g.initializer[i] = t;
    assert_rejected(&m, "above the limit");
}

#[test]
fn overflowing_initializer_dims() {
    let mut m = plain_cnn();
    let mut t = tensor_f32("b1", &[8]);
    t.dims = vec![1 << 20, 1 << 20, 1 << 20, 1 << 20];
    m.graph.as_mut().unwrap().initializer[1] = t;
    assert_rejected(&m, "declare more than the limit");
}

#[test]
fn inline_data_shorter_than_declared() {
    let mut m = plain_cnn();
    let mut t = tensor_f32("b1", &[8]);
    t.dims = vec![1000];
    m.graph.as_mut().unwrap().initializer[1] = t;
    assert_rejected(&m, "need 4000 bytes but the tensor holds 32 bytes");
}

#[test]
fn huge_declared_total() {
    // Two external tensors of 512 MiB each: over the 1e9-byte total before any file is opened.
    let mut m = plain_cnn();
    let g = m.graph.as_mut().unwrap();
    g.initializer.push(tensor_external("big1", &[4096, 32768], "big.bin", &[]));
    g.initializer.push(tensor_external("big2", &[4096, 32768], "big.bin", &[]));
    assert_rejected(&m, "above the limit of 1000000000 bytes");
}

#[test]
fn absurd_declared_input_dim() {
    let mut m = plain_cnn();
    m.graph.as_mut().unwrap().input[0] = value_info("x", &[D::S("N"), D::N(1), D::N(1 << 40), D::N(8)]);
    assert_rejected(&m, "absurd dimension");
}

#[test]
fn no_image_input() {
    let mut m = plain_cnn();
    m.graph.as_mut().unwrap().input[0] = value_info("x", &[D::S("N"), D::N(64)]);
    assert_rejected(&m, "no image input");
}

#[test]
fn two_runtime_inputs() {
    let mut m = plain_cnn();
    m.graph.as_mut().unwrap().input.push(value_info("extra", &[D::N(1)]));
    assert_rejected(&m, "needs exactly one image input");
}

#[test]
fn no_classifier_head() {
    let graph = GraphProto {
        node: vec![
            node("Conv", "conv", &["x", "w"], &["c"], vec![]),
            node("GlobalAveragePool", "gap", &["c"], &["g"], vec![]),
            node("Flatten", "flat", &["g"], &["y"], vec![]),
        ],
        initializer: vec![tensor_f32("w", &[10, 1, 3, 3])],
        input: vec![value_info("x", &[D::S("N"), D::N(1), D::N(8), D::N(8)])],
        output: vec![value_info("y", &[D::S("N"), D::N(10)])],
        ..Default::default()
    };
    assert_rejected(&model(graph), "no classifier head");
}

#[test]
fn dynamic_channel_height_width() {
    let mut m = plain_cnn();
    m.graph.as_mut().unwrap().input[0] = value_info("x", &[D::S("N"), D::N(1), D::S("H"), D::S("W")]);
    let err = assert_rejected(&m, "dynamic dims that cannot be resolved");
    assert!(err.contains("[N, 1, H, W]"), "{err}");
}

#[test]
fn nhwc_layout() {
    let mut m = plain_cnn();
    m.graph.as_mut().unwrap().input[0] = value_info("x", &[D::S("N"), D::N(8), D::N(8), D::N(1)]);
    assert_rejected(&m, "wrong data layout: aegis-audit needs NCHW");
}

#[test]
fn file_size_limit() {
    let dir = tempdir();
    let path = write_model(dir.path(), "model.onnx", &plain_cnn());
    let limits = LoadLimits { max_file_bytes: 100, ..LoadLimits::default() };
    let err = load_model(&path, &limits).unwrap_err().to_string();
    assert!(err.contains("above the limit of 100 bytes"), "{err}");
}

#[test]
fn node_count_limit() {
    let dir = tempdir();
    let path = write_model(dir.path(), "model.onnx", &plain_cnn());
    let limits = LoadLimits { max_nodes: 3, ..LoadLimits::default() };
    let err = load_model(&path, &limits).unwrap_err().to_string();
    assert!(err.contains("5 nodes, above the limit of 3"), "{err}");
}
