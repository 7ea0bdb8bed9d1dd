//! Targeted reachability: for every class c, targeted L2 PGD toward c from seeded held-out images of
//! other classes at a small budget ε, a success rate per class, and a flag for a class whose rate is
//! an outlier across classes (MAD anomaly index) and clearly above the others in absolute terms.
//!
//! A robust model resists small targeted perturbations toward every class, except where a backdoor
//! has opened a shortcut. The budget is found per model: the smallest ε of a sweep at which the
//! median class rate reaches a set level, so the decision does not depend on how robust the model is.

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::anomaly::AnomalyIndex;
use super::outcome::{signed_index, ClassStatistic, DetectorOutcome};
use super::sample::{check_held_out, class_rng, gather, HeldOut};
use super::DetectError;
use crate::attack::{Goal, GradientModel, Norm, PgdParams};
use crate::detect::rules::Rules;

/// `class_rng` purpose for drawing the source images of a class.
const SOURCE_PURPOSE: u64 = 0x7265_6163; // "reac"

/// Parameters of the reachability detector.
///
/// Defaults ([`ReachParams::default`]): 50 images per class, 20 of them in the budget sweep, 30 PGD
/// steps of 2.5·ε/30, ε swept over 0.25·√2ᵏ (0.25 … 4, 9 values), budget level 0.10, anomaly index
/// threshold 3, flagged rate above max(2 × median, median + 0.2), 8 evidence images per class,
/// batch 100, seed 0. Missing fields in a YAML preset take these defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReachParams {
    /// Source images per class at the chosen budget (label ≠ class, correctly classified, seeded).
    pub images_per_class: usize,
    /// Source images per class during the budget sweep: the first ones of the same seeded draw, so
    /// their results at the chosen ε are reused.
    pub sweep_images_per_class: usize,
    /// PGD steps.
    pub steps: usize,
    /// Step size as a multiple of ε/steps (Madry et al.'s 2.5).
    pub step_factor: f32,
    /// Candidate L2 budgets (pixel values in [0, 1]), strictly increasing; the sweep stops at the
    /// first one whose median class rate reaches `median_level`.
    pub eps_sweep: Vec<f32>,
    /// Median class success rate that fixes the budget.
    pub median_level: f64,
    /// A flagged class's anomaly index must exceed this (on the high side).
    pub anomaly_threshold: f64,
    /// A flagged class's rate must exceed `min_ratio × median` …
    pub min_ratio: f64,
    /// … and `median + min_gap`.
    pub min_gap: f64,
    /// Perturbed images that reached each class kept as evidence.
    pub evidence_per_class: usize,
    /// Images per model evaluation.
    pub batch_size: usize,
    /// Seed of every random choice.
    pub seed: u64,
}

impl Default for ReachParams {
    fn default() -> Self {
        ReachParams {
            images_per_class: 50,
            sweep_images_per_class: 20,
            steps: 30,
            step_factor: 2.5,
            eps_sweep: (0..9).map(|k| 0.25 * 2f32.sqrt().powi(k)).collect(),
            median_level: 0.10,
            anomaly_threshold: 3.0,
            min_ratio: 2.0,
            min_gap: 0.2,
            evidence_per_class: 8,
            batch_size: 100,
            seed: 0,
        }
    }
}

impl ReachParams {
    /// Checks every rule; the error names the parameter, its value and the rule.
    pub fn check(&self) -> Result<(), DetectError> {
        let r = Rules("reach.");
        r.count("images_per_class", self.images_per_class)?;
        let sweep = self.sweep_images_per_class;
        r.require(
            (1..=self.images_per_class).contains(&sweep),
            "sweep_images_per_class",
            sweep,
            "must be in 1..=images_per_class",
        )?;
        r.count("steps", self.steps)?;
        r.positive("step_factor", self.step_factor)?;
        r.ladder("eps_sweep", &self.eps_sweep)?;
        let level = self.median_level;
        r.require(level > 0.0 && level < 1.0, "median_level", level, "must be in (0, 1)")?;
        r.at_least("anomaly_threshold", self.anomaly_threshold, 0.0, "must be finite and >= 0")?;
        r.at_least("min_ratio", self.min_ratio, 1.0, "must be finite and >= 1")?;
        r.require((0.0..1.0).contains(&self.min_gap), "min_gap", self.min_gap, "must be in [0, 1)")?;
        r.count("batch_size", self.batch_size)
    }

    /// PGD step size for budget `eps`: `step_factor · eps / steps`.
    pub fn step_for(&self, eps: f32) -> f32 {
        self.step_factor * eps / self.steps.max(1) as f32
    }
}

/// How the budget search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetOutcome {
    /// The median rate reached the level at a budget after the first: the normal case.
    Found,
    /// The median rate was already at or above the level at the smallest budget: the model is not
    /// robust at that scale (rates are saturated and less informative; the sweep should start lower).
    AtSmallest,
    /// The median rate stayed below the level up to the largest budget, which was used.
    NeverReached,
}

/// One budget of the sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    /// The L2 budget.
    pub eps: f32,
    /// Per-class success rates over the sweep's images.
    pub rates: Vec<f64>,
    /// Median of `rates`.
    pub median_rate: f64,
}

/// One perturbed image that reached a class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReachExample {
    /// Index of the source image in the input set.
    pub source_index: usize,
    /// True label of the source image.
    pub source_label: i64,
    /// L2 norm of the perturbation.
    pub l2: f32,
    /// The perturbed image (`c × h × w`); not serialised (evidence images are written as files).
    #[serde(skip)]
    pub image: Vec<f32>,
}

/// The result for one class at the chosen budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassReach {
    /// The class.
    pub class: usize,
    /// Source images attacked toward it.
    pub attempts: usize,
    /// How many reached it.
    pub reached: usize,
    /// `reached / attempts`.
    pub rate: f64,
    /// Signed MAD anomaly index of the rate across classes: positive above the median (the suspicious,
    /// high side), negative below it; every report and sentence shows this one value.
    pub anomaly_index: f64,
    /// Whether the class is flagged.
    pub flagged: bool,
    /// Up to `evidence_per_class` perturbed images that reached the class, in source order.
    pub evidence: Vec<ReachExample>,
}

/// The flag rule applied to a set of per-class rates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagDecision {
    /// Median of the rates.
    pub median_rate: f64,
    /// Median absolute deviation of the rates (unscaled).
    pub mad: f64,
    /// Anomaly index per class (infinite for a rate off the median when the MAD is 0).
    pub anomaly_indices: Vec<f64>,
    /// The least rate a flagged class must exceed: `max(min_ratio × median, median + min_gap)`.
    pub min_rate: f64,
    /// Flagged classes, ascending.
    pub flagged: Vec<usize>,
}

/// What the reachability detector measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReachResult {
    /// The parameters used.
    pub params: ReachParams,
    /// The budgets tried, in order (the last one is the chosen one).
    pub sweep: Vec<SweepPoint>,
    /// How the budget search ended.
    pub budget: BudgetOutcome,
    /// The chosen L2 budget.
    pub eps: f32,
    /// PGD step size at the chosen budget.
    pub step: f32,
    /// Per-class results at the chosen budget.
    pub classes: Vec<ClassReach>,
    /// The flag rule's statistics and verdict.
    pub decision: FlagDecision,
    /// Model evaluations (forward + backward passes over a batch), clean predictions included.
    pub evaluations: usize,
}

impl ReachResult {
    /// Flagged classes, ascending.
    pub fn flagged(&self) -> &[usize] {
        &self.decision.flagged
    }

    /// Per-class rates at the chosen budget.
    pub fn rates(&self) -> Vec<f64> {
        self.classes.iter().map(|c| c.rate).collect()
    }

    /// The common outcome for the `audited` classes (the anomaly indices compare every class): the
    /// success rate, its anomaly index (positive above the median), the flag and the summary.
    pub fn outcome(&self, audited: &[usize]) -> DetectorOutcome {
        let classes = self
            .classes
            .iter()
            .filter(|c| audited.contains(&c.class))
            .map(|c| ClassStatistic {
                class: c.class,
                value: c.rate,
                anomaly_index: c.anomaly_index,
                flagged: c.flagged,
                reason: format!(
                    "class {}: targeted L2 PGD at ε = {:.3} reached it from {}/{} other-class images ({:.2}; median \
                     {:.2}), anomaly index {:.2}{}",
                    c.class,
                    self.eps,
                    c.reached,
                    c.attempts,
                    c.rate,
                    self.decision.median_rate,
                    c.anomaly_index,
                    if c.flagged { ": backdoor suspected" } else { "" }
                ),
            })
            .collect();
        DetectorOutcome { statistic: "targeted success rate", classes }
    }
}

/// Progress of a reachability run, reported after each PGD batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReachProgress {
    /// The budget being attacked with.
    pub eps: f32,
    /// Whether this is the budget sweep (`false`: the final run at the chosen budget).
    pub sweep: bool,
    /// Images done in this stage.
    pub done: usize,
    /// Images in this stage.
    pub total: usize,
}

/// Applies the flag rule to per-class `rates`: a class is flagged when its anomaly index (scale at
/// least half an image's rate, `0.5 / images_per_class`) exceeds `anomaly_threshold` on the high side
/// and its rate exceeds `max(min_ratio × median, median + min_gap)`.
pub fn flag_classes(rates: &[f64], params: &ReachParams) -> Result<FlagDecision, DetectError> {
    // Rates are counts over `images_per_class` images: half an image's worth is the finest scale (a
    // MAD of 0, more than half of the classes at the same rate, would make every other index infinite).
    let floor = 0.5 / params.images_per_class.max(1) as f64;
    let anomaly = AnomalyIndex::with_min_scale(rates, floor)
        .ok_or_else(|| DetectError::NoData(format!("no usable class rates in {rates:?}")))?;
    let median = anomaly.median;
    let min_rate = (params.min_ratio * median).max(median + params.min_gap);
    let flagged =
        anomaly.high_outliers(rates, params.anomaly_threshold).into_iter().filter(|&c| rates[c] > min_rate).collect();
    Ok(FlagDecision { median_rate: median, mad: anomaly.mad, anomaly_indices: anomaly.indices, min_rate, flagged })
}

/// Runs the detector on held-out `images` (NCHW in [0, 1]) with true `labels`, on the classes and with
/// the clean predictions `held_out` gives (at least 2 classes; `HeldOut::default()`: every
/// class, its own clean predictions computed first): the budget sweep and the rates compare
/// them with each other, and the result holds them alone. Each class's sources are drawn by its class,
/// as in a run over all classes. The result's evaluations count the predictions only when computed here.
///
/// Only correctly classified images serve as sources. Cost: one forward pass over the set (unless the
/// predictions are given), then `(steps + 1)` evaluations per batch of the sweep's `classes ×
/// sweep_images_per_class` images per budget tried, then the remaining `classes × (images_per_class −
/// sweep_images_per_class)` images.
pub fn run_reach(
    model: &mut dyn GradientModel,
    images: &[f32],
    labels: &[i64],
    held_out: HeldOut<'_>,
    params: &ReachParams,
    mut progress: impl FnMut(ReachProgress),
) -> Result<ReachResult, DetectError> {
    params.check()?;
    let (dim, k) = check_held_out(model, images, labels, 2, "reach")?;
    let (predictions, mut evaluations) = held_out.predictions(model, images, labels, params.batch_size)?;
    let classes_to_measure = &held_out.classes(k)[..];
    super::sample::check_class_list(classes_to_measure, k, 2, "reach")?;
    let predictions = &predictions.classes;
    let sources = draw_sources(labels, predictions, classes_to_measure, params)?;

    // Budget sweep on the first `sweep_images_per_class` sources of every class.
    let sweep_sources: Vec<Vec<usize>> =
        sources.iter().map(|s| s[..s.len().min(params.sweep_images_per_class)].to_vec()).collect();
    let mut sweep = Vec::new();
    let mut kept = None;
    let mut chosen = params.eps_sweep.len() - 1;
    for (i, &eps) in params.eps_sweep.iter().enumerate() {
        let run =
            attack(model, images, labels, dim, classes_to_measure, &sweep_sources, eps, params, true, &mut progress)?;
        evaluations += run.evaluations;
        let rates: Vec<f64> = run.per_class.iter().map(|r| rate(r.reached, r.attempts)).collect();
        let median_rate = super::anomaly::median(&rates).unwrap_or(0.0);
        sweep.push(SweepPoint { eps, rates, median_rate });
        kept = Some(run);
        if median_rate >= params.median_level {
            chosen = i;
            break;
        }
    }
    let last = sweep.last().map(|p| p.median_rate).unwrap_or(0.0);
    let budget = if last < params.median_level {
        BudgetOutcome::NeverReached
    } else if chosen == 0 {
        BudgetOutcome::AtSmallest
    } else {
        BudgetOutcome::Found
    };
    let eps = params.eps_sweep[chosen];
    let mut per_class = kept.map(|r| r.per_class).unwrap_or_default();

    // The remaining sources at the chosen budget.
    let rest: Vec<Vec<usize>> =
        sources.iter().map(|s| s[s.len().min(params.sweep_images_per_class)..].to_vec()).collect();
    if rest.iter().any(|r| !r.is_empty()) {
        let run = attack(model, images, labels, dim, classes_to_measure, &rest, eps, params, false, &mut progress)?;
        evaluations += run.evaluations;
        for (acc, more) in per_class.iter_mut().zip(run.per_class) {
            acc.attempts += more.attempts;
            acc.reached += more.reached;
            let room = params.evidence_per_class.saturating_sub(acc.evidence.len());
            acc.evidence.extend(more.evidence.into_iter().take(room));
        }
    }

    let rates: Vec<f64> = per_class.iter().map(|r| rate(r.reached, r.attempts)).collect();
    let mut decision = flag_classes(&rates, params)?;
    let classes = per_class
        .into_iter()
        .enumerate()
        .map(|(i, r)| ClassReach {
            class: classes_to_measure[i],
            attempts: r.attempts,
            reached: r.reached,
            rate: rates[i],
            anomaly_index: signed_index(rates[i], decision.median_rate, decision.anomaly_indices[i], false),
            flagged: decision.flagged.contains(&i),
            evidence: r.evidence,
        })
        .collect();
    decision.flagged = decision.flagged.iter().map(|&i| classes_to_measure[i]).collect();
    Ok(ReachResult {
        params: params.clone(),
        sweep,
        budget,
        eps,
        step: params.step_for(eps),
        classes,
        decision,
        evaluations,
    })
}

fn rate(reached: usize, attempts: usize) -> f64 {
    if attempts == 0 {
        0.0
    } else {
        reached as f64 / attempts as f64
    }
}

/// For every class of `classes` (in that order), a seeded draw of up to `images_per_class` correctly classified images of other
/// classes; an error names a class with no source at all.
fn draw_sources(
    labels: &[i64],
    predictions: &[usize],
    classes: &[usize],
    params: &ReachParams,
) -> Result<Vec<Vec<usize>>, DetectError> {
    let correct: Vec<usize> = (0..labels.len()).filter(|&i| predictions[i] as i64 == labels[i]).collect();
    classes
        .iter()
        .map(|&class| {
            let mut pool: Vec<usize> = correct.iter().copied().filter(|&i| labels[i] != class as i64).collect();
            if pool.is_empty() {
                return Err(DetectError::NoData(format!(
                    "reach: no correctly classified image of a class other than {class} to attack toward it \
                     ({} of {} images correctly classified; is the data the model's: the same classes, order \
                     and scaling?)",
                    correct.len(),
                    labels.len()
                )));
            }
            let mut rng = class_rng(params.seed, class, SOURCE_PURPOSE);
            pool.shuffle(&mut rng);
            pool.truncate(params.images_per_class);
            Ok(pool)
        })
        .collect()
}

/// Per-class counts and evidence of one attack run.
#[derive(Debug, Default)]
struct ClassCounts {
    attempts: usize,
    reached: usize,
    evidence: Vec<ReachExample>,
}

struct AttackRun {
    per_class: Vec<ClassCounts>,
    evaluations: usize,
}

/// Targeted L2 PGD of `sources[i]` toward `classes[i]` for every i at once (classes share batches).
#[allow(clippy::too_many_arguments)]
fn attack(
    model: &mut dyn GradientModel,
    images: &[f32],
    labels: &[i64],
    dim: usize,
    classes: &[usize],
    sources: &[Vec<usize>],
    eps: f32,
    params: &ReachParams,
    sweep: bool,
    progress: &mut impl FnMut(ReachProgress),
) -> Result<AttackRun, DetectError> {
    let indices: Vec<usize> = sources.iter().flatten().copied().collect();
    // Position among `classes` of each image's target.
    let positions: Vec<usize> = sources.iter().enumerate().flat_map(|(i, s)| std::iter::repeat_n(i, s.len())).collect();
    let targets: Vec<i64> = positions.iter().map(|&i| classes[i] as i64).collect();
    let x0 = gather(images, dim, &indices);
    let pgd = PgdParams {
        norm: Norm::L2,
        eps,
        step: params.step_for(eps),
        steps: params.steps,
        goal: Goal::Targeted,
        batch_size: params.batch_size,
    }
    .check()?;
    let total = indices.len();
    let result = pgd.run(model, &x0, &targets, |done| progress(ReachProgress { eps, sweep, done, total }))?;
    let mut per_class: Vec<ClassCounts> = (0..sources.len()).map(|_| ClassCounts::default()).collect();
    for (j, (&src, &position)) in indices.iter().zip(&positions).enumerate() {
        let counts = &mut per_class[position];
        counts.attempts += 1;
        if !result.success[j] {
            continue;
        }
        counts.reached += 1;
        if counts.evidence.len() < params.evidence_per_class {
            let image = result.images[j * dim..(j + 1) * dim].to_vec();
            let l2 = image
                .iter()
                .zip(&images[src * dim..(src + 1) * dim])
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum::<f64>()
                .sqrt() as f32;
            counts.evidence.push(ReachExample { source_index: src, source_label: labels[src], l2, image });
        }
    }
    Ok(AttackRun { per_class, evaluations: result.evaluations })
}
