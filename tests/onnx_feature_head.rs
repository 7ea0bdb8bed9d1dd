//! The feature tensor found automatically behind the heads torchvision and other exporters write:
//! an MLP head with activations and dropout (MobileNet V3: Gemm → HardSwish → Dropout → Gemm), an
//! activation written out in elementary ops (SiLU as x·Sigmoid(x)), a convolutional classifier
//! (SqueezeNet: the features before the final conv), normalisation after the pooling (ConvNeXt's
//! GlobalAveragePool → Transpose → LayerNormalization → Transpose → Flatten), a transformer's class
//! token (ViT: Gather of token 0) and its Slice form; the reason is in the analysis; where nothing
//! fits, the error names the nearest candidates and `--feature-tensor`.

mod onnx_common;

use aegis_audit::analysis::{analyze, Analysis, FeatureChoice};
use aegis_audit::onnx::proto::{GraphProto, ModelProto, NodeProto};
use aegis_audit::onnx::{load_model, LoadLimits, OnnxError};
use onnx_common::{
    assert_input_error, attr_i, attr_ints, attr_t, inspect, model, node, tempdir, tensor_f32, tensor_i64, value_info,
    write_model, D,
};

fn run(m: &ModelProto) -> Result<Analysis, OnnxError> {
    let dir = tempdir();
    let path = write_model(dir.path(), "model.onnx", m);
    analyze(&load_model(&path, &LoadLimits::default()).unwrap(), &FeatureChoice::LastConv)
}

/// Conv → Relu ("block") then `head` nodes reading "block", over input [N, 3, 8, 8].
fn with_head(head: Vec<NodeProto>, inits: Vec<aegis_audit::onnx::proto::TensorProto>, out: &str, k: i64) -> ModelProto {
    let mut nodes = vec![
        node("Conv", "conv", &["x", "wc"], &["c"], vec![attr_ints("pads", &[1, 1, 1, 1])]),
        node("Relu", "relu", &["c"], &["block"], vec![]),
    ];
    nodes.extend(head);
    let mut initializer = vec![tensor_f32("wc", &[16, 3, 3, 3])];
    initializer.extend(inits);
    model(GraphProto {
        node: nodes,
        initializer,
        input: vec![value_info("x", &[D::S("N"), D::N(3), D::N(8), D::N(8)])],
        output: vec![value_info(out, &[D::S("N"), D::N(k)])],
        ..Default::default()
    })
}

#[test]
fn mlp_head_with_hardswish_and_dropout() {
    let m = with_head(
        vec![
            node("GlobalAveragePool", "gap", &["block"], &["p"], vec![]),
            node("Flatten", "flat", &["p"], &["f"], vec![]),
            node("Gemm", "fc1", &["f", "w1", "b1"], &["h"], vec![attr_i("transB", 1)]),
            node("HardSwish", "hs", &["h"], &["hs"], vec![]),
            node("Dropout", "drop", &["hs"], &["d"], vec![]),
            node("Gemm", "fc2", &["d", "w2", "b2"], &["logits"], vec![attr_i("transB", 1)]),
        ],
        vec![tensor_f32("w1", &[32, 16]), tensor_f32("b1", &[32]), tensor_f32("w2", &[5, 32]), tensor_f32("b2", &[5])],
        "logits",
        5,
    );
    let a = run(&m).unwrap();
    assert_eq!(a.feature.name, "block");
    assert_eq!(a.feature.choice, "last-conv");
    assert!(
        a.feature.reason.contains("GlobalAveragePool → Flatten → Gemm → HardSwish → Dropout"),
        "{}",
        a.feature.reason
    );
    assert_eq!(a.logits.head_node, "fc2");
}

#[test]
fn silu_written_as_x_times_sigmoid_in_the_head() {
    let m = with_head(
        vec![
            node("GlobalAveragePool", "gap", &["block"], &["p"], vec![]),
            node("Flatten", "flat", &["p"], &["f"], vec![]),
            node("Gemm", "fc1", &["f", "w1"], &["h"], vec![attr_i("transB", 1)]),
            node("Sigmoid", "sig", &["h"], &["s"], vec![]),
            node("Mul", "silu", &["h", "s"], &["a"], vec![]),
            node("Gemm", "fc2", &["a", "w2"], &["logits"], vec![attr_i("transB", 1)]),
        ],
        vec![tensor_f32("w1", &[32, 16]), tensor_f32("w2", &[5, 32])],
        "logits",
        5,
    );
    assert_eq!(run(&m).unwrap().feature.name, "block");
}

#[test]
fn convolutional_classifier_takes_the_features_before_the_final_conv() {
    let m = with_head(
        vec![
            node("Dropout", "drop", &["block"], &["d"], vec![]),
            node("Conv", "final_conv", &["d", "wk"], &["k"], vec![]),
            node("Relu", "krelu", &["k"], &["kr"], vec![]),
            node("GlobalAveragePool", "gap", &["kr"], &["p"], vec![]),
            node("Flatten", "flat", &["p"], &["logits"], vec![]),
        ],
        vec![tensor_f32("wk", &[7, 16, 1, 1])],
        "logits",
        7,
    );
    let a = run(&m).unwrap();
    assert_eq!(a.logits.head_op, "Conv");
    assert_eq!(a.logits.head_node, "final_conv");
    assert_eq!(a.num_classes, 7);
    assert_eq!(a.feature.name, "block");
    assert!(a.feature.reason.contains("convolutional classifier"), "{}", a.feature.reason);
}

#[test]
fn normalisation_after_pooling_stays_in_the_chain() {
    let m = with_head(
        vec![
            node("GlobalAveragePool", "gap", &["block"], &["p"], vec![]),
            node("Transpose", "t1", &["p"], &["pt"], vec![attr_ints("perm", &[0, 2, 3, 1])]),
            node("LayerNormalization", "ln", &["pt", "g"], &["n"], vec![]),
            node("Transpose", "t2", &["n"], &["nt"], vec![attr_ints("perm", &[0, 3, 1, 2])]),
            node("Flatten", "flat", &["nt"], &["f"], vec![]),
            node("Gemm", "fc", &["f", "w"], &["logits"], vec![attr_i("transB", 1)]),
        ],
        vec![tensor_f32("g", &[16]), tensor_f32("w", &[5, 16])],
        "logits",
        5,
    );
    assert_eq!(run(&m).unwrap().feature.name, "block");
}

/// Patch embedding → token sequence [N, 17, 16] (class token concatenated) → LayerNorm → `select`
/// → Gemm head.
fn vit_like(select: Vec<NodeProto>, inits: Vec<aegis_audit::onnx::proto::TensorProto>) -> ModelProto {
    let mut nodes = vec![
        node(
            "Conv",
            "patch",
            &["x", "wp"],
            &["e"],
            vec![attr_ints("strides", &[2, 2]), attr_ints("kernel_shape", &[2, 2])],
        ),
        node("Reshape", "tokens", &["e", "tshape"], &["s"], vec![]),
        node("Transpose", "seq", &["s"], &["q"], vec![attr_ints("perm", &[0, 2, 1])]),
        // The class token repeated over the batch: Expand to [N, 1, 16], N read from the input.
        node("Shape", "xshape", &["x"], &["xs"], vec![]),
        node("Gather", "batch", &["xs", "first"], &["n"], vec![attr_i("axis", 0)]),
        node("Concat", "cls_dims", &["n", "cls_rest"], &["cls_shape"], vec![attr_i("axis", 0)]),
        node("Expand", "cls_expand", &["cls", "cls_shape"], &["ce"], vec![]),
        node("Concat", "cat", &["ce", "q"], &["z"], vec![attr_i("axis", 1)]),
        node("LayerNormalization", "ln", &["z", "g"], &["enc"], vec![]),
    ];
    nodes.extend(select);
    nodes.push(node("Gemm", "head", &["token", "w"], &["logits"], vec![attr_i("transB", 1)]));
    let mut initializer = vec![
        tensor_f32("wp", &[16, 3, 2, 2]),
        tensor_i64("tshape", &[0, 16, 16]),
        tensor_f32("cls", &[1, 1, 16]),
        tensor_i64("first", &[0]),
        tensor_i64("cls_rest", &[1, 16]),
        tensor_f32("g", &[16]),
        tensor_f32("w", &[6, 16]),
    ];
    initializer.extend(inits);
    model(GraphProto {
        node: nodes,
        initializer,
        input: vec![value_info("x", &[D::S("N"), D::N(3), D::N(8), D::N(8)])],
        output: vec![value_info("logits", &[D::S("N"), D::N(6)])],
        ..Default::default()
    })
}

#[test]
fn transformer_class_token_by_gather_or_slice() {
    let zero = tensor_i64("zero", &[0]);
    let scalar_zero = aegis_audit::onnx::proto::TensorProto { dims: vec![], ..zero };
    let m = vit_like(
        vec![
            node("Constant", "c0", &[], &["i0"], vec![attr_t("value", scalar_zero)]),
            node("Gather", "select", &["enc", "i0"], &["token"], vec![attr_i("axis", 1)]),
        ],
        vec![],
    );
    let a = run(&m).unwrap();
    assert_eq!(a.feature.name, "token");
    assert!(a.feature.reason.contains("class token") && a.feature.reason.contains("'enc'"), "{}", a.feature.reason);

    let m = vit_like(
        vec![
            node("Slice", "select", &["enc", "s0", "s1", "ax"], &["sl"], vec![]),
            node("Squeeze", "squeeze", &["sl", "ax"], &["token"], vec![]),
        ],
        vec![tensor_i64("s0", &[0]), tensor_i64("s1", &[1]), tensor_i64("ax", &[1])],
    );
    let a = run(&m).unwrap();
    assert_eq!(a.feature.name, "sl");
    assert!(a.feature.reason.contains("class token"), "{}", a.feature.reason);
}

/// The head reads a Concat of two dense branches of the flattened image (through a 1×1 convolution
/// when `conv`), then Relu and the classifier: no pooling, Flatten or token selection before the head.
fn concat_network(conv: bool) -> ModelProto {
    let mut nodes = Vec::new();
    let mut initializer = Vec::new();
    let flat_input = if conv {
        nodes.push(node("Conv", "conv", &["img", "wc"], &["ci"], vec![]));
        initializer.push(tensor_f32("wc", &[1, 1, 1, 1]));
        "ci"
    } else {
        "img"
    };
    nodes.extend([
        node("Reshape", "to_vec", &[flat_input, "vshape"], &["x"], vec![]),
        node("Gemm", "a", &["x", "wa"], &["ha"], vec![attr_i("transB", 1)]),
        node("Gemm", "b", &["x", "wb"], &["hb"], vec![attr_i("transB", 1)]),
        node("Concat", "cat", &["ha", "hb"], &["h"], vec![attr_i("axis", 1)]),
        node("Relu", "r", &["h"], &["hr"], vec![]),
        node("Gemm", "fc", &["hr", "w"], &["logits"], vec![attr_i("transB", 1)]),
    ]);
    initializer.extend([
        tensor_i64("vshape", &[0, 8]),
        tensor_f32("wa", &[4, 8]),
        tensor_f32("wb", &[4, 8]),
        tensor_f32("w", &[3, 8]),
    ]);
    model(GraphProto {
        node: nodes,
        initializer,
        input: vec![value_info("img", &[D::S("N"), D::N(1), D::N(2), D::N(4)])],
        output: vec![value_info("logits", &[D::S("N"), D::N(3)])],
        ..Default::default()
    })
}

#[test]
fn no_pooling_names_the_nearest_candidates_and_the_flag() {
    // A convolution, then the head reads a Concat of two dense branches of the flattened features:
    // nothing between the head and the Concat pools, flattens or selects a token.
    let m2 = concat_network(true);
    let e = match run(&m2) {
        Ok(a) => panic!("expected an error, chose {}", a.feature.name),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("nearest candidates: 'hr' (Relu output), 'h' (Concat output)"), "{e}");
    assert!(e.contains("--feature-tensor NAME"), "{e}");
    let dir = tempdir();
    let path = write_model(dir.path(), "m.onnx", &m2);
    assert_input_error(&inspect(&path, &[]), "--feature-tensor NAME");
    let out = inspect(&path, &["--json", "--feature-tensor", "hr"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A multi-layer perceptron (issue 32 item 7): normalisation, Flatten, two hidden Gemm → Relu layers,
/// Dropout, the classifier. The feature is the last hidden layer, not the normalised image that the
/// Flatten reads; a linear classifier (no hidden layer) keeps the Flatten's input as before.
#[test]
fn a_network_without_convolutions_takes_its_last_hidden_layer() {
    let mlp = |hidden: bool| {
        let mut nodes = vec![
            node("Sub", "centre", &["img", "mean"], &["c"], vec![]),
            node("Div", "scale", &["c", "std"], &["n"], vec![]),
            node("Flatten", "flat", &["n"], &["f"], vec![]),
        ];
        let mut inits = vec![tensor_f32("mean", &[1]), tensor_f32("std", &[1])];
        if hidden {
            nodes.extend([
                node("Gemm", "fc1", &["f", "w1", "b1"], &["h1"], vec![attr_i("transB", 1)]),
                node("Relu", "r1", &["h1"], &["a1"], vec![]),
                node("Gemm", "fc2", &["a1", "w2", "b2"], &["h2"], vec![attr_i("transB", 1)]),
                node("Relu", "r2", &["h2"], &["a2"], vec![]),
                node("Dropout", "drop", &["a2"], &["d"], vec![]),
                node("Gemm", "fc3", &["d", "w3", "b3"], &["logits"], vec![attr_i("transB", 1)]),
            ]);
            inits.extend([
                tensor_f32("w1", &[16, 64]),
                tensor_f32("b1", &[16]),
                tensor_f32("w2", &[12, 16]),
                tensor_f32("b2", &[12]),
                tensor_f32("w3", &[5, 12]),
                tensor_f32("b3", &[5]),
            ]);
        } else {
            nodes.push(node("Gemm", "fc", &["f", "w", "b"], &["logits"], vec![attr_i("transB", 1)]));
            inits.extend([tensor_f32("w", &[5, 64]), tensor_f32("b", &[5])]);
        }
        model(GraphProto {
            node: nodes,
            initializer: inits,
            input: vec![value_info("img", &[D::S("N"), D::N(1), D::N(8), D::N(8)])],
            output: vec![value_info("logits", &[D::S("N"), D::N(5)])],
            ..Default::default()
        })
    };
    let a = run(&mlp(true)).unwrap();
    assert_eq!(a.feature.name, "a2", "{}", a.feature.reason);
    assert_eq!(a.feature.choice, "last-hidden");
    assert!(
        a.feature.reason.contains("no convolution") && a.feature.reason.contains("Relu output"),
        "{}",
        a.feature.reason
    );
    let dir = tempdir();
    let path = write_model(dir.path(), "mlp.onnx", &mlp(true));
    let out = inspect(&path, &["--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"a2\""));
    // No hidden layer (a linear model of the image): the classifier layer's input.
    let a = run(&mlp(false)).unwrap();
    assert_eq!((a.feature.name.as_str(), a.feature.choice.as_str()), ("f", "classifier-input"));
    assert!(a.feature.reason.contains("no hidden layer"), "{}", a.feature.reason);
    // The Concat network of the refusal test above, without its convolution, is an MLP too: its last
    // hidden layer is the Relu after the Concat.
    let m = concat_network(false);
    assert_eq!(run(&m).unwrap().feature.name, "hr");
}
