//! `load_model` and `analyze` on small well-formed classifiers: plain CNN, Softmax output,
//! residual block with GlobalAveragePool, in-graph normalisation, torch-style dynamic Reshape,
//! external data inside the model's directory, and the graph/attribute helpers.

mod onnx_common;

use aegis_audit::analysis::{analyze, Analysis, FeatureChoice};
use aegis_audit::onnx::attr::NodeExt;
use aegis_audit::onnx::graph::Graph;
use aegis_audit::onnx::proto::{GraphProto, ModelProto};
use aegis_audit::onnx::{decode, encode, load_model, LoadLimits, OnnxError};
use onnx_common::{
    attr_i, attr_ints, attr_t, model, node, plain_cnn, tempdir, tensor_external, tensor_f32, tensor_i64, value_info,
    write_model, D,
};

fn load(m: &ModelProto) -> aegis_audit::onnx::Model {
    let dir = tempdir();
    let path = write_model(dir.path(), "model.onnx", m);
    load_model(&path, &LoadLimits::default()).expect("load")
}

fn run(m: &ModelProto, choice: FeatureChoice) -> Result<Analysis, OnnxError> {
    analyze(&load(m), &choice)
}

#[test]
fn plain_cnn_analysis() {
    let a = run(&plain_cnn(), FeatureChoice::LastConv).unwrap();
    assert_eq!(a.image_input.name, "x");
    assert_eq!(a.image_input.layout, "NCHW");
    assert_eq!((a.image_input.channels, a.image_input.height, a.image_input.width), (1, 8, 8));
    assert_eq!(a.logits.name, "logits");
    assert_eq!(a.logits.head_op, "Gemm");
    assert_eq!(a.logits.softmax, None);
    assert_eq!(a.num_classes, 10);
    assert_eq!(a.feature.name, "r1", "input of the MaxPool/Flatten chain");
    assert_eq!(a.feature.producer_op.as_deref(), Some("Relu"));
    assert_eq!(a.op_histogram.get("Conv"), Some(&1));
    assert_eq!(a.op_histogram.values().sum::<usize>(), 5);
    assert_eq!(a.path_ops.values().sum::<usize>(), 5);
    assert!(a.differentiable);
    assert!(a.unsupported_ops.is_empty());
    assert_eq!(a.model.opset, 17);
    assert_eq!(a.model.initializer_bytes, 4 * (72 + 8 + 1280 + 10));
}

#[test]
fn penultimate_and_named_features() {
    let a = run(&plain_cnn(), FeatureChoice::Penultimate).unwrap();
    assert_eq!(a.feature.name, "f");
    assert_eq!(a.feature.choice, "penultimate");
    let a = run(&plain_cnn(), FeatureChoice::Named("c1".into())).unwrap();
    assert_eq!(a.feature.name, "c1");
    assert_eq!(a.feature.choice, "named");
    let e = run(&plain_cnn(), FeatureChoice::Named("nope".into())).unwrap_err().to_string();
    assert!(e.contains("no tensor named 'nope'"), "{e}");
    let e = run(&plain_cnn(), FeatureChoice::Named("w1".into())).unwrap_err().to_string();
    assert!(e.contains("'w1' is not on the path"), "{e}");
}

#[test]
fn softmax_output_gives_its_input_as_logits() {
    let mut m = plain_cnn();
    let g = m.graph.as_mut().unwrap();
    g.node.push(node("Softmax", "sm", &["logits"], &["probs"], vec![attr_i("axis", 1)]));
    g.output = vec![value_info("probs", &[D::S("N"), D::N(10)])];
    let a = run(&m, FeatureChoice::LastConv).unwrap();
    assert_eq!(a.logits.name, "logits");
    assert_eq!(a.logits.graph_output, "probs");
    assert_eq!(a.logits.softmax.as_deref(), Some("Softmax"));
    assert_eq!(a.num_classes, 10);
    assert!(!a.path_ops.contains_key("Softmax"), "softmax is after the logits");
}

#[test]
fn logits_and_softmax_both_outputs() {
    let mut m = plain_cnn();
    let g = m.graph.as_mut().unwrap();
    g.node.push(node("LogSoftmax", "lsm", &["logits"], &["logp"], vec![]));
    g.output.push(value_info("logp", &[D::S("N"), D::N(10)]));
    let a = run(&m, FeatureChoice::LastConv).unwrap();
    assert_eq!(a.logits.name, "logits");
}

/// Conv → Relu → [Conv → Relu → Conv] + skip → Relu → GlobalAveragePool → Flatten → MatMul + Add.
fn residual() -> ModelProto {
    let graph = GraphProto {
        name: Some("residual".into()),
        node: vec![
            node("Conv", "stem", &["x", "w0"], &["s"], vec![attr_ints("pads", &[1, 1, 1, 1])]),
            node("Relu", "stem_relu", &["s"], &["s_r"], vec![]),
            node("Conv", "conv_a", &["s_r", "wa"], &["a"], vec![attr_ints("pads", &[1, 1, 1, 1])]),
            node("BatchNormalization", "bn_a", &["a", "g", "b", "m", "v"], &["a_bn"], vec![]),
            node("Relu", "relu_a", &["a_bn"], &["a_r"], vec![]),
            node("Conv", "conv_b", &["a_r", "wb"], &["bb"], vec![attr_ints("pads", &[1, 1, 1, 1])]),
            node("Add", "skip", &["bb", "s_r"], &["sum"], vec![]),
            node("Relu", "block_out", &["sum"], &["feat"], vec![]),
            node("GlobalAveragePool", "gap", &["feat"], &["pooled"], vec![]),
            node("Flatten", "flat", &["pooled"], &["flat"], vec![]),
            node("MatMul", "fc", &["flat", "wf"], &["mm"], vec![]),
            node("Add", "fc_bias", &["mm", "bf"], &["logits"], vec![]),
        ],
        initializer: vec![
            tensor_f32("w0", &[4, 3, 3, 3]),
            tensor_f32("wa", &[4, 4, 3, 3]),
            tensor_f32("g", &[4]),
            tensor_f32("b", &[4]),
            tensor_f32("m", &[4]),
            tensor_f32("v", &[4]),
            tensor_f32("wb", &[4, 4, 3, 3]),
            tensor_f32("wf", &[4, 5]),
            tensor_f32("bf", &[5]),
        ],
        input: vec![value_info("x", &[D::S("batch"), D::N(3), D::N(16), D::N(16)])],
        output: vec![value_info("logits", &[D::S("batch"), D::N(5)])],
        value_info: vec![value_info("feat", &[D::S("batch"), D::N(4), D::N(16), D::N(16)])],
        ..Default::default()
    };
    model(graph)
}

#[test]
fn residual_block_with_global_average_pool() {
    let a = run(&residual(), FeatureChoice::LastConv).unwrap();
    assert_eq!(a.image_input.channels, 3);
    assert_eq!(a.num_classes, 5);
    assert_eq!(a.logits.head_op, "MatMul");
    assert_eq!(a.logits.head_node, "fc");
    assert_eq!(a.feature.name, "feat");
    assert_eq!(
        a.feature.shape.as_ref().map(|s| aegis_audit::onnx::shape::shape_string(s)),
        Some("[batch, 4, 16, 16]".to_string())
    );
    assert_eq!(a.path_ops.get("Add"), Some(&2));
    assert!(a.differentiable);
    let a = run(&residual(), FeatureChoice::Penultimate).unwrap();
    assert_eq!(a.feature.name, "flat");
}

#[test]
fn in_graph_normalisation() {
    let mut m = plain_cnn();
    let g = m.graph.as_mut().unwrap();
    g.node[0].input[0] = "xn".into();
    g.node.insert(0, node("Sub", "sub_mean", &["x", "mean"], &["xc"], vec![]));
    g.node.insert(1, node("Div", "div_std", &["xc", "std"], &["xn"], vec![]));
    g.initializer.push(tensor_f32("mean", &[1, 1, 1, 1]));
    g.initializer.push(tensor_f32("std", &[1, 1, 1, 1]));
    let a = run(&m, FeatureChoice::LastConv).unwrap();
    assert_eq!(a.image_input.name, "x");
    assert_eq!(a.path_ops.get("Sub"), Some(&1));
    assert_eq!(a.path_ops.get("Div"), Some(&1));
    assert_eq!(a.feature.name, "r1");
    assert!(a.differentiable);
}

#[test]
fn torch_style_reshape_shape_ops_are_off_the_data_path() {
    // x.view(x.size(0), -1): Shape → Gather → Unsqueeze → Concat → Reshape.
    let mut m = plain_cnn();
    let g = m.graph.as_mut().unwrap();
    let flatten = g.node.iter().position(|n| n.op() == "Flatten").unwrap();
    g.node.splice(
        flatten..=flatten,
        [
            node("Shape", "shape", &["p1"], &["sh"], vec![]),
            node("Constant", "zero", &[], &["zero"], vec![attr_t("value", tensor_i64("", &[0]))]),
            node("Gather", "gather", &["sh", "zero"], &["n"], vec![attr_i("axis", 0)]),
            node("Concat", "concat", &["n", "minus_one"], &["newshape"], vec![attr_i("axis", 0)]),
            node("Reshape", "reshape", &["p1", "newshape"], &["f"], vec![]),
        ],
    );
    g.initializer.push(tensor_i64("minus_one", &[-1]));
    let a = run(&m, FeatureChoice::LastConv).unwrap();
    assert_eq!(a.feature.name, "r1");
    assert!(!a.path_ops.contains_key("Shape"), "{:?}", a.path_ops);
    assert!(!a.path_ops.contains_key("Gather"), "{:?}", a.path_ops);
    assert_eq!(a.path_ops.get("Reshape"), Some(&1));
    assert!(a.differentiable, "{:?}", a.unsupported_ops);
}

#[test]
fn unsupported_op_on_path_is_reported() {
    let mut m = plain_cnn();
    m.graph.as_mut().unwrap().node[1].op_type = Some("Softplus".into());
    let a = run(&m, FeatureChoice::LastConv).unwrap();
    assert!(!a.differentiable);
    assert_eq!(a.unsupported_ops, vec!["Softplus".to_string()]);
}

#[test]
fn single_class_head_is_not_a_classifier() {
    let mut m = plain_cnn();
    let g = m.graph.as_mut().unwrap();
    g.initializer[2] = tensor_f32("wf", &[1, 128]);
    g.initializer[3] = tensor_f32("bf", &[1]);
    g.output = vec![value_info("logits", &[D::S("N"), D::N(1)])];
    let e = run(&m, FeatureChoice::LastConv).unwrap_err().to_string();
    assert!(e.contains("at least 2 classes"), "{e}");
}

#[test]
fn a_linear_model_gives_its_classifier_input() {
    let graph = GraphProto {
        node: vec![
            node("Flatten", "flat", &["x"], &["f"], vec![]),
            node("Gemm", "fc", &["f", "w"], &["y"], vec![attr_i("transB", 1)]),
        ],
        initializer: vec![tensor_f32("w", &[3, 64])],
        input: vec![value_info("x", &[D::S("N"), D::N(1), D::N(8), D::N(8)])],
        output: vec![value_info("y", &[D::S("N"), D::N(3)])],
        ..Default::default()
    };
    let a = run(&model(graph.clone()), FeatureChoice::LastConv).unwrap();
    assert_eq!((a.feature.name.as_str(), a.feature.choice.as_str()), ("f", "classifier-input"));
    let a = run(&model(graph.clone()), FeatureChoice::Penultimate).unwrap();
    assert_eq!(a.feature.name, "f");
    // A linear model of flat vectors is not an image classifier: refused with the reason.
    let mut direct = graph;
    direct.node = vec![node("Gemm", "fc", &["x", "w"], &["y"], vec![attr_i("transB", 1)])];
    direct.input = vec![value_info("x", &[D::S("N"), D::N(64)])];
    let e = run(&model(direct), FeatureChoice::LastConv).unwrap_err().to_string();
    assert!(e.contains("input 'x' has rank 2") && e.contains("[N, C, H, W]"), "{e}");
}

#[test]
fn external_data_inside_directory_is_inlined() {
    let dir = tempdir();
    let data: Vec<u8> = (0..5120u32).map(|i| (i % 251) as u8).collect();
    let mut file = vec![0u8; 64];
    file.extend_from_slice(&data);
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/weights.bin"), &file).unwrap();
    let mut m = plain_cnn();
    m.graph.as_mut().unwrap().initializer[2] =
        tensor_external("wf", &[10, 128], "data/weights.bin", &[("offset", "64"), ("length", "5120")]);
    let path = write_model(dir.path(), "model.onnx", &m);
    let loaded = load_model(&path, &LoadLimits::default()).unwrap();
    let t = &loaded.graph().initializer[2];
    assert_eq!(t.raw_data.as_deref(), Some(data.as_slice()));
    assert!(t.external_data.is_empty());
    assert!(analyze(&loaded, &FeatureChoice::LastConv).is_ok());
}

#[test]
fn encode_decode_round_trip() {
    let m = plain_cnn();
    let bytes = encode(&m);
    let back = decode(&bytes).unwrap();
    assert_eq!(back, m);
    assert_eq!(encode(&back), bytes);
}

#[test]
fn topological_order_of_unsorted_graph() {
    let mut m = plain_cnn();
    m.graph.as_mut().unwrap().node.reverse();
    let loaded = load(&m);
    let g = Graph::new(loaded.graph());
    let order = g.topo_order().unwrap();
    let ops: Vec<&str> = order.iter().map(|&i| g.node(i).op()).collect();
    assert_eq!(ops, ["Conv", "Relu", "MaxPool", "Flatten", "Gemm"]);
    assert_eq!(g.node(g.producer("r1").unwrap()).op(), "Relu");
    assert_eq!(g.consumers("r1").len(), 1);
    assert!(g.is_constant("wf"));
    assert!(!g.is_constant("r1"));
    assert_eq!(aegis_audit::grad::DiffPath::new(&g, "x", "p1").unwrap().nodes().count(), 3);
    assert!(aegis_audit::grad::DiffPath::new(&g, "wf", "r1").unwrap().is_empty());
}

#[test]
fn constant_node_values_and_attributes() {
    let mut m = plain_cnn();
    let g = m.graph.as_mut().unwrap();
    g.node.push(node("Constant", "k", &[], &["kk"], vec![attr_ints("value_ints", &[3, 4])]));
    let loaded = load(&m);
    let g = Graph::new(loaded.graph());
    let k = g.constant("kk").unwrap();
    assert_eq!(aegis_audit::onnx::tensor::tensor_i64(&k).unwrap(), vec![3, 4]);
    let wf = g.constant("wf").unwrap();
    assert_eq!(aegis_audit::onnx::tensor::tensor_f32(&wf).unwrap().len(), 1280);

    let pool = g.node(g.producer("p1").unwrap());
    let ks: &[i64] = pool.get_attr("kernel_shape").unwrap();
    assert_eq!(ks, &[2, 2]);
    assert_eq!(pool.get_attr_or::<i64>("ceil_mode", 0).unwrap(), 0);
    let e = pool.get_attr::<i64>("kernel_shape").unwrap_err().to_string();
    assert_eq!(e, "node 'pool1' (MaxPool), attribute 'kernel_shape': expected INT, found INTS");
    let e = pool.get_attr::<f32>("alpha").unwrap_err().to_string();
    assert!(e.contains("attribute 'alpha': required attribute is missing"), "{e}");
}

#[test]
fn many_channels_are_not_mistaken_for_nhwc() {
    let mut m = plain_cnn();
    let g = m.graph.as_mut().unwrap();
    g.input[0] = value_info("x", &[D::S("N"), D::N(64), D::N(32), D::N(32)]);
    // Weights that fit 64 input channels and a 32×32 image (8 channels × 16 × 16 after the pool).
    g.initializer[0] = tensor_f32("w1", &[8, 64, 3, 3]);
    g.initializer[2] = tensor_f32("wf", &[10, 8 * 16 * 16]);
    let a = run(&m, FeatureChoice::LastConv).unwrap();
    assert_eq!(a.image_input.channels, 64);
    assert_eq!(a.image_input.layout, "NCHW");
}

#[test]
fn inspect_and_the_gradient_builder_agree_on_zero_gradient_ops() {
    // Floor, Round and Sign used to end the analysis' path while the builder refused them.
    for op in ["Floor", "Round", "Sign"] {
        let mut m = plain_cnn();
        m.graph.as_mut().unwrap().node[1].op_type = Some(op.into());
        let a = run(&m, FeatureChoice::LastConv).unwrap();
        assert!(!a.differentiable, "{op}");
        assert_eq!(a.unsupported_ops, vec![op.to_string()]);
        let spec = aegis_audit::grad::GradSpec { input: "x".into(), logits: "logits".into(), features: "r1".into() };
        let config = aegis_audit::runtime::SessionConfig { intra_threads: 1, ..Default::default() };
        let err = aegis_audit::audit::gradient_graph(&m, &spec, &config).unwrap_err().to_string();
        assert!(err.contains(&format!("node 'relu1' ({op}): no gradient rule for op '{op}'")), "{err}");
    }
}

#[test]
fn an_opset_the_gradient_graph_cannot_import_is_not_differentiable() {
    let mut m = plain_cnn();
    m.opset_import[0].version = Some(10);
    let a = run(&m, FeatureChoice::LastConv).unwrap();
    assert!(a.unsupported_ops.is_empty());
    assert!(!a.differentiable);
    let blocker = a.gradient_blocker.clone().unwrap();
    assert!(blocker.contains("opset 10") && blocker.contains("re-export"), "{blocker}");
    assert!(a.differentiability().starts_with("no: the model imports ONNX opset 10"), "{}", a.differentiability());
    assert!(run(&plain_cnn(), FeatureChoice::LastConv).unwrap().gradient_blocker.is_none());
}

#[test]
fn open_image_dims_are_fixed_to_the_fill_and_only_those() {
    use aegis_audit::analysis::{fix_open_image_dims, OpenDimsFill};
    let with_input = |dims: &[D]| {
        let mut m = plain_cnn();
        m.graph.as_mut().unwrap().input[0] = value_info("x", dims);
        load(&m)
    };
    let fill = OpenDimsFill { channels: Some(1), height: 8, width: 8 };
    // H and W named: fixed to the fill; the analysis then sees an 8×8 model.
    let mut m = with_input(&[D::S("N"), D::N(1), D::S("H"), D::S("W")]);
    assert!(analyze(&m, &FeatureChoice::LastConv).is_err(), "open dims are refused as they are");
    assert_eq!(fix_open_image_dims(&mut m, || Some(fill)).as_deref(), Some("H = 8, W = 8"));
    let a = analyze(&m, &FeatureChoice::LastConv).unwrap();
    assert_eq!((a.image_input.channels, a.image_input.height, a.image_input.width), (1, 8, 8));
    // Channels open too: fixed where the fill knows them, left (and refused later) where it does not.
    let mut m = with_input(&[D::S("N"), D::S("C"), D::S("H"), D::N(8)]);
    assert_eq!(fix_open_image_dims(&mut m, || Some(fill)).as_deref(), Some("C = 1, H = 8"));
    let mut m = with_input(&[D::S("N"), D::S("C"), D::N(8), D::N(8)]);
    let unknown = OpenDimsFill { channels: None, ..fill };
    assert_eq!(fix_open_image_dims(&mut m, || Some(unknown)), None);
    assert!(analyze(&m, &FeatureChoice::LastConv).is_err());
    // A fixed dim is never changed (a mismatch with the data is reported as before), and with nothing
    // open the fill is not even asked for (no data read).
    let mut m = with_input(&[D::S("N"), D::N(1), D::N(8), D::N(8)]);
    assert_eq!(fix_open_image_dims(&mut m, || panic!("asked for a fill with nothing open")), None);
    let mut m = with_input(&[D::S("N"), D::N(1), D::N(8), D::S("W")]);
    let other = OpenDimsFill { channels: Some(3), height: 28, width: 8 };
    assert_eq!(fix_open_image_dims(&mut m, || Some(other)).as_deref(), Some("W = 8"));
    // No data to read the size from: nothing fixed.
    let mut m = with_input(&[D::S("N"), D::N(1), D::S("H"), D::S("W")]);
    assert_eq!(fix_open_image_dims(&mut m, || None), None);
}

/// The float16 bits nearest below `v` in magnitude (truncated mantissa; normal range and zero only:
/// enough to store test weights in half precision).
fn f16_bits(v: f32) -> u16 {
    let b = v.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32 - 127 + 15;
    if v == 0.0 || exp <= 0 {
        return sign;
    }
    sign | ((exp as u16) << 10) | ((b >> 13) & 0x3ff) as u16
}

#[test]
fn a_float16_model_is_read_as_float32_value_for_value() {
    use aegis_audit::onnx::proto::tensor_proto::DataType;
    use aegis_audit::onnx::proto::type_proto::Value as TypeValue;
    use aegis_audit::onnx::tensor::tensor_f32;
    use aegis_audit::onnx::widen::f16_to_f32;
    let mut m = plain_cnn();
    let g = m.graph.as_mut().unwrap();
    let mut expected = Vec::new();
    for (i, t) in g.initializer.iter_mut().enumerate() {
        let bits: Vec<u16> = aegis_audit::onnx::tensor::tensor_f32(t).unwrap().iter().map(|&v| f16_bits(v)).collect();
        expected.push(bits.iter().map(|&b| f16_to_f32(b)).collect::<Vec<f32>>());
        t.float_data.clear();
        t.raw_data = None;
        t.data_type = Some(DataType::Float16 as i32);
        // Both encodings ONNX allows: little-endian raw bytes, and one value per int32_data entry.
        if i % 2 == 0 {
            t.raw_data = Some(bits.iter().flat_map(|b| b.to_le_bytes()).collect());
        } else {
            t.int32_data = bits.iter().map(|&b| i32::from(b)).collect();
        }
    }
    for vi in g.input.iter_mut().chain(g.output.iter_mut()) {
        if let Some(TypeValue::TensorType(t)) = vi.r#type.as_mut().and_then(|t| t.value.as_mut()) {
            t.elem_type = Some(DataType::Float16 as i32);
        }
    }
    // A mixed-precision Cast to float16 inside the model casts to float32 once widened.
    g.node.insert(1, node("Cast", "to_half", &["c1"], &["c1h"], vec![attr_i("to", DataType::Float16 as i64)]));
    g.node[2].input[0] = "c1h".into();
    let loaded = load(&m);
    let widened = loaded.widened.as_ref().expect("widened");
    assert_eq!((widened.from.as_str(), widened.tensors), ("float16", 4));
    let g = loaded.graph();
    for (t, want) in g.initializer.iter().zip(&expected) {
        assert_eq!(t.data_type, Some(DataType::Float as i32));
        assert_eq!(&tensor_f32(t).unwrap(), want, "{}", t.name.as_deref().unwrap_or(""));
    }
    assert_eq!(g.node[1].get_attr::<i64>("to").unwrap(), DataType::Float as i64);
    let a = analyze(&loaded, &FeatureChoice::LastConv).unwrap();
    assert_eq!(a.image_input.dtype, "float32");
    assert_eq!(a.model.widened_from.as_deref(), Some("float16"));
    // A float32 model is left as it is.
    assert!(load(&plain_cnn()).widened.is_none());
}
