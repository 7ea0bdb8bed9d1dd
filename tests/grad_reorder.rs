//! `grad::pool_before_relu`: a Relu read only by a MaxPool is moved after it before differentiating.
//! The claim is bit-identity, so the gradient graph built with the reordering (what the audit
//! uses) is compared with the one built without it, output by output, to the bit, on inputs made
//! of exact ties: flat regions, all-negative windows, equal positive maxima. The cases the pass
//! must leave alone are checked to be left alone.

mod common;

use aegis_audit::grad::{self, GradSpec};
use aegis_audit::onnx::builder::{attr_int, attr_ints, Dim, GraphBuilder};
use aegis_audit::onnx::proto::attribute_proto::AttributeType;
use aegis_audit::onnx::proto::tensor_proto::DataType;
use aegis_audit::onnx::proto::{AttributeProto, GraphProto, ModelProto, NodeProto, ValueInfoProto};
use common::{eval_grad, grad_model};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const N: usize = 6;
const SIDE: i64 = 12;

/// conv(1→4, 3×3, pad 1) → Relu → MaxPool(`pool`) → [conv(4→4) → Relu → MaxPool(2)] → Flatten →
/// Gemm(3), the second block only with `two_blocks`. Returns the model and its spec; the features
/// are the first Relu's output when `relu_features`, else the Flatten.
fn model(pool: Vec<AttributeProto>, two_blocks: bool, relu_features: bool, seed: u64) -> (ModelProto, GradSpec) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut b = GraphBuilder::new();
    b.input("img", DataType::Float, &[Dim::Param("N".into()), Dim::Fixed(1), Dim::Fixed(SIDE), Dim::Fixed(SIDE)]);
    let mut rand = |b: &mut GraphBuilder, hint: &str, dims: &[i64]| {
        let n: i64 = dims.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.gen_range(-0.6f32..0.6)).collect();
        b.const_f32(hint, dims, &v)
    };
    let (w, bias) = (rand(&mut b, "w1", &[4, 1, 3, 3]), rand(&mut b, "b1", &[4]));
    let c = b.op("Conv", &["img", &w, &bias], vec![attr_ints("pads", &[1, 1, 1, 1])]);
    let r = b.op("Relu", &[&c], vec![]);
    let mut h = b.op("MaxPool", &[&r], pool);
    if two_blocks {
        let (w, bias) = (rand(&mut b, "w2", &[4, 4, 3, 3]), rand(&mut b, "b2", &[4]));
        let c = b.op("Conv", &[&h, &w, &bias], vec![attr_ints("pads", &[1, 1, 1, 1])]);
        let r = b.op("Relu", &[&c], vec![]);
        h = b.op("MaxPool", &[&r], vec![attr_ints("kernel_shape", &[2, 2]), attr_ints("strides", &[2, 2])]);
    }
    let flat = b.op("Flatten", &[&h], vec![attr_int("axis", 1)]);
    let mut probe = b.clone();
    probe.output(&flat, DataType::Float, None);
    let shapes = grad::static_shapes(&probe.into_model("probe", 17, 8), &spec_of("img", &flat, &flat)).unwrap().0;
    let width = shapes.get(&flat).unwrap().dims[1];
    let (w, bias) = (rand(&mut b, "wf", &[3, width]), rand(&mut b, "bf", &[3]));
    let logits = b.op("Gemm", &[&flat, &w, &bias], vec![attr_int("transB", 1)]);
    b.output(&logits, DataType::Float, None);
    let features = if relu_features { r.clone() } else { flat };
    (b.into_model("case", 17, 8), spec_of("img", &logits, &features))
}

fn spec_of(input: &str, logits: &str, features: &str) -> GradSpec {
    GradSpec { input: input.into(), logits: logits.into(), features: features.into() }
}

fn pool(k: i64, s: i64, pads: i64, extra: Vec<AttributeProto>) -> Vec<AttributeProto> {
    let mut a = vec![attr_ints("kernel_shape", &[k, k]), attr_ints("strides", &[s, s]), attr_ints("pads", &[pads; 4])];
    a.extend(extra);
    a
}

/// Images full of exact ties: zero and one plateaus (every pre-activation in a window equal), a
/// negative plateau after a negative-weight conv is all-negative windows, and random pixels.
fn images(seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let side = SIDE as usize;
    let mut x = vec![0f32; N * side * side];
    for (i, v) in x.iter_mut().enumerate() {
        let (img, r, c) = (i / (side * side), (i / side) % side, i % side);
        *v = match (img, r, c) {
            (0, _, _) => 0.0,
            (1, _, _) => 1.0,
            (2, r, _) if r < 6 => 1.0,
            (3, r, c) if (3..9).contains(&r) && (2..10).contains(&c) => 0.7,
            (4, _, c) if c % 2 == 0 => 0.5,
            _ => rng.gen_range(0.0f32..1.0),
        };
    }
    x
}

/// The gradient graph as the pipeline builds it without the reordering.
fn unreordered(model: &ModelProto, spec: &GradSpec) -> ModelProto {
    let (shapes, missing) = grad::static_shapes(model, spec).unwrap();
    assert!(missing.is_empty(), "static shapes incomplete: {missing:?}");
    grad::build(model, spec, &shapes).unwrap()
}

fn same_outputs(name: &str, a: &ModelProto, b: &ModelProto) {
    let shape = [N as i64, 1, SIDE, SIDE];
    for seed in 0..3 {
        let x = images(seed);
        let y: Vec<i64> = (0..N as i64).map(|i| (i + seed as i64) % 3).collect();
        let (oa, ob) = (eval_grad(a, &shape, &x, &y).unwrap(), eval_grad(b, &shape, &x, &y).unwrap());
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&oa.logits), bits(&ob.logits), "{name}: logits");
        assert_eq!(bits(&oa.loss), bits(&ob.loss), "{name}: loss");
        assert_eq!(bits(&oa.features), bits(&ob.features), "{name}: features");
        assert_eq!(bits(&oa.grad), bits(&ob.grad), "{name}: grad");
        assert!(oa.grad.iter().any(|&g| g != 0.0), "{name}: a gradient that is all zeros proves nothing");
    }
}

#[test]
fn reordered_graphs_give_the_same_bits() {
    let cases = [
        ("2x2 stride 2", pool(2, 2, 0, vec![]), true),
        ("3x3 stride 2 pad 1 (overlapping)", pool(3, 2, 1, vec![]), false),
        ("3x3 stride 1 pad 1 (overlapping)", pool(3, 1, 1, vec![]), true),
        ("2x2 stride 3 (gaps)", pool(2, 3, 0, vec![]), false),
        (
            "SAME_UPPER 3x3 stride 2",
            vec![
                attr_ints("kernel_shape", &[3, 3]),
                attr_ints("strides", &[2, 2]),
                aegis_audit::onnx::builder::attr_string("auto_pad", "SAME_UPPER"),
            ],
            true,
        ),
    ];
    for (i, (name, attrs, two)) in cases.into_iter().enumerate() {
        let (m, spec) = model(attrs, two, false, 10 + i as u64);
        let reordered = grad::pool_before_relu(&m, &spec).unwrap().unwrap_or_else(|| panic!("{name}: not reordered"));
        let pools = reordered.graph.as_ref().unwrap().node.iter().filter(|n| n.op_type.as_deref() == Some("MaxPool"));
        let first = pools.clone().next().unwrap();
        assert!(
            first.input[0].starts_with("conv"),
            "{name}: the first MaxPool reads '{}', not the Conv",
            first.input[0]
        );
        assert_eq!(pools.count(), if two { 2 } else { 1 }, "{name}");
        let with = grad_model(&m, &spec).unwrap();
        same_outputs(name, &with, &unreordered(&m, &spec));
    }
}

#[test]
fn pairs_that_do_not_qualify_are_left_alone() {
    let leave = [
        ("ceil_mode", pool(2, 2, 0, vec![attr_int("ceil_mode", 1)]), false),
        ("dilated", pool(2, 2, 0, vec![attr_ints("dilations", &[2, 2])]), false),
        ("the Relu is the feature tensor", pool(2, 2, 0, vec![]), true),
    ];
    for (name, attrs, relu_features) in leave {
        let (m, spec) = model(attrs, false, relu_features, 3);
        assert!(grad::pool_before_relu(&m, &spec).unwrap().is_none(), "{name}: was reordered");
    }
    // A Relu with a second reader (here a graph output) stays.
    let (mut m, spec) = model(pool(2, 2, 0, vec![]), false, false, 4);
    let g = m.graph.as_mut().unwrap();
    let relu = g.node.iter().find(|n| n.op_type.as_deref() == Some("Relu")).unwrap().output[0].clone();
    let extra = g.output[0].clone();
    g.output.push(ValueInfoProto { name: Some(relu), ..extra });
    assert!(grad::pool_before_relu(&m, &spec).unwrap().is_none(), "a Relu that is a graph output was reordered");
    // A Relu that an If branch reads from the enclosing graph stays (a reader the node inputs
    // alone do not show); the same model without that read is reordered.
    let (mut m, spec) = model(pool(2, 2, 0, vec![]), false, false, 6);
    assert!(grad::pool_before_relu(&m, &spec).unwrap().is_some(), "the plain model was not reordered");
    let g = m.graph.as_mut().unwrap();
    let relu = g.node.iter().find(|n| n.op_type.as_deref() == Some("Relu")).unwrap().output[0].clone();
    let branch = GraphProto {
        node: vec![NodeProto {
            input: vec![relu],
            output: vec!["branch_out".into()],
            op_type: Some("Identity".into()),
            ..Default::default()
        }],
        output: vec![ValueInfoProto { name: Some("branch_out".into()), ..Default::default() }],
        ..Default::default()
    };
    let graph_attr = |name: &str| AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Graph as i32),
        g: Some(branch.clone()),
        ..Default::default()
    };
    g.node.push(NodeProto {
        input: vec!["img".into()],
        output: vec!["if_out".into()],
        op_type: Some("If".into()),
        attribute: vec![graph_attr("then_branch"), graph_attr("else_branch")],
        ..Default::default()
    });
    assert!(grad::pool_before_relu(&m, &spec).unwrap().is_none(), "a Relu read inside an If branch was reordered");
    // A MaxPool whose Indices the model uses stays.
    let (mut m, spec) = model(pool(2, 2, 0, vec![]), false, false, 5);
    let g = m.graph.as_mut().unwrap();
    let mp = g.node.iter_mut().find(|n| n.op_type.as_deref() == Some("MaxPool")).unwrap();
    mp.output.push("used_indices".into());
    assert!(grad::pool_before_relu(&m, &spec).unwrap().is_none(), "a MaxPool with Indices was reordered");
}
