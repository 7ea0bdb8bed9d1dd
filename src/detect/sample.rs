//! Helpers every detector shares: a seeded random generator per (seed, class, purpose), so that
//! classes are independent of the order they run in, gathering images by index, the model's clean
//! predictions of a held-out set ([`predict`]), which universal reach and reach both start from, and
//! what such a run is given besides the images ([`HeldOut`]).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::DetectError;
use crate::attack::{argmax_rows, AttackError, GradientModel};

/// A seeded RNG for one (seed, class, purpose) triple, so classes are independent of run order.
pub fn class_rng(seed: u64, class: usize, purpose: u64) -> ChaCha8Rng {
    let mix =
        seed ^ (class as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ purpose.wrapping_mul(0xD1B5_4A32_D192_ED03);
    ChaCha8Rng::seed_from_u64(mix)
}

/// Checks a list of classes a detector is asked to measure: distinct, ascending, each below `k`, and at
/// least `least` of them (the detector compares them with each other); `detector` names it in the error.
pub fn check_class_list(classes: &[usize], k: usize, least: usize, detector: &str) -> Result<(), DetectError> {
    if classes.len() < least {
        return Err(DetectError::NoData(format!(
            "{detector} compares at least {least} classes; asked to measure {}: {classes:?}",
            classes.len()
        )));
    }
    if let Some(&c) = classes.iter().find(|&&c| c >= k) {
        return Err(DetectError::InvalidParam(format!("{detector}: class {c} is not a class of a {k}-class model")));
    }
    if classes.windows(2).any(|w| w[1] <= w[0]) {
        return Err(DetectError::InvalidParam(format!(
            "{detector}: the classes to measure must be distinct and ascending, got {classes:?}"
        )));
    }
    Ok(())
}

/// Copies the images at `indices` (each `dim` values) into one buffer.
pub fn gather(images: &[f32], dim: usize, indices: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(indices.len() * dim);
    for &i in indices {
        out.extend_from_slice(&images[i * dim..(i + 1) * dim]);
    }
    out
}

/// The model's clean predictions of a held-out set, one per image, computed in batches of `batch_size`.
/// Universal reach and reach both draw their sources from the correctly classified images: an audit
/// computes the predictions once for both (with the same batches, the same numbers as each computing them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Predictions {
    /// Images per evaluation they were computed with.
    pub batch_size: usize,
    /// The predicted class of every image, in order.
    pub classes: Vec<usize>,
}

/// The model's predictions of every image of `images` (NCHW, `labels.len()` images) in batches of
/// `batch_size`, and the evaluations that took.
pub fn predict(
    model: &mut dyn GradientModel,
    images: &[f32],
    labels: &[i64],
    batch_size: usize,
) -> Result<(Predictions, usize), DetectError> {
    let k = model.num_classes();
    let n = labels.len();
    if n == 0 || batch_size == 0 || !images.len().is_multiple_of(n) {
        return Err(DetectError::NoData(format!("{} image values for {n} labels", images.len())));
    }
    let dim = images.len() / n;
    let mut classes = Vec::with_capacity(n);
    let mut evaluations = 0;
    for start in (0..n).step_by(batch_size) {
        let end = (start + batch_size).min(n);
        let out = model.eval(&images[start * dim..end * dim], end - start, &labels[start..end])?;
        evaluations += 1;
        if out.logits.len() != (end - start) * k {
            return Err(DetectError::Attack(AttackError::Model(format!(
                "logits have {} values, expected {}",
                out.logits.len(),
                (end - start) * k
            ))));
        }
        classes.extend(argmax_rows(&out.logits, k));
    }
    Ok((Predictions { batch_size, classes }, evaluations))
}

/// What a detector that measures classes on a held-out set (universal reach, reach) is given besides
/// the images: the model's clean predictions of them when already computed (an audit computes them once
/// for both detectors; computed with the detector's batch size, they give the numbers it would compute
/// itself) and the classes to measure. The default: predictions computed by the detector (their
/// evaluations counted in its result), every class of the model.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeldOut<'a> {
    /// The model's clean predictions of the images, or `None` to compute them.
    pub predictions: Option<&'a Predictions>,
    /// The classes to measure (distinct, ascending), or `None` for every class.
    pub classes: Option<&'a [usize]>,
}

impl HeldOut<'_> {
    /// The classes to measure: those given, or every class of a `k`-class model.
    pub(crate) fn classes(&self, k: usize) -> Vec<usize> {
        self.classes.map_or_else(|| (0..k).collect(), <[usize]>::to_vec)
    }

    /// The predictions given (checked against the `labels.len()` images), or computed now in batches of
    /// `batch_size`; with the evaluations that took (0 when given).
    pub(crate) fn predictions(
        &self,
        model: &mut dyn GradientModel,
        images: &[f32],
        labels: &[i64],
        batch_size: usize,
    ) -> Result<(std::borrow::Cow<'_, Predictions>, usize), DetectError> {
        match self.predictions {
            Some(p) => {
                check_predictions(p, labels.len(), model.num_classes())?;
                Ok((std::borrow::Cow::Borrowed(p), 0))
            }
            None => {
                let (p, evaluations) = predict(model, images, labels, batch_size)?;
                Ok((std::borrow::Cow::Owned(p), evaluations))
            }
        }
    }
}

/// Checks a held-out set against the model of a detector that compares classes with each other: at
/// least `least` classes (`detector` names it in the error), `labels.len()` images of the model's input
/// size, every label one of its classes; returns the image size (values per image) and the class count.
pub(crate) fn check_held_out(
    model: &dyn GradientModel,
    images: &[f32],
    labels: &[i64],
    least: usize,
    detector: &str,
) -> Result<(usize, usize), DetectError> {
    let (c, h, w) = model.image_shape();
    let dim = c * h * w;
    let k = model.num_classes();
    if k < least {
        return Err(DetectError::NoData(format!("the model has {k} class(es); {detector} compares at least {least}")));
    }
    let n = labels.len();
    if n == 0 || dim == 0 || images.len() != n * dim {
        return Err(DetectError::NoData(format!("{} image values for {n} labels of {c}×{h}×{w} images", images.len())));
    }
    if let Some(bad) = labels.iter().find(|&&l| l < 0 || l as usize >= k) {
        return Err(DetectError::NoData(format!("label {bad} outside 0..{k}")));
    }
    Ok((dim, k))
}

/// Checks that `predictions` cover the `n` images of a held-out set.
pub(crate) fn check_predictions(predictions: &Predictions, n: usize, k: usize) -> Result<(), DetectError> {
    if predictions.classes.len() != n {
        return Err(DetectError::NoData(format!("{} predictions for {n} images", predictions.classes.len())));
    }
    if let Some(bad) = predictions.classes.iter().find(|&&p| p >= k) {
        return Err(DetectError::NoData(format!("prediction {bad} outside 0..{k}")));
    }
    Ok(())
}
