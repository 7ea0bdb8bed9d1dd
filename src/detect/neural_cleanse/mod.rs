//! Neural Cleanse (Wang et al., IEEE S&P 2019): per class, reverse-engineer the smallest trigger
//! (mask m, pattern p; x' = (1−m)⊙x + m⊙p) that sends the images to that class, with Adam and the
//! reference code's dynamic cost on ‖m‖₁; then flag the classes whose mask norm is an outlier on the
//! small side by the MAD anomaly index of the log norms (the reference code takes the raw norms; on the
//! log scale the index does not depend on how widely the clean classes' norms spread:
//! [`AnomalyIndex::on_log_scale`]). Works on standard models; the AEGIS paper reports it fails on
//! adversarially robust ones.

mod params;
mod schedule;
mod trigger;

pub use params::NeuralCleanseParams;
pub use schedule::{CostSchedule, EarlyStop};
pub use trigger::{trigger_gradient, Adam, MaskPattern, TanhTrigger, TriggerStep};

use rand::seq::index::sample;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::anomaly::AnomalyIndex;
use super::outcome::{signed_index, ClassStatistic, DetectorOutcome};
use super::sample::{class_rng, gather};
use super::DetectError;
use crate::attack::GradientModel;

/// `class_rng` purposes used here (AEGIS's translation uses 1 and 2).
const PURPOSE_IMAGES: u64 = 11;
const PURPOSE_INIT: u64 = 12;
const PURPOSE_ORDER: u64 = 13;

/// The reversed trigger of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassTrigger {
    /// The target class.
    pub class: usize,
    /// ‖m‖₁ of the kept mask: the smallest mask at the end of an epoch whose average success
    /// reached the target, else the last one.
    pub mask_l1: f64,
    /// Whether some epoch reached the target success (false: `mask_l1` is the last mask's norm).
    pub reached_target: bool,
    /// Attack success rate of the kept trigger on all the images used.
    pub success_rate: f64,
    /// Signed MAD anomaly index of `ln mask_l1` among all classes: positive below the median (the
    /// suspicious, small side), negative above it; every report and sentence shows this one value.
    pub anomaly_index: f64,
    /// Epochs run (fewer than `epochs` after an early stop).
    pub epochs_run: usize,
    /// λ at the end.
    pub final_cost: f64,
    /// The kept mask (`h × w`) and pattern (`c × h × w`), in [0, 1].
    #[serde(flatten)]
    pub trigger: MaskPattern,
}

/// What Neural Cleanse found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeuralCleanseResult {
    /// The parameters used.
    pub params: NeuralCleanseParams,
    /// Image shape `(c, h, w)`.
    pub image_shape: (usize, usize, usize),
    /// Images used (after capping `params.images` at the set's size).
    pub images_used: usize,
    /// One reversed trigger per measured class (every class unless the run was given a list), ascending.
    pub classes: Vec<ClassTrigger>,
    /// Median of the mask norms (`exp` of the median log norm).
    pub median_l1: f64,
    /// Median absolute deviation of the log mask norms (unscaled).
    pub mad_l1: f64,
    /// Classes whose norm is below the median with an anomaly index above the threshold.
    pub flagged: Vec<usize>,
    /// Gradient evaluations (forward and backward over one mini-batch) done.
    pub gradient_evaluations: usize,
}

impl NeuralCleanseResult {
    /// The common outcome for the `audited` classes (the anomaly indices compare every class): the mask
    /// norm, its anomaly index (positive below the median), the flag and the summary.
    pub fn outcome(&self, audited: &[usize]) -> DetectorOutcome {
        let threshold = self.params.anomaly_threshold;
        let classes = self
            .classes
            .iter()
            .filter(|t| audited.contains(&t.class))
            .map(|t| {
                let flagged = self.flagged.contains(&t.class);
                ClassStatistic {
                    class: t.class,
                    value: t.mask_l1,
                    anomaly_index: t.anomaly_index,
                    flagged,
                    reason: format!(
                        "class {}: smallest reversed trigger ‖m‖₁ = {:.2} (median {:.2}), anomaly index {:.2}{}; \
                         reversed trigger success {:.3}",
                        t.class,
                        t.mask_l1,
                        self.median_l1,
                        t.anomaly_index,
                        if flagged {
                            format!(" > {threshold} on the small side: backdoor suspected")
                        } else {
                            String::new()
                        },
                        t.success_rate
                    ),
                }
            })
            .collect();
        DetectorOutcome { statistic: "reversed trigger mask L1 norm", classes }
    }
}

/// Runs Neural Cleanse on `images` (NCHW in [0, 1]; their `labels` only check the count) and calls
/// `progress(class, epochs_done)` after each epoch.
pub fn run_neural_cleanse(
    model: &mut dyn GradientModel,
    images: &[f32],
    labels: &[i64],
    params: &NeuralCleanseParams,
    progress: impl FnMut(usize, usize),
) -> Result<NeuralCleanseResult, DetectError> {
    let all: Vec<usize> = (0..model.num_classes()).collect();
    run_neural_cleanse_on(model, images, labels, &all, params, progress)
}

/// [`run_neural_cleanse`] on the given `classes` only (distinct, ascending, at least 2): their
/// triggers are reversed and their norms compared with each other. Each class's reversal is seeded by
/// its class, so a class measured here has the trigger it has in a run over all classes.
pub fn run_neural_cleanse_on(
    model: &mut dyn GradientModel,
    images: &[f32],
    labels: &[i64],
    classes_to_measure: &[usize],
    params: &NeuralCleanseParams,
    mut progress: impl FnMut(usize, usize),
) -> Result<NeuralCleanseResult, DetectError> {
    params.check()?;
    let shape = model.image_shape();
    let (c, h, w) = shape;
    let dim = c * h * w;
    let n = labels.len();
    if n == 0 || dim == 0 || images.len() != n * dim {
        return Err(DetectError::NoData(format!("{} image values for {n} labels of {c}×{h}×{w} images", images.len())));
    }
    let k = model.num_classes();
    if k < 2 {
        return Err(DetectError::NoData(format!("model has {k} classes; Neural Cleanse needs at least 2")));
    }
    let used = params.images.min(n);
    let mut chosen = sample(&mut class_rng(params.seed, 0, PURPOSE_IMAGES), n, used).into_vec();
    chosen.sort_unstable();
    let x = gather(images, dim, &chosen);
    let mut evals = 0;
    crate::detect::sample::check_class_list(classes_to_measure, k, 2, "Neural Cleanse")?;
    let mut classes = Vec::with_capacity(classes_to_measure.len());
    for &class in classes_to_measure {
        let t = reverse_class(model, &x, class, params, &mut evals, |e| progress(class, e))?;
        classes.push(t);
    }
    let norms: Vec<f64> = classes.iter().map(|t| t.mask_l1).collect();
    let (stats, flagged) = flag_outliers(&norms, params.anomaly_threshold)?;
    let flagged = flagged.into_iter().map(|i| classes[i].class).collect();
    for (t, a) in classes.iter_mut().zip(signed_indices(&norms, &stats)) {
        t.anomaly_index = a;
    }
    Ok(NeuralCleanseResult {
        params: params.clone(),
        image_shape: shape,
        images_used: used,
        classes,
        median_l1: stats.median,
        mad_l1: stats.mad,
        flagged,
        gradient_evaluations: evals,
    })
}

/// The signed anomaly index of each of `norms` under `stats` (from [`flag_outliers`]): positive below
/// the median (the suspicious, small side), negative above it, 0 on it.
pub fn signed_indices(norms: &[f64], stats: &AnomalyIndex) -> Vec<f64> {
    norms.iter().zip(&stats.indices).map(|(n, a)| signed_index(*n, stats.median, *a, true)).collect()
}

/// Neural Cleanse's rule on per-class mask norms, on the log scale: the MAD anomaly indices
/// `|ln norm − median ln| / (1.4826 · MAD ln)` and the classes below the median whose index exceeds
/// `threshold`. An error when a norm is NaN or there are none.
pub fn flag_outliers(norms: &[f64], threshold: f64) -> Result<(AnomalyIndex, Vec<usize>), DetectError> {
    let stats = AnomalyIndex::on_log_scale(norms)
        .ok_or_else(|| DetectError::InvalidParam(format!("mask norms are empty or not all numbers: {norms:?}")))?;
    let flagged = stats.low_outliers(norms, threshold);
    Ok((stats, flagged))
}

/// Reverse-engineers the trigger of one class on the images `x`.
fn reverse_class(
    model: &mut dyn GradientModel,
    x: &[f32],
    class: usize,
    params: &NeuralCleanseParams,
    evals: &mut usize,
    mut progress: impl FnMut(usize),
) -> Result<ClassTrigger, DetectError> {
    let shape = model.image_shape();
    let dim = shape.0 * shape.1 * shape.2;
    let n = x.len() / dim;
    let mut trigger = TanhTrigger::random(shape, &mut class_rng(params.seed, class, PURPOSE_INIT));
    let adam = |len| Adam::new(len, params.lr, params.beta1, params.beta2, params.adam_eps);
    let mut adam_m = adam(trigger.mask_raw.len());
    let mut adam_p = adam(trigger.pattern_raw.len());
    let mut schedule = CostSchedule::new(params);
    let mut early = EarlyStop::new(params.early_stop_patience);
    let mut order_rng = class_rng(params.seed, class, PURPOSE_ORDER);
    let mut order: Vec<usize> = (0..n).collect();
    let mut best: Option<(f64, TanhTrigger)> = None;
    let mut epochs_run = 0;
    for epoch in 0..params.epochs {
        order.shuffle(&mut order_rng);
        let mut success = 0.0;
        for batch in order.chunks(params.batch_size) {
            let xb = gather(x, dim, batch);
            let step = trigger_gradient(model, &trigger, &xb, batch.len(), class, schedule.cost())?;
            *evals += 1;
            adam_m.step(&mut trigger.mask_raw, &step.grad_raw.mask);
            adam_p.step(&mut trigger.pattern_raw, &step.grad_raw.pattern);
            success += step.success * batch.len() as f64;
        }
        // The epoch's average success (measured during the epoch, as the reference code does)
        // decides whether the trigger as it stands after the epoch may be kept.
        let success = success / n as f64;
        let l1 = trigger.mask_l1();
        epochs_run = epoch + 1;
        if success >= params.target_success && best.as_ref().is_none_or(|(b, _)| l1 < *b) {
            best = Some((l1, trigger.clone()));
        }
        schedule.update(success);
        progress(epochs_run);
        let best_l1 = best.as_ref().map_or(f64::INFINITY, |(b, _)| *b);
        if early.update(best_l1, &schedule) {
            break;
        }
    }
    let reached_target = best.is_some();
    let kept = best.map_or(trigger, |(_, t)| t);
    let success_rate = success_rate(model, &kept, x, class, params.batch_size, evals)?;
    Ok(ClassTrigger {
        class,
        mask_l1: kept.mask_l1(),
        reached_target,
        success_rate,
        anomaly_index: 0.0,
        epochs_run,
        final_cost: schedule.cost(),
        trigger: kept.squashed(),
    })
}

/// Fraction of `x` the model assigns to `class` once the trigger is applied.
fn success_rate(
    model: &mut dyn GradientModel,
    trigger: &TanhTrigger,
    x: &[f32],
    class: usize,
    batch_size: usize,
    evals: &mut usize,
) -> Result<f64, DetectError> {
    let dim = trigger.shape.0 * trigger.shape.1 * trigger.shape.2;
    let n = x.len() / dim;
    let mut hits = 0.0;
    for start in (0..n).step_by(batch_size) {
        let end = (start + batch_size).min(n);
        let step = trigger_gradient(model, trigger, &x[start * dim..end * dim], end - start, class, 0.0)?;
        *evals += 1;
        hits += step.success * (end - start) as f64;
    }
    Ok(hits / n as f64)
}
