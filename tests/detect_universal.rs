//! The universal-reach detector on an analytic linear softmax model: the shortcut class needs a far
//! smaller shared perturbation than the natural classes and is the only one flagged; a clean model
//! flags nothing; results are seeded and bad inputs are errors; no batch is evaluated twice.

mod detect_support;

use aegis_audit::attack::{AttackError, GradOutput, GradientModel};
use aegis_audit::detect::sample::HeldOut;
use aegis_audit::detect::universal::{run_universal, UniversalParams};
use detect_support::{dataset, Linear, CLASSES, DIM, TRIGGER};

fn params() -> UniversalParams {
    UniversalParams { images: 64, batch_size: 32, seed: 3, ..UniversalParams::default() }
}

#[test]
fn shortcut_class_needs_the_smallest_budget_and_is_flagged() {
    let (images, labels) = dataset();
    let mut model = Linear { shortcut: Some((3, 100.0)) };
    let r = run_universal(&mut model, &images, &labels, HeldOut::default(), &params(), |_| {}).unwrap();
    assert_eq!(r.flagged, vec![3], "{:?}", r.classes.iter().map(|c| c.budget).collect::<Vec<_>>());
    let c3 = &r.classes[3];
    assert!(c3.reached && c3.flagged && c3.anomaly_index > 2.0);
    // Through the trigger pixel, u ≤ 1 needs x_trigger > 0.1·u: a budget near 0.1.
    assert!(c3.budget < 0.2, "budget {}", c3.budget);
    assert!(c3.perturbation[TRIGGER] > 0.05, "the shared perturbation uses the trigger pixel");
    assert_eq!(c3.perturbation.len(), DIM);
    for c in (0..CLASSES).filter(|&c| c != 3) {
        let cu = &r.classes[c];
        // A natural class needs x_c > u for half of the sources: a budget between 0.6 and 1.0.
        assert!(cu.reached && cu.budget > 0.5 && cu.budget < 1.1, "class {c}: budget {}", cu.budget);
        assert!(!cu.flagged && cu.anomaly_index < 2.0);
    }
    // Every class's sources exclude its own images.
    let total: usize = r.classes.iter().map(|c| 64 - c.attempts).sum();
    assert_eq!(total, 64, "each shared source is left out for exactly its own class");
}

#[test]
fn clean_model_flags_nothing_and_runs_are_seeded() {
    let (images, labels) = dataset();
    let mut model = Linear { shortcut: None };
    let a = run_universal(&mut model, &images, &labels, HeldOut::default(), &params(), |_| {}).unwrap();
    assert!(a.flagged.is_empty(), "{:?}", a.classes.iter().map(|c| (c.budget, c.anomaly_index)).collect::<Vec<_>>());
    let b = run_universal(&mut model, &images, &labels, HeldOut::default(), &params(), |_| {}).unwrap();
    assert_eq!(a, b);
}

#[test]
fn bad_inputs_are_errors() {
    let (images, labels) = dataset();
    let mut model = Linear { shortcut: None };
    let mut bad = labels.clone();
    bad[0] = 99;
    let err = run_universal(&mut model, &images, &bad, HeldOut::default(), &params(), |_| {}).unwrap_err().to_string();
    assert!(err.contains("label 99 outside 0..8"), "{err}");
    let err = run_universal(&mut model, &images[..10], &labels, HeldOut::default(), &params(), |_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("10 image values for 320 labels"), "{err}");
    let p = UniversalParams { steps_per_level: 0, ..params() };
    assert!(run_universal(&mut model, &images, &labels, HeldOut::default(), &p, |_| {}).is_err());
}

/// Records a fingerprint of every batch the detector evaluates: its pixels and its labels.
struct Recording {
    inner: Linear,
    batches: Vec<(Vec<u32>, Vec<i64>)>,
}

impl GradientModel for Recording {
    fn image_shape(&self) -> (usize, usize, usize) {
        self.inner.image_shape()
    }

    fn num_classes(&self) -> usize {
        self.inner.num_classes()
    }

    fn feature_dim(&self) -> usize {
        self.inner.feature_dim()
    }

    fn eval(&mut self, x: &[f32], n: usize, y: &[i64]) -> Result<GradOutput, AttackError> {
        self.batches.push((x.iter().map(|v| v.to_bits()).collect(), y.to_vec()));
        self.inner.eval(x, n, y)
    }
}

#[test]
fn no_batch_is_evaluated_twice() {
    // A level's success check evaluates the sources under the δ the next level's first step starts
    // from: its gradient is carried over, not computed again, with the same numbers.
    let (images, labels) = dataset();
    let p = params();
    let mut model = Recording { inner: Linear { shortcut: Some((3, 100.0)) }, batches: Vec::new() };
    let r = run_universal(&mut model, &images, &labels, HeldOut::default(), &p, |_| {}).unwrap();
    assert_eq!(r.evaluations, model.batches.len());
    let mut seen = std::collections::HashSet::new();
    for (i, b) in model.batches.iter().enumerate() {
        assert!(seen.insert(b), "evaluation {i} repeats an earlier one");
    }
    // Per class and batch of sources: every level's steps and success check, less the first step of every
    // level after the first (it takes the success check's gradient): levels × steps + 1.
    let clean_predictions = labels.len().div_ceil(p.batch_size);
    let per_class: usize = r
        .classes
        .iter()
        .map(|c| {
            let levels = c.rates.len();
            let batches = c.attempts.div_ceil(p.batch_size);
            (levels * p.steps_per_level + 1) * batches
        })
        .sum();
    assert!(r.classes.iter().filter(|c| c.rates.len() > 1).count() >= 7, "the natural classes climb the ladder");
    assert_eq!(r.evaluations, clean_predictions + per_class);
    // The same result as before the change: the shortcut class is the only one flagged.
    assert_eq!(r.flagged, vec![3]);
}
