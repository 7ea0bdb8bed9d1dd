//! The PGD loop: params (checked), batching, step, projection, clamping, and the parallel run over
//! a model's step workers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use super::{AttackError, GradientModel, PgdStepper, StepRequest};

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
    /// Model evaluations done: one per batch and step (a gradient evaluation or an in-model step;
    /// with step workers the batches are those of each worker's share) and one per batch at the end.
    pub evaluations: usize,
}

impl Pgd {
    /// The checked parameters.
    pub fn params(&self) -> &PgdParams {
        &self.params
    }

    /// Runs PGD from `x0` (`n` images, NCHW in [0, 1]) with per-example labels (targets for a
    /// targeted attack, true labels for an untargeted one). Calls `progress(done_images)` as batches
    /// finish their steps.
    ///
    /// Where the model has step workers ([`GradientModel::steppers`]) every step runs inside the
    /// model: the images are split into one even share per worker, each worker steps its share in
    /// batches of at most `batch_size` on its own thread. Otherwise each step is a gradient
    /// evaluation and the step here. The logits and features come from one evaluation per batch
    /// after the last step. Errors are those of the first failing batch in image order, as in a
    /// sequential run.
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
        let mut images = x0.to_vec();
        let mut evaluations = 0;
        let mut steppers = model.steppers(p.norm)?;
        let stepped = !steppers.is_empty();
        if stepped {
            evaluations += self.run_steppers(&mut steppers, &mut images, x0, labels, dim, &mut progress)?;
        }
        drop(steppers);
        let mut logits = Vec::with_capacity(n * k);
        let mut features = Vec::new();
        for start in (0..n).step_by(p.batch_size) {
            let end = (start + p.batch_size).min(n);
            let b = end - start;
            let y = &labels[start..end];
            let x = &mut images[start * dim..end * dim];
            if !stepped {
                let orig = &x0[start * dim..end * dim];
                for step in 0..p.steps {
                    let out = model.eval(x, b, y)?;
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
            }
            let out = model.eval(x, b, y)?;
            evaluations += 1;
            logits.extend_from_slice(&out.logits);
            features.extend_from_slice(&out.features);
            if !stepped {
                progress(end);
            }
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

    /// All steps of all images on the step workers, one even share of the images per worker, each
    /// on its own thread; returns the number of steps taken (batch runs). A worker stops at a batch
    /// that comes after a failed one; the error reported is that of the first failed batch.
    fn run_steppers(
        &self,
        steppers: &mut [&mut dyn PgdStepper],
        images: &mut [f32],
        x0: &[f32],
        labels: &[i64],
        dim: usize,
        progress: &mut dyn FnMut(usize),
    ) -> Result<usize, AttackError> {
        let p = &self.params;
        let n = labels.len();
        let workers = steppers.len().min(n).max(1);
        let bounds: Vec<usize> = (0..=workers).map(|w| w * n / workers).collect();
        let signed_step = match p.goal {
            Goal::Targeted => -p.step,
            Goal::Untargeted => p.step,
        };
        let failed_at = AtomicUsize::new(usize::MAX);
        let (tx, rx) = mpsc::channel::<usize>();
        std::thread::scope(|scope| {
            let mut handles = Vec::with_capacity(workers);
            let mut rest = images;
            for (w, stepper) in steppers.iter_mut().take(workers).enumerate() {
                let (lo, hi) = (bounds[w], bounds[w + 1]);
                let (share, tail) = std::mem::take(&mut rest).split_at_mut((hi - lo) * dim);
                rest = tail;
                let (tx, failed_at) = (tx.clone(), &failed_at);
                handles.push(scope.spawn(move || -> Result<usize, (usize, AttackError)> {
                    let mut runs = 0;
                    for start in (lo..hi).step_by(p.batch_size) {
                        if start > failed_at.load(Ordering::Relaxed) {
                            break;
                        }
                        let end = (start + p.batch_size).min(hi);
                        let b = end - start;
                        let x = &mut share[(start - lo) * dim..(end - lo) * dim];
                        for step in 0..p.steps {
                            let req = StepRequest {
                                x: &mut *x,
                                x0: &x0[start * dim..end * dim],
                                y: &labels[start..end],
                                n: b,
                                step: signed_step,
                                eps: p.eps,
                            };
                            runs += 1;
                            let checked = stepper.step(req).and_then(|grad_sq| {
                                if grad_sq.len() != b {
                                    return Err(AttackError::Model(format!(
                                        "PGD step returned {} gradient norms for {b} images",
                                        grad_sq.len()
                                    )));
                                }
                                match grad_sq.iter().position(|v| !v.is_finite()) {
                                    Some(i) => Err(AttackError::NonFinite { step, example: start + i }),
                                    None => Ok(()),
                                }
                            });
                            if let Err(e) = checked {
                                failed_at.fetch_min(start, Ordering::Relaxed);
                                return Err((start, e));
                            }
                        }
                        // The receiver outlives the workers; a failed send only means it is gone.
                        let _ = tx.send(b);
                    }
                    Ok(runs)
                }));
            }
            drop(tx);
            let mut done = 0;
            for b in rx {
                done += b;
                progress(done);
            }
            let mut runs = 0;
            let mut first: Option<(usize, AttackError)> = None;
            for handle in handles {
                match handle.join() {
                    Ok(Ok(r)) => runs += r,
                    Ok(Err((start, e))) => {
                        if first.as_ref().is_none_or(|(s, _)| start < *s) {
                            first = Some((start, e));
                        }
                    }
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            match first {
                Some((_, e)) => Err(e),
                None => Ok(runs),
            }
        })
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
