//! Gradient correctness, op by op: small random models built with the graph builder place one
//! supported op (or a few) between the image input and a Flatten→Gemm head; the gradient graph's
//! dL/dx (float32, ONNX Runtime, batch 3 although shapes were probed at batches 1 and 2) is compared
//! with central finite differences of the original model evaluated in float64 by an independent
//! evaluator (`tests/common/ref64.rs`), h = 1e-5.
//!
//! Bound: relative error ‖g − g_fd‖ / ‖g_fd‖ < 1e-3 for every case; the loss must also agree with
//! the float64 reference to 1e-4 (relative).

mod common;

use aegis_audit::grad::GradSpec;
use aegis_audit::onnx::builder::{
    attr_float, attr_int, attr_ints, attr_string, attr_tensor, tensor_f32, Dim, GraphBuilder,
};
use aegis_audit::onnx::proto::tensor_proto::DataType;
use aegis_audit::onnx::proto::ModelProto;
use common::{eval_grad, grad_model, ref64, rel_err};
use ndarray::{ArrayD, IxDyn};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const BOUND: f64 = 1e-3;
const CLASSES: usize = 4;

/// A model-building context: the builder plus a seeded generator for weights.
struct Case {
    b: GraphBuilder,
    rng: ChaCha8Rng,
}

impl Case {
    fn rand(&mut self, hint: &str, dims: &[i64], lo: f32, hi: f32) -> String {
        let n: i64 = dims.iter().product();
        let v: Vec<f32> = (0..n).map(|_| self.rng.gen_range(lo..hi)).collect();
        self.b.const_f32(hint, dims, &v)
    }
    fn op(&mut self, op: &str, ins: &[&str], attrs: Vec<aegis_audit::onnx::proto::AttributeProto>) -> String {
        self.b.op(op, ins, attrs)
    }
}

fn ce_sum(logits: &ArrayD<f64>, y: &[i64]) -> f64 {
    let k = logits.shape()[1];
    let mut total = 0.0;
    for (i, &yi) in y.iter().enumerate() {
        let row: Vec<f64> = (0..k).map(|j| logits[IxDyn(&[i, j])]).collect();
        let m = row.iter().cloned().fold(f64::MIN, f64::max);
        let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        total += lse - row[yi as usize];
    }
    total
}

fn to_model(b: GraphBuilder, opset: i64) -> ModelProto {
    b.into_model("case", opset, 8)
}

/// [`check_at`] with opset 17.
fn check(name: &str, shape: [usize; 4], seed: u64, body: impl FnOnce(&mut Case, &str) -> String) -> f64 {
    check_at(name, shape, seed, 17, body)
}

/// Builds `body` on input `img` [N, C, H, W] in a model importing `opset`, adds the head, and
/// checks dL/dx against finite differences. Returns the relative error.
fn check_at(name: &str, shape: [usize; 4], seed: u64, opset: i64, body: impl FnOnce(&mut Case, &str) -> String) -> f64 {
    check_graph(name, shape, seed, opset, body).0
}

/// [`check_at`], also returning the gradient graph that was checked.
fn check_graph(
    name: &str,
    shape: [usize; 4],
    seed: u64,
    opset: i64,
    body: impl FnOnce(&mut Case, &str) -> String,
) -> (f64, ModelProto) {
    let mut c = Case { b: GraphBuilder::new(), rng: ChaCha8Rng::seed_from_u64(seed) };
    let dims: Vec<Dim> =
        std::iter::once(Dim::Param("N".into())).chain(shape[1..].iter().map(|&d| Dim::Fixed(d as i64))).collect();
    c.b.input("img", DataType::Float, &dims);
    let feat = body(&mut c, "img");
    let n: usize = shape.iter().product();
    let xs: Vec<f32> = (0..n).map(|_| c.rng.gen_range(-1.0f32..1.0)).collect();
    let x64 = ArrayD::from_shape_vec(IxDyn(&shape), xs.iter().map(|&v| v as f64).collect()).unwrap();
    // Feature size, from the float64 evaluator.
    let mut probe = c.b.clone();
    probe.output(&feat, DataType::Float, None);
    let f = ref64::eval(&to_model(probe, opset), &x64, &feat);
    let width = (f.len() / shape[0]) as i64;
    let flat = c.op("Flatten", &[&feat], vec![attr_int("axis", 1)]);
    let w = c.rand("w", &[CLASSES as i64, width], -0.5, 0.5);
    let bias = c.rand("bias", &[CLASSES as i64], -0.1, 0.1);
    let logits = c.op("Gemm", &[&flat, &w, &bias], vec![attr_int("transB", 1)]);
    c.b.output(&logits, DataType::Float, None);
    let y: Vec<i64> = (0..shape[0]).map(|_| c.rng.gen_range(0..CLASSES as i64)).collect();
    let model = to_model(c.b, opset);

    let spec = GradSpec { input: "img".into(), logits: logits.clone(), features: feat };
    let g = grad_model(&model, &spec).unwrap_or_else(|e| panic!("{name}: {e}"));
    let out = eval_grad(&g, &shape.map(|d| d as i64), &xs, &y).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(out.grad_shape, shape.map(|d| d as i64).to_vec(), "{name}: grad shape");

    let loss_ref = |x: &ArrayD<f64>| ce_sum(&ref64::eval(&model, x, &logits), &y);
    let l0 = loss_ref(&x64);
    let l_graph: f64 = out.loss.iter().map(|&v| v as f64).sum();
    assert!((l_graph - l0).abs() / l0.abs().max(1e-6) < 1e-4, "{name}: loss {l_graph} vs reference {l0}");
    let h = 1e-5;
    let mut fd = Vec::with_capacity(n);
    for i in 0..n {
        let mut xp = x64.clone();
        let mut xm = x64.clone();
        xp.as_slice_mut().unwrap()[i] += h;
        xm.as_slice_mut().unwrap()[i] -= h;
        fd.push((loss_ref(&xp) - loss_ref(&xm)) / (2.0 * h));
    }
    let g64: Vec<f64> = out.grad.iter().map(|&v| v as f64).collect();
    let err = rel_err(&g64, &fd);
    eprintln!("{name}: relative error {err:.3e}");
    assert!(err < BOUND, "{name}: relative error {err:.3e} ≥ {BOUND:e}");
    (err, g)
}

fn count_ops(g: &ModelProto, op: &str) -> usize {
    g.graph.as_ref().unwrap().node.iter().filter(|n| n.op_type.as_deref() == Some(op)).count()
}

fn conv(
    c: &mut Case,
    x: &str,
    cin: i64,
    cout: i64,
    k: i64,
    attrs: Vec<aegis_audit::onnx::proto::AttributeProto>,
    group: i64,
) -> String {
    let w = c.rand("cw", &[cout, cin / group, k, k], -0.4, 0.4);
    let bb = c.rand("cb", &[cout], -0.1, 0.1);
    let mut attrs = attrs;
    attrs.push(attr_int("group", group));
    c.op("Conv", &[x, &w, &bb], attrs)
}

const S: [usize; 4] = [3, 3, 7, 7];

#[test]
fn conv_strides_asymmetric_pads() {
    check("conv_strides_pads", S, 1, |c, x| {
        conv(c, x, 3, 4, 3, vec![attr_ints("strides", &[2, 2]), attr_ints("pads", &[1, 0, 2, 1])], 1)
    });
}

#[test]
fn conv_dilations_groups() {
    check("conv_dilations_groups", S, 2, |c, x| {
        conv(c, x, 3, 6, 3, vec![attr_ints("dilations", &[2, 1]), attr_ints("pads", &[1, 1, 1, 1])], 3)
    });
}

#[test]
fn conv_stride_3_uneven() {
    check("conv_stride3", S, 3, |c, x| conv(c, x, 3, 2, 2, vec![attr_ints("strides", &[3, 2])], 1));
}

#[test]
fn batch_normalization() {
    check("batchnorm", S, 4, |c, x| {
        let s = c.rand("s", &[3], 0.5, 1.5);
        let b = c.rand("b", &[3], -0.3, 0.3);
        let m = c.rand("m", &[3], -0.3, 0.3);
        let v = c.rand("v", &[3], 0.3, 1.5);
        let h = c.op("BatchNormalization", &[x, &s, &b, &m, &v], vec![attr_float("epsilon", 1e-3)]);
        conv(c, &h, 3, 2, 3, vec![], 1)
    });
}

fn activation_case(
    name: &str,
    seed: u64,
    op: &'static str,
    attrs: fn() -> Vec<aegis_audit::onnx::proto::AttributeProto>,
) {
    check(name, S, seed, |c, x| {
        let h = conv(c, x, 3, 3, 3, vec![attr_ints("pads", &[1, 1, 1, 1])], 1);
        c.op(op, &[&h], attrs())
    });
}

#[test]
fn relu() {
    activation_case("relu", 5, "Relu", Vec::new);
}

/// Relu's backward masks with its own output (`Relu(X) > 0` is `X > 0` exactly), so the Conv
/// before it keeps the Relu as its only reader and ONNX Runtime can fuse the two.
#[test]
fn relu_backward_reads_the_relu_output_so_conv_and_relu_can_fuse() {
    let (_, g) = check_graph("conv_relu_twice", S, 50, 17, |c, x| {
        let h = conv(c, x, 3, 4, 3, vec![attr_ints("pads", &[1, 1, 1, 1])], 1);
        let h = c.op("Relu", &[&h], vec![]);
        let h = conv(c, &h, 4, 3, 3, vec![], 1);
        c.op("Relu", &[&h], vec![])
    });
    let nodes = &g.graph.as_ref().unwrap().node;
    let relus: Vec<_> = nodes.iter().filter(|n| n.op_type.as_deref() == Some("Relu")).collect();
    assert_eq!(relus.len(), 2);
    for r in relus {
        let readers = nodes.iter().filter(|n| n.input.iter().any(|i| i == &r.input[0])).count();
        assert_eq!(readers, 1, "the Relu's input {} has {readers} readers", r.input[0]);
    }
}

/// An infinite dY under a closed mask gives no gradient, as PyTorch's threshold_backward and
/// clamp_backward do: `Sqrt(Relu(x))` and `Sqrt(Clip(x, 0, 6))` at cells whose mask is closed
/// (Sqrt's derivative at 0 is +inf). A product with the mask (`dY·0`) would make those cells NaN.
#[test]
fn an_infinite_gradient_under_a_closed_relu_or_clip_mask_gives_zero() {
    for op in ["Relu", "Clip"] {
        let mut b = GraphBuilder::new();
        b.input("img", DataType::Float, &[Dim::Param("N".into()), Dim::Fixed(1), Dim::Fixed(2), Dim::Fixed(2)]);
        let a = match op {
            "Relu" => b.op("Relu", &["img"], vec![]),
            _ => {
                let lo = b.const_f32("lo", &[], &[0.0]);
                let hi = b.const_f32("hi", &[], &[6.0]);
                b.op("Clip", &["img", &lo, &hi], vec![])
            }
        };
        let r = b.op("Sqrt", &[&a], vec![]);
        let f = b.op("Flatten", &[&r], vec![attr_int("axis", 1)]);
        let w = b.const_f32("w", &[2, 4], &[0.5, -0.3, 0.8, 0.2, -0.6, 0.4, 0.1, 0.9]);
        let logits = b.op("Gemm", &[&f, &w], vec![attr_int("transB", 1)]);
        b.output(&logits, DataType::Float, None);
        let model = to_model(b, 17);
        let spec = GradSpec { input: "img".into(), logits: logits.clone(), features: r };
        let g = grad_model(&model, &spec).unwrap();
        // Relu's mask is closed at 0 itself; Clip's is inclusive at its bounds (torch.clamp), so
        // its closed cells are below 0.
        let x = if op == "Relu" { [-1.0f32, 0.0, 0.25, 4.0] } else { [-1.0f32, -0.5, 0.25, 4.0] };
        let out = eval_grad(&g, &[1, 1, 2, 2], &x, &[1]).unwrap();
        assert_eq!(&out.grad[..2], &[0.0, 0.0], "{op}: the closed cells get no gradient");
        assert!(out.grad[2..].iter().all(|v| v.is_finite() && *v != 0.0), "{op}: open cells {:?}", out.grad);
    }
}

#[test]
fn leaky_relu() {
    activation_case("leaky_relu", 6, "LeakyRelu", || vec![attr_float("alpha", 0.2)]);
}

#[test]
fn sigmoid() {
    activation_case("sigmoid", 7, "Sigmoid", Vec::new);
}

#[test]
fn tanh() {
    activation_case("tanh", 8, "Tanh", Vec::new);
}

#[test]
fn clip_with_both_bounds_and_min_only() {
    check("clip", S, 9, |c, x| {
        let lo = c.b.const_f32("lo", &[], &[-0.3]);
        let hi = c.b.const_f32("hi", &[], &[0.4]);
        let a = c.op("Clip", &[x, &lo, &hi], vec![]);
        let b = c.op("Clip", &[x, &lo], vec![]);
        c.op("Add", &[&a, &b], vec![])
    });
}

#[test]
fn in_graph_normalisation_sub_div_constants() {
    check("normalisation", S, 10, |c, x| {
        let mean = c.rand("mean", &[1, 3, 1, 1], 0.3, 0.6);
        let std = c.rand("std", &[1, 3, 1, 1], 0.2, 0.4);
        let h = c.op("Sub", &[x, &mean], vec![]);
        let h = c.op("Div", &[&h, &std], vec![]);
        conv(c, &h, 3, 2, 3, vec![], 1)
    });
}

#[test]
fn broadcast_binary_ops_against_constants_both_sides() {
    check("broadcast_consts", S, 11, |c, x| {
        let row = c.rand("row", &[7], 0.5, 1.5);
        let chan = c.rand("chan", &[3, 1, 1], 0.5, 1.5);
        let s = c.b.const_f32("s", &[], &[0.7]);
        let a = c.op("Mul", &[&row, x], vec![]);
        let a = c.op("Add", &[&chan, &a], vec![]);
        let a = c.op("Sub", &[&s, &a], vec![]);
        let d = c.op("Add", &[x, &chan], vec![]);
        let d = c.op("Div", &[&s, &d], vec![]); // constant / path tensor
        c.op("Mul", &[&a, &d], vec![])
    });
}

#[test]
fn residual_add_and_path_times_path() {
    check("residual", S, 12, |c, x| {
        let h = conv(c, x, 3, 3, 3, vec![attr_ints("pads", &[1, 1, 1, 1])], 1);
        let h = c.op("Relu", &[&h], vec![]);
        let r = c.op("Add", &[&h, x], vec![]);
        let m = c.op("Mul", &[&r, x], vec![]);
        let sq = c.op("Mul", &[&m, &m], vec![]);
        let sg = c.op("Sigmoid", &[&r], vec![]);
        let one = c.b.const_f32("one", &[], &[0.5]);
        let den = c.op("Add", &[&sg, &one], vec![]);
        let q = c.op("Div", &[&sq, &den], vec![]);
        c.op("Sub", &[&q, &r], vec![])
    });
}

#[test]
fn max_pool_overlapping_and_plain() {
    check("maxpool", S, 13, |c, x| {
        let a = c.op(
            "MaxPool",
            &[x],
            vec![attr_ints("kernel_shape", &[3, 3]), attr_ints("strides", &[2, 2]), attr_ints("pads", &[1, 1, 1, 1])],
        );
        let b = c.op("MaxPool", &[x], vec![attr_ints("kernel_shape", &[2, 2]), attr_ints("strides", &[2, 2])]);
        let bf = c.op("Flatten", &[&b], vec![]);
        let af = c.op("Flatten", &[&a], vec![]);
        c.op("Concat", &[&af, &bf], vec![attr_int("axis", 1)])
    });
}

/// Disjoint windows (stride ≥ kernel, here with pads) take MaxUnpool; a `ceil_mode` window running
/// past the input and dilated windows keep the scatter-add; all three match finite differences.
#[test]
fn max_pool_disjoint_windows_unpool_the_others_scatter() {
    let cases: [(&str, Vec<_>, usize); 3] = [
        (
            "maxpool_disjoint",
            vec![attr_ints("kernel_shape", &[2, 3]), attr_ints("strides", &[3, 3]), attr_ints("pads", &[1, 0, 0, 1])],
            1,
        ),
        (
            "maxpool_ceil_past_input",
            vec![attr_ints("kernel_shape", &[3, 3]), attr_ints("strides", &[3, 3]), attr_int("ceil_mode", 1)],
            0,
        ),
        (
            "maxpool_dilated",
            vec![attr_ints("kernel_shape", &[2, 2]), attr_ints("strides", &[2, 2]), attr_ints("dilations", &[2, 2])],
            0,
        ),
    ];
    for (i, (name, attrs, unpools)) in cases.into_iter().enumerate() {
        let (_, g) = check_graph(name, S, 40 + i as u64, 17, |c, x| c.op("MaxPool", &[x], attrs));
        assert_eq!(count_ops(&g, "MaxUnpool"), unpools, "{name}: MaxUnpool nodes");
    }
}

#[test]
fn average_pool_pads_ceil_and_count_include_pad() {
    check("avgpool", S, 14, |c, x| {
        let a = c.op(
            "AveragePool",
            &[x],
            vec![attr_ints("kernel_shape", &[3, 3]), attr_ints("strides", &[2, 2]), attr_ints("pads", &[1, 1, 1, 1])],
        );
        let b = c.op(
            "AveragePool",
            &[x],
            vec![
                attr_ints("kernel_shape", &[3, 2]),
                attr_ints("strides", &[2, 2]),
                attr_ints("pads", &[1, 0, 1, 1]),
                attr_int("count_include_pad", 1),
            ],
        );
        let d = c.op(
            "AveragePool",
            &[x],
            vec![attr_ints("kernel_shape", &[2, 2]), attr_ints("strides", &[2, 2]), attr_int("ceil_mode", 1)],
        );
        let [a, b, d] = [a, b, d].map(|t| c.op("Flatten", &[&t], vec![]));
        c.op("Concat", &[&a, &b, &d], vec![attr_int("axis", 1)])
    });
}

#[test]
fn global_average_pool() {
    check("gap", S, 15, |c, x| {
        let h = conv(c, x, 3, 5, 3, vec![], 1);
        let h = c.op("Tanh", &[&h], vec![]);
        c.op("GlobalAveragePool", &[&h], vec![])
    });
}

#[test]
fn reshape_transpose_matmul_gemm() {
    check("reshape_transpose_matmul", S, 16, |c, x| {
        let shape = c.b.const_i64("shape", &[3], &[0, 3, 49]);
        let r = c.op("Reshape", &[x, &shape], vec![]);
        let t = c.op("Transpose", &[&r], vec![attr_ints("perm", &[0, 2, 1])]);
        let flat = c.b.const_i64("flat", &[2], &[0, -1]);
        let f = c.op("Reshape", &[&t, &flat], vec![]);
        let w = c.rand("mw", &[147, 6], -0.3, 0.3);
        let m = c.op("MatMul", &[&f, &w], vec![]);
        let w2 = c.rand("gw", &[6, 5], -0.5, 0.5);
        let cc = c.rand("gc", &[5], -0.5, 0.5);
        let g = c.op("Gemm", &[&m, &w2, &cc], vec![attr_float("alpha", 0.7), attr_float("beta", 1.3)]);
        let w3 = c.rand("gw2", &[5, 4], -0.5, 0.5);
        // transA: (Gᵀ)ᵀ·W via a transposed input.
        let gt = c.op("Transpose", &[&g], vec![]);
        c.op("Gemm", &[&gt, &w3], vec![attr_int("transA", 1)])
    });
}

#[test]
fn concat_pad_identity_dropout_constant() {
    check("concat_pad_misc", S, 17, |c, x| {
        let pads = c.b.const_i64("pads", &[8], &[0, 0, 1, 2, 0, 0, 2, 0]);
        let v = c.b.const_f32("v", &[], &[0.5]);
        let p = c.op("Pad", &[x, &pads, &v], vec![attr_string("mode", "constant")]);
        let i = c.op("Identity", &[&p], vec![]);
        let d = c.op("Dropout", &[&i], vec![]);
        let k = c.b.fresh("k");
        c.b.op_named(
            "Constant",
            &[],
            &[&k],
            vec![attr_tensor("value", tensor_f32("kv", &[1, 3, 1, 1], &[0.5, -1.0, 2.0]))],
        );
        let m = c.op("Mul", &[&d, &k], vec![]);
        let h = conv(c, &m, 3, 2, 3, vec![], 1);
        let r = c.op("Relu", &[&m], vec![]);
        let hf = c.op("Flatten", &[&h], vec![]);
        let rf = c.op("Flatten", &[&r], vec![]);
        c.op("Concat", &[&hf, &rf], vec![attr_int("axis", -1)])
    });
}

#[test]
fn concat_on_channels() {
    check("concat_channels", S, 18, |c, x| {
        let h = conv(c, x, 3, 2, 3, vec![attr_ints("pads", &[1, 1, 1, 1])], 1);
        let r = c.op("Sigmoid", &[x], vec![]);
        c.op("Concat", &[&h, x, &r], vec![attr_int("axis", 1)])
    });
}

#[test]
fn softmax_and_log_softmax_inside() {
    check("softmax_inside", S, 19, |c, x| {
        let h = conv(c, x, 3, 4, 3, vec![], 1);
        let s = c.op("Softmax", &[&h], vec![attr_int("axis", 1)]);
        let l = c.op("LogSoftmax", &[&h], vec![]);
        c.op("Add", &[&s, &l], vec![])
    });
}

#[test]
fn conv_auto_pad_same_upper_and_lower() {
    check("conv_auto_pad", S, 20, |c, x| {
        let a = conv(c, x, 3, 2, 4, vec![attr_string("auto_pad", "SAME_UPPER"), attr_ints("strides", &[2, 2])], 1);
        let b = conv(c, x, 3, 2, 2, vec![attr_string("auto_pad", "SAME_LOWER")], 1);
        let a = c.op("Flatten", &[&a], vec![]);
        let b = c.op("Flatten", &[&b], vec![]);
        c.op("Concat", &[&a, &b], vec![attr_int("axis", 1)])
    });
}

/// Flattens each tensor to [N, -1] and concatenates them.
fn cat(c: &mut Case, parts: &[String]) -> String {
    let flat: Vec<String> = parts.iter().map(|t| c.op("Flatten", &[t], vec![])).collect();
    let refs: Vec<&str> = flat.iter().map(String::as_str).collect();
    c.op("Concat", &refs, vec![attr_int("axis", 1)])
}

fn conv_same(c: &mut Case, x: &str, cin: i64, cout: i64) -> String {
    conv(c, x, cin, cout, 3, vec![attr_ints("pads", &[1, 1, 1, 1])], 1)
}

#[test]
fn reduce_mean_and_sum_with_axes_attribute_and_keepdims() {
    check("reduce_opset17", S, 21, |c, x| {
        let h = conv_same(c, x, 3, 4);
        let m = c.op("ReduceMean", &[&h], vec![attr_ints("axes", &[2, 3]), attr_int("keepdims", 1)]);
        let k = c.op("ReduceMean", &[&h], vec![attr_ints("axes", &[-1]), attr_int("keepdims", 0)]);
        let ax = c.b.const_i64("ax", &[1], &[1]);
        let s = c.op("ReduceSum", &[&h, &ax], vec![attr_int("keepdims", 0)]);
        let t = c.op("Tanh", &[&s], vec![]);
        cat(c, &[m, k, t])
    });
}

#[test]
fn reduce_mean_with_axes_input_noop_and_all_axes_opset18() {
    check_at("reduce_opset18", S, 22, 18, |c, x| {
        let h = conv_same(c, x, 3, 4);
        let hw = c.b.const_i64("hw", &[2], &[2, 3]);
        let m = c.op("ReduceMean", &[&h, &hw], vec![attr_int("keepdims", 1)]);
        let ch = c.b.const_i64("ch", &[1], &[1]);
        let k = c.op("ReduceMean", &[&h, &ch], vec![attr_int("keepdims", 0)]);
        let empty = c.b.const_i64("empty", &[0], &[]);
        let same = c.op("ReduceSum", &[&h, &empty], vec![attr_int("noop_with_empty_axes", 1)]);
        let all = c.op("ReduceSum", &[&h], vec![attr_int("keepdims", 1)]);
        let small = c.b.const_f32("small", &[], &[0.01]);
        let all = c.op("Mul", &[&all, &small], vec![]);
        let mixed = c.op("Mul", &[&h, &all], vec![]);
        cat(c, &[m, k, same, mixed])
    });
}

#[test]
fn slice_with_steps_negative_bounds_and_computed_ends() {
    check("slice", S, 23, |c, x| {
        let st = c.b.const_i64("st", &[3], &[1, 0, -1]);
        let en = c.b.const_i64("en", &[3], &[i64::MAX, i64::MAX, -8]);
        let ax = c.b.const_i64("ax", &[3], &[1, 2, 3]);
        let sp = c.b.const_i64("sp", &[3], &[1, 2, -3]);
        let a = c.op("Slice", &[x, &st, &en, &ax, &sp], vec![]);
        let st2 = c.b.const_i64("st2", &[2], &[1, 2]);
        let en2 = c.b.const_i64("en2", &[2], &[3, 6]);
        let ax2 = c.b.const_i64("ax2", &[2], &[-2, -1]);
        let b = c.op("Slice", &[x, &st2, &en2, &ax2], vec![]);
        // ends = Shape(x)[3] − 1, computed in the graph.
        let sh = c.op("Shape", &[x], vec![]);
        let three = c.b.const_i64("three", &[], &[3]);
        let w = c.op("Gather", &[&sh, &three], vec![attr_int("axis", 0)]);
        let one = c.b.const_i64("one", &[], &[1]);
        let e = c.op("Sub", &[&w, &one], vec![]);
        let zero = c.b.const_i64("zero", &[1], &[0]);
        let e = c.op("Unsqueeze", &[&e, &zero], vec![]);
        let st3 = c.b.const_i64("st3", &[1], &[2]);
        let ax3 = c.b.const_i64("ax3", &[1], &[3]);
        let d = c.op("Slice", &[x, &st3, &e, &ax3], vec![]);
        let h = conv_same(c, &d, 3, 2);
        cat(c, &[a, b, h])
    });
}

#[test]
fn gather_token_vector_matrix_and_computed_indices() {
    check("gather", S, 24, |c, x| {
        let h = conv_same(c, x, 3, 4);
        // A class token: [N, 49, 4] tokens, Gather(axis 1, scalar index 0).
        let shape = c.b.const_i64("tokens", &[3], &[0, 4, 49]);
        let r = c.op("Reshape", &[&h, &shape], vec![]);
        let t = c.op("Transpose", &[&r], vec![attr_ints("perm", &[0, 2, 1])]);
        let i0 = c.b.const_i64("i0", &[], &[0]);
        let tok = c.op("Gather", &[&t, &i0], vec![attr_int("axis", 1)]);
        // Repeated and negative indices.
        let iv = c.b.const_i64("iv", &[4], &[0, -1, 2, 2]);
        let g2 = c.op("Gather", &[&h, &iv], vec![attr_int("axis", 3)]);
        // A 2-D index tensor.
        let im = c.b.const_i64("im", &[2, 2], &[1, 0, 3, 3]);
        let g3 = c.op("Gather", &[&h, &im], vec![attr_int("axis", 1)]);
        // Indices computed from the shape: Range(0, H, 2).
        let sh = c.op("Shape", &[&h], vec![]);
        let two = c.b.const_i64("two", &[], &[2]);
        let hh = c.op("Gather", &[&sh, &two], vec![attr_int("axis", 0)]);
        let zero = c.b.const_i64("zero", &[], &[0]);
        let rg = c.op("Range", &[&zero, &hh, &two], vec![]);
        let g4 = c.op("Gather", &[&h, &rg], vec![attr_int("axis", -2)]);
        cat(c, &[tok, g2, g3, g4])
    });
}

#[test]
fn gather_elements_and_gather_nd() {
    check("gather_elements_nd", S, 25, |c, x| {
        let h = conv_same(c, x, 3, 4);
        // GatherElements along W with indices [1, 4, 7, 2] broadcast over the batch.
        let idx: Vec<i64> = (0..4 * 7 * 2).map(|i| [3, 0, 6, 6, 1, -1][i % 6]).collect();
        let ic = c.b.const_i64("ic", &[1, 4, 7, 2], &idx);
        let sh = c.op("Shape", &[&h], vec![]);
        let z = c.b.const_i64("z", &[1], &[0]);
        let o = c.b.const_i64("o", &[1], &[1]);
        let n = c.op("Slice", &[&sh, &z, &o], vec![]);
        let rest = c.b.const_i64("rest", &[3], &[4, 7, 2]);
        let target = c.op("Concat", &[&n, &rest], vec![attr_int("axis", 0)]);
        let ie = c.op("Expand", &[&ic, &target], vec![]);
        let ge = c.op("GatherElements", &[&h, &ie], vec![attr_int("axis", 3)]);
        // GatherND over the leading (non-batch) axes of [C, H, N, W].
        let t = c.op("Transpose", &[&h], vec![attr_ints("perm", &[1, 2, 0, 3])]);
        let nd = c.b.const_i64("nd", &[3, 2], &[1, 2, 3, 3, 1, 2]);
        let g = c.op("GatherND", &[&t, &nd], vec![]);
        let g = c.op("Transpose", &[&g], vec![attr_ints("perm", &[1, 0, 2])]);
        cat(c, &[ge, g])
    });
}

#[test]
fn split_squeeze_unsqueeze_expand() {
    check("split_squeeze_expand", S, 26, |c, x| {
        let sizes = c.b.const_i64("sizes", &[2], &[1, 2]);
        let parts = c.b.node_n("Split", &[x, &sizes], 2, vec![attr_int("axis", 1)]);
        // A three-way split whose middle output is unused.
        let s3 = c.b.const_i64("s3", &[3], &[2, 3, 2]);
        let p = c.b.node_n("Split", &[x, &s3], 3, vec![attr_int("axis", 2)]);
        let ax = c.b.const_i64("ax", &[1], &[1]);
        let sq = c.op("Squeeze", &[&parts[0], &ax], vec![]);
        let ax2 = c.b.const_i64("ax2", &[2], &[1, 4]);
        let un = c.op("Unsqueeze", &[&sq, &ax2], vec![]);
        let shape = c.b.const_i64("shape", &[4], &[1, 5, 7, 7]);
        let e = c.op("Expand", &[&parts[0], &shape], vec![]);
        let h = conv_same(c, &parts[1], 2, 2);
        cat(c, &[un, e, h, p[0].clone(), p[2].clone()])
    });
}

#[test]
fn split_with_num_outputs_opset18() {
    check_at("split_opset18", S, 27, 18, |c, x| {
        let p = c.b.node_n("Split", &[x], 3, vec![attr_int("axis", 1), attr_int("num_outputs", 3)]);
        let h = c.op("Mul", &[&p[0], &p[2]], vec![]);
        cat(c, &[h, p[1].clone()])
    });
}

#[test]
fn elementwise_math_erf_pow_sqrt_reciprocal_exp_log() {
    check("math", S, 28, |c, x| {
        let h = conv_same(c, x, 3, 4);
        let e = c.op("Erf", &[&h], vec![]);
        let sq = c.op("Mul", &[&h, &h], vec![]);
        let half = c.b.const_f32("half", &[], &[0.5]);
        let pos = c.op("Add", &[&sq, &half], vec![]);
        let s = c.op("Sqrt", &[&pos], vec![]);
        let r = c.op("Reciprocal", &[&pos], vec![]);
        let l = c.op("Log", &[&pos], vec![]);
        let nh = c.op("Neg", &[&h], vec![]);
        let ex = c.op("Exp", &[&nh], vec![]);
        let two = c.b.const_f32("two", &[], &[2.0]);
        let p2 = c.op("Pow", &[&h, &two], vec![]);
        let three = c.b.const_i64("three", &[], &[3]);
        let p3 = c.op("Pow", &[&pos, &three], vec![]);
        let ev = c.b.const_f32("ev", &[1, 4, 1, 1], &[0.5, 1.5, 2.5, -1.0]);
        let pv = c.op("Pow", &[&pos, &ev], vec![]);
        let base = c.b.const_f32("base", &[], &[1.5]);
        let pe = c.op("Pow", &[&base, &h], vec![]);
        cat(c, &[e, s, r, l, ex, p2, p3, pv, pe])
    });
}

#[test]
fn layer_normalization_last_axis_spatial_and_tokens() {
    check("layernorm", S, 29, |c, x| {
        let h = conv_same(c, x, 3, 4);
        let sc = c.rand("sc", &[7], 0.5, 1.5);
        let bi = c.rand("bi", &[7], -0.3, 0.3);
        let a = c.op("LayerNormalization", &[&h, &sc, &bi], vec![attr_int("axis", -1)]);
        let sc2 = c.rand("sc2", &[7, 7], 0.5, 1.5);
        let b = c.op("LayerNormalization", &[&h, &sc2], vec![attr_int("axis", 2), attr_float("epsilon", 1e-3)]);
        let shape = c.b.const_i64("tokens", &[3], &[0, 4, 49]);
        let r = c.op("Reshape", &[&h, &shape], vec![]);
        let t = c.op("Transpose", &[&r], vec![attr_ints("perm", &[0, 2, 1])]);
        let sc3 = c.rand("sc3", &[4], 0.5, 1.5);
        let bi3 = c.rand("bi3", &[4], -0.3, 0.3);
        let d = c.op("LayerNormalization", &[&t, &sc3, &bi3], vec![]);
        cat(c, &[a, b, d])
    });
}

#[test]
fn hard_sigmoid_and_hard_swish_across_their_kinks() {
    check("hard_activations", S, 30, |c, x| {
        let h = conv_same(c, x, 3, 4);
        let k = c.b.const_f32("k", &[], &[3.0]);
        let h = c.op("Mul", &[&h, &k], vec![]);
        let a = c.op("HardSigmoid", &[&h], vec![attr_float("alpha", 1.0 / 6.0), attr_float("beta", 0.5)]);
        let b = c.op("HardSigmoid", &[&h], vec![]);
        let s = c.op("HardSwish", &[&h], vec![]);
        cat(c, &[a, b, s])
    });
}

#[test]
fn gelu_exact_and_tanh_opset20() {
    check_at("gelu", S, 31, 20, |c, x| {
        let h = conv_same(c, x, 3, 4);
        let k = c.b.const_f32("k", &[], &[2.0]);
        let h = c.op("Mul", &[&h, &k], vec![]);
        let a = c.op("Gelu", &[&h], vec![]);
        let b = c.op("Gelu", &[&h], vec![attr_string("approximate", "tanh")]);
        cat(c, &[a, b])
    });
}

#[test]
fn attention_batched_matmul_and_softmax_on_any_axis() {
    check("attention", S, 32, |c, x| {
        let shape = c.b.const_i64("tokens", &[3], &[0, 3, 49]);
        let r = c.op("Reshape", &[x, &shape], vec![]);
        let t = c.op("Transpose", &[&r], vec![attr_ints("perm", &[0, 2, 1])]);
        let heads = c.b.const_i64("heads", &[4], &[0, 49, 2, 2]);
        let mut qkv = Vec::new();
        for name in ["wq", "wk", "wv"] {
            let w = c.rand(name, &[3, 4], -0.6, 0.6);
            let p = c.op("MatMul", &[&t, &w], vec![]);
            let p = c.op("Reshape", &[&p, &heads], vec![]);
            qkv.push(c.op("Transpose", &[&p], vec![attr_ints("perm", &[0, 2, 1, 3])]));
        }
        let kt = c.op("Transpose", &[&qkv[1]], vec![attr_ints("perm", &[0, 1, 3, 2])]);
        let s = c.op("MatMul", &[&qkv[0], &kt], vec![]);
        let scale = c.b.const_f32("scale", &[], &[0.7]);
        let s = c.op("Mul", &[&s, &scale], vec![]);
        let p = c.op("Softmax", &[&s], vec![attr_int("axis", -1)]);
        let o = c.op("MatMul", &[&p, &qkv[2]], vec![]);
        let q = c.op("Softmax", &[&s], vec![attr_int("axis", 2)]);
        let bias = c.rand("bias", &[2, 49, 49], -0.2, 0.2);
        let q = c.op("Add", &[&q, &bias], vec![]);
        let o2 = c.op("MatMul", &[&q, &qkv[2]], vec![]);
        cat(c, &[o, o2])
    });
}

#[test]
fn einsum_attention_reduction_and_ellipsis() {
    check("einsum", [2, 2, 3, 4], 33, |c, x| {
        // MaxViT's relative attention: "B G H I D, B G H J D -> B G H I J" on [N, 1, 2, 4, 3].
        let shape = c.b.const_i64("heads", &[5], &[0, 1, 2, 4, 3]);
        let q = c.op("Reshape", &[x, &shape], vec![]);
        let k = c.op("Tanh", &[&q], vec![]);
        let s = c.op("Einsum", &[&q, &k], vec![attr_string("equation", "B G H I D, B G H J D -> B G H I J")]);
        let o = c.op("Einsum", &[&s, &q], vec![attr_string("equation", "bghij,bghjd->bghid")]);
        // An index summed inside one operand, and an ellipsis against a constant.
        let r = c.op("Einsum", &[x], vec![attr_string("equation", "nchw->nh")]);
        let w = c.rand("w", &[4, 5], -0.5, 0.5);
        let e = c.op("Einsum", &[x, &w], vec![attr_string("equation", "...ij,jk->...ik")]);
        cat(c, &[o, r, e])
    });
}

#[test]
fn reduce_l2_normalisation_and_sum_square() {
    check("reduce_l2", S, 34, |c, x| {
        let h = conv_same(c, x, 3, 4);
        // F.normalize(h, dim=1): h / max(‖h‖₂, ε) as the TorchScript exporter writes it.
        let n = c.op("ReduceL2", &[&h], vec![attr_ints("axes", &[1]), attr_int("keepdims", 1)]);
        let eps = c.b.const_f32("eps", &[], &[1e-12]);
        let n = c.op("Clip", &[&n, &eps], vec![]);
        let u = c.op("Div", &[&h, &n], vec![]);
        let q = c.op("ReduceSumSquare", &[&h], vec![attr_ints("axes", &[2, 3]), attr_int("keepdims", 0)]);
        let l = c.op("ReduceL2", &[&h], vec![attr_ints("axes", &[-1]), attr_int("keepdims", 0)]);
        cat(c, &[u, q, l])
    });
}

#[test]
fn opset11_attribute_forms_of_squeeze_unsqueeze_reduce_sum_split() {
    check_at("opset11_attributes", S, 35, 11, |c, x| {
        let p = c.b.node_n("Split", &[x], 2, vec![attr_int("axis", 1), attr_ints("split", &[1, 2])]);
        let s = c.op("ReduceSum", &[&p[1]], vec![attr_ints("axes", &[1]), attr_int("keepdims", 0)]);
        let u = c.op("Unsqueeze", &[&s], vec![attr_ints("axes", &[1])]);
        let q = c.op("Squeeze", &[&p[0]], vec![attr_ints("axes", &[1])]);
        let q = c.op("Unsqueeze", &[&q], vec![attr_ints("axes", &[1])]);
        let m = c.op("Mul", &[&u, &q], vec![]);
        cat(c, &[m, p[1].clone()])
    });
}
