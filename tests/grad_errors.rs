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

/// Every op type of the default ONNX domain (onnx 1.19, opset 24).
const ALL_ONNX_OPS: &[&str] = &[
    "Abs",
    "Acos",
    "Acosh",
    "Add",
    "AffineGrid",
    "And",
    "ArgMax",
    "ArgMin",
    "Asin",
    "Asinh",
    "Atan",
    "Atanh",
    "Attention",
    "AveragePool",
    "BatchNormalization",
    "Bernoulli",
    "BitShift",
    "BitwiseAnd",
    "BitwiseNot",
    "BitwiseOr",
    "BitwiseXor",
    "BlackmanWindow",
    "Cast",
    "CastLike",
    "Ceil",
    "Celu",
    "CenterCropPad",
    "Clip",
    "Col2Im",
    "Compress",
    "Concat",
    "ConcatFromSequence",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "ConvInteger",
    "ConvTranspose",
    "Cos",
    "Cosh",
    "CumSum",
    "DFT",
    "DeformConv",
    "DepthToSpace",
    "DequantizeLinear",
    "Det",
    "Div",
    "Dropout",
    "DynamicQuantizeLinear",
    "Einsum",
    "Elu",
    "Equal",
    "Erf",
    "Exp",
    "Expand",
    "EyeLike",
    "Flatten",
    "Floor",
    "GRU",
    "Gather",
    "GatherElements",
    "GatherND",
    "Gelu",
    "Gemm",
    "GlobalAveragePool",
    "GlobalLpPool",
    "GlobalMaxPool",
    "Greater",
    "GreaterOrEqual",
    "GridSample",
    "GroupNormalization",
    "HammingWindow",
    "HannWindow",
    "HardSigmoid",
    "HardSwish",
    "Hardmax",
    "Identity",
    "If",
    "ImageDecoder",
    "InstanceNormalization",
    "IsInf",
    "IsNaN",
    "LRN",
    "LSTM",
    "LayerNormalization",
    "LeakyRelu",
    "Less",
    "LessOrEqual",
    "Log",
    "LogSoftmax",
    "Loop",
    "LpNormalization",
    "LpPool",
    "MatMul",
    "MatMulInteger",
    "Max",
    "MaxPool",
    "MaxRoiPool",
    "MaxUnpool",
    "Mean",
    "MeanVarianceNormalization",
    "MelWeightMatrix",
    "Min",
    "Mish",
    "Mod",
    "Mul",
    "Multinomial",
    "Neg",
    "NegativeLogLikelihoodLoss",
    "NonMaxSuppression",
    "NonZero",
    "Not",
    "OneHot",
    "Optional",
    "OptionalGetElement",
    "OptionalHasElement",
    "Or",
    "PRelu",
    "Pad",
    "Pow",
    "QLinearConv",
    "QLinearMatMul",
    "QuantizeLinear",
    "RMSNormalization",
    "RNN",
    "RandomNormal",
    "RandomNormalLike",
    "RandomUniform",
    "RandomUniformLike",
    "Range",
    "Reciprocal",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSum",
    "ReduceSumSquare",
    "RegexFullMatch",
    "Relu",
    "Reshape",
    "Resize",
    "ReverseSequence",
    "RoiAlign",
    "RotaryEmbedding",
    "Round",
    "STFT",
    "Scan",
    "Scatter",
    "ScatterElements",
    "ScatterND",
    "Selu",
    "SequenceAt",
    "SequenceConstruct",
    "SequenceEmpty",
    "SequenceErase",
    "SequenceInsert",
    "SequenceLength",
    "SequenceMap",
    "Shape",
    "Shrink",
    "Sigmoid",
    "Sign",
    "Sin",
    "Sinh",
    "Size",
    "Slice",
    "Softmax",
    "SoftmaxCrossEntropyLoss",
    "Softplus",
    "Softsign",
    "SpaceToDepth",
    "Split",
    "SplitToSequence",
    "Sqrt",
    "Squeeze",
    "StringConcat",
    "StringNormalizer",
    "StringSplit",
    "Sub",
    "Sum",
    "Swish",
    "Tan",
    "Tanh",
    "TensorScatter",
    "TfIdfVectorizer",
    "ThresholdedRelu",
    "Tile",
    "TopK",
    "Transpose",
    "Trilu",
    "Unique",
    "Unsqueeze",
    "Upsample",
    "Where",
    "Xor",
];

/// x [N, 4] → `op`(x) → y, with y as the logits; shapes by hand.
fn one_op(op: &str) -> (ModelProto, GradSpec, ShapeMap) {
    let mut b = GraphBuilder::new();
    b.input("x", DataType::Float, &[Dim::Param("N".into()), Dim::Fixed(4)]);
    let y = b.op(op, &["x"], vec![]);
    b.output(&y, DataType::Float, None);
    let mut shapes = ShapeMap::new();
    let batch = TensorShape { dims: vec![2, 4], batch: vec![true, false] };
    shapes.insert("x", batch.clone());
    shapes.insert(&y, batch);
    let spec = GradSpec { input: "x".into(), logits: y.clone(), features: y };
    (b.into_model("m", 17, 8), spec, shapes)
}

/// `inspect` (through `analysis::analyze`, which asks `grad::DiffPath`) and the gradient builder agree
/// on every op type: an op outside the rule registry is reported as unsupported and the builder
/// refuses it naming the node; an op whose outputs carry no gradient ends the path for both; an op
/// with a rule is never refused for its type.
#[test]
fn analysis_and_builder_agree_on_every_op_type() {
    use aegis_audit::grad::{op_class, DiffPath, OpClass};
    use aegis_audit::onnx::graph::Graph;
    assert_eq!(ALL_ONNX_OPS.len(), 198);
    for &op in ALL_ONNX_OPS.iter().chain(grad::SUPPORTED_OPS) {
        let (m, spec, shapes) = one_op(op);
        let g = Graph::new(m.graph.as_ref().unwrap());
        let path = DiffPath::new(&g, "x", &spec.logits).unwrap();
        let unsupported = path.unsupported_ops(&g);
        let built = grad::build(&m, &spec, &shapes);
        match op_class(op) {
            OpClass::Unsupported => {
                assert_eq!(unsupported, vec![op.to_string()], "{op}: analysis");
                assert!(matches!(built, Err(GradError::UnsupportedOp { .. })), "{op}: builder gave {built:?}");
            }
            OpClass::NoGradient => {
                assert!(path.is_empty(), "{op}: analysis puts it on the path");
                let msg = built.expect_err(op).to_string();
                assert!(msg.contains("do not depend on the input"), "{op}: {msg}");
            }
            OpClass::Rule => {
                assert!(unsupported.is_empty(), "{op}: analysis says unsupported");
                assert!(!matches!(built, Err(GradError::UnsupportedOp { .. })), "{op}: builder refuses its type");
                assert!(grad::is_supported(op));
            }
        }
    }
    // The ops on which the two used to disagree have no rule: not differentiable for both.
    for op in ["Floor", "Round", "Sign", "Range", "OneHot"] {
        assert_eq!(op_class(op), OpClass::Unsupported, "{op}");
    }
}
