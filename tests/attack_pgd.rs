//! PGD semantics on a linear softmax classifier with analytic gradients: the ε-ball and [0, 1] hold,
//! steps have the stated length, targeted attacks reach their target, untargeted ones raise the loss,
//! batching does not change results, and bad inputs are errors.

use aegis_audit::attack::{AttackError, Goal, GradOutput, GradientModel, Norm, PgdParams};

/// logits = W x + b with W: k × d. Loss: per-example cross-entropy.
struct Linear {
    w: Vec<f32>,
    b: Vec<f32>,
    k: usize,
    d: usize,
    poison_nan: bool,
}

impl Linear {
    fn new(k: usize, d: usize, seed: u64) -> Self {
        let mut s = seed;
        let mut next = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let w = (0..k * d).map(|_| next()).collect();
        let b = (0..k).map(|_| next() * 0.1).collect();
        Linear { w, b, k, d, poison_nan: false }
    }
}

impl GradientModel for Linear {
    fn image_shape(&self) -> (usize, usize, usize) {
        (1, 1, self.d)
    }
    fn num_classes(&self) -> usize {
        self.k
    }
    fn feature_dim(&self) -> usize {
        0
    }
    fn eval(&mut self, x: &[f32], n: usize, y: &[i64]) -> Result<GradOutput, AttackError> {
        let (k, d) = (self.k, self.d);
        let mut out =
            GradOutput { logits: vec![0.0; n * k], loss: vec![0.0; n], grad: vec![0.0; n * d], features: vec![] };
        for i in 0..n {
            let xi = &x[i * d..(i + 1) * d];
            let z: Vec<f32> =
                (0..k).map(|c| self.b[c] + (0..d).map(|j| self.w[c * d + j] * xi[j]).sum::<f32>()).collect();
            let m = z.iter().cloned().fold(f32::MIN, f32::max);
            let e: Vec<f32> = z.iter().map(|v| (v - m).exp()).collect();
            let s: f32 = e.iter().sum();
            out.loss[i] = -((e[y[i] as usize] / s).ln());
            for (c, ec) in e.iter().enumerate() {
                let coef = ec / s - if c as i64 == y[i] { 1.0 } else { 0.0 };
                for (g, w) in out.grad[i * d..(i + 1) * d].iter_mut().zip(&self.w[c * d..(c + 1) * d]) {
                    *g += coef * w;
                }
            }
            out.logits[i * k..(i + 1) * k].copy_from_slice(&z);
        }
        if self.poison_nan {
            out.grad[0] = f32::NAN;
        }
        Ok(out)
    }
}

fn images(n: usize, d: usize) -> Vec<f32> {
    (0..n * d).map(|i| ((i * 37 % 101) as f32) / 100.0).collect()
}

fn l2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>().sqrt()
}

#[test]
fn l2_stays_in_ball_and_box() {
    let (n, d) = (12, 50);
    let mut model = Linear::new(4, d, 1);
    let x0 = images(n, d);
    let labels: Vec<i64> = (0..n as i64).map(|i| i % 4).collect();
    for goal in [Goal::Targeted, Goal::Untargeted] {
        let pgd = PgdParams { norm: Norm::L2, eps: 0.7, step: 0.3, steps: 10, goal, batch_size: 5 }.check().unwrap();
        let r = pgd.run(&mut model, &x0, &labels, |_| {}).unwrap();
        for i in 0..n {
            let dist = l2(&r.images[i * d..(i + 1) * d], &x0[i * d..(i + 1) * d]);
            assert!(dist <= 0.7 + 1e-5, "example {i}: distance {dist}");
            assert!(dist > 0.1, "example {i} did not move");
        }
        assert!(r.images.iter().all(|v| (0.0..=1.0).contains(v)));
        assert_eq!(r.evaluations, 3 * 11, "3 batches × (10 steps + final)");
    }
}

#[test]
fn one_l2_step_has_the_step_length() {
    let d = 20;
    let mut model = Linear::new(3, d, 2);
    let x0 = vec![0.5f32; d];
    let pgd = PgdParams { norm: Norm::L2, eps: 10.0, step: 0.05, steps: 1, goal: Goal::Targeted, batch_size: 1 }
        .check()
        .unwrap();
    let r = pgd.run(&mut model, &x0, &[1], |_| {}).unwrap();
    assert!((l2(&r.images, &x0) - 0.05).abs() < 1e-5);
}

#[test]
fn targeted_reaches_target_and_untargeted_raises_loss() {
    let (n, d) = (10, 30);
    let mut model = Linear::new(5, d, 3);
    let x0 = images(n, d);
    let targets = vec![2i64; n];
    let pgd = PgdParams { norm: Norm::L2, eps: 5.0, step: 0.25, steps: 60, goal: Goal::Targeted, batch_size: 4 }
        .check()
        .unwrap();
    let r = pgd.run(&mut model, &x0, &targets, |_| {}).unwrap();
    assert!(r.success.iter().all(|s| *s), "targeted PGD failed on a linear model: {:?}", r.success);

    let before = model.eval(&x0, n, &targets).unwrap().loss;
    let pgd = PgdParams { norm: Norm::L2, eps: 0.5, step: 0.1, steps: 10, goal: Goal::Untargeted, batch_size: 4 }
        .check()
        .unwrap();
    let r = pgd.run(&mut model, &x0, &targets, |_| {}).unwrap();
    let after = model.eval(&r.images, n, &targets).unwrap().loss;
    for i in 0..n {
        assert!(after[i] > before[i], "example {i}: loss {} -> {}", before[i], after[i]);
    }
}

#[test]
fn linf_stays_in_box() {
    let (n, d) = (6, 40);
    let mut model = Linear::new(3, d, 4);
    let x0 = images(n, d);
    let labels = vec![0i64; n];
    let pgd = PgdParams { norm: Norm::Linf, eps: 0.03, step: 0.01, steps: 7, goal: Goal::Untargeted, batch_size: 6 }
        .check()
        .unwrap();
    let r = pgd.run(&mut model, &x0, &labels, |_| {}).unwrap();
    for (a, b) in r.images.iter().zip(&x0) {
        assert!((a - b).abs() <= 0.03 + 1e-6);
        assert!((0.0..=1.0).contains(a));
    }
    assert!(r.images.iter().zip(&x0).any(|(a, b)| (a - b).abs() > 0.029));
}

#[test]
fn batch_size_does_not_change_results() {
    let (n, d) = (9, 25);
    let mut model = Linear::new(4, d, 5);
    let x0 = images(n, d);
    let labels: Vec<i64> = (0..n as i64).map(|i| i % 4).collect();
    let run = |bs, model: &mut Linear| {
        PgdParams { norm: Norm::L2, eps: 1.0, step: 0.2, steps: 8, goal: Goal::Targeted, batch_size: bs }
            .check()
            .unwrap()
            .run(model, &x0, &labels, |_| {})
            .unwrap()
            .images
    };
    assert_eq!(run(1, &mut model), run(9, &mut model));
    assert_eq!(run(4, &mut model), run(9, &mut model));
}

#[test]
fn bad_parameters_and_inputs_are_errors() {
    for (eps, step, bs) in [(-1.0, 0.1, 1), (f32::NAN, 0.1, 1), (1.0, 0.0, 1), (1.0, 0.1, 0)] {
        let err = PgdParams { eps, step, batch_size: bs, ..PgdParams::default() }.check().unwrap_err();
        assert!(matches!(err, AttackError::InvalidParam { .. }), "{err}");
    }
    let mut model = Linear::new(3, 10, 6);
    let pgd = PgdParams::default().check().unwrap();
    let err = pgd.run(&mut model, &[0.5; 15], &[0, 1], |_| {}).unwrap_err();
    assert!(err.to_string().contains("15 values for 2 labels"), "{err}");
    let err = pgd.run(&mut model, &[0.5; 10], &[3], |_| {}).unwrap_err();
    assert!(err.to_string().contains("label 3 outside 0..3"), "{err}");
    model.poison_nan = true;
    let err = pgd.run(&mut model, &[0.5; 10], &[1], |_| {}).unwrap_err();
    assert!(matches!(err, AttackError::NonFinite { step: 0, example: 0 }), "{err}");
}

#[test]
fn a_shared_perturbation_stays_in_its_ball_and_moves_every_image_toward_the_target() {
    let (k, d, n) = (3, 16, 12);
    let mut m = Linear::new(k, d, 5);
    let x = images(n, d);
    let targets = vec![2i64; n];
    let loss = |m: &mut Linear, delta: &[f32]| -> f32 {
        let xd: Vec<f32> =
            x.chunks(d).flat_map(|xi| xi.iter().zip(delta).map(|(a, b)| (a + b).clamp(0.0, 1.0))).collect();
        m.eval(&xd, n, &targets).unwrap().loss.iter().sum()
    };
    let before = loss(&mut m, &vec![0.0; d]);
    for (norm, eps) in [(Norm::L2, 0.5f32), (Norm::Linf, 0.1)] {
        let pgd =
            PgdParams { norm, eps, step: eps / 4.0, steps: 8, goal: Goal::Targeted, batch_size: 5 }.check().unwrap();
        let r = pgd.run_shared(&mut m, &x, &targets, vec![0.0; d], None).unwrap();
        assert_eq!(r.delta.len(), d);
        match norm {
            Norm::L2 => assert!(l2(&r.delta, &vec![0.0; d]) <= eps * 1.0001),
            Norm::Linf => assert!(r.delta.iter().all(|v| v.abs() <= eps)),
        }
        assert!(loss(&mut m, &r.delta) < before, "{norm:?}: the summed targeted loss falls");
        assert_eq!(r.predictions.len(), n);
        // 8 steps and the final check, 3 batches each.
        assert_eq!(r.evaluations, 9 * 3);
        // Continuing from the result with its gradient: the same as one run of twice the steps, one
        // batch pass fewer than evaluating that gradient again.
        let longer =
            PgdParams { norm, eps, step: eps / 4.0, steps: 16, goal: Goal::Targeted, batch_size: 5 }.check().unwrap();
        let once = longer.run_shared(&mut m, &x, &targets, vec![0.0; d], None).unwrap();
        let again = pgd.run_shared(&mut m, &x, &targets, r.delta.clone(), Some(r.grad.clone())).unwrap();
        assert_eq!(again.delta, once.delta);
        assert_eq!(again.evaluations, 8 * 3);
    }
    // A perturbation of the wrong size, or a non-finite gradient, is an error.
    let pgd = PgdParams::default().check().unwrap();
    assert!(matches!(pgd.run_shared(&mut m, &x, &targets, vec![0.0; d - 1], None), Err(AttackError::Shape(_))));
    m.poison_nan = true;
    assert!(matches!(pgd.run_shared(&mut m, &x, &targets, vec![0.0; d], None), Err(AttackError::NonFinite { .. })));
}
