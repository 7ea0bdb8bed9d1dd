//! Channels-last (NHWC) models, as tf2onnx writes Keras ones: image input [N, H, W, C] scaled in
//! the graph, transposed to NCHW for the convolutions and back to NHWC between them, pooled by a
//! ReduceMean over H and W, a MatMul + Add dense head and a Softmax. `analyze` reports the layout
//! and the logical C, H, W; the gradient graph takes NCHW `x` (the rest of aegis-audit is unchanged),
//! feeds the model in its own layout and returns `grad` in NCHW, checked against float64 finite
//! differences of the original model on NHWC data; the CLI says NHWC. An NHWC-looking input that is
//! never transposed to NCHW is still refused with one line.

mod common;
mod onnx_common;

use std::process::Command;

use aegis_audit::analysis::{analyze, FeatureChoice};
use aegis_audit::grad::GradSpec;
use aegis_audit::onnx::builder::{attr_int, attr_ints, Dim, GraphBuilder};
use aegis_audit::onnx::proto::tensor_proto::DataType;
use aegis_audit::onnx::proto::ModelProto;
use aegis_audit::onnx::{load_model, LoadLimits};
use common::{eval_grad, grad_model, ref64, rel_err};
use ndarray::{ArrayD, IxDyn};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const H: usize = 6;
const W: usize = 5;
const C: usize = 3;
const K: usize = 4;

/// The Keras-style model; returns it with the logits tensor's name.
fn keras_like() -> (ModelProto, String) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut rand = |b: &mut GraphBuilder, hint: &str, dims: &[i64], s: f32| {
        let n: i64 = dims.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.gen_range(-s..s)).collect();
        b.const_f32(hint, dims, &v)
    };
    let mut b = GraphBuilder::new();
    b.input(
        "input_1",
        DataType::Float,
        &[Dim::Param("unk__6".into()), Dim::Fixed(H as i64), Dim::Fixed(W as i64), Dim::Fixed(C as i64)],
    );
    // Keras Rescaling(1/0.5, offset −1), then tf2onnx's Transpose to NCHW for the Conv.
    let scale = b.const_f32("scale", &[], &[2.0]);
    let off = b.const_f32("offset", &[], &[-1.0]);
    let s = b.op("Mul", &["input_1", &scale], vec![]);
    let s = b.op("Add", &[&s, &off], vec![]);
    let t = b.op("Transpose", &[&s], vec![attr_ints("perm", &[0, 3, 1, 2])]);
    let w1 = rand(&mut b, "conv1_w", &[4, C as i64, 3, 3], 0.5);
    let b1 = rand(&mut b, "conv1_b", &[4], 0.1);
    let c1 = b.op("Conv", &[&t, &w1, &b1], vec![attr_ints("pads", &[1, 1, 1, 1])]);
    let r1 = b.op("Relu", &[&c1], vec![]);
    // Back to NHWC between layers, then NCHW again for the second Conv.
    let n1 = b.op("Transpose", &[&r1], vec![attr_ints("perm", &[0, 2, 3, 1])]);
    let t2 = b.op("Transpose", &[&n1], vec![attr_ints("perm", &[0, 3, 1, 2])]);
    let w2 = rand(&mut b, "conv2_w", &[5, 4, 3, 3], 0.4);
    let c2 = b.op("Conv", &[&t2, &w2], vec![attr_ints("pads", &[1, 1, 1, 1])]);
    let r2 = b.op("Tanh", &[&c2], vec![]);
    let n2 = b.op("Transpose", &[&r2], vec![attr_ints("perm", &[0, 2, 3, 1])]);
    // GlobalAveragePooling2D in NHWC, Dense (MatMul + Add), Softmax.
    let axes = b.const_i64("axes", &[2], &[1, 2]);
    let pooled = b.op("ReduceMean", &[&n2, &axes], vec![attr_int("keepdims", 0)]);
    let wd = rand(&mut b, "dense_w", &[5, K as i64], 0.8);
    let bd = rand(&mut b, "dense_b", &[K as i64], 0.2);
    let mm = b.op("MatMul", &[&pooled, &wd], vec![]);
    let logits = b.op("Add", &[&mm, &bd], vec![]);
    b.op_named("Softmax", &[&logits], &["dense"], vec![attr_int("axis", -1)]);
    b.output("dense", DataType::Float, Some(&[Dim::Param("unk__7".into()), Dim::Fixed(K as i64)]));
    (b.into_model("keras_like", 18, 8), logits)
}

fn write(dir: &std::path::Path, m: &ModelProto) -> std::path::PathBuf {
    let path = dir.join("keras.onnx");
    std::fs::write(&path, aegis_audit::onnx::encode(m)).unwrap();
    path
}

#[test]
fn analysis_reports_nhwc_with_logical_channels_height_width() {
    let dir = tempfile::tempdir().unwrap();
    let (m, logits) = keras_like();
    let loaded = load_model(&write(dir.path(), &m), &LoadLimits::default()).unwrap();
    let a = analyze(&loaded, &FeatureChoice::LastConv).unwrap();
    assert_eq!(a.image_input.layout, "NHWC");
    assert_eq!((a.image_input.channels, a.image_input.height, a.image_input.width), (3, 6, 5));
    assert_eq!(a.logits.name, logits);
    assert_eq!(a.num_classes, K);
    assert!(a.feature.reason.contains("ReduceMean"), "{}", a.feature.reason);
    assert!(a.differentiable, "{:?}", a.unsupported_ops);
}

#[test]
fn gradient_graph_takes_nchw_feeds_nhwc_and_matches_finite_differences() {
    let (m, logits) = keras_like();
    let spec = GradSpec { input: "input_1".into(), logits: logits.clone(), features: logits.clone() };
    let g = grad_model(&m, &spec).unwrap();
    let x_in = &g.graph.as_ref().unwrap().input[0];
    let dims = aegis_audit::onnx::shape::declared_shape(x_in).unwrap();
    assert_eq!(aegis_audit::onnx::shape::shape_string(&dims), "[N, 3, 6, 5]", "x is NCHW");

    let n = 2;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let nchw: Vec<f32> = (0..n * C * H * W).map(|_| rng.gen_range(0.0f32..1.0)).collect();
    let y = [1i64, 3];
    let out = eval_grad(&g, &[n as i64, C as i64, H as i64, W as i64], &nchw, &y).unwrap();
    assert_eq!(out.grad_shape, vec![n as i64, C as i64, H as i64, W as i64]);

    // The same images in the model's layout, and the float64 loss of the original model.
    let x_nchw = ArrayD::from_shape_vec(IxDyn(&[n, C, H, W]), nchw.iter().map(|&v| v as f64).collect()).unwrap();
    let x_nhwc = x_nchw.view().permuted_axes(IxDyn(&[0, 2, 3, 1])).as_standard_layout().to_owned();
    let loss = |x: &ArrayD<f64>| {
        let l = ref64::eval(&m, x, &logits);
        (0..n)
            .map(|i| {
                let row: Vec<f64> = (0..K).map(|j| l[IxDyn(&[i, j])]).collect();
                let mx = row.iter().cloned().fold(f64::MIN, f64::max);
                mx + row.iter().map(|v| (v - mx).exp()).sum::<f64>().ln() - row[y[i] as usize]
            })
            .sum::<f64>()
    };
    let l64 = loss(&x_nhwc);
    let lg: f64 = out.loss.iter().map(|&v| v as f64).sum();
    assert!((l64 - lg).abs() < 1e-5 * l64.abs().max(1.0), "loss {lg} vs float64 {l64}");
    let h = 1e-5;
    let mut fd_nhwc = ArrayD::<f64>::zeros(x_nhwc.raw_dim());
    for i in 0..x_nhwc.len() {
        let (mut p, mut q) = (x_nhwc.clone(), x_nhwc.clone());
        p.as_slice_mut().unwrap()[i] += h;
        q.as_slice_mut().unwrap()[i] -= h;
        fd_nhwc.as_slice_mut().unwrap()[i] = (loss(&p) - loss(&q)) / (2.0 * h);
    }
    // Back to NCHW to compare with `grad`.
    let fd: Vec<f64> = fd_nhwc.view().permuted_axes(IxDyn(&[0, 3, 1, 2])).iter().copied().collect();
    let ours: Vec<f64> = out.grad.iter().map(|&v| v as f64).collect();
    let e = rel_err(&ours, &fd);
    assert!(e < 1e-4, "relative error {e:.2e}");
}

#[test]
fn cli_inspect_states_the_layout_and_export_grad_writes_nchw_x() {
    let dir = tempfile::tempdir().unwrap();
    let (m, _) = keras_like();
    let path = write(dir.path(), &m);
    let out = onnx_common::inspect(&path, &["--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["image_input"]["layout"], "NHWC");
    assert_eq!(v["image_input"]["shape"], serde_json::json!(["unk__6", 6, 5, 3]));
    assert_eq!(v["image_input"]["channels"], 3);
    let g = dir.path().join("keras.grad.onnx");
    let st = Command::new(env!("CARGO_BIN_EXE_aegis-audit"))
        .args(["export-grad"])
        .arg(&path)
        .arg("-o")
        .arg(&g)
        .args(["--threads", "1"])
        .status()
        .unwrap();
    assert!(st.success());
    let gm = aegis_audit::onnx::decode(&std::fs::read(&g).unwrap()).unwrap();
    let x = &gm.graph.as_ref().unwrap().input[0];
    let dims = aegis_audit::onnx::shape::declared_shape(x).unwrap();
    assert_eq!(aegis_audit::onnx::shape::shape_string(&dims), "[N, 3, 6, 5]");
}

#[test]
fn channels_last_input_without_a_transpose_to_nchw_is_refused() {
    // [N, 6, 5, 3] flattened straight into a dense layer: no convolution reads it as NCHW.
    let mut b = GraphBuilder::new();
    b.input("x", DataType::Float, &[Dim::Param("N".into()), Dim::Fixed(6), Dim::Fixed(5), Dim::Fixed(3)]);
    let f = b.op("Flatten", &["x"], vec![attr_int("axis", 1)]);
    let w = b.const_f32("w", &[90, 4], &[0.01; 360]);
    let l = b.op("MatMul", &[&f, &w], vec![]);
    b.output(&l, DataType::Float, None);
    let m = b.into_model("flat", 17, 8);
    let dir = tempfile::tempdir().unwrap();
    let out = onnx_common::inspect(&write(dir.path(), &m), &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("NHWC") && err.lines().count() == 1, "{err}");
}
