//! Preparing a model for detection, once per model: safe loading and validation, analysis (image
//! input, logits, feature tensor), the gradient graph, and the ONNX Runtime session over it.

use std::path::Path;

use crate::attack::OnnxGradModel;
use crate::grad::{self, GradSpec, ShapeMap};
use crate::onnx::proto::ModelProto;
use crate::onnx::{self, Analysis, FeatureChoice, LoadLimits};
use crate::runtime::{self, SessionConfig};
use crate::Result;

/// The gradient graph of `model` (see [`grad::build`]): the shapes the backward rules need are
/// inferred statically (every node checked on the way); only those static inference cannot
/// determine are probed with ONNX Runtime (initialised here if it was not already).
pub fn gradient_graph(model: &ModelProto, spec: &GradSpec, config: &SessionConfig) -> Result<ModelProto> {
    let (mut shapes, missing) = grad::static_shapes(model, spec)?;
    if !missing.is_empty() {
        let (at1, at2) = runtime::probe_shapes(model, &spec.input, &missing, config)?;
        shapes.extend(ShapeMap::from_probes(&at1, &at2)?);
    }
    Ok(grad::build(model, spec, &shapes)?)
}

/// A model ready for detection.
#[derive(Debug)]
pub struct PreparedModel {
    /// What aegis-audit found in the model.
    pub analysis: Analysis,
    /// The serialized gradient graph (inputs `x`, `y`; outputs `logits`, `features`, `loss`, `grad`).
    pub grad_graph: Vec<u8>,
    /// The session over the gradient graph.
    pub model: OnnxGradModel,
}

impl PreparedModel {
    /// Loads `path` within `limits`, analyses it, builds its gradient graph and opens a session.
    /// ONNX Runtime is initialised here if it was not already.
    pub fn load(
        path: &Path,
        feature: &FeatureChoice,
        limits: &LoadLimits,
        config: &SessionConfig,
    ) -> Result<PreparedModel> {
        let model = onnx::load_model(path, limits)?;
        let analysis = onnx::analyze(&model, feature)?;
        // An op without a backward rule makes `gradient_graph` fail naming the node and the op.
        let spec = GradSpec {
            input: analysis.image_input.name.clone(),
            logits: analysis.logits.name.clone(),
            features: analysis.feature.name.clone(),
        };
        let graph = gradient_graph(&model.proto, &spec, config)?;
        let grad_graph = onnx::encode(&graph);
        let shape = (
            analysis.image_input.channels as usize,
            analysis.image_input.height as usize,
            analysis.image_input.width as usize,
        );
        runtime::init(None)?;
        let model = OnnxGradModel::new(&grad_graph, shape, config)?;
        Ok(PreparedModel { analysis, grad_graph, model })
    }

    /// Image shape `(c, h, w)`.
    pub fn image_shape(&self) -> (usize, usize, usize) {
        let i = &self.analysis.image_input;
        (i.channels as usize, i.height as usize, i.width as usize)
    }
}
