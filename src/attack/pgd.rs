//! The PGD loop: params (checked), batching, step, projection, clamping.

use super::{AttackError, GradientModel, StepRequest};

/// The perturbation norm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Norm {
    /// L2: steps along g/‖g‖₂ per example, projection onto the L2 ball.
    L2,
    /// L-infinity: steps along sign(g), projection onto the box.
    Linf,
}

/// What the attack optimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// Minimise the loss of the given label (move toward it).
    Targeted,
    /// Maximise the loss of the given label (move away from it).
    Untargeted,
}

/// PGD parameters. Defaults: L2, ε = 0.5, step 0.1, 20 steps, untargeted, batch 100.
#[derive(Debug, Clone, PartialEq)]
pub struct PgdParams {
    /// Norm of the perturbation ball.
    pub norm: Norm,
    /// Radius of the ball around the start.
    pub eps: f32,
    /// Step size.
    pub step: f32,
    /// Number of steps.
    pub steps: usize,
    /// Targeted or untargeted.
    pub goal: Goal,
    /// Images per model evaluation.
    pub batch_size: usize,
}

impl Default for PgdParams {
    fn default() -> Self {
        PgdParams { norm: Norm::L2, eps: 0.5, step: 0.1, steps: 20, goal: Goal::Untargeted, batch_size: 100 }
    }
}

impl PgdParams {
    /// Checks the parameters and returns a runnable attack.
    pub fn check(self) -> Result<Pgd, AttackError> {
        let bad = |name, value: String, rule| Err(AttackError::InvalidParam { name, value, rule });
        if !(self.eps.is_finite() && self.eps >= 0.0) {
            return bad("eps", self.eps.to_string(), "must be finite and >= 0");
        }
        if !(self.step.is_finite() && self.step > 0.0) {
            return bad("step", self.step.to_string(), "must be finite and > 0");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "0".into(), "must be >= 1");
        }
        Ok(Pgd { params: self })
    }
}

/// A checked PGD attack.
#[derive(Debug, Clone)]
pub struct Pgd {
    params: PgdParams,
}

/// The result of running PGD on a set of images.
#[derive(Debug, Clone)]
pub struct PgdResult {
    /// The perturbed images, same layout as the input.
    pub images: Vec<f32>,
    /// Logits of the perturbed images (`n × num_classes`).
    pub logits: Vec<f32>,
    /// Features of the perturbed images (`n × feature_dim`; empty if the model has none).
    pub features: Vec<f32>,
    /// Per example: targeted, the prediction equals the label; untargeted, it differs from it.
    pub success: Vec<bool>,
    /// Model evaluations done (forward + backward passes over a batch).
    pub evaluations: usize,
}

impl Pgd {
    /// The checked parameters.
    pub fn params(&self) -> &PgdParams {
        &self.params
    }

    /// Runs PGD from `x0` (`n` images, NCHW in [0, 1]) with per-example labels (targets for a
    /// targeted attack, true labels for an untargeted one). Calls `progress(done_images)` after each batch.
    /// Each step is the model's own [`GradientModel::pgd_step`] where it has one, else a gradient
    /// evaluation and the step here; the logits and features come from one evaluation at the end.
    pub fn run(
        &self,
        model: &mut dyn GradientModel,
        x0: &[f32],
        labels: &[i64],
        mut progress: impl FnMut(usize),
    ) -> Result<PgdResult, AttackError> {
        let (c, h, w) = model.image_shape();
        let dim = c * h * w;
        let k = model.num_classes();
        let n = labels.len();
        if dim == 0 || x0.len() != n * dim {
            return Err(AttackError::Shape(format!("{} values for {n} labels of images {c}×{h}×{w}", x0.len())));
        }
        if let Some(bad) = labels.iter().find(|&&l| l < 0 || l as usize >= k) {
            return Err(AttackError::Shape(format!("label {bad} outside 0..{k}")));
        }
        let p = &self.params;
        let sign = match p.goal {
            Goal::Targeted => -1.0f32,
            Goal::Untargeted => 1.0f32,
        };
        let mut images = Vec::with_capacity(x0.len());
        let mut logits = Vec::with_capacity(n * k);
        let mut features = Vec::new();
        let mut evaluations = 0;
        for start in (0..n).step_by(p.batch_size) {
            let end = (start + p.batch_size).min(n);
            let b = end - start;
            let orig = &x0[start * dim..end * dim];
            let y = &labels[start..end];
            let mut x = orig.to_vec();
            for step in 0..p.steps {
                let req = StepRequest { x: &mut x, x0: orig, y, n: b, norm: p.norm, step: sign * p.step, eps: p.eps };
                if let Some(grad_sq) = model.pgd_step(req) {
                    let grad_sq = grad_sq?;
                    evaluations += 1;
                    if grad_sq.len() != b {
                        return Err(AttackError::Model(format!(
                            "PGD step returned {} norms for {b} images",
                            grad_sq.len()
                        )));
                    }
                    if let Some(i) = grad_sq.iter().position(|v| !v.is_finite()) {
                        return Err(AttackError::NonFinite { step, example: start + i });
                    }
                    continue;
                }
                let out = model.eval(&x, b, y)?;
                evaluations += 1;
                if out.grad.len() != x.len() {
                    return Err(AttackError::Model(format!(
                        "gradient has {} values, expected {}",
                        out.grad.len(),
                        x.len()
                    )));
                }
                for i in 0..b {
                    let xs = &mut x[i * dim..(i + 1) * dim];
                    let g = &out.grad[i * dim..(i + 1) * dim];
                    if g.iter().any(|v| !v.is_finite()) {
                        return Err(AttackError::NonFinite { step, example: start + i });
                    }
                    self.step_one(xs, g, &orig[i * dim..(i + 1) * dim]);
                }
            }
            let out = model.eval(&x, b, y)?;
            evaluations += 1;
            logits.extend_from_slice(&out.logits);
            features.extend_from_slice(&out.features);
            images.extend_from_slice(&x);
            progress(end);
        }
        let success = (0..n)
            .map(|i| {
                let pred = argmax(&logits[i * k..(i + 1) * k]) as i64;
                match p.goal {
                    Goal::Targeted => pred == labels[i],
                    Goal::Untargeted => pred != labels[i],
                }
            })
            .collect();
        Ok(PgdResult { images, logits, features, success, evaluations })
    }

    /// One step for one example: move, project onto the ball around `orig`, clamp to [0, 1].
    fn step_one(&self, x: &mut [f32], g: &[f32], orig: &[f32]) {
        let p = &self.params;
        let sign = match p.goal {
            Goal::Targeted => -1.0f32,
            Goal::Untargeted => 1.0f32,
        };
        match p.norm {
            Norm::L2 => {
                let norm = g.iter().map(|v| (*v as f64) * (*v as f64)).sum::<f64>().sqrt() as f32;
                let scale = sign * p.step / (norm + 1e-10);
                for (xi, gi) in x.iter_mut().zip(g) {
                    *xi += scale * gi;
                }
                let dnorm = x.iter().zip(orig).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>().sqrt() as f32;
                let shrink = if dnorm > p.eps { p.eps / dnorm } else { 1.0 };
                for (xi, oi) in x.iter_mut().zip(orig) {
                    *xi = (oi + (*xi - oi) * shrink).clamp(0.0, 1.0);
                }
            }
            Norm::Linf => {
                for ((xi, gi), oi) in x.iter_mut().zip(g).zip(orig) {
                    let moved = *xi + sign * p.step * gi.signum() * (*gi != 0.0) as u8 as f32;
                    *xi = moved.clamp(oi - p.eps, oi + p.eps).clamp(0.0, 1.0);
                }
            }
        }
    }
}

/// The arg-max of each row of a row-major `rows × k` matrix.
pub fn argmax_rows(values: &[f32], k: usize) -> Vec<usize> {
    values.chunks(k.max(1)).map(argmax).collect()
}

/// Index of the largest value (the first one on ties).
pub(crate) fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}
