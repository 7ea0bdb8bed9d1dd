//! The robustness precondition: AEGIS (and reachability) are valid only for adversarially robust
//! models, so before detecting, an untargeted L2 PGD runs on held-out images and the adversarial
//! accuracy is compared with the preset's threshold.

use serde::{Deserialize, Serialize};

use super::DetectError;
use crate::attack::{argmax_rows, Goal, GradientModel, Norm, PgdParams};
use crate::detect::rules::Rules;

/// Parameters of the robustness check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreconditionParams {
    /// L2 budget of the untargeted attack (in [0, 1] pixel space).
    pub eps: f32,
    /// Number of PGD steps.
    pub steps: usize,
    /// Step size; when absent, 2.5·ε/steps (Madry et al.'s rule).
    #[serde(default)]
    pub step: Option<f32>,
    /// Held-out images attacked (drawn with the audit's seed).
    pub images: usize,
    /// Minimum adversarial accuracy for the model to count as robust.
    pub min_adv_accuracy: f64,
}

impl PreconditionParams {
    /// Checks every rule; the error names the parameter, its value and the rule. (Zero steps, or a
    /// zero budget, would pass every model without attacking it.)
    pub fn check(&self) -> Result<(), DetectError> {
        let r = Rules("precondition.");
        r.positive("eps", self.eps)?;
        r.count("steps", self.steps)?;
        if let Some(step) = self.step {
            r.positive("step", step)?;
        }
        r.count("images", self.images)?;
        let a = self.min_adv_accuracy;
        r.require((0.0..=1.0).contains(&a), "min_adv_accuracy", a, "must be in [0, 1]")
    }
}

/// What the robustness check measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreconditionResult {
    /// The parameters used.
    pub params: PreconditionParams,
    /// Step size used.
    pub step: f32,
    /// Images attacked.
    pub images: usize,
    /// Accuracy on the clean held-out images.
    pub clean_accuracy: f64,
    /// Accuracy under the attack (an image counts only if it was classified correctly before and after).
    pub adv_accuracy: f64,
    /// Whether the model counts as robust (`adv_accuracy >= min_adv_accuracy`).
    pub passed: bool,
}

/// Runs the check on `images` (NCHW in [0, 1]) with true `labels`.
pub fn check_robustness(
    model: &mut dyn GradientModel,
    images: &[f32],
    labels: &[i64],
    params: &PreconditionParams,
    batch_size: usize,
    progress: impl FnMut(usize),
) -> Result<PreconditionResult, DetectError> {
    let n = labels.len();
    if n == 0 {
        return Err(DetectError::NoData("no held-out images for the robustness check".into()));
    }
    let step = params.step.unwrap_or(2.5 * params.eps / params.steps.max(1) as f32);
    let k = model.num_classes();
    let (c, h, w) = model.image_shape();
    let dim = c * h * w;
    // Clean accuracy: one forward pass per batch.
    let mut clean_correct = vec![false; n];
    for start in (0..n).step_by(batch_size.max(1)) {
        let end = (start + batch_size.max(1)).min(n);
        let out = model.eval(&images[start * dim..end * dim], end - start, &labels[start..end])?;
        for (i, pred) in argmax_rows(&out.logits, k).into_iter().enumerate() {
            clean_correct[start + i] = pred as i64 == labels[start + i];
        }
    }
    let pgd =
        PgdParams { norm: Norm::L2, eps: params.eps, step, steps: params.steps, goal: Goal::Untargeted, batch_size }
            .check()?;
    let attacked = pgd.run(model, images, labels, progress)?;
    let robust = clean_correct.iter().zip(&attacked.success).filter(|(clean, fooled)| **clean && !**fooled).count();
    let clean_accuracy = clean_correct.iter().filter(|c| **c).count() as f64 / n as f64;
    let adv_accuracy = robust as f64 / n as f64;
    Ok(PreconditionResult {
        params: params.clone(),
        step,
        images: n,
        clean_accuracy,
        adv_accuracy,
        passed: adv_accuracy >= params.min_adv_accuracy,
    })
}

#[cfg(test)]
mod tests {
    use super::PreconditionParams;

    #[test]
    fn check_names_each_bad_parameter() {
        let ok = PreconditionParams { eps: 1.5, steps: 20, step: None, images: 500, min_adv_accuracy: 0.5 };
        ok.check().unwrap();
        let cases = [
            (PreconditionParams { eps: 0.0, ..ok.clone() }, "precondition.eps = 0"),
            (PreconditionParams { steps: 0, ..ok.clone() }, "precondition.steps = 0"),
            (PreconditionParams { step: Some(-1.0), ..ok.clone() }, "precondition.step = -1"),
            (PreconditionParams { images: 0, ..ok.clone() }, "precondition.images = 0"),
            (PreconditionParams { min_adv_accuracy: 1.5, ..ok.clone() }, "precondition.min_adv_accuracy = 1.5"),
        ];
        for (p, want) in cases {
            let err = p.check().unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
    }
}
