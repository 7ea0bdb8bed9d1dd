//! PGD on one perturbation shared by every image (a universal adversarial perturbation, as universal
//! reach searches for it): the same checked [`Pgd`] parameters as the per-image attack, one δ for the
//! whole batch, its gradient the sum of the images' input gradients.

use super::pgd::{argmax_rows, Goal, Norm, Pgd};
use super::{AttackError, GradientModel};

/// The result of [`Pgd::run_shared`].
#[derive(Debug, Clone)]
pub struct SharedPgdResult {
    /// The shared perturbation after the steps (`c × h × w`).
    pub delta: Vec<f32>,
    /// The model's prediction for every image `clamp(x_i + δ, 0, 1)` under the final δ, in order.
    pub predictions: Vec<usize>,
    /// The gradient w.r.t. δ at the final δ (as [`Pgd::run_shared`] sums it): a run that continues from
    /// the same δ takes it for its first step instead of evaluating the same images again.
    pub grad: Vec<f64>,
    /// Model evaluations: one per batch and step taken (the first step's saved where the gradient was
    /// given) and one per batch at the end.
    pub evaluations: usize,
}

impl Pgd {
    /// Runs PGD on one perturbation δ shared by the `n` images `x` (NCHW in [0, 1]) with per-example
    /// `labels` (targets of a targeted attack), starting from `delta` (the ε-ball is centred on 0).
    ///
    /// Each step evaluates every `clamp(x_i + δ, 0, 1)` in batches of `batch_size` and sums the input
    /// gradients of the images where the clamp passes them (inclusive bounds, as PyTorch's clamp
    /// backward), in float64 in image order: the gradient of the summed loss w.r.t. δ. L2: a step of
    /// length `step` along the normalised gradient, then δ is projected onto the ball of radius `eps`;
    /// L-infinity: a sign step, then δ is clamped to `[−eps, eps]`. A zero gradient ends the steps early.
    /// `grad` is the gradient at `delta` when already known (a previous run's
    /// [`SharedPgdResult::grad`]); the first step takes it. A final evaluation gives the predictions and
    /// the gradient at the final δ. Runs on [`GradientModel::eval`] (not on step workers).
    pub fn run_shared(
        &self,
        model: &mut dyn GradientModel,
        x: &[f32],
        labels: &[i64],
        mut delta: Vec<f32>,
        grad: Option<Vec<f64>>,
    ) -> Result<SharedPgdResult, AttackError> {
        let p = self.params();
        let (c, h, w) = model.image_shape();
        let dim = c * h * w;
        let n = labels.len();
        if dim == 0 || n == 0 || x.len() != n * dim || delta.len() != dim {
            return Err(AttackError::Shape(format!(
                "{} values and a perturbation of {} for {n} labels of images {c}×{h}×{w}",
                x.len(),
                delta.len()
            )));
        }
        let mut evaluations = 0;
        let mut xb = vec![0f32; p.batch_size.min(n) * dim];
        let mut carried = grad;
        let sign = match p.goal {
            Goal::Targeted => -1.0,
            Goal::Untargeted => 1.0,
        };
        for _ in 0..p.steps {
            let g = match carried.take() {
                Some(g) => g,
                None => evaluate(model, x, labels, &delta, &mut xb, p.batch_size, &mut evaluations)?.0,
            };
            if g.iter().any(|v| !v.is_finite()) {
                return Err(AttackError::NonFinite { step: 0, example: 0 });
            }
            match p.norm {
                Norm::L2 => {
                    let norm = g.iter().map(|v| v * v).sum::<f64>().sqrt();
                    if norm == 0.0 {
                        break;
                    }
                    let scale = sign * p.step as f64 / norm;
                    for (d, gj) in delta.iter_mut().zip(&g) {
                        *d += (scale * gj) as f32;
                    }
                    let dn = delta.iter().map(|v| (*v as f64) * (*v as f64)).sum::<f64>().sqrt();
                    if dn > p.eps as f64 {
                        let s = (p.eps as f64 / dn) as f32;
                        delta.iter_mut().for_each(|d| *d *= s);
                    }
                }
                Norm::Linf => {
                    if g.iter().all(|v| *v == 0.0) {
                        break;
                    }
                    for (d, gj) in delta.iter_mut().zip(&g) {
                        let moved = *d + (sign * p.step as f64 * gj.signum() * (*gj != 0.0) as u8 as f64) as f32;
                        *d = moved.clamp(-p.eps, p.eps);
                    }
                }
            }
        }
        let (grad, predictions) = evaluate(model, x, labels, &delta, &mut xb, p.batch_size, &mut evaluations)?;
        Ok(SharedPgdResult { delta, predictions, grad, evaluations })
    }
}

/// Evaluates the images of `x` under `delta` in batches through `xb`: the summed gradient w.r.t. δ (see
/// [`Pgd::run_shared`]) and every image's prediction.
fn evaluate(
    model: &mut dyn GradientModel,
    x: &[f32],
    labels: &[i64],
    delta: &[f32],
    xb: &mut [f32],
    batch_size: usize,
    evaluations: &mut usize,
) -> Result<(Vec<f64>, Vec<usize>), AttackError> {
    let dim = delta.len();
    let k = model.num_classes();
    let m = labels.len();
    let mut g = vec![0f64; dim];
    let mut predictions = Vec::with_capacity(m);
    for start in (0..m).step_by(batch_size) {
        let end = (start + batch_size).min(m);
        let b = end - start;
        perturb(&x[start * dim..end * dim], delta, &mut xb[..b * dim]);
        let out = model.eval(&xb[..b * dim], b, &labels[start..end])?;
        *evaluations += 1;
        if out.grad.len() != b * dim {
            return Err(AttackError::Model(format!("gradient has {} values, expected {}", out.grad.len(), b * dim)));
        }
        for i in 0..b {
            let gi = &out.grad[i * dim..(i + 1) * dim];
            let xi = &x[(start + i) * dim..(start + i + 1) * dim];
            for j in 0..dim {
                let v = xi[j] + delta[j];
                if (0.0..=1.0).contains(&v) {
                    g[j] += gi[j] as f64;
                }
            }
        }
        predictions.extend(argmax_rows(&out.logits, k));
    }
    Ok((g, predictions))
}

/// `clamp(x_i + δ, 0, 1)` for every image of `x` into `out`.
fn perturb(x: &[f32], delta: &[f32], out: &mut [f32]) {
    let dim = delta.len();
    for (o, xi) in out.chunks_mut(dim).zip(x.chunks(dim)) {
        for ((oj, xj), dj) in o.iter_mut().zip(xi).zip(delta) {
            *oj = (xj + dj).clamp(0.0, 1.0);
        }
    }
}
