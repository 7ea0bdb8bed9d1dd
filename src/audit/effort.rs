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

use crate::detect::sample::class_rng;
use crate::detect::universal::UniversalParams;

/// `class_rng` purpose of the reference sample.
const REFERENCE_PURPOSE: u64 = 0x7265_6665; // "refe"

/// How much effort the audit gives each class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EffortMode {
    /// The full effort on every class up to [`EffortParams::full_classes`] classes, adaptive above.
    Auto,
    /// The full effort on every class, whatever their number.
    Full,
}

/// The adaptive-effort settings. Defaults ([`EffortParams::default`]): full effort up to 16 classes;
/// above, a screen of 25 source images and 2 steps per budget level, then the full effort on the 6
/// most suspicious classes (more, up to 12, when the screen's index of a class exceeds 2) and on 16
/// seeded reference classes; seed 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EffortParams {
    /// `auto` or `full` (`--effort`).
    pub mode: EffortMode,
    /// Models with at most this many audited classes get the full effort on every class.
    pub full_classes: usize,
    /// The classes the screen ranks most suspicious that always get the full effort.
    pub candidates: usize,
    /// A class whose screen index exceeds this is a candidate too, up to `2 × candidates` in all.
    pub screen_threshold: f64,
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
/// first), then any further class whose index exceeds `screen_threshold`, up to twice `candidates`;
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
            .take(params.candidates)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> EffortParams {
        EffortParams { candidates: 2, reference_classes: 3, screen_threshold: 2.0, ..EffortParams::default() }
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
    fn classes_past_the_screen_threshold_join_up_to_twice_the_candidates() {
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
    fn only_an_auto_effort_above_the_full_class_count_is_adaptive() {
        let p = EffortParams::default();
        assert!(!p.adaptive(10) && !p.adaptive(16) && p.adaptive(17));
        assert!(!EffortParams { mode: EffortMode::Full, ..p.clone() }.adaptive(1000));
        let u = UniversalParams::default();
        let s = p.screen(&u);
        assert_eq!((s.images, s.steps_per_level, s.levels.clone()), (25, 2, u.levels.clone()));
    }
}
