//! The interface PGD needs from a model: loss, gradient and logits for a batch.

use super::AttackError;

/// What one evaluation of a gradient model returns for a batch of `n` images.
#[derive(Debug, Clone, Default)]
pub struct GradOutput {
    /// Logits, `n × num_classes`, row-major.
    pub logits: Vec<f32>,
    /// Per-example cross-entropy of the given labels, `n`.
    pub loss: Vec<f32>,
    /// dL/dx, same layout as the input (`n × c × h × w`).
    pub grad: Vec<f32>,
    /// Feature vectors, `n × feature_dim` (empty where the model does not compute them).
    pub features: Vec<f32>,
}

/// A classifier that can return the gradient of the per-example cross-entropy w.r.t. its input.
pub trait GradientModel {
    /// Image shape `(c, h, w)` of one input.
    fn image_shape(&self) -> (usize, usize, usize);
    /// Number of classes.
    fn num_classes(&self) -> usize;
    /// Length of one feature vector (0 if none).
    fn feature_dim(&self) -> usize;
    /// Evaluates `n` images `x` (NCHW, values in [0, 1]) against labels `y`.
    fn eval(&mut self, x: &[f32], n: usize, y: &[i64]) -> Result<GradOutput, AttackError>;
}
