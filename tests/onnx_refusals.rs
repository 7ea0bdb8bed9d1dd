//! Models whose attributes or shapes are impossible (issue 14): each is refused before anything is
//! handed to ONNX Runtime, with exit code 2 and one line naming the node, attribute or value, the
//! same way by the library's analysis, `inspect`, `export-grad` (with and without the analysis)
//! and the audit's preparation. Names from the model are escaped in every message and in
//! `inspect`'s report.

mod onnx_common;

use std::path::Path;
use std::process::Output;

use aegis_audit::analysis::{analyze, FeatureChoice};
use aegis_audit::audit::PreparedModel;
use aegis_audit::onnx::proto::attribute_proto::AttributeType;
use aegis_audit::onnx::proto::{AttributeProto, ModelProto};
use aegis_audit::onnx::{load_model, LoadLimits};
use aegis_audit::runtime::SessionConfig;
use onnx_common::{
    assert_input_error, attr_i, attr_ints, inspect, plain_cnn_of_side, tempdir, tensor_f32, write_model,
};

/// The common small CNN on a 28×28 grayscale input (the audit's MNIST data fits it).
fn cnn28() -> ModelProto {
    plain_cnn_of_side(28)
}

fn set_attr(m: &mut ModelProto, node: &str, attr: AttributeProto) {
    let n = m.graph.as_mut().unwrap().node.iter_mut().find(|n| n.name.as_deref() == Some(node)).unwrap();
    n.attribute.retain(|a| a.name != attr.name);
    n.attribute.push(attr);
}

fn attr_s(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(v.as_bytes().to_vec()),
        ..Default::default()
    }
}

fn bin(args: &[&str], model: &Path) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_aegis-audit"))
        .args(args)
        .arg(model)
        .env("ORT_DYLIB_PATH", std::env::var_os("ORT_DYLIB_PATH").unwrap_or_default())
        .output()
        .expect("run aegis-audit")
}

/// Checks that `m` is refused with `needle` by the library's analysis, `inspect`, `export-grad`
/// (analysed and with explicit tensor names), and the audit's model preparation.
fn assert_refused_everywhere(m: &ModelProto, needle: &str) {
    let dir = tempdir();
    let path = write_model(dir.path(), "model.onnx", m);
    let lib = match load_model(&path, &LoadLimits::default()) {
        Err(e) => e.to_string(),
        Ok(model) => match analyze(&model, &FeatureChoice::LastConv) {
            Err(e) => e.to_string(),
            Ok(a) => panic!("analysis accepted the model: {a:?}"),
        },
    };
    assert!(lib.contains(needle), "expected '{needle}' in the analysis error: {lib}");
    assert!(!lib.contains('\n'), "{lib:?}");
    assert_input_error(&inspect(&path, &[]), needle);
    let out = dir.path().join("grad.onnx");
    assert_input_error(&bin(&["export-grad", "-o", out.to_str().unwrap()], &path), needle);
    assert!(!out.exists(), "a gradient graph was written");
    let named =
        ["export-grad", "-o", out.to_str().unwrap(), "--input", "x", "--logits", "logits", "--feature-tensor", "r1"];
    if load_model(&path, &LoadLimits::default()).is_ok() {
        assert_input_error(&bin(&named, &path), needle);
    }
    let config = SessionConfig { intra_threads: 1, ..SessionConfig::default() };
    let prep = PreparedModel::load(&path, &FeatureChoice::LastConv, &LoadLimits::default(), &config).unwrap_err();
    assert!(prep.to_string().contains(needle), "expected '{needle}' from the audit's preparation: {prep}");
    // The audit itself: exit 2, one line, no report.
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/mnist-subset");
    let sarif = dir.path().join("report.sarif");
    let audit = bin(&["audit", "--data", data.to_str().unwrap(), "--sarif", sarif.to_str().unwrap()], &path);
    assert_input_error(&audit, needle);
    assert!(!sarif.exists(), "a report was written");
}

#[test]
fn the_base_model_is_accepted() {
    let dir = tempdir();
    let path = write_model(dir.path(), "model.onnx", &cnn28());
    let out = inspect(&path, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn conv_kernel_shape_larger_than_the_input() {
    // The attribute alone disagrees with the 3×3 weight.
    let mut m = cnn28();
    set_attr(&mut m, "conv1", attr_ints("kernel_shape", &[100, 100]));
    assert_refused_everywhere(
        &m,
        "node 'conv1' (Conv), attribute 'kernel_shape': [100, 100] differs from the spatial dims [3, 3]",
    );
    // With a 100×100 weight too: the window is larger than the padded 28×28 input.
    let g = m.graph.as_mut().unwrap();
    g.initializer[0] = tensor_f32("w1", &[8, 1, 100, 100]);
    assert_refused_everywhere(
        &m,
        "node 'conv1' (Conv): the window is larger than the padded input: kernel_shape [100, 100]",
    );
}

#[test]
fn conv_dilations_larger_than_the_input() {
    let mut m = cnn28();
    set_attr(&mut m, "conv1", attr_ints("dilations", &[50, 50]));
    assert_refused_everywhere(&m, "node 'conv1' (Conv): the window is larger than the padded input: kernel_shape [3, 3] with dilations [50, 50] spans [101, 101]");
}

#[test]
fn maxpool_kernel_larger_than_the_input() {
    let mut m = cnn28();
    set_attr(&mut m, "pool1", attr_ints("kernel_shape", &[100, 100]));
    assert_refused_everywhere(
        &m,
        "node 'pool1' (MaxPool): the window is larger than the padded input: kernel_shape [100, 100]",
    );
}

#[test]
fn zero_kernel() {
    let mut m = cnn28();
    set_attr(&mut m, "pool1", attr_ints("kernel_shape", &[0, 2]));
    assert_refused_everywhere(
        &m,
        "node 'pool1' (MaxPool), attribute 'kernel_shape': [0, 2]: every value must be positive",
    );
    let mut m = cnn28();
    set_attr(&mut m, "conv1", attr_ints("kernel_shape", &[0, 3]));
    assert_refused_everywhere(
        &m,
        "node 'conv1' (Conv), attribute 'kernel_shape': [0, 3]: every value must be positive",
    );
}

#[test]
fn zero_stride() {
    let mut m = cnn28();
    set_attr(&mut m, "conv1", attr_ints("strides", &[0, 1]));
    assert_refused_everywhere(&m, "node 'conv1' (Conv), attribute 'strides': [0, 1]: every value must be positive");
    let mut m = cnn28();
    set_attr(&mut m, "pool1", attr_ints("strides", &[2, 0]));
    assert_refused_everywhere(&m, "node 'pool1' (MaxPool), attribute 'strides': [2, 0]: every value must be positive");
}

#[test]
fn negative_pads() {
    let mut m = cnn28();
    set_attr(&mut m, "conv1", attr_ints("pads", &[1, -1, 1, 1]));
    assert_refused_everywhere(
        &m,
        "node 'conv1' (Conv), attribute 'pads': [1, -1, 1, 1]: every value must not be negative",
    );
}

#[test]
fn bad_group() {
    let mut m = cnn28();
    set_attr(&mut m, "conv1", attr_i("group", 3));
    assert_refused_everywhere(&m, "node 'conv1' (Conv), attribute 'group': 3 does not fit: the input has 1 channels");
    let mut m = cnn28();
    set_attr(&mut m, "conv1", attr_i("group", 0));
    assert_refused_everywhere(&m, "node 'conv1' (Conv), attribute 'group': 0: must be positive");
}

#[test]
fn bias_size_mismatch() {
    let mut m = cnn28();
    m.graph.as_mut().unwrap().initializer[1] = tensor_f32("b1", &[5]);
    assert_refused_everywhere(
        &m,
        "node 'conv1' (Conv): bias B has shape [5]; the weight [8, 1, 3, 3] gives 8 output channels",
    );
}

#[test]
fn bad_auto_pad() {
    let mut m = cnn28();
    set_attr(&mut m, "conv1", attr_s("auto_pad", "SAME_SIDEWAYS"));
    assert_refused_everywhere(&m, "node 'conv1' (Conv), attribute 'auto_pad': unknown value 'SAME_SIDEWAYS'");
}

#[test]
fn flatten_axis_0_breaks_the_head() {
    let mut m = cnn28();
    set_attr(&mut m, "flatten", attr_i("axis", 0));
    assert_refused_everywhere(
        &m,
        "node 'flatten' (Flatten): its output 'f' is [1, 1568] for 1 image and [1, 3136] for 2",
    );
}

#[test]
fn gemm_inner_dimensions_that_differ() {
    let mut m = cnn28();
    m.graph.as_mut().unwrap().initializer[2] = tensor_f32("wf", &[10, 100]);
    assert_refused_everywhere(
        &m,
        "node 'fc' (Gemm): A [1, 1568] (transA 0) and B [10, 100] (transB 1) have inner dimensions 1568 and 100",
    );
}

#[test]
fn opsets_outside_what_onnx_runtime_runs() {
    for v in [1, 6, 27, 99] {
        let mut m = cnn28();
        m.opset_import[0].version = Some(v);
        assert_refused_everywhere(
            &m,
            &format!("unsupported ONNX opset {v}: aegis-audit reads models importing opset 7 to 26"),
        );
    }
}

#[test]
fn hostile_node_names_are_escaped_in_errors() {
    let mut m = cnn28();
    let g = m.graph.as_mut().unwrap();
    g.node[0].name = Some("conv\n\u{1b}[31mred\0\u{202e}".into());
    set_attr(&mut m, "conv\n\u{1b}[31mred\0\u{202e}", attr_i("group", 3));
    assert_refused_everywhere(&m, "node 'conv\\n\\u{1b}[31mred\\0\\u{202e}' (Conv), attribute 'group'");
}

#[test]
fn hostile_names_are_escaped_in_inspect_output() {
    let mut m = cnn28();
    let g = m.graph.as_mut().unwrap();
    g.node[4].name = Some("fc\n\u{1b}[2Jfake line".into());
    let dir = tempdir();
    let path = write_model(dir.path(), "model.onnx", &m);
    let out = inspect(&path, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("from Gemm 'fc\\n\\u{1b}[2Jfake line'"), "{stdout}");
    assert!(!stdout.contains('\u{1b}'), "{stdout:?}");
    assert!(!stdout.lines().any(|l| l.starts_with("fake line")), "{stdout}");
}

#[test]
fn nul_in_an_external_data_location_is_escaped() {
    let mut m = cnn28();
    let g = m.graph.as_mut().unwrap();
    g.initializer[3] = onnx_common::tensor_external("bf", &[10], "weights\0.bin\n", &[]);
    let dir = tempdir();
    let path = write_model(dir.path(), "model.onnx", &m);
    let err = assert_input_error(&inspect(&path, &[]), "location 'weights\\0.bin\\n'");
    assert!(!err.contains('\0'), "{err:?}");
}
