//! Adaptive effort across classes: how a model with many classes is audited at a cost that grows far
//! slower than its class count.
//!
//! Every detector spends a fixed effort per class, so a full audit costs K times one class. Above
//! [`EffortParams::full_classes`] classes the audit (the fused decision) instead:
//! 1. **screens** every class with a cheap universal-reach search ([`EffortParams::screen`]: fewer
//!    source images, fewer steps per budget level) and ranks the classes by its anomaly index;
//! 2. gives the **full effort** of every detector to a shortlist ([`shortlist`]): the classes the
//!    screen ranks most suspicious (the candidates) and a seeded random sample of the others (the
//!    reference: without it the detectors' cross-class medians and spreads would be taken over the
//!    most suspicious classes alone); each detector compares the shortlisted classes with each other,
//!    as it compares the classes of a model of few classes, where the calibration was measured;
//! 3. decides on the shortlisted classes, with the model-level p-value still counting every class the
//!    screen looked at (`1 − (1 − p)^K` with K the audited classes), because the screen chose the
//!    candidates among all of them.
//!
//! A class the screen dismisses cannot be flagged: what that costs in detection is measured on the
//! benchmark (docs/scaling.md). Because the candidates take part in the median and spread they are
//! compared with, their indices come out somewhat smaller than against the reference alone: the
//! shortlist errs toward passing a class, not toward flagging it.

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::detectors::Detector;
use super::plan::AuditPlan;
use crate::detect::sample::class_rng;
use crate::detect::universal::UniversalParams;

/// `class_rng` purpose of the reference sample.
const REFERENCE_PURPOSE: u64 = 0x7265_6665; // "refe"

/// How much effort the audit gives each class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum EffortMode {
    /// The full effort on every class up to [`EffortParams::full_classes`] classes, adaptive above.
    Auto,
    /// The full effort on every class, whatever their number.
    Full,
}

/// The adaptive-effort settings. Defaults ([`EffortParams::default`]): full effort up to 16 classes;
/// above, a screen of 25 source images and 2 steps per budget level, then the full effort on the 6
/// most suspicious classes (up to 6 more when the screen's index of a class exceeds 2) and on 16
/// seeded reference classes; seed 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EffortParams {
    /// `auto` or `full` (`--effort`).
    pub mode: EffortMode,
    /// Models with at most this many audited classes get the full effort on every class.
    pub full_classes: usize,
    /// The classes the screen ranks most suspicious that always get the full effort.
    pub candidates: usize,
    /// A class whose screen index exceeds this is a candidate too, up to `extra_candidates` more.
    pub screen_threshold: f64,
    /// The most candidates added by `screen_threshold` beyond `candidates`.
    pub extra_candidates: usize,
    /// Seeded random classes (among the non-candidates) measured in full as the reference.
    pub reference_classes: usize,
    /// Source images of the screen's universal-reach search.
    pub screen_images: usize,
    /// Normalised gradient steps per budget level in the screen.
    pub screen_steps_per_level: usize,
    /// Seed of the reference sample.
    pub seed: u64,
}

impl Default for EffortParams {
    fn default() -> Self {
        EffortParams {
            mode: EffortMode::Auto,
            full_classes: 16,
            candidates: 6,
            screen_threshold: 2.0,
            extra_candidates: 6,
            reference_classes: 16,
            screen_images: 25,
            screen_steps_per_level: 2,
            seed: 0,
        }
    }
}

impl EffortParams {
    /// Whether `audited` classes get the adaptive effort.
    pub fn adaptive(&self, audited: usize) -> bool {
        self.mode == EffortMode::Auto && audited > self.full_classes
    }

    /// Classes of the default shortlist, without extra candidates: the screen's candidates and the
    /// reference sample.
    pub fn default_shortlist(&self) -> usize {
        self.candidates + self.reference_classes
    }

    /// The screen: the audit's universal-reach search with fewer source images and steps per level.
    pub fn screen(&self, universal: &UniversalParams) -> UniversalParams {
        UniversalParams {
            images: self.screen_images.min(universal.images),
            steps_per_level: self.screen_steps_per_level.min(universal.steps_per_level),
            ..universal.clone()
        }
    }
}

/// The classes that get the full effort, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shortlist {
    /// Classes the screen looked at (the audited ones).
    pub screened: usize,
    /// The screen's candidates, most suspicious first.
    pub candidates: Vec<usize>,
    /// The seeded random reference classes, ascending.
    pub reference: Vec<usize>,
    /// Every class measured in full: candidates and reference, ascending.
    pub measured: Vec<usize>,
}

impl Shortlist {
    /// Classes the screen dismissed: audited, not measured in full.
    pub fn dismissed(&self, audited: &[usize]) -> Vec<usize> {
        audited.iter().copied().filter(|c| !self.measured.contains(c)).collect()
    }
}

/// Chooses the shortlist from the screen's `(class, anomaly index)` of every audited class (index
/// positive on the suspicious side): the `candidates` classes of highest index (ties: lower class
/// first), then any further class whose index exceeds `screen_threshold`, up to `extra_candidates`;
/// then `reference_classes` classes drawn at random (seeded) from the rest. Classes with a NaN index
/// count as the least suspicious.
pub fn shortlist(screen: &[(usize, f64)], params: &EffortParams) -> Shortlist {
    let mut ranked: Vec<(usize, f64)> =
        screen.iter().map(|&(c, a)| (c, if a.is_nan() { f64::NEG_INFINITY } else { a })).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut candidates: Vec<usize> = ranked.iter().take(params.candidates).map(|&(c, _)| c).collect();
    candidates.extend(
        ranked
            .iter()
            .skip(params.candidates)
            .take_while(|&&(_, a)| a > params.screen_threshold)
            .take(params.extra_candidates)
            .map(|&(c, _)| c),
    );
    let mut rest: Vec<usize> = ranked.iter().map(|&(c, _)| c).filter(|c| !candidates.contains(c)).collect();
    rest.sort_unstable();
    rest.shuffle(&mut class_rng(params.seed, 0, REFERENCE_PURPOSE));
    let mut reference: Vec<usize> = rest.into_iter().take(params.reference_classes).collect();
    reference.sort_unstable();
    let mut measured: Vec<usize> = candidates.iter().chain(&reference).copied().collect();
    measured.sort_unstable();
    Shortlist { screened: screen.len(), candidates, reference, measured }
}

/// Images one class's full effort evaluates (forward and backward), estimated from the `detectors`'
/// parameters: the sum of each one's [`super::detectors::ClassDetector::images_per_class`].
/// `universal_levels` and `reach_sweeps` are the budget levels and sweeps expected before success
/// ([`prior_levels`] before a screen has measured them).
pub fn full_images_per_class(
    plan: &AuditPlan,
    detectors: &[Detector],
    universal_levels: f64,
    reach_sweeps: f64,
) -> f64 {
    detectors.iter().map(|d| d.implementation().images_per_class(plan, universal_levels, reach_sweeps)).sum()
}

/// The budget levels of universal reach and the budgets of reach's sweep expected before a class
/// succeeds, before anything is measured: half of each ladder.
pub fn prior_levels(plan: &AuditPlan) -> (f64, f64) {
    ((plan.universal.levels.len() as f64 + 1.0) / 2.0, (plan.reach.eps_sweep.len() as f64 + 1.0) / 2.0)
}

/// What a time budget allows: the effort settings that fit, and whether they do.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetFit {
    /// The effort settings (candidates, extra candidates and reference classes sized to the budget).
    pub params: EffortParams,
    /// Classes the budget pays the full effort for (at least [`FEWEST_CLASSES`]).
    pub classes: usize,
    /// Whether the budget pays for them (false: even the fewest classes overrun it).
    pub fits: bool,
}

/// The fewest classes a shortlist holds: the class count of the models the built-in calibration was
/// measured on (10-class MNIST classifiers). Each detector's index is a median and a spread over the
/// classes it measured; over fewer classes than the calibration's they swing more widely than its
/// null describes. Measured: with 3 classes in full (the fewest the detectors accept) 2 of the 11
/// clean models of the benchmark's evaluation half were flagged and 3 more backdoors missed
/// (docs/scaling.md).
pub const FEWEST_CLASSES: usize = 10;

/// Sizes the shortlist to `seconds_left` when one class's full effort is estimated at
/// `seconds_per_class`: as many classes as fit, at most the default shortlist (`candidates` +
/// `reference_classes`, plus extra candidates only while they fit), split between candidates and
/// reference in the default proportion (at least one candidate, the rest reference); at least
/// [`FEWEST_CLASSES`] (all of them for fewer audited classes), marked as not fitting when even those
/// overrun.
pub fn fit_budget(seconds_left: f64, seconds_per_class: f64, audited: usize, params: &EffortParams) -> BudgetFit {
    let afford = if seconds_per_class > 0.0 && seconds_left > 0.0 {
        (seconds_left / seconds_per_class).floor().min(audited as f64) as usize
    } else if seconds_per_class > 0.0 {
        0
    } else {
        audited
    };
    let default = params.default_shortlist();
    let fits = afford >= FEWEST_CLASSES.min(audited);
    let n = afford.max(FEWEST_CLASSES).min(audited);
    let p = if n >= default {
        EffortParams { extra_candidates: params.extra_candidates.min(n - default), ..params.clone() }
    } else {
        let share = params.candidates as f64 / default.max(1) as f64;
        let candidates = ((n as f64 * share).round() as usize).clamp(1, params.candidates.max(1)).min(n);
        EffortParams { candidates, reference_classes: n - candidates, extra_candidates: 0, ..params.clone() }
    };
    BudgetFit { classes: n.min(default), params: p, fits }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> EffortParams {
        EffortParams {
            candidates: 2,
            extra_candidates: 2,
            reference_classes: 3,
            screen_threshold: 2.0,
            ..EffortParams::default()
        }
    }

    #[test]
    fn the_most_suspicious_classes_and_a_seeded_reference_get_the_full_effort() {
        // Ten classes; the screen finds class 7 far out (index 9), class 2 next (1.5).
        let screen: Vec<(usize, f64)> =
            [0.1, -0.3, 1.5, 0.0, -1.0, 0.4, 0.2, 9.0, -0.5, 0.3].iter().copied().enumerate().collect();
        let s = shortlist(&screen, &params());
        assert_eq!(s.candidates, vec![7, 2]);
        assert_eq!(s.reference.len(), 3);
        assert!(s.reference.iter().all(|c| !s.candidates.contains(c)));
        assert!(s.reference.windows(2).all(|w| w[0] < w[1]));
        let mut want: Vec<usize> = s.candidates.iter().chain(&s.reference).copied().collect();
        want.sort_unstable();
        assert_eq!(s.measured, want);
        assert_eq!(s.screened, 10);
        assert_eq!(s.dismissed(&(0..10).collect::<Vec<_>>()).len(), 5);
        // The same seed, the same reference; another seed, (here) another one.
        assert_eq!(shortlist(&screen, &params()), s);
        let other = shortlist(&screen, &EffortParams { seed: 5, ..params() });
        assert_eq!(other.candidates, s.candidates);
        assert_ne!(other.reference, s.reference);
    }

    #[test]
    fn classes_past_the_screen_threshold_join_up_to_the_extra_candidates() {
        // Indices 8, 7, 6, 5, 4, 3 on classes 0..6, then small ones: two candidates by rank, then those
        // above 2.0, capped at two more.
        let mut screen: Vec<(usize, f64)> = (0..6).map(|c| (c, 8.0 - c as f64)).collect();
        screen.extend((6..20).map(|c| (c, 0.1)));
        let s = shortlist(&screen, &params());
        assert_eq!(s.candidates, vec![0, 1, 2, 3]);
        // Below the threshold, nothing joins beyond the first two.
        let low: Vec<(usize, f64)> = (0..20).map(|c| (c, 1.9 - 0.01 * c as f64)).collect();
        assert_eq!(shortlist(&low, &params()).candidates, vec![0, 1]);
    }

    #[test]
    fn ties_go_to_the_lower_class_and_nan_ranks_last() {
        let screen = vec![(0, f64::NAN), (1, 1.0), (2, 1.0), (3, 0.5)];
        let s = shortlist(&screen, &EffortParams { candidates: 3, reference_classes: 5, ..params() });
        assert_eq!(s.candidates, vec![1, 2, 3]);
        // Fewer classes than asked for: the reference is all that is left.
        assert_eq!(s.reference, vec![0]);
        assert_eq!(s.measured, vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_budget_sizes_the_shortlist_to_what_it_pays_for() {
        let p = EffortParams::default(); // 6 candidates, 16 reference, 6 extra
                                         // 10 s a class, 400 s left: 40 classes would fit; the default 22 and up to 6 extra (28).
        let f = fit_budget(400.0, 10.0, 100, &p);
        assert!(f.fits);
        assert_eq!((f.params.candidates, f.params.reference_classes, f.params.extra_candidates), (6, 16, 6));
        // 250 s: 25 fit, so 3 extra candidates at most.
        let f = fit_budget(250.0, 10.0, 100, &p);
        assert_eq!((f.params.candidates, f.params.reference_classes, f.params.extra_candidates), (6, 16, 3));
        // 130 s: 13 classes, split 6:16 → 4 candidates and 9 reference, no extra.
        let f = fit_budget(130.0, 10.0, 100, &p);
        assert_eq!(
            (f.classes, f.params.candidates, f.params.reference_classes, f.params.extra_candidates),
            (13, 4, 9, 0)
        );
        // 105 s: 10 classes, the fewest: 3 candidates, 7 reference.
        let f = fit_budget(105.0, 10.0, 100, &p);
        assert!(f.fits);
        assert_eq!((f.classes, f.params.candidates, f.params.reference_classes), (10, 3, 7));
        // 50 s: not even 10 fit; the plan keeps 10 and says it does not fit.
        let f = fit_budget(50.0, 10.0, 100, &p);
        assert!(!f.fits);
        assert_eq!((f.classes, f.params.candidates, f.params.reference_classes), (10, 3, 7));
        // Time already overrun: the same.
        assert!(!fit_budget(-3.0, 10.0, 100, &p).fits);
        // A model of 8 classes: all 8, whatever the budget.
        let f = fit_budget(20.0, 10.0, 8, &p);
        assert_eq!(f.classes, 8);
        assert!(!f.fits);
        assert!(fit_budget(90.0, 10.0, 8, &p).fits);
        // The shortlist chosen with a fitted plan has the planned size.
        let screen: Vec<(usize, f64)> = (0..100).map(|c| (c, if c == 42 { 9.0 } else { 0.01 * c as f64 })).collect();
        let s = shortlist(&screen, &fit_budget(130.0, 10.0, 100, &p).params);
        assert_eq!(s.measured.len(), 13);
        assert_eq!(s.candidates[0], 42);
    }

    #[test]
    fn only_an_auto_effort_above_the_full_class_count_is_adaptive() {
        let p = EffortParams::default();
        assert!(!p.adaptive(10) && !p.adaptive(16) && p.adaptive(17));
        assert!(!EffortParams { mode: EffortMode::Full, ..p.clone() }.adaptive(1000));
        let u = UniversalParams::default();
        let s = p.screen(&u);
        assert_eq!((s.images, s.steps_per_level, s.levels.clone()), (25, 2, u.levels.clone()));
    }
}
