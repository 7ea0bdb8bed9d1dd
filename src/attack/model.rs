//! The interface PGD needs from a model: loss, gradient and logits for a batch, and optionally
//! workers that compute whole PGD steps inside the model.

use super::{AttackError, Norm};

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

impl GradOutput {
    /// Appends the outputs of the images that follow this batch's.
    pub fn append(&mut self, next: GradOutput) {
        self.logits.extend_from_slice(&next.logits);
        self.loss.extend_from_slice(&next.loss);
        self.grad.extend_from_slice(&next.grad);
        self.features.extend_from_slice(&next.features);
    }
}

/// One PGD step for a batch, for [`PgdStepper::step`].
#[derive(Debug)]
pub struct StepRequest<'a> {
    /// The images before the step (`n × c·h·w`, NCHW); the model writes the images after it here.
    pub x: &'a mut [f32],
    /// The images the attack started from (the centre of the ε-ball), same layout.
    pub x0: &'a [f32],
    /// Labels (targets of a targeted attack, true labels of an untargeted one), `n`.
    pub y: &'a [i64],
    /// Images in the batch.
    pub n: usize,
    /// The signed step size: negative moves toward the label (targeted), positive away from it.
    pub step: f32,
    /// The radius of the ball.
    pub eps: f32,
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
    /// Workers that take whole PGD steps inside the model (gradient, step, projection onto the
    /// ball, clamp to [0, 1], with the arithmetic of [`super::Pgd`]'s own step), independent of each
    /// other, so that [`super::Pgd`] can give each worker its own share of the images and run them
    /// at the same time. Empty (the default) when the model has none: [`super::Pgd`] then calls
    /// [`GradientModel::eval`] and steps itself.
    fn steppers(&mut self, norm: Norm) -> Result<Vec<&mut dyn PgdStepper>, AttackError> {
        let _ = norm;
        Ok(Vec::new())
    }
}

/// Takes PGD steps for one batch at a time (see [`GradientModel::steppers`]).
pub trait PgdStepper: Send {
    /// One step: writes the images after it into `req.x` and returns Σ g² per example, which is
    /// finite exactly when every gradient value is.
    fn step(&mut self, req: StepRequest<'_>) -> Result<Vec<f64>, AttackError>;
}
