//! A reversed trigger in tanh space (mask m = (tanh(a)+1)/2 over H×W shared by the channels,
//! pattern p = (tanh(b)+1)/2 per channel), its application x' = (1−m)⊙x + m⊙p, the loss
//! mean CE(f(x'), target) + λ‖m‖₁ and its gradient w.r.t. (a, b) by the chain rule from dL/dx'.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::attack::{argmax_rows, GradientModel};
use crate::detect::DetectError;

/// A trigger's raw (tanh-space) parameters for images of shape `(c, h, w)`.
#[derive(Debug, Clone, PartialEq)]
pub struct TanhTrigger {
    /// Image shape `(c, h, w)`.
    pub shape: (usize, usize, usize),
    /// Raw mask `a`, `h × w`.
    pub mask_raw: Vec<f32>,
    /// Raw pattern `b`, `c × h × w`.
    pub pattern_raw: Vec<f32>,
}

/// A trigger's mask (`h × w`, shared by the channels) and pattern (`c × h × w`): its values in [0, 1]
/// ([`TanhTrigger::squashed`]), or a loss's gradient w.r.t. its raw parameters ([`TriggerStep::grad_raw`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaskPattern {
    /// The mask, `h × w`.
    pub mask: Vec<f32>,
    /// The pattern, `c × h × w`.
    pub pattern: Vec<f32>,
}

/// The squashing map from raw values to [0, 1]: (tanh(v) + 1) / 2.
fn squash(v: f32) -> f32 {
    (v.tanh() + 1.0) / 2.0
}

/// Its derivative: (1 − tanh²(v)) / 2.
fn squash_grad(v: f32) -> f32 {
    let t = v.tanh();
    (1.0 - t * t) / 2.0
}

impl TanhTrigger {
    /// A trigger whose mask and pattern are uniform in (0, 1), as in the reference code's random
    /// initialisation (kept a little inside the interval so the raw values stay finite).
    pub fn random(shape: (usize, usize, usize), rng: &mut impl Rng) -> Self {
        let (c, h, w) = shape;
        let mut raw = |_| {
            let u: f32 = rng.gen_range(0.0..1.0);
            (2.0 * u - 1.0).clamp(-0.999, 0.999).atanh()
        };
        let mask_raw = (0..h * w).map(&mut raw).collect();
        let pattern_raw = (0..c * h * w).map(&mut raw).collect();
        TanhTrigger { shape, mask_raw, pattern_raw }
    }

    /// The mask m in [0, 1], `h × w`.
    pub fn mask(&self) -> Vec<f32> {
        self.mask_raw.iter().map(|&v| squash(v)).collect()
    }

    /// The pattern p in [0, 1], `c × h × w`.
    pub fn pattern(&self) -> Vec<f32> {
        self.pattern_raw.iter().map(|&v| squash(v)).collect()
    }

    /// The mask and the pattern in [0, 1].
    pub fn squashed(&self) -> MaskPattern {
        MaskPattern { mask: self.mask(), pattern: self.pattern() }
    }

    /// ‖m‖₁ (the mask is non-negative, so its sum).
    pub fn mask_l1(&self) -> f64 {
        self.mask_raw.iter().map(|&v| squash(v) as f64).sum()
    }

    /// Applies the trigger to `x` (NCHW, any number of images): x' = (1−m)⊙x + m⊙p.
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        let (c, h, w) = self.shape;
        let hw = h * w;
        let (m, p) = (self.mask(), self.pattern());
        let mut out = Vec::with_capacity(x.len());
        for img in x.chunks(c * hw) {
            for (ch, plane) in img.chunks(hw).enumerate() {
                let pc = &p[ch * hw..(ch + 1) * hw];
                out.extend(plane.iter().zip(&m).zip(pc).map(|((xv, mv), pv)| (1.0 - mv) * xv + mv * pv));
            }
        }
        out
    }
}

/// One evaluation of the trigger loss on a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerStep {
    /// Mean cross-entropy of the target over the batch.
    pub ce: f64,
    /// ‖m‖₁.
    pub mask_l1: f64,
    /// The loss `ce + cost · mask_l1`.
    pub loss: f64,
    /// Fraction of the batch the model assigns to the target after the trigger.
    pub success: f64,
    /// dLoss/da (`mask`, `h × w`) and dLoss/db (`pattern`, `c × h × w`).
    pub grad_raw: MaskPattern,
}

/// Evaluates the loss mean CE(f(x'), target) + cost·‖m‖₁ on the `n` images `x` and its gradient
/// w.r.t. the raw mask and pattern: with g = dCE/dx' per example,
/// dL/dm = (1/n) Σ_images Σ_channels g ⊙ (p − x) + cost, dL/dp = (1/n) Σ_images g ⊙ m, then
/// through the tanh squashing.
pub fn trigger_gradient(
    model: &mut dyn GradientModel,
    trigger: &TanhTrigger,
    x: &[f32],
    n: usize,
    target: usize,
    cost: f64,
) -> Result<TriggerStep, DetectError> {
    let (c, h, w) = trigger.shape;
    let hw = h * w;
    let dim = c * hw;
    if model.image_shape() != trigger.shape || x.len() != n * dim || n == 0 {
        return Err(DetectError::NoData(format!(
            "{} values for {n} images of {c}×{h}×{w} (model input {:?})",
            x.len(),
            model.image_shape()
        )));
    }
    let k = model.num_classes();
    let xt = trigger.apply(x);
    let y = vec![target as i64; n];
    let out = model.eval(&xt, n, &y)?;
    if out.grad.len() != x.len() || out.loss.len() != n || out.logits.len() != n * k {
        return Err(DetectError::InvalidParam(format!(
            "model returned {} gradient values, {} losses, {} logits for {n} images",
            out.grad.len(),
            out.loss.len(),
            out.logits.len()
        )));
    }
    if let Some(i) = out.grad.iter().chain(&out.loss).position(|v| !v.is_finite()) {
        return Err(DetectError::InvalidParam(format!(
            "model returned a non-finite gradient or loss (value {i}) for target class {target}"
        )));
    }
    let (m, p) = (trigger.mask(), trigger.pattern());
    let inv_n = 1.0 / n as f64;
    let mut gm = vec![0f64; hw];
    let mut gp = vec![0f64; dim];
    for (img, g) in x.chunks(dim).zip(out.grad.chunks(dim)) {
        for ch in 0..c {
            for j in 0..hw {
                let idx = ch * hw + j;
                let gi = g[idx] as f64;
                gm[j] += gi * (p[idx] - img[idx]) as f64;
                gp[idx] += gi * m[j] as f64;
            }
        }
    }
    let mask =
        gm.iter().zip(&trigger.mask_raw).map(|(g, &a)| ((g * inv_n + cost) * squash_grad(a) as f64) as f32).collect();
    let pattern =
        gp.iter().zip(&trigger.pattern_raw).map(|(g, &b)| (g * inv_n * squash_grad(b) as f64) as f32).collect();
    let ce = out.loss.iter().map(|&v| v as f64).sum::<f64>() * inv_n;
    let mask_l1 = m.iter().map(|&v| v as f64).sum();
    let hits = argmax_rows(&out.logits, k).into_iter().filter(|&pred| pred == target).count();
    Ok(TriggerStep {
        ce,
        mask_l1,
        loss: ce + cost * mask_l1,
        success: hits as f64 / n as f64,
        grad_raw: MaskPattern { mask, pattern },
    })
}

/// Adam over one flat parameter vector (bias-corrected, as Keras and PyTorch do it).
#[derive(Debug, Clone)]
pub struct Adam {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    t: i32,
    m: Vec<f64>,
    v: Vec<f64>,
}

impl Adam {
    /// Fresh moments for `len` parameters.
    pub fn new(len: usize, lr: f64, beta1: f64, beta2: f64, eps: f64) -> Self {
        Adam { lr, beta1, beta2, eps, t: 0, m: vec![0.0; len], v: vec![0.0; len] }
    }

    /// One descent step of `params` along `grad` (same length as at construction).
    pub fn step(&mut self, params: &mut [f32], grad: &[f32]) {
        self.t += 1;
        let c1 = 1.0 - self.beta1.powi(self.t);
        let c2 = 1.0 - self.beta2.powi(self.t);
        for (((p, &g), m), v) in params.iter_mut().zip(grad).zip(&mut self.m).zip(&mut self.v) {
            let g = g as f64;
            *m = self.beta1 * *m + (1.0 - self.beta1) * g;
            *v = self.beta2 * *v + (1.0 - self.beta2) * g * g;
            let update = self.lr * (*m / c1) / ((*v / c2).sqrt() + self.eps);
            *p = (*p as f64 - update) as f32;
        }
    }
}
