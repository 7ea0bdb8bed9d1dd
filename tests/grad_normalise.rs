//! Input normalisation (`--input-mean`, `--input-std`): a model that expects normalised images, audited
//! with its normalisation, is the model that takes pixels. Each fixture model (1 and 3 channels) is
//! rewritten to take `(x − mean) / std` (a de-normalising front, `x' · std + mean`, before its own
//! nodes); prepared with the normalisation, its logits and input gradient on the same pixels equal the
//! original's up to float32 rounding, and without it they differ. On the command line: both lists or
//! neither, values checked, a count that fits neither 1 nor the channels refused, one line each; the
//! report records the normalisation.

mod cli_support;
mod common;

use std::path::{Path, PathBuf};

use aegis_audit::analysis::FeatureChoice;
use aegis_audit::attack::GradientModel;
use aegis_audit::audit::{AnalysedModel, PreparedModel};
use aegis_audit::grad::InputNormalisation;
use aegis_audit::onnx::builder::tensor_f32;
use aegis_audit::onnx::proto::NodeProto;
use aegis_audit::onnx::{self, LoadLimits};
use cli_support::{assert_refused, root};
use rand::{Rng, SeedableRng};

/// Writes a copy of `model` that expects normalised input: `x' · std + mean` feeds the original nodes.
fn denormalising_copy(model: &Path, channels: usize, mean: &[f32], std: &[f32], out: &Path) {
    let m = onnx::load_model(model, &LoadLimits::default()).unwrap();
    let mut proto = m.proto.clone();
    let g = proto.graph.as_mut().unwrap();
    let input = g.input[0].name.clone().unwrap();
    let raw = format!("{input}__test_raw");
    for n in &mut g.node {
        for t in n.input.iter_mut().filter(|t| **t == input) {
            *t = raw.clone();
        }
    }
    let dims = [1, channels as i64, 1, 1];
    g.initializer.push(tensor_f32("__test_std", &dims, std));
    g.initializer.push(tensor_f32("__test_mean", &dims, mean));
    let node = |op: &str, a: &str, b: &str, out: &str| NodeProto {
        input: vec![a.into(), b.into()],
        output: vec![out.into()],
        name: Some(format!("{out}_{op}")),
        op_type: Some(op.into()),
        ..Default::default()
    };
    g.node.insert(0, node("Add", "__test_scaled", "__test_mean", &raw));
    g.node.insert(0, node("Mul", &input, "__test_std", "__test_scaled"));
    std::fs::write(out, onnx::encode(&proto)).unwrap();
}

fn max_rel(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    a.iter().zip(b).map(|(p, q)| (p - q).abs()).fold(0.0, f32::max) / scale
}

fn compare(fixture: &str, channels: usize, mean: &[f32], std: &[f32]) {
    common::init_ort();
    let dir = tempfile::tempdir().unwrap();
    let original = root().join(fixture);
    let copy = dir.path().join("normalised-input.onnx");
    denormalising_copy(&original, channels, mean, std, &copy);
    let config = common::config();
    let feature = FeatureChoice::default();
    let mut plain = PreparedModel::load(&original, &feature, &LoadLimits::default(), &config).unwrap();
    let n = InputNormalisation { mean: mean.to_vec(), std: std.to_vec() };
    let analysed = AnalysedModel::load(&copy, &feature, &LoadLimits::default()).unwrap();
    let mut normalised = analysed.prepare(&config, Some(&n)).unwrap();
    let analysed = AnalysedModel::load(&copy, &feature, &LoadLimits::default()).unwrap();
    let mut unnormalised = analysed.prepare(&config, None).unwrap();

    let (c, h, w) = plain.model.image_shape();
    let k = plain.model.num_classes();
    let count = 8;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let x: Vec<f32> = (0..count * c * h * w).map(|_| rng.gen::<f32>()).collect();
    let y: Vec<i64> = (0..count).map(|i| (i % k) as i64).collect();
    let a = plain.model.eval(&x, count, &y).unwrap();
    let b = normalised.model.eval(&x, count, &y).unwrap();
    assert!(max_rel(&b.logits, &a.logits) < 1e-4, "logits: {}", max_rel(&b.logits, &a.logits));
    assert!(max_rel(&b.grad, &a.grad) < 1e-3, "gradient: {}", max_rel(&b.grad, &a.grad));
    let wrong = unnormalised.model.eval(&x, count, &y).unwrap();
    assert!(max_rel(&wrong.logits, &a.logits) > 1e-2, "the normalisation must matter for the test to mean anything");
}

#[test]
fn a_grayscale_model_with_its_normalisation_equals_the_model_on_pixels() {
    compare("fixtures/zoo/robust_localised.onnx", 1, &[0.1307], &[0.3081]);
}

#[test]
fn an_rgb_model_with_per_channel_normalisation_equals_the_model_on_pixels() {
    compare("fixtures/rgb/cifar-resnet-robust-clean.onnx", 3, &[0.4914, 0.4822, 0.4465], &[0.247, 0.243, 0.261]);
}

fn aegis(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_aegis-audit")).current_dir(root()).args(args).output().unwrap()
}

const MODEL: &str = "fixtures/zoo/robust_localised.onnx";
const DATA: &str = "fixtures/mnist-subset";

#[test]
fn normalisation_flags_are_checked_with_one_line_each() {
    let cases: &[(&[&str], &[&str])] = &[
        (&["--input-mean", "0.5"], &["--input-std"]),
        (&["--input-mean", "0.5", "--input-std", "0"], &["--input-std: 0: a standard deviation must be above 0"]),
        (&["--input-mean", "0.5,x", "--input-std", "1"], &["'x' is not a number"]),
        (&["--input-mean", "inf", "--input-std", "1"], &["--input-mean: inf is not a finite number"]),
        (
            &["--input-mean", "0.1,0.2,0.3", "--input-std", "1"],
            &["--input-mean: 3 values for a model whose image input has 1 channel(s)"],
        ),
    ];
    for (flags, needles) in cases {
        let mut args = vec![MODEL, "--data", DATA, "--quiet"];
        args.extend_from_slice(flags);
        assert_refused(&aegis(&args), needles);
    }
}

#[test]
fn the_report_records_the_normalisation() {
    let dir = tempfile::tempdir().unwrap();
    let copy: PathBuf = dir.path().join("normalised-input.onnx");
    denormalising_copy(&root().join(MODEL), 1, &[0.1307], &[0.3081], &copy);
    let json = dir.path().join("r.json");
    let out = aegis(&[
        copy.to_str().unwrap(),
        "--data",
        DATA,
        "--quiet",
        "--method",
        "neural-cleanse",
        "--nc-images",
        "20",
        "--nc-epochs",
        "1",
        "--input-mean",
        "0.1307",
        "--input-std",
        "0.3081",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let n = &report["parameters"]["input_normalisation"];
    assert_eq!(n["mean"][0].as_f64().unwrap() as f32, 0.1307f32, "{n}");
    assert_eq!(n["std"][0].as_f64().unwrap() as f32, 0.3081f32, "{n}");
}
