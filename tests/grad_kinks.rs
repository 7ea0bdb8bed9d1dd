//! Gradients at kinks (issue: ResNet-50's float32 gradient "jumps" away from float64 autograd on
//! some inputs and agrees again one float32 step away). The cause, reproduced here on a model small
//! enough to reason about exactly: a ReLU pre-activation that is positive in float64 (2.98e-8) but
//! rounds to exactly 0 in float32, so the float32 forward pass is on the other linear piece. The
//! float32 gradient is then the exact one-sided derivative of that piece (an element of the Clarke
//! subdifferential at a point within float32 rounding of the input), not an error of a backward
//! rule; PyTorch's float32 gradient does the same wherever its own rounding crosses a kink. See
//! docs/coverage.md, "Gradients at kinks".

mod common;

use aegis_audit::grad::GradSpec;
use aegis_audit::onnx::builder::{attr_int, Dim, GraphBuilder};
use aegis_audit::onnx::proto::tensor_proto::DataType;
use aegis_audit::onnx::proto::ModelProto;
use common::{eval_grad, grad_model, ref64, rel_err};
use ndarray::{ArrayD, IxDyn};

/// x [N, 1, 1, 4] → x·a + b → Relu → Flatten → Gemm(4 → 3). Unit 0 has a = 1/3 (float32
/// 0.333333343…) and b = −1: at x₀ = 3 its pre-activation is 3·0.333333343 − 1 = 2.98e-8 in float64
/// but 1 − 1 = 0 in float32 (the product rounds to 1.0).
fn model() -> (ModelProto, GradSpec) {
    let mut b = GraphBuilder::new();
    b.input("img", DataType::Float, &[Dim::Param("N".into()), Dim::Fixed(1), Dim::Fixed(1), Dim::Fixed(4)]);
    let a = b.const_f32("a", &[1, 1, 1, 4], &[1.0 / 3.0, 0.5, -0.7, 0.9]);
    let c = b.const_f32("b", &[1, 1, 1, 4], &[-1.0, 0.1, 0.2, -0.3]);
    let m = b.op("Mul", &["img", &a], vec![]);
    let p = b.op("Add", &[&m, &c], vec![]);
    let r = b.op("Relu", &[&p], vec![]);
    let f = b.op("Flatten", &[&r], vec![attr_int("axis", 1)]);
    let w = b.const_f32("w", &[3, 4], &[0.8, -0.5, 0.3, 0.6, -0.4, 0.9, -0.2, 0.1, 0.5, 0.2, 0.7, -0.6]);
    let logits = b.op("Gemm", &[&f, &w], vec![attr_int("transB", 1)]);
    b.output(&logits, DataType::Float, None);
    let model = b.into_model("kink", 17, 8);
    (model, GradSpec { input: "img".into(), logits: logits.clone(), features: r })
}

/// Cross-entropy of the float64 evaluation of `model` at `x` with label `y`.
fn loss64(model: &ModelProto, logits: &str, x: &[f64], y: usize) -> f64 {
    let xa = ArrayD::from_shape_vec(IxDyn(&[1, 1, 1, 4]), x.to_vec()).unwrap();
    let l = ref64::eval(model, &xa, logits);
    let row: Vec<f64> = (0..3).map(|j| l[IxDyn(&[0, j])]).collect();
    let m = row.iter().cloned().fold(f64::MIN, f64::max);
    m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln() - row[y]
}

/// The derivative of the linear piece on one side of `x`, per coordinate, by finite differences in
/// float64 between two points on that side: [x, x + h] for `dir` = +1, [x − 2h, x − h] for −1.
fn one_sided(model: &ModelProto, logits: &str, x: &[f64], y: usize, dir: f64) -> Vec<f64> {
    let h = 1e-6;
    (0..x.len())
        .map(|i| {
            let at = |k: f64| {
                let mut xs = x.to_vec();
                xs[i] += k * h;
                loss64(model, logits, &xs, y)
            };
            if dir > 0.0 {
                (at(1.0) - at(0.0)) / h
            } else {
                (at(-1.0) - at(-2.0)) / h
            }
        })
        .collect()
}

#[test]
fn a_relu_pre_activation_that_rounds_to_zero_gives_the_other_one_sided_derivative() {
    let (model, spec) = model();
    let g = grad_model(&model, &spec).expect("gradient graph");
    let y = 1usize;
    let x32 = [3.0f32, 0.4, -0.6, 0.8];
    let x64: Vec<f64> = x32.iter().map(|&v| v as f64).collect();
    // The premise, in plain arithmetic: positive in float64, exactly zero in float32.
    let a32 = 1.0f32 / 3.0;
    assert!((a32 as f64) * 3.0 - 1.0 > 2.9e-8);
    assert_eq!(a32 * 3.0 - 1.0, 0.0);

    let ours: Vec<f64> =
        eval_grad(&g, &[1, 1, 1, 4], &x32, &[y as i64]).unwrap().grad.iter().map(|&v| v as f64).collect();
    let right = one_sided(&model, &spec.logits, &x64, y, 1.0); // the piece float64 is on
    let left = one_sided(&model, &spec.logits, &x64, y, -1.0); // the piece float32 is on
                                                               // The jump: far from float64's gradient, entirely through pixel 0 (unit 0 is switched off).
    assert!(rel_err(&ours, &right) > 0.1, "ours {ours:?} vs float64 {right:?}");
    assert_eq!(ours[0], 0.0, "float32 pre-activation is exactly 0: Where(X > 0) passes nothing");
    assert!((right[0]).abs() > 0.05, "float64 is on the active side: {right:?}");
    // ... and exactly the one-sided derivative from the other side: an equally valid subgradient.
    let e = rel_err(&ours, &left);
    assert!(e < 1e-4, "ours {ours:?} vs left derivative {left:?}: {e:.2e}");

    // One float32 step up, float32 and float64 are on the same piece and agree again.
    let x_next = [f32::from_bits(3.0f32.to_bits() + 1), 0.4, -0.6, 0.8];
    let xn64: Vec<f64> = x_next.iter().map(|&v| v as f64).collect();
    let ours_next: Vec<f64> =
        eval_grad(&g, &[1, 1, 1, 4], &x_next, &[y as i64]).unwrap().grad.iter().map(|&v| v as f64).collect();
    let both: Vec<f64> = one_sided(&model, &spec.logits, &xn64, y, 1.0);
    let e = rel_err(&ours_next, &both);
    assert!(e < 1e-4, "one float32 step away: {ours_next:?} vs {both:?}: {e:.2e}");
}
