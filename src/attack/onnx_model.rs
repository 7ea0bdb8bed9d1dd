//! A [`GradientModel`] backed by an ONNX Runtime session over a gradient graph (inputs `x`, `y`;
//! outputs `logits`, `features`, `loss`, `grad`). The session is created once per model.

use super::{AttackError, GradOutput, GradientModel};
use crate::runtime::{Device, RuntimeError, Session, SessionConfig, TensorData};

/// Output names of a gradient graph, in the order aegis-audit writes them.
pub const GRAD_OUTPUTS: [&str; 4] = ["logits", "features", "loss", "grad"];

/// An ONNX gradient graph evaluated by ONNX Runtime.
#[derive(Debug)]
pub struct OnnxGradModel {
    session: Session,
    shape: (usize, usize, usize),
    classes: usize,
    feature_dim: usize,
}

impl OnnxGradModel {
    /// Creates the session and probes it once (one zero image) to learn the class count and the
    /// feature length. `shape` is the image shape `(c, h, w)`.
    pub fn new(grad_model: &[u8], shape: (usize, usize, usize), config: &SessionConfig) -> Result<Self, RuntimeError> {
        let session = Session::from_bytes(grad_model, config)?;
        for name in GRAD_OUTPUTS {
            if !session.output_names().iter().any(|o| o == name) {
                return Err(RuntimeError::Session(format!("gradient graph has no output '{name}'")));
            }
        }
        let mut model = OnnxGradModel { session, shape, classes: 0, feature_dim: 0 };
        let (c, h, w) = shape;
        let out = model.run(&vec![0.0; c * h * w], 1, &[0])?;
        model.classes = out.logits.len();
        model.feature_dim = out.features.len();
        if model.classes < 2 {
            return Err(RuntimeError::Run(format!("gradient graph gives {} logits per image", model.classes)));
        }
        Ok(model)
    }

    /// The execution provider the session runs on.
    pub fn device(&self) -> Device {
        self.session.device()
    }

    fn run(&mut self, x: &[f32], n: usize, y: &[i64]) -> Result<GradOutput, RuntimeError> {
        let (c, h, w) = self.shape;
        let inputs = [
            ("x", TensorData::f32(vec![n as i64, c as i64, h as i64, w as i64], x.to_vec())),
            ("y", TensorData::i64(vec![n as i64], y.to_vec())),
        ];
        let mut out = GradOutput::default();
        for (name, tensor) in self.session.run(&inputs)? {
            let slot = match name.as_str() {
                "logits" => &mut out.logits,
                "features" => &mut out.features,
                "loss" => &mut out.loss,
                "grad" => &mut out.grad,
                _ => continue,
            };
            *slot = tensor.into_f32().ok_or_else(|| RuntimeError::Run(format!("output '{name}' is not float32")))?;
        }
        Ok(out)
    }
}

impl GradientModel for OnnxGradModel {
    fn image_shape(&self) -> (usize, usize, usize) {
        self.shape
    }

    fn num_classes(&self) -> usize {
        self.classes
    }

    fn feature_dim(&self) -> usize {
        self.feature_dim
    }

    fn eval(&mut self, x: &[f32], n: usize, y: &[i64]) -> Result<GradOutput, AttackError> {
        let out = self.run(x, n, y).map_err(|e| AttackError::Model(e.to_string()))?;
        let (c, h, w) = self.shape;
        if out.logits.len() != n * self.classes || out.grad.len() != n * c * h * w || out.loss.len() != n {
            return Err(AttackError::Model(format!(
                "gradient graph returned {} logits, {} loss values and {} gradient values for {n} images",
                out.logits.len(),
                out.loss.len(),
                out.grad.len()
            )));
        }
        Ok(out)
    }
}
