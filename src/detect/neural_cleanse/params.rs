//! Neural Cleanse parameters (serde, one rule per check) with the reference code's defaults, sized
//! for a CPU.

use serde::{Deserialize, Serialize};

use crate::detect::rules::Rules;
use crate::detect::DetectError;

/// Parameters of Neural Cleanse. Defaults follow the authors' code (Adam lr 0.1, β = (0.5, 0.9);
/// initial cost 1e-3, reset to zero at the start; target attack success 0.99; patience 5; cost ×2
/// up and ÷2^1.5 down; early stop after 25 epochs without a smaller mask; anomaly threshold 2) but
/// with a CPU-sized budget: 200 images, mini-batches of 50, at most 100 epochs per class (the
/// reference: 1000 images, batches of 32, 1000 epochs). On a 28×28 MNIST CNN this is about 3,800
/// gradient evaluations and 20 s on one shared CPU core.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NeuralCleanseParams {
    /// Images used for reverse engineering (drawn with `seed` from the given set, any label; the
    /// same images for every class).
    pub images: usize,
    /// Images per mini-batch (one gradient evaluation each).
    pub batch_size: usize,
    /// Epochs (passes over the images) per class, at most.
    pub epochs: usize,
    /// The cost λ on ‖m‖₁ once the trigger first succeeds.
    pub init_cost: f64,
    /// Start with λ = 0 and set it to `init_cost` after `patience` successful epochs (the reference
    /// code's `reset_cost_to_zero`); when false, start at `init_cost`.
    pub reset_cost_to_zero: bool,
    /// Attack success rate a reversed trigger needs to count (epoch average).
    pub target_success: f64,
    /// Epochs of success (or failure) before λ goes up (or down).
    pub patience: usize,
    /// Factor λ is multiplied by after `patience` successful epochs.
    pub cost_up: f64,
    /// Factor λ is divided by after `patience` failed epochs.
    pub cost_down: f64,
    /// Stop a class after this many epochs without a smaller successful mask, once λ has gone both
    /// up and down; 0 disables early stopping.
    pub early_stop_patience: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Adam β₁.
    pub beta1: f64,
    /// Adam β₂.
    pub beta2: f64,
    /// Adam ε.
    pub adam_eps: f64,
    /// A class whose mask norm lies more than this many (MAD-scaled) deviations below the median is
    /// flagged.
    pub anomaly_threshold: f64,
    /// Seed of every random choice (images, initial masks and patterns, batch order).
    pub seed: u64,
}

impl Default for NeuralCleanseParams {
    fn default() -> Self {
        NeuralCleanseParams {
            images: 200,
            batch_size: 50,
            epochs: 100,
            init_cost: 1e-3,
            reset_cost_to_zero: true,
            target_success: 0.99,
            patience: 5,
            cost_up: 2.0,
            cost_down: 2f64.powf(1.5),
            early_stop_patience: 25,
            lr: 0.1,
            beta1: 0.5,
            beta2: 0.9,
            adam_eps: 1e-8,
            anomaly_threshold: 2.0,
            seed: 0,
        }
    }
}

impl NeuralCleanseParams {
    /// Checks every rule; the error names the parameter and its value.
    pub fn check(&self) -> Result<(), DetectError> {
        let r = Rules("neural-cleanse ");
        r.count("images", self.images)?;
        r.count("batch_size", self.batch_size)?;
        r.count("epochs", self.epochs)?;
        r.positive("init_cost", self.init_cost)?;
        let success = self.target_success;
        r.require(success > 0.0 && success <= 1.0, "target_success", success, "must be in (0, 1]")?;
        r.count("patience", self.patience)?;
        let above_one = |name: &str, v: f64| r.require(v.is_finite() && v > 1.0, name, v, "must be finite and > 1");
        above_one("cost_up", self.cost_up)?;
        above_one("cost_down", self.cost_down)?;
        r.positive("lr", self.lr)?;
        for (name, beta) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            r.require((0.0..1.0).contains(&beta), name, beta, "must be in [0, 1)")?;
        }
        r.positive("adam_eps", self.adam_eps)?;
        r.at_least("anomaly_threshold", self.anomaly_threshold, 0.0, "must be finite and >= 0")
    }
}
