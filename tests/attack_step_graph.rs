//! The in-graph PGD step against the Rust-side step it replaces: same images after one step (up to
//! the order of a float64 sum), after many steps, for L2 and L∞, targeted and untargeted, with a
//! ragged last batch; the same non-finite error; fresh input names that never collide with the
//! model's tensors; the loss and features head left out of the step graph.

mod common;
mod onnx_common;

use aegis_audit::analysis::FeatureChoice;
use aegis_audit::attack::step_graph::step_graph;
use aegis_audit::attack::{AttackError, Goal, Norm, OnnxGradModel, PgdParams, PgdResult};
use aegis_audit::audit::PreparedModel;
use aegis_audit::data::{load_dataset, ImageShape, Split};
use aegis_audit::grad::GradSpec;
use aegis_audit::onnx::proto::tensor_proto::DataType;
use aegis_audit::onnx::LoadLimits;
use onnx_common::{attr_i, model, node, tensor_f32, value_info, D};
use prost::Message;

fn zoo_model() -> PreparedModel {
    common::init_ort();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/zoo/robust_localised.onnx");
    PreparedModel::load(&path, &FeatureChoice::LastConv, &LoadLimits::default(), &common::config()).unwrap()
}

fn test_images(n: usize) -> (Vec<f32>, Vec<i64>) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/mnist-subset");
    let data = load_dataset(&root, Split::Test, ImageShape::new(1, 28, 28)).unwrap();
    (data.pixels[..n * 784].to_vec(), data.labels[..n].to_vec())
}

fn run(m: &mut OnnxGradModel, fused: bool, p: &PgdParams, x: &[f32], y: &[i64]) -> PgdResult {
    m.set_fused_steps(fused);
    p.clone().check().unwrap().run(m, x, y, |_| {}).unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(p, q)| (p - q).abs()).fold(0.0, f32::max)
}

/// One step: the step graph does the Rust step's float32 operations in the same order and its two
/// norms in float64 like the Rust side, so the only difference left is the order in which ONNX
/// Runtime adds up a float64 sum. That moves a norm by at most one float32 unit (relative 6e-8),
/// so a pixel by at most a few units of 1e-8 (pixels are in [0, 1], steps ≤ 0.3): 1e-6 leaves a
/// margin of 10 and still catches any wrong operation (a missing projection moves pixels by > 1e-3).
#[test]
fn one_fused_step_equals_the_rust_step() {
    let mut prepared = zoo_model();
    let (x, y) = test_images(30);
    let targets: Vec<i64> = y.iter().map(|l| (l + 3) % 10).collect();
    let cases = [
        (Norm::L2, Goal::Targeted, 0.3, 0.5, &targets),
        (Norm::L2, Goal::Untargeted, 0.3, 0.2, &y),
        (Norm::L2, Goal::Untargeted, 0.1, 10.0, &y),
        (Norm::Linf, Goal::Untargeted, 0.01, 0.02, &y),
        (Norm::Linf, Goal::Targeted, 0.05, 0.03, &targets),
    ];
    for (norm, goal, step, eps, labels) in cases {
        let p = PgdParams { norm, eps, step, steps: 1, goal, batch_size: 16 };
        let fused = run(&mut prepared.model, true, &p, &x, labels);
        let rust = run(&mut prepared.model, false, &p, &x, labels);
        let d = max_diff(&fused.images, &rust.images);
        assert!(d <= 1e-6, "{norm:?} {goal:?}: fused and Rust steps differ by {d}");
        assert!(max_diff(&fused.images, &x) > 1e-3, "{norm:?} {goal:?}: the step did not move the images");
        assert_eq!(fused.evaluations, rust.evaluations);
        assert_eq!(fused.success, rust.success);
        assert_eq!(fused.logits.len(), rust.logits.len());
        assert_eq!(fused.features.len(), rust.features.len());
    }
}

/// Many steps: one-unit differences can grow through the ReLU network's kinks, but over 20 steps on
/// 30 images they stay far below a pixel level (1e-3) and no decision changes.
#[test]
fn twenty_fused_steps_track_the_rust_steps() {
    let mut prepared = zoo_model();
    let (x, y) = test_images(30);
    let targets: Vec<i64> = y.iter().map(|l| (l + 5) % 10).collect();
    for (goal, labels, eps) in [(Goal::Untargeted, &y, 1.5f32), (Goal::Targeted, &targets, 100.0)] {
        let p = PgdParams { norm: Norm::L2, eps, step: 0.25, steps: 20, goal, batch_size: 16 };
        let fused = run(&mut prepared.model, true, &p, &x, labels);
        let rust = run(&mut prepared.model, false, &p, &x, labels);
        let d = max_diff(&fused.images, &rust.images);
        assert!(d <= 1e-3, "{goal:?}: fused and Rust PGD differ by {d} after 20 steps");
        assert_eq!(fused.success, rust.success, "{goal:?}");
        assert_eq!(fused.evaluations, 2 * 21);
        assert!(max_diff(&fused.features, &rust.features) <= 1e-2);
        for i in 0..30 {
            let dist = fused.images[i * 784..(i + 1) * 784]
                .iter()
                .zip(&x[i * 784..(i + 1) * 784])
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!(dist <= eps as f64 * (1.0 + 1e-5), "image {i}: {dist} outside ε = {eps}");
        }
        assert!(fused.images.iter().all(|v| (0.0..=1.0).contains(v)));
    }
}

/// Several step workers split the images into even shares, each stepped on its own thread in
/// batches of at most the batch size: per image the same arithmetic, so the same images.
#[test]
fn step_workers_share_the_images_and_agree_with_one_worker() {
    let mut prepared = zoo_model();
    let (x, y) = test_images(30);
    let p = PgdParams { norm: Norm::L2, eps: 1.5, step: 0.25, steps: 5, goal: Goal::Untargeted, batch_size: 16 };
    prepared.model.set_step_workers(1);
    let one = run(&mut prepared.model, true, &p, &x, &y);
    prepared.model.set_step_workers(3);
    let mut seen = Vec::new();
    let three = p.clone().check().unwrap().run(&mut prepared.model, &x, &y, |d| seen.push(d)).unwrap();
    assert!(max_diff(&one.images, &three.images) <= 1e-6, "{}", max_diff(&one.images, &three.images));
    assert_eq!(one.success, three.success);
    assert!(max_diff(&one.logits, &three.logits) <= 1e-4);
    // Shares of 10 images, one batch each: 3 × 5 steps, then 2 final evaluations of ≤ 16 images.
    assert_eq!(three.evaluations, 3 * 5 + 2);
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen.last(), Some(&30));
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
}

/// A memory budget caps the images per session run: batches larger than the cap are evaluated and
/// stepped in pieces. Every output is per image, so PGD gives the same images, logits and features,
/// on both the step graph and the gradient session, with one worker or several.
#[test]
fn a_batch_cap_splits_runs_without_changing_results() {
    let mut prepared = zoo_model();
    let (x, y) = test_images(30);
    let p = PgdParams { norm: Norm::L2, eps: 1.5, step: 0.25, steps: 5, goal: Goal::Untargeted, batch_size: 16 };
    for (fused, workers) in [(true, 1), (true, 2), (false, 1)] {
        prepared.model.set_step_workers(workers);
        prepared.model.set_max_batch(usize::MAX);
        let whole = run(&mut prepared.model, fused, &p, &x, &y);
        prepared.model.set_max_batch(3);
        let pieces = run(&mut prepared.model, fused, &p, &x, &y);
        let d = max_diff(&whole.images, &pieces.images);
        assert!(d <= 1e-6, "fused {fused}, {workers} workers: images differ by {d}");
        assert!(max_diff(&whole.logits, &pieces.logits) <= 1e-5);
        assert!(max_diff(&whole.features, &pieces.features) <= 1e-5);
        assert_eq!(whole.success, pieces.success);
        assert_eq!(whole.evaluations, pieces.evaluations, "the detector's count is of batches it asked for");
    }
    // A direct evaluation of 7 images in pieces of 3 equals the whole one.
    use aegis_audit::attack::GradientModel;
    prepared.model.set_max_batch(usize::MAX);
    let whole = prepared.model.eval(&x[..7 * 784], 7, &y[..7]).unwrap();
    prepared.model.set_max_batch(3);
    let pieces = prepared.model.eval(&x[..7 * 784], 7, &y[..7]).unwrap();
    assert!(max_diff(&whole.grad, &pieces.grad) <= 1e-6);
    assert!(max_diff(&whole.loss, &pieces.loss) <= 1e-6);
    assert_eq!(pieces.logits.len(), 70);
}

/// With several workers a batch is evaluated in even shares, one single-threaded session each, at
/// the same time: the same per-image outputs as one session, in the same order; small batches stay on
/// one session.
#[test]
fn evaluation_workers_share_a_batch_and_agree_with_one_session() {
    use aegis_audit::attack::GradientModel;
    let mut prepared = zoo_model();
    let (x, y) = test_images(30);
    prepared.model.set_step_workers(1);
    let one = prepared.model.eval(&x, 30, &y).unwrap();
    for workers in [2, 3] {
        prepared.model.set_step_workers(workers);
        assert_eq!(prepared.model.sessions(), 1 + 2 * workers);
        let shared = prepared.model.eval(&x, 30, &y).unwrap();
        assert!(max_diff(&one.grad, &shared.grad) <= 1e-6, "{workers} workers");
        assert!(max_diff(&one.logits, &shared.logits) <= 1e-5);
        assert!(max_diff(&one.loss, &shared.loss) <= 1e-5);
        assert!(max_diff(&one.features, &shared.features) <= 1e-5);
        // With a memory cap too: shares of 10 or 15 images in pieces of 4.
        prepared.model.set_max_batch(4);
        let capped = prepared.model.eval(&x, 30, &y).unwrap();
        assert!(max_diff(&one.grad, &capped.grad) <= 1e-6, "{workers} workers, capped");
        prepared.model.set_max_batch(usize::MAX);
        let small = prepared.model.eval(&x[..5 * 784], 5, &y[..5]).unwrap();
        assert!(max_diff(&one.grad[..5 * 784], &small.grad) <= 1e-6);
    }
    prepared.model.set_step_workers(1);
    assert_eq!(prepared.model.sessions(), 2);
}

/// logits = Flatten(x) · W / 0: every gradient value is infinite or NaN.
fn poisoned_model() -> OnnxGradModel {
    let graph = aegis_audit::onnx::proto::GraphProto {
        name: Some("poisoned".into()),
        node: vec![
            node("Flatten", "flatten", &["input"], &["f"], vec![attr_i("axis", 1)]),
            node("Gemm", "fc", &["f", "w", "b"], &["z"], vec![attr_i("transB", 1)]),
            node("Div", "div", &["z", "zero"], &["logits"], vec![]),
        ],
        initializer: vec![
            tensor_f32("w", &[3, 4]),
            tensor_f32("b", &[3]),
            aegis_audit::onnx::builder::tensor_f32("zero", &[], &[0.0]),
        ],
        input: vec![value_info("input", &[D::S("N"), D::N(1), D::N(2), D::N(2)])],
        output: vec![value_info("logits", &[D::S("N"), D::N(3)])],
        ..Default::default()
    };
    let spec = GradSpec { input: "input".into(), logits: "logits".into(), features: "f".into() };
    let g = common::grad_model(&model(graph), &spec).unwrap();
    OnnxGradModel::new(&g.encode_to_vec(), (1, 2, 2), &common::config()).unwrap()
}

#[test]
fn a_non_finite_gradient_is_the_same_error_on_both_paths() {
    let mut m = poisoned_model();
    let x = vec![0.5f32; 3 * 4];
    for norm in [Norm::L2, Norm::Linf] {
        for (fused, workers) in [(true, 1), (true, 2), (false, 1)] {
            m.set_fused_steps(fused);
            m.set_step_workers(workers);
            let p = PgdParams { norm, eps: 1.0, step: 0.1, steps: 3, goal: Goal::Untargeted, batch_size: 2 };
            let err = p.check().unwrap().run(&mut m, &x, &[0, 1, 2], |_| {}).unwrap_err();
            assert!(
                matches!(err, AttackError::NonFinite { step: 0, example: 0 }),
                "{norm:?} fused={fused} workers={workers}: {err}"
            );
        }
    }
}

#[test]
fn step_graph_names_are_fresh_and_unneeded_nodes_are_left_out() {
    // A model whose own tensors are called like the step graph's extra inputs and outputs.
    let mut m = onnx_common::plain_cnn();
    let g = m.graph.as_mut().unwrap();
    for n in &mut g.node {
        for t in n.input.iter_mut().chain(n.output.iter_mut()) {
            if t == "c1" {
                *t = "x0".into();
            } else if t == "r1" {
                *t = "step__0".into();
            }
        }
    }
    let spec = GradSpec { input: "x".into(), logits: "logits".into(), features: "f".into() };
    let grad = common::grad_model(&m, &spec).unwrap();
    let sg = step_graph(&grad, Norm::L2).unwrap();
    let graph = sg.model.graph.as_ref().unwrap();
    let inputs: Vec<&str> = graph.input.iter().filter_map(|v| v.name.as_deref()).collect();
    let outputs: Vec<&str> = graph.output.iter().filter_map(|v| v.name.as_deref()).collect();
    let n = &sg.names;
    assert_eq!(inputs, ["x", "y", n.x0.as_str(), n.step.as_str(), n.eps.as_str()]);
    assert_eq!(outputs, [n.x_next.as_str(), n.grad_sq.as_str()]);
    let tensors: std::collections::HashSet<&str> = grad
        .graph
        .as_ref()
        .unwrap()
        .node
        .iter()
        .flat_map(|n| n.input.iter().chain(&n.output))
        .map(|s| s.as_str())
        .collect();
    for name in [&n.x0, &n.step, &n.eps, &n.x_next, &n.grad_sq] {
        assert!(!tensors.contains(name.as_str()), "'{name}' collides with a tensor of the gradient graph");
    }
    // The loss (Neg) and the exported logits/features Identities are gone; the step is there.
    let ops: Vec<&str> = graph.node.iter().filter_map(|n| n.op_type.as_deref()).collect();
    assert!(!ops.contains(&"Neg"), "{ops:?}");
    assert_eq!(ops.iter().filter(|o| **o == "Identity").count(), 2, "grad and grad_sq only: {ops:?}");
    assert!(ops.contains(&"Clip") && ops.contains(&"ReduceSum") && ops.contains(&"ConvTranspose"));
    let sq = graph.output.iter().find(|v| v.name.as_deref() == Some(n.grad_sq.as_str())).unwrap();
    let Some(aegis_audit::onnx::proto::type_proto::Value::TensorType(t)) = sq.r#type.as_ref().unwrap().value.as_ref()
    else {
        panic!("grad_sq is not a tensor");
    };
    assert_eq!(t.elem_type, Some(DataType::Double as i32));

    // And it runs: x0 = x, a zero-length step leaves the images where they are.
    common::init_ort();
    let mut model = OnnxGradModel::new(&grad.encode_to_vec(), (1, 8, 8), &common::config()).unwrap();
    let x: Vec<f32> = (0..2 * 64).map(|i| (i % 7) as f32 / 7.0).collect();
    let p = PgdParams { norm: Norm::L2, eps: 1.0, step: 1e-30, steps: 2, goal: Goal::Targeted, batch_size: 2 };
    let r = p.check().unwrap().run(&mut model, &x, &[1, 2], |_| {}).unwrap();
    assert!(max_diff(&r.images, &x) < 1e-6);
}
