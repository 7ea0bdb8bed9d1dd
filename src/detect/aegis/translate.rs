//! AEGIS step 1–2: translate random training images toward a class with targeted L2 PGD and collect
//! the feature vectors of the translated images and of clean training images of that class.

use std::time::Instant;

use rand::seq::index::sample;
use serde::{Deserialize, Serialize};

use super::DetectError;
use crate::attack::{Goal, GradientModel, Norm, PgdParams};
use crate::detect::rules::Rules;
use crate::detect::sample::{class_rng, gather};

/// How images are translated toward a class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranslationParams {
    /// Seed images per class (S), drawn from the whole training set, any label.
    pub seeds_per_class: usize,
    /// L2 radius of the translation (the paper: 100 for MNIST, 500 for CIFAR-10).
    pub eps: f32,
    /// L2 step size (the paper: 0.25).
    pub step: f32,
    /// PGD iterations (the paper: 50–150).
    pub steps: usize,
}

impl TranslationParams {
    /// Checks every rule; the error names the parameter, its value and the rule.
    pub fn check(&self) -> Result<(), DetectError> {
        let r = Rules("translation.");
        r.count("seeds_per_class", self.seeds_per_class)?;
        r.positive("eps", self.eps)?;
        r.positive("step", self.step)?;
        r.count("steps", self.steps)
    }
}

/// The translated and clean samples of one class.
#[derive(Debug, Clone)]
pub struct ClassSamples {
    /// The class.
    pub class: usize,
    /// Training-set indices of the seed images.
    pub seed_indices: Vec<usize>,
    /// Translated images (NCHW, one per seed).
    pub translated_images: Vec<f32>,
    /// Features of the translated images (`seeds × feature_dim`; empty when features were not asked for).
    pub translated_features: Vec<f32>,
    /// Fraction of translated images the model assigns to the class.
    pub reached: f64,
    /// Training-set indices of the clean images of the class (empty when features were not asked for).
    pub clean_indices: Vec<usize>,
    /// Features of the clean images (`clean × feature_dim`).
    pub clean_features: Vec<f32>,
    /// Wall time of the translation (PGD, which also gives the translated images' features), seconds.
    pub translation_s: f64,
    /// Wall time of the clean images' features, seconds.
    pub features_s: f64,
}

/// Translates `params.seeds_per_class` random training images toward `class`; with `features`, also
/// keeps the features of the results and extracts those of as many clean training images of `class`
/// (all of them if fewer). Without, the feature vectors and the clean images are left empty: the
/// translation alone gives the shortcut statistic.
#[allow(clippy::too_many_arguments)]
pub fn translate_class(
    model: &mut dyn GradientModel,
    images: &[f32],
    labels: &[i64],
    class: usize,
    params: &TranslationParams,
    batch_size: usize,
    seed: u64,
    features: bool,
    progress: impl FnMut(usize),
) -> Result<ClassSamples, DetectError> {
    let (c, h, w) = model.image_shape();
    let dim = c * h * w;
    let n = labels.len();
    if n == 0 || images.len() != n * dim {
        return Err(DetectError::NoData(format!(
            "{} training values for {n} labels of {c}×{h}×{w} images",
            images.len()
        )));
    }
    let started = Instant::now();
    let s = params.seeds_per_class.min(n);
    let mut rng = class_rng(seed, class, 1);
    let mut seed_indices = sample(&mut rng, n, s).into_vec();
    seed_indices.sort_unstable();
    let x0 = gather(images, dim, &seed_indices);
    let targets = vec![class as i64; s];
    let pgd = PgdParams {
        norm: Norm::L2,
        eps: params.eps,
        step: params.step,
        steps: params.steps,
        goal: Goal::Targeted,
        batch_size,
    }
    .check()?;
    let result = pgd.run(model, &x0, &targets, progress)?;
    let reached = result.success.iter().filter(|s| **s).count() as f64 / s.max(1) as f64;
    let translation_s = started.elapsed().as_secs_f64();
    if !features {
        return Ok(ClassSamples {
            class,
            seed_indices,
            translated_images: result.images,
            translated_features: Vec::new(),
            reached,
            clean_indices: Vec::new(),
            clean_features: Vec::new(),
            translation_s,
            features_s: 0.0,
        });
    }
    let started = Instant::now();

    let of_class: Vec<usize> = (0..n).filter(|&i| labels[i] == class as i64).collect();
    if of_class.is_empty() {
        return Err(DetectError::NoData(format!("no training images of class {class}")));
    }
    let mut rng = class_rng(seed, class, 2);
    let mut clean_indices: Vec<usize> =
        sample(&mut rng, of_class.len(), s.min(of_class.len())).into_iter().map(|i| of_class[i]).collect();
    clean_indices.sort_unstable();
    let clean_features = features_of(model, &gather(images, dim, &clean_indices), class, batch_size)?;
    Ok(ClassSamples {
        class,
        seed_indices,
        translated_images: result.images,
        translated_features: result.features,
        reached,
        clean_indices,
        clean_features,
        translation_s,
        features_s: started.elapsed().as_secs_f64(),
    })
}

/// Features of `x` (NCHW) in batches; `label` only feeds the loss, which is ignored.
pub fn features_of(
    model: &mut dyn GradientModel,
    x: &[f32],
    label: usize,
    batch_size: usize,
) -> Result<Vec<f32>, DetectError> {
    let (c, h, w) = model.image_shape();
    let dim = c * h * w;
    let n = x.len() / dim;
    let mut out = Vec::with_capacity(n * model.feature_dim());
    for start in (0..n).step_by(batch_size.max(1)) {
        let end = (start + batch_size.max(1)).min(n);
        let y = vec![label as i64; end - start];
        out.extend_from_slice(&model.eval(&x[start * dim..end * dim], end - start, &y)?.features);
    }
    Ok(out)
}
