//! The gradient builder's refusals: an op without a backward rule is named with its node, old
//! opsets are rejected with the reason, and bad specs name the missing tensor.

use aegis_audit::grad::{self, GradError, GradSpec, ShapeMap, TensorShape};
use aegis_audit::onnx::builder::{attr_int, Dim, GraphBuilder};
use aegis_audit::onnx::proto::tensor_proto::DataType;
use aegis_audit::onnx::proto::ModelProto;

/// img → an op (Softplus: unsupported) → Gemm; shapes filled in by hand (no ONNX Runtime needed).
fn model_with(op: &str, opset: i64) -> (ModelProto, GradSpec, ShapeMap) {
    let mut b = GraphBuilder::new();
    b.input("img", DataType::Float, &[Dim::Param("N".into()), Dim::Fixed(4)]);
    let h = b.op(op, &["img"], vec![]);
    let w = b.const_f32("w", &[4, 2], &[0.1; 8]);
    let logits = b.op("Gemm", &[&h, &w], vec![attr_int("transB", 0)]);
    b.output(&logits, DataType::Float, None);
    let mut shapes = ShapeMap::new();
    let batch = TensorShape { dims: vec![2, 4], batch: vec![true, false] };
    shapes.insert("img", batch.clone());
    shapes.insert(&h, batch);
    shapes.insert(&logits, TensorShape { dims: vec![2, 2], batch: vec![true, false] });
    shapes.insert(&w, TensorShape::fixed(&[4, 2]));
    let spec = GradSpec { input: "img".into(), logits: logits.clone(), features: h };
    (b.into_model("m", opset, 8), spec, shapes)
}

#[test]
fn unsupported_op_is_named_with_its_node() {
    let (m, spec, shapes) = model_with("Softplus", 17);
    let err = grad::build(&m, &spec, &shapes).unwrap_err();
    let node = m.graph.as_ref().unwrap().node[0].name.clone().unwrap();
    assert!(matches!(err, GradError::UnsupportedOp { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("'Softplus'") && msg.contains(&node), "{msg}");
}

#[test]
fn supported_model_builds_with_hand_made_shapes() {
    let (m, spec, shapes) = model_with("Relu", 17);
    let g = grad::build(&m, &spec, &shapes).unwrap();
    let graph = g.graph.unwrap();
    let outs: Vec<_> = graph.output.iter().map(|o| o.name.clone().unwrap()).collect();
    assert_eq!(outs, ["logits", "features", "loss", "grad"]);
    let ins: Vec<_> = graph.input.iter().map(|o| o.name.clone().unwrap()).collect();
    assert_eq!(ins, ["x", "y"]);
    assert!(graph.node.iter().all(|n| !n.input.iter().any(|i| i == "img")));
    assert_eq!(g.opset_import[0].version, Some(grad::MIN_OUTPUT_OPSET));
}

#[test]
fn opset_below_11_is_rejected_with_the_reason() {
    let (m, spec, shapes) = model_with("Relu", 9);
    let msg = grad::build(&m, &spec, &shapes).unwrap_err().to_string();
    assert!(msg.contains("opset 9") && msg.contains("re-export"), "{msg}");
}

#[test]
fn opset_12_with_an_op_changed_at_13_is_rejected_naming_it() {
    let (m, spec, shapes) = model_with("Softmax", 12);
    let msg = grad::build(&m, &spec, &shapes).unwrap_err().to_string();
    assert!(msg.contains("Softmax") && msg.contains("opset 12"), "{msg}");
    let (m, spec, shapes) = model_with("Relu", 12);
    assert!(grad::build(&m, &spec, &shapes).is_ok());
    // Squeeze only moved its axes from an attribute to an input at 13: rewritten, not rejected.
    let (m, spec, shapes) = model_with("Squeeze", 12);
    let g = grad::build(&m, &spec, &shapes).unwrap();
    let sq = g.graph.unwrap().node.into_iter().find(|n| n.op_type.as_deref() == Some("Squeeze")).unwrap();
    assert_eq!(sq.input.len(), 1, "no axes attribute to move: {sq:?}");
}

#[test]
fn missing_logits_tensor_is_named() {
    let (m, mut spec, shapes) = model_with("Relu", 17);
    spec.logits = "nope".into();
    let msg = grad::build(&m, &spec, &shapes).unwrap_err().to_string();
    assert!(msg.contains("'nope'") && msg.contains("logits"), "{msg}");
}

#[test]
fn missing_shape_is_an_error_not_a_panic() {
    let (m, spec, _) = model_with("Relu", 17);
    let err = grad::build(&m, &spec, &ShapeMap::new());
    // Relu needs no shapes, Gemm neither: the build succeeds without any.
    assert!(err.is_ok());
    let mut b = GraphBuilder::new();
    b.input("img", DataType::Float, &[Dim::Param("N".into()), Dim::Fixed(1), Dim::Fixed(4), Dim::Fixed(4)]);
    let w = b.const_f32("w", &[1, 1, 3, 3], &[0.1; 9]);
    let h = b.op("Conv", &["img", &w], vec![]);
    let spec = GradSpec { input: "img".into(), logits: h.clone(), features: h };
    let m = b.into_model("m", 17, 8);
    let msg = grad::build(&m, &spec, &ShapeMap::new()).unwrap_err().to_string();
    assert!(msg.contains("no static shape"), "{msg}");
}
