//! Universal reach: for every class t, the smallest L2 budget at which ONE perturbation δ, shared by
//! all source images, sends most of them to t (a targeted universal adversarial perturbation, as the
//! "universal soldier" detector of Xu et al. 2021 searches for it).
//!
//! A backdoor is exactly such a perturbation that the training put there on purpose: a patch, a blend
//! or a noise pattern that moves any image to the target. Natural classes need a much larger shared
//! perturbation than a per-image one, so the target class stands out as a low outlier of the budget
//! across classes, on robust and on standard models alike (the budget is compared across the classes of
//! one model, so the model's own robustness scale cancels).
//!
//! The search is a continuation: δ starts at 0 and, for each budget of an increasing geometric ladder,
//! takes `steps_per_level` normalised L2 steps on the mean targeted cross-entropy of the clamped images
//! `clamp(x_i + δ, 0, 1)`, projected onto the ball of that budget (the shared PGD,
//! [`crate::attack::Pgd::run_shared`]); after each level the success rate of
//! δ on the sources is measured, and the class's budget is the first level whose rate reaches
//! `success_level`, interpolated log-linearly with the level before it. Classes that never reach it are
//! censored at the last level.

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::anomaly::{median, MAD_CONSISTENCY};
use super::outcome::{ClassStatistic, DetectorOutcome};
use super::sample::{check_held_out, class_rng, gather, HeldOut};
use super::DetectError;
use crate::attack::{Goal, GradientModel, Norm, PgdParams};
use crate::detect::rules::Rules;

/// `class_rng` purpose for drawing the shared source images.
const SOURCE_PURPOSE: u64 = 0x756e_6976; // "univ"

/// Source images per class whose prediction under the final perturbation is kept as evidence.
pub const EXAMPLES_PER_CLASS: usize = 8;

/// Parameters of the universal-reach detector.
///
/// Defaults ([`UniversalParams::default`]): 100 source images (correctly classified, seeded, shared by
/// every class; those of the target class itself are left out for it), budget ladder
/// 0.125·√2ᵏ for k = 0 … 16 (0.125 … 32), 8 steps per level of 2·ε/8, success level 0.5, anomaly
/// threshold 2 (low side), batch 100, seed 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UniversalParams {
    /// Source images drawn from the held-out set (correctly classified).
    pub images: usize,
    /// The budget ladder (L2, pixel values in [0, 1]), strictly increasing.
    pub levels: Vec<f32>,
    /// Normalised gradient steps per level.
    pub steps_per_level: usize,
    /// Step size as a multiple of `level / steps_per_level`.
    pub step_factor: f32,
    /// Success rate that fixes a class's budget.
    pub success_level: f64,
    /// Anomaly index (low side, on the log budget) above which a class is flagged.
    pub anomaly_threshold: f64,
    /// The least spread of the log budgets that counts (the scale of the anomaly index is
    /// `max(1.4826 · MAD, min_spread)`): budgets that differ by less than about this fraction are
    /// within the ladder's interpolation error, and a model whose classes all need the same budget
    /// has a MAD of 0.
    pub min_spread: f64,
    /// Images per model evaluation.
    pub batch_size: usize,
    /// Seed of every random choice.
    pub seed: u64,
}

impl Default for UniversalParams {
    fn default() -> Self {
        UniversalParams {
            images: 100,
            levels: (0..17).map(|k| 0.125 * 2f32.sqrt().powi(k)).collect(),
            steps_per_level: 8,
            step_factor: 2.0,
            success_level: 0.5,
            anomaly_threshold: 2.0,
            min_spread: 0.05,
            batch_size: 100,
            seed: 0,
        }
    }
}

impl UniversalParams {
    /// Checks every rule; the error names the parameter, its value and the rule.
    pub fn check(&self) -> Result<(), DetectError> {
        let r = Rules("universal.");
        r.require(self.images >= 2, "images", self.images, "must be >= 2")?;
        r.ladder("levels", &self.levels)?;
        r.count("steps_per_level", self.steps_per_level)?;
        r.positive("step_factor", self.step_factor)?;
        let level = self.success_level;
        r.require(level > 0.0 && level <= 1.0, "success_level", level, "must be in (0, 1]")?;
        r.at_least("anomaly_threshold", self.anomaly_threshold, 0.0, "must be finite and >= 0")?;
        r.positive("min_spread", self.min_spread)?;
        r.count("batch_size", self.batch_size)
    }
}

/// The outcome for one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassUniversal {
    /// The class.
    pub class: usize,
    /// Source images attacked toward it (the shared sources minus those of the class).
    pub attempts: usize,
    /// The budget at which the shared perturbation reached `success_level` (interpolated), or the
    /// last level when it never did.
    pub budget: f64,
    /// Whether the success level was reached within the ladder (`false`: the budget is censored).
    pub reached: bool,
    /// Success rate after each level run, in ladder order.
    pub rates: Vec<f64>,
    /// Anomaly index of `ln(budget)` across classes, `(median − ln budget) / max(1.4826 · MAD,
    /// min_spread)`: positive below the median (a shortcut), negative above it.
    pub anomaly_index: f64,
    /// Whether the class is flagged.
    pub flagged: bool,
    /// The first [`EXAMPLES_PER_CLASS`] sources and the model's prediction once the final
    /// perturbation is added.
    pub examples: Vec<UniversalExample>,
    /// The shared perturbation found (`c × h × w`), at the budget where the search stopped; not
    /// serialised (evidence images are written as files).
    #[serde(skip)]
    pub perturbation: Vec<f32>,
}

/// One source image under a class's final shared perturbation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UniversalExample {
    /// Index of the source image in the input set.
    pub source_index: usize,
    /// Its true label.
    pub source_label: i64,
    /// The model's prediction for `clamp(x + δ, 0, 1)`.
    pub prediction: usize,
}

/// What the universal-reach detector measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UniversalResult {
    /// The parameters used.
    pub params: UniversalParams,
    /// Per-class outcomes.
    pub classes: Vec<ClassUniversal>,
    /// Median of the log budgets.
    pub median_log_budget: f64,
    /// Flagged classes, ascending.
    pub flagged: Vec<usize>,
    /// Model evaluations (forward + backward passes over a batch).
    pub evaluations: usize,
}

impl UniversalResult {
    /// The common outcome for the `audited` classes (the anomaly indices compare every class): the
    /// budget, its anomaly index (positive below the median), the flag and the summary.
    pub fn outcome(&self, audited: &[usize]) -> DetectorOutcome {
        let p = &self.params;
        let median = self.median_log_budget.exp();
        let classes = audited
            .iter()
            .filter_map(|&a| self.classes.iter().find(|c| c.class == a))
            .map(|c| ClassStatistic {
                class: c.class,
                value: c.budget,
                anomaly_index: c.anomaly_index,
                flagged: c.flagged,
                reason: format!(
                    "class {}: {} L2 norm {:.3}{} sends {:.0}% of {} other-class images to it (median budget over \
                     classes {:.3}), anomaly index {:.2} (log budget, low side){}",
                    c.class,
                    if c.reached { "one shared perturbation of" } else { "no shared perturbation within" },
                    c.budget,
                    if c.reached { "" } else { " (the ladder's last budget)" },
                    p.success_level * 100.0,
                    c.attempts,
                    median,
                    c.anomaly_index,
                    if c.flagged { format!(" > {}: backdoor suspected", p.anomaly_threshold) } else { String::new() }
                ),
            })
            .collect();
        DetectorOutcome { statistic: "shared perturbation L2 budget", classes }
    }
}

/// Runs the detector on held-out `images` (NCHW in [0, 1]) with true `labels`, on the classes and with
/// the clean predictions `held_out` gives (each class below the class count; at least 3;
/// `HeldOut::default()`: every class, its own clean predictions computed first): their budgets
/// are searched and compared with each other, and the result holds them alone. Every class's search is
/// the same as in a run over all classes (the sources are drawn once for the model), so a class
/// measured here has the budget it has there. The result's evaluations count the predictions only when
/// computed here. `progress(class)` is called after each class.
pub fn run_universal(
    model: &mut dyn GradientModel,
    images: &[f32],
    labels: &[i64],
    held_out: HeldOut<'_>,
    params: &UniversalParams,
    mut progress: impl FnMut(usize),
) -> Result<UniversalResult, DetectError> {
    params.check()?;
    let (dim, k) = check_held_out(model, images, labels, 3, "universal reach")?;
    let classes_to_measure = &held_out.classes(k)[..];
    super::sample::check_class_list(classes_to_measure, k, 3, "universal reach")?;
    let n = labels.len();
    let (predictions, mut evaluations) = held_out.predictions(model, images, labels, params.batch_size)?;
    // Correctly classified sources, one seeded draw shared by every class.
    let mut correct: Vec<usize> = (0..n).filter(|&i| predictions.classes[i] as i64 == labels[i]).collect();
    let mut rng = class_rng(params.seed, 0, SOURCE_PURPOSE);
    correct.shuffle(&mut rng);
    correct.truncate(params.images);
    correct.sort_unstable();

    let mut classes = Vec::with_capacity(classes_to_measure.len());
    for &class in classes_to_measure {
        let sources: Vec<usize> = correct.iter().copied().filter(|&i| labels[i] != class as i64).collect();
        if sources.len() < 2 {
            return Err(DetectError::NoData(format!(
                "universal reach: fewer than 2 correctly classified images of classes other than {class} ({} of \
                 {n} images correctly classified; is the data the model's: the same classes, order and scaling?)",
                correct.len()
            )));
        }
        let x = gather(images, dim, &sources);
        let (mut result, evals) = search_class(model, &x, sources.len(), dim, class, params)?;
        for e in result.examples.iter_mut() {
            e.source_label = labels[sources[e.source_index]];
            e.source_index = sources[e.source_index];
        }
        evaluations += evals;
        classes.push(result);
        progress(class);
    }
    let logs: Vec<f64> = classes.iter().map(|c| c.budget.ln()).collect();
    let median = median(&logs).ok_or_else(|| DetectError::NoData(format!("no usable class budgets in {logs:?}")))?;
    let deviations: Vec<f64> = logs.iter().map(|v| (v - median).abs()).collect();
    let mad = self::median(&deviations).unwrap_or(0.0);
    let scale = (MAD_CONSISTENCY * mad).max(params.min_spread);
    let mut flagged = Vec::new();
    for (cu, log) in classes.iter_mut().zip(&logs) {
        cu.anomaly_index = (median - log) / scale;
        cu.flagged = cu.anomaly_index > params.anomaly_threshold;
        if cu.flagged {
            flagged.push(cu.class);
        }
    }
    Ok(UniversalResult { params: params.clone(), classes, median_log_budget: median, flagged, evaluations })
}

/// The continuation search for one class over `m` source images `x`: at each level of the ladder, the
/// shared PGD ([`crate::attack::Pgd::run_shared`]) continues from the last level's δ (and the gradient
/// its success check computed there), then the success rate of δ decides whether to stop.
fn search_class(
    model: &mut dyn GradientModel,
    x: &[f32],
    m: usize,
    dim: usize,
    class: usize,
    params: &UniversalParams,
) -> Result<(ClassUniversal, usize), DetectError> {
    let mut delta = vec![0f32; dim];
    let mut rates = Vec::with_capacity(params.levels.len());
    let mut evaluations = 0;
    let mut budget = None;
    let targets = vec![class as i64; m];
    let mut examples = Vec::new();
    // The gradient at the δ of the last success check: the next level's first step starts from the
    // same δ, so it takes this sum instead of evaluating the same images again (the same numbers).
    let mut carried: Option<Vec<f64>> = None;
    for (level_index, &eps) in params.levels.iter().enumerate() {
        let pgd = PgdParams {
            norm: Norm::L2,
            eps,
            step: params.step_factor * eps / params.steps_per_level as f32,
            steps: params.steps_per_level,
            goal: Goal::Targeted,
            batch_size: params.batch_size,
        }
        .check()?;
        let run = pgd.run_shared(model, x, &targets, delta, carried.take())?;
        evaluations += run.evaluations;
        delta = run.delta;
        // Success rate of δ at this level.
        let hits = run.predictions.iter().filter(|&&p| p == class).count();
        // Positions among the sources; `run_universal` maps them to the input set.
        examples = run
            .predictions
            .iter()
            .take(EXAMPLES_PER_CLASS)
            .enumerate()
            .map(|(i, &prediction)| UniversalExample { source_index: i, source_label: 0, prediction })
            .collect();
        let rate = hits as f64 / m as f64;
        rates.push(rate);
        if rate >= params.success_level {
            budget = Some(interpolate(params, level_index, &rates));
            break;
        }
        carried = Some(run.grad);
    }
    let reached = budget.is_some();
    let budget = budget.unwrap_or(*params.levels.last().expect("checked non-empty") as f64);
    Ok((
        ClassUniversal {
            class,
            attempts: m,
            budget,
            reached,
            rates,
            anomaly_index: 0.0,
            flagged: false,
            examples,
            perturbation: delta,
        },
        evaluations,
    ))
}

/// The budget where the rate crossed `success_level` at ladder position `i`: log-linear between the
/// previous level (rate below the level) and this one; the first level itself when `i == 0`.
fn interpolate(params: &UniversalParams, i: usize, rates: &[f64]) -> f64 {
    let hi = params.levels[i] as f64;
    if i == 0 {
        return hi;
    }
    let lo = params.levels[i - 1] as f64;
    let (r0, r1) = (rates[i - 1], rates[i]);
    let t = if r1 > r0 { ((params.success_level - r0) / (r1 - r0)).clamp(0.0, 1.0) } else { 1.0 };
    (lo.ln() + t * (hi.ln() - lo.ln())).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_names_each_bad_parameter() {
        let ok = UniversalParams::default();
        ok.check().unwrap();
        let cases = [
            (UniversalParams { images: 1, ..ok.clone() }, "universal.images = 1"),
            (UniversalParams { levels: vec![], ..ok.clone() }, "universal.levels = []"),
            (UniversalParams { levels: vec![1.0, 0.5], ..ok.clone() }, "strictly increasing"),
            (UniversalParams { levels: vec![0.0, 0.5], ..ok.clone() }, "budget 0 is not finite"),
            (UniversalParams { steps_per_level: 0, ..ok.clone() }, "universal.steps_per_level = 0"),
            (UniversalParams { step_factor: f32::NAN, ..ok.clone() }, "universal.step_factor = NaN"),
            (UniversalParams { success_level: 0.0, ..ok.clone() }, "universal.success_level = 0"),
            (UniversalParams { anomaly_threshold: -1.0, ..ok.clone() }, "universal.anomaly_threshold = -1"),
            (UniversalParams { min_spread: 0.0, ..ok.clone() }, "universal.min_spread = 0"),
            (UniversalParams { batch_size: 0, ..ok.clone() }, "universal.batch_size = 0"),
        ];
        for (p, want) in cases {
            let err = p.check().unwrap_err().to_string();
            assert!(err.contains(want), "{err} does not contain {want}");
        }
    }

    #[test]
    fn interpolation_is_log_linear_between_levels() {
        let p = UniversalParams { levels: vec![1.0, 4.0], success_level: 0.5, ..UniversalParams::default() };
        // Rates 0.0 then 1.0: halfway in log space between 1 and 4 is 2.
        assert!((interpolate(&p, 1, &[0.0, 1.0]) - 2.0).abs() < 1e-12);
        // Rates 0.25 then 0.75: also halfway.
        assert!((interpolate(&p, 1, &[0.25, 0.75]) - 2.0).abs() < 1e-12);
        // Crossing at the first level: the level itself.
        assert_eq!(interpolate(&p, 0, &[0.9]), 1.0);
    }
}
