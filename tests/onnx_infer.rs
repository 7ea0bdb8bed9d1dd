//! Static shape inference against ONNX Runtime: on every committed model (the zoo, the validation
//! models, the PyTorch exports of `fixtures/grad/`) and on small models exercising the shape
//! functions (strides, dilations, SAME padding, ceil mode, ConvTranspose, Reshape from computed
//! shapes, Slice, Squeeze/Unsqueeze, Split, Pad, Transpose, reductions), every tensor whose shape
//! static inference determines has the shape ONNX Runtime computes at batch sizes 1 and 2; and on
//! the committed models every shape the gradient builder needs is known statically (the probe never
//! runs for them).

mod onnx_common;

use std::path::Path;

use aegis_audit::grad::{self, GradSpec};
use aegis_audit::onnx::builder::{attr_float, attr_int, attr_ints, attr_string, Dim, GraphBuilder};
use aegis_audit::onnx::proto::tensor_proto::DataType;
use aegis_audit::onnx::proto::ModelProto;
use aegis_audit::onnx::validate::standard_opset;
use aegis_audit::onnx::{static_shapes, StaticShapes};
use aegis_audit::runtime::{self, SessionConfig};
use prost::Message;

fn config() -> SessionConfig {
    SessionConfig { intra_threads: 1, ..SessionConfig::default() }
}

/// Static shapes of every node output of `m`, checked against ONNX Runtime's; returns how many
/// tensors were compared.
fn compare_with_onnx_runtime(m: &ModelProto, input: &str) -> usize {
    runtime::init(None).unwrap_or_else(|e| panic!("{e}"));
    let g = m.graph.as_ref().unwrap();
    let opset = standard_opset(m).unwrap();
    let st: StaticShapes = static_shapes(g, opset, input, None).unwrap_or_else(|e| panic!("{e}"));
    let known: Vec<String> =
        g.node.iter().flat_map(|n| n.output.iter()).filter(|o| !o.is_empty() && st.get(o).is_some()).cloned().collect();
    assert!(!known.is_empty());
    let (at1, at2) = runtime::probe_shapes(m, input, &known, &config()).unwrap_or_else(|e| panic!("{e}"));
    for t in &known {
        let (s1, s2) = st.get(t).unwrap();
        assert_eq!(Some(&s1.to_vec()), at1.get(t), "tensor '{t}' at batch 1");
        assert_eq!(Some(&s2.to_vec()), at2.get(t), "tensor '{t}' at batch 2");
    }
    known.len()
}

fn committed_models() -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut out = Vec::new();
    for dir in ["zoo", "validation", "grad"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "onnx") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn committed_models_match_onnx_runtime_and_need_no_probe() {
    let models = committed_models();
    assert!(models.len() >= 14, "{models:?}");
    for path in models {
        let m = ModelProto::decode(std::fs::read(&path).unwrap().as_slice()).unwrap();
        let g = m.graph.as_ref().unwrap();
        let input = g.input[0].name.clone().unwrap();
        let n = compare_with_onnx_runtime(&m, &input);
        assert!(n >= g.node.len() / 2, "{}: only {n} shapes known", path.display());
        let logits = g.output[0].name.clone().unwrap();
        let spec = GradSpec { input, features: logits.clone(), logits };
        let (_, missing) = grad::static_shapes(&m, &spec).unwrap();
        assert!(missing.is_empty(), "{}: unknown statically: {missing:?}", path.display());
    }
}

/// A model on `x` [N, 3, 11, 13] built by `body`, which returns its final tensor.
fn model(body: impl FnOnce(&mut GraphBuilder) -> String) -> ModelProto {
    let mut b = GraphBuilder::new();
    b.input("x", DataType::Float, &[Dim::Param("N".into()), Dim::Fixed(3), Dim::Fixed(11), Dim::Fixed(13)]);
    let out = body(&mut b);
    b.output(&out, DataType::Float, None);
    b.into_model("shapes", 17, 8)
}

#[test]
fn sliding_windows_match_onnx_runtime() {
    let m = model(|b| {
        let w = b.const_f32("w", &[6, 1, 3, 2], &[0.1; 36]);
        let c = b.op(
            "Conv",
            &["x", &w],
            vec![
                attr_ints("strides", &[2, 3]),
                attr_ints("dilations", &[2, 1]),
                attr_ints("pads", &[1, 0, 2, 1]),
                attr_int("group", 3),
            ],
        );
        let w2 = b.const_f32("w2", &[4, 6, 3, 3], &[0.1; 216]);
        let s = b.op("Conv", &[&c, &w2], vec![attr_string("auto_pad", "SAME_UPPER"), attr_ints("strides", &[2, 2])]);
        let p = b.op("MaxPool", &[&s], vec![attr_ints("kernel_shape", &[2, 2]), attr_int("ceil_mode", 1)]);
        let a = b.op(
            "AveragePool",
            &[&c],
            vec![attr_ints("kernel_shape", &[3, 2]), attr_ints("strides", &[1, 2]), attr_ints("pads", &[1, 1, 1, 1])],
        );
        let wt = b.const_f32("wt", &[6, 2, 3, 3], &[0.1; 108]);
        let t = b.op(
            "ConvTranspose",
            &[&a, &wt],
            vec![attr_ints("strides", &[2, 2]), attr_ints("output_padding", &[1, 0])],
        );
        let w3 = b.const_f32("w3", &[2, 4, 2, 2], &[0.1; 32]);
        let v = b.op("Conv", &[&s, &w3], vec![attr_string("auto_pad", "VALID")]);
        // Ceil mode where the last window would start in the padding (ONNX Runtime drops it).
        let q = b.op(
            "AveragePool",
            &[&c],
            vec![
                attr_ints("kernel_shape", &[2, 2]),
                attr_ints("strides", &[3, 3]),
                attr_ints("pads", &[1, 1, 1, 1]),
                attr_int("ceil_mode", 1),
            ],
        );
        let _ = (p, v, q);
        b.op("GlobalAveragePool", &[&t], vec![])
    });
    assert!(compare_with_onnx_runtime(&m, "x") >= 8);
}

#[test]
fn shape_ops_match_onnx_runtime() {
    let m = model(|b| {
        // x.view(x.size(0), -1) the PyTorch way, then back to 4-d with Unsqueeze.
        let sh = b.op("Shape", &["x"], vec![]);
        let zero = b.const_i64("zero", &[1], &[0]);
        let n = b.op("Gather", &[&sh, &zero], vec![attr_int("axis", 0)]);
        let minus = b.const_i64("m1", &[1], &[-1]);
        let ns = b.op("Concat", &[&n, &minus], vec![attr_int("axis", 0)]);
        let flat = b.op("Reshape", &["x", &ns], vec![]);
        let axes = b.const_i64("axes", &[2], &[2, 3]);
        let u = b.op("Unsqueeze", &[&flat, &axes], vec![]);
        let sq = b.op("Squeeze", &[&u, &axes], vec![]);
        let starts = b.const_i64("st", &[1], &[5]);
        let ends = b.const_i64("en", &[1], &[-7]);
        let ax = b.const_i64("ax", &[1], &[1]);
        let steps = b.const_i64("sp", &[1], &[3]);
        let sl = b.op("Slice", &[&sq, &starts, &ends, &ax, &steps], vec![]);
        let tr = b.op("Transpose", &["x"], vec![attr_ints("perm", &[0, 2, 3, 1])]);
        let pads = b.const_i64("pads", &[8], &[0, 1, 0, 2, 0, 0, 3, 1]);
        let pd = b.op("Pad", &[&tr, &pads], vec![attr_string("mode", "constant")]);
        let split = b.const_i64("split", &[2], &[4, 12]);
        let parts = b.node_n("Split", &[&pd, &split], 2, vec![attr_int("axis", 2)]);
        let rs = b.op("ReduceMean", &[&parts[1]], vec![attr_ints("axes", &[1, 3]), attr_int("keepdims", 0)]);
        let rsum_axes = b.const_i64("rsa", &[1], &[-1]);
        let rsum = b.op("ReduceSum", &[&parts[0], &rsum_axes], vec![]);
        let fl = b.op("Flatten", &[&rsum], vec![attr_int("axis", 2)]);
        let am = b.op("ArgMax", &[&fl], vec![attr_int("axis", 1), attr_int("keepdims", 0)]);
        let _ = (sl, rs, am);
        let gemm_w = b.const_f32("gw", &[429, 5], &[0.01; 2145]);
        let mm = b.op("MatMul", &[&flat, &gemm_w], vec![]);
        let lk = b.op("LeakyRelu", &[&mm], vec![attr_float("alpha", 0.1)]);
        b.op("Softmax", &[&lk], vec![attr_int("axis", -1)])
    });
    assert!(compare_with_onnx_runtime(&m, "x") >= 18);
}
