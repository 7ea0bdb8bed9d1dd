//! Preparing a model for detection, once per model, in two stages so that the checks needing the class
//! count run before any expensive work: [`AnalysedModel::load`] (safe loading and validation, analysis:
//! image input, logits, feature tensor), then [`AnalysedModel::prepare`] (the gradient graph and the ONNX
//! Runtime session over it). The model is hashed from the bytes that were loaded.

use std::path::Path;
use std::time::Instant;

use crate::analysis::{self, Analysis, FeatureChoice};
use crate::attack::OnnxGradModel;
use crate::data::ImageShape;
use crate::grad::{self, GradSpec, InputNormalisation, ShapeMap};
use crate::onnx::proto::ModelProto;
use crate::onnx::{self, LoadLimits, Model};
use crate::report::ModelInfo;
use crate::runtime::{self, SessionConfig};
use crate::Result;

/// Wall time of each preparation stage, seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PrepareTimings {
    /// Reading, decoding and validating the file.
    pub load: f64,
    /// Analysis.
    pub analysis: f64,
    /// Building the gradient graph.
    pub graph_build: f64,
    /// Creating the session.
    pub session: f64,
}

/// A model loaded, validated and analysed; no graph built, nothing run.
#[derive(Debug)]
pub struct AnalysedModel {
    /// The validated model.
    pub model: Model,
    /// What aegis-audit found in it.
    pub analysis: Analysis,
    /// Path, SHA-256 and size of the bytes loaded.
    pub info: ModelInfo,
    /// Wall time of loading and analysis.
    pub timings: PrepareTimings,
}

impl AnalysedModel {
    /// Loads `path` within `limits` and analyses it.
    pub fn load(path: &Path, feature: &FeatureChoice, limits: &LoadLimits) -> Result<AnalysedModel> {
        Self::load_filling(path, feature, limits, || None)
    }

    /// [`AnalysedModel::load`] for a model whose image input may leave channels, height or width open:
    /// `fill` (asked only then) gives the size to audit it at (the data's), and the analysis sees the
    /// model with those dims fixed ([`analysis::fix_open_image_dims`]; [`ModelInfo::open_dims_fixed`]
    /// says which).
    pub fn load_filling(
        path: &Path,
        feature: &FeatureChoice,
        limits: &LoadLimits,
        fill: impl FnOnce() -> Option<analysis::OpenDimsFill>,
    ) -> Result<AnalysedModel> {
        let started = Instant::now();
        let mut model = onnx::load_model(path, limits)?;
        let open_dims_fixed = analysis::fix_open_image_dims(&mut model, fill);
        let load = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let analysis = analysis::analyze(&model, feature)?;
        let timings = PrepareTimings { load, analysis: started.elapsed().as_secs_f64(), ..PrepareTimings::default() };
        let info = ModelInfo {
            path: path.display().to_string(),
            sha256: model.sha256.clone(),
            size_bytes: model.size_bytes,
            linear: analysis.linear,
            open_dims_fixed,
            widened_from: model.widened.as_ref().map(|w| w.from.clone()),
        };
        Ok(AnalysedModel { model, analysis, info, timings })
    }

    /// The image shape the model takes.
    pub fn image_shape(&self) -> ImageShape {
        let i = &self.analysis.image_input;
        ImageShape::new(i.channels as usize, i.height as usize, i.width as usize)
    }

    /// The number of classes (logits).
    pub fn num_classes(&self) -> usize {
        self.analysis.num_classes
    }

    /// Builds the gradient graph and opens a session over it (ONNX Runtime must be initialised). With
    /// `normalisation` (the model expects normalised images) the graph normalises its pixel input first
    /// ([`grad::normalise_front`]).
    pub fn prepare(self, config: &SessionConfig, normalisation: Option<&InputNormalisation>) -> Result<PreparedModel> {
        let AnalysedModel { model, analysis, info, mut timings } = self;
        let started = Instant::now();
        // An op without a backward rule makes `gradient_graph` fail naming the node and the op.
        let spec = GradSpec {
            input: analysis.image_input.name.clone(),
            logits: analysis.logits.name.clone(),
            features: analysis.feature.name.clone(),
        };
        let channels = analysis.image_input.channels as usize;
        let normalisation = normalisation.map(|n| (n, channels));
        let (graph, activations_per_image) =
            gradient_graph_and_activations(&model.proto, &spec, config, normalisation)?;
        drop(model);
        let grad_graph = onnx::encode(&graph);
        timings.graph_build = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let i = &analysis.image_input;
        let shape = (i.channels as usize, i.height as usize, i.width as usize);
        let model = OnnxGradModel::new(&grad_graph, shape, config)?;
        timings.session = started.elapsed().as_secs_f64();
        Ok(PreparedModel { analysis, grad_graph, model, info, timings, activations_per_image })
    }
}

/// The gradient graph of `model` (see [`grad::build`]): the shapes the backward rules need are
/// inferred statically (every node checked on the way); only those static inference cannot
/// determine are probed with ONNX Runtime (initialised here if it was not already). A
/// channels-last image input is presented as NCHW `x` ([`grad::nchw_front`]), and a Relu read only
/// by a MaxPool is moved after it, with the same numbers to the bit ([`grad::pool_before_relu`]).
pub fn gradient_graph(model: &ModelProto, spec: &GradSpec, config: &SessionConfig) -> Result<ModelProto> {
    Ok(gradient_graph_and_activations(model, spec, config, None)?.0)
}

/// [`gradient_graph`], and the activation elements per image on the input→logits path (the
/// shapes' [`ShapeMap::per_image_elements`]), which size the audit's memory budget. With
/// `normalisation` (and the input's channels) the NCHW input is normalised before the model reads it.
fn gradient_graph_and_activations(
    model: &ModelProto,
    spec: &GradSpec,
    config: &SessionConfig,
    normalisation: Option<(&InputNormalisation, usize)>,
) -> Result<(ModelProto, u64)> {
    let fronted = grad::nchw_front(model, &spec.input)?;
    let model = fronted.as_ref().unwrap_or(model);
    let normalised = match normalisation {
        Some((n, channels)) => Some(grad::normalise_front(model, &spec.input, channels, n)?),
        None => None,
    };
    let model = normalised.as_ref().unwrap_or(model);
    let reordered = grad::pool_before_relu(model, spec)?;
    let model = reordered.as_ref().unwrap_or(model);
    let (mut shapes, missing) = grad::static_shapes(model, spec)?;
    if !missing.is_empty() {
        let (at1, at2) = runtime::probe_shapes(model, &spec.input, &missing, config)?;
        shapes.extend(ShapeMap::from_probes(&at1, &at2)?);
    }
    Ok((grad::build(model, spec, &shapes)?, shapes.per_image_elements()))
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
    /// Path, SHA-256 and size of the bytes loaded.
    pub info: ModelInfo,
    /// Wall time of each stage.
    pub timings: PrepareTimings,
    /// Activation elements of one image on the input→logits path (the memory budget's estimate).
    pub activations_per_image: u64,
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
        let analysed = AnalysedModel::load(path, feature, limits)?;
        crate::runtime::init(None)?;
        analysed.prepare(config, None)
    }

    /// Image shape `(c, h, w)`.
    pub fn image_shape(&self) -> (usize, usize, usize) {
        let i = &self.analysis.image_input;
        (i.channels as usize, i.height as usize, i.width as usize)
    }
}
