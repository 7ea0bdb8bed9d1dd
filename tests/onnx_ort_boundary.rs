//! The ONNX Runtime boundary. A model whose pooling window is larger than its input makes ONNX
//! Runtime infer negative dimensions, on which the `ort` bindings panic while opening a session
//! (issue 14). Such models are refused by static shape inference before any session exists; if one
//! reached ONNX Runtime anyway, the panic is caught at the boundary and returned as
//! `RuntimeError::Internal`. ONNX Runtime's own log lines never reach stderr.

mod onnx_common;

use aegis_audit::audit::gradient_graph;
use aegis_audit::grad::GradSpec;
use aegis_audit::onnx::proto::ModelProto;
use aegis_audit::runtime::{self, RuntimeError, SessionConfig};
use onnx_common::{attr_i, attr_ints, node, plain_cnn, tempdir, tensor_f32, value_info, write_model, D};

/// Conv → Relu → MaxPool(kernel 100 on a 28×28 input) → GlobalAveragePool → Flatten → Gemm: the
/// head still fits (8 features), so ONNX Runtime's own inference accepts the graph.
fn negative_pool() -> ModelProto {
    let mut m = plain_cnn();
    let g = m.graph.as_mut().unwrap();
    g.input[0] = value_info("x", &[D::S("N"), D::N(1), D::N(28), D::N(28)]);
    g.node[2].attribute = vec![attr_ints("kernel_shape", &[100, 100])];
    g.node[3] = node("GlobalAveragePool", "gap", &["p1"], &["g"], vec![]);
    g.node.insert(4, node("Flatten", "flatten", &["g"], &["f"], vec![attr_i("axis", 1)]));
    g.initializer[2] = tensor_f32("wf", &[10, 8]);
    m
}

fn config() -> SessionConfig {
    SessionConfig { intra_threads: 1, ..SessionConfig::default() }
}

fn spec() -> GradSpec {
    GradSpec { input: "x".into(), logits: "logits".into(), features: "r1".into() }
}

#[test]
fn the_known_crash_is_refused_before_onnx_runtime() {
    runtime::init(None).unwrap_or_else(|e| panic!("{e}"));
    let err = gradient_graph(&negative_pool(), &spec(), &config()).unwrap_err().to_string();
    assert!(err.starts_with("node 'pool1' (MaxPool): the window is larger than the padded input"), "{err}");
}

#[test]
fn a_panic_in_the_bindings_becomes_a_typed_error() {
    runtime::init(None).unwrap_or_else(|e| panic!("{e}"));
    // Straight to the probe, skipping the static checks: ort panics, the boundary catches it.
    let tensors: Vec<String> = ["c1", "r1", "p1", "logits"].iter().map(|s| s.to_string()).collect();
    let err = runtime::probe_shapes(&negative_pool(), "x", &tensors, &config()).unwrap_err();
    assert!(matches!(err, RuntimeError::Internal(_)), "{err:?}");
    let msg = err.to_string();
    assert_eq!(msg.lines().count(), 1, "{msg}");
    assert!(
        msg.contains("internal error in the ONNX Runtime bindings while creating an ONNX Runtime session"),
        "{msg}"
    );
}

#[test]
fn onnx_runtime_errors_are_one_clean_line_and_its_log_stays_silent() {
    // A model ONNX Runtime rejects itself (a Relu carrying an attribute it does not know). The
    // gradient graph is built without ONNX Runtime (every shape is static); the audit's preparation
    // opens a session and gets ONNX Runtime's refusal: one line, without C++ signatures, source
    // paths or ONNX Runtime's own (coloured) log lines.
    let mut m = plain_cnn();
    let g = m.graph.as_mut().unwrap();
    g.input[0] = value_info("x", &[D::S("N"), D::N(1), D::N(28), D::N(28)]);
    g.initializer[2] = tensor_f32("wf", &[10, 8 * 14 * 14]);
    g.node[1].attribute.push(attr_i("alpha", 1));
    let dir = tempdir();
    let path = write_model(dir.path(), "model.onnx", &m);
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/mnist-subset");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aegis-audit"))
        .arg(&path)
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    let stderr = onnx_common::assert_input_error(&out, "Unrecognized attribute: alpha for operator Relu");
    for bad in [".cc:", ".h:", "onnxruntime::", "[ONNXRuntimeError]", "\u{1b}[", "[W:onnxruntime", "[E:onnxruntime"] {
        assert!(!stderr.contains(bad), "'{bad}' in: {stderr}");
    }
}

/// An IDX file of `u8` with dimensions `dims`.
fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend(d.to_be_bytes());
    }
    out.extend(data);
    out
}

#[test]
fn a_failing_onnx_runtime_run_prints_one_line_and_no_log() {
    // Labels beyond the model's 10 classes make the gradient graph's GatherElements fail inside
    // ONNX Runtime, which logs such failures on stderr unless silenced. Whatever refuses them
    // (a label check or ONNX Runtime), stderr is one line of aegis-audit's.
    let dir = tempdir();
    let n = 40u32;
    for split in ["train", "t10k"] {
        let pixels: Vec<u8> = (0..n * 28 * 28).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join(format!("{split}-images-idx3-ubyte")), idx_bytes(&[n, 28, 28], &pixels))
            .unwrap();
        std::fs::write(dir.path().join(format!("{split}-labels-idx1-ubyte")), idx_bytes(&[n], &vec![200; n as usize]))
            .unwrap();
    }
    let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/zoo/robust_clean_s0.onnx");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aegis-audit"))
        .arg(&model)
        .arg("--data")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = onnx_common::assert_input_error(&out, "");
    for bad in [".cc:", "onnxruntime::", "[ONNXRuntimeError]", "\u{1b}[", "[E:onnxruntime", "[W:onnxruntime", "[with "]
    {
        assert!(!stderr.contains(bad), "'{bad}' in: {stderr}");
    }
}
