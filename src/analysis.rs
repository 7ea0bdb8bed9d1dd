//! The analysis of a loaded model: finds the image input (NCHW, fixed C/H/W;
//! [`fix_open_image_dims`](crate::analysis::fix_open_image_dims) fixes open ones to the data's size
//! first), the logits tensor and class count (from the final Gemm/MatMul's weights), the feature tensor
//! ([`FeatureChoice`](crate::analysis::FeatureChoice)), the op histogram and the ops on the
//! input→logits path that the gradient builder cannot differentiate. A layer above [`crate::onnx`]
//! (the graph, shapes, layout) and [`crate::grad`] (the one definition of the differentiable path,
//! [`crate::grad::DiffPath`]).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::grad::{DiffPath, GradError};
use crate::onnx::attr::NodeExt;
use crate::onnx::graph::Graph;
use crate::onnx::layout::{image_layout, Layout};
use crate::onnx::proto::tensor_proto::DataType;
use crate::onnx::shape::{declared_elem_type, declared_shape, shape_string, Dim};
use crate::onnx::tensor::elem_type_name;
use crate::onnx::{Model, OnnxError};

/// Which tensor is the feature representation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum FeatureChoice {
    /// The last convolutional block's output: the input of the pooling/Flatten chain that feeds
    /// the classifier head (as the AEGIS authors took it).
    #[default]
    LastConv,
    /// The input of the final Gemm/MatMul.
    Penultimate,
    /// This tensor; it must lie on the input→logits path.
    Named(String),
}

/// The image input.
#[derive(Debug, Clone, Serialize)]
pub struct ImageInput {
    /// Tensor name.
    pub name: String,
    /// `NCHW`, or `NHWC` for a channels-last input that the model transposes to NCHW (the
    /// gradient graph then takes NCHW images and transposes them itself, see
    /// [`crate::grad::nchw_front`]).
    pub layout: String,
    /// Declared shape (in the model's layout); the batch dim may be symbolic.
    pub shape: Vec<Dim>,
    /// Element type (`float32`).
    pub dtype: String,
    /// Channels (C).
    pub channels: i64,
    /// Height (H).
    pub height: i64,
    /// Width (W).
    pub width: i64,
}

/// The logits tensor and the classifier layer that produces it.
#[derive(Debug, Clone, Serialize)]
pub struct Logits {
    /// The logits tensor (the input of a final Softmax/LogSoftmax, else the graph output).
    pub name: String,
    /// The graph output it was found from.
    pub graph_output: String,
    /// `Softmax` or `LogSoftmax` when the graph output is one applied to the logits.
    pub softmax: Option<String>,
    /// Name of the final Gemm/MatMul node.
    pub head_node: String,
    /// Its op (`Gemm` or `MatMul`).
    pub head_op: String,
}

/// The feature tensor.
#[derive(Debug, Clone, Serialize)]
pub struct Feature {
    /// Tensor name.
    pub name: String,
    /// How it was chosen: `last-conv`, `last-hidden` (no convolution), `classifier-input` (no hidden layer
    /// either), `penultimate` or `named`.
    pub choice: String,
    /// Op of the node producing it (`None` for a graph input).
    pub producer_op: Option<String>,
    /// Declared shape when the model declares one (value_info), else `None`.
    pub shape: Option<Vec<Dim>>,
    /// Why this tensor: what was walked from the head and what it is (for `inspect`).
    pub reason: String,
}

/// Facts about the model file.
#[derive(Debug, Clone, Serialize)]
pub struct ModelSummary {
    /// The file.
    pub path: String,
    /// IR version.
    pub ir_version: i64,
    /// Standard opset version.
    pub opset: i64,
    /// `producer_name producer_version`, possibly empty.
    pub producer: String,
    /// Nodes in the main graph.
    pub nodes: usize,
    /// Initializers in the main graph.
    pub initializers: usize,
    /// Their bytes (all inline after loading).
    pub initializer_bytes: u64,
    /// The half-precision type the model was stored in, widened to float32 on loading (absent: a
    /// float32 model).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub widened_from: Option<String>,
}

/// What aegis-audit sees in a classifier.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    /// The model file.
    pub model: ModelSummary,
    /// The image input.
    pub image_input: ImageInput,
    /// The logits.
    pub logits: Logits,
    /// Class count K (logits are `[N, K]`).
    pub num_classes: usize,
    /// The feature tensor.
    pub feature: Feature,
    /// Count of nodes per op type in the main graph.
    pub op_histogram: BTreeMap<String, usize>,
    /// Count of nodes per op type on the input→logits data path.
    pub path_ops: BTreeMap<String, usize>,
    /// Op types on that path without a backward rule in [`crate::grad`] (sorted); the path is
    /// [`crate::grad::DiffPath`], the same the gradient builder walks.
    pub unsupported_ops: Vec<String>,
    /// Whether the gradient builder can differentiate the model: every op on the input→logits path
    /// has a backward rule and nothing else (the opset) stands in the way.
    pub differentiable: bool,
    /// Why the model is not differentiable although every op on the path has a rule (an opset the
    /// gradient graph cannot import), if so.
    pub gradient_blocker: Option<String>,
    /// Whether the logits are a linear model of the image: no convolution and no hidden layer on the
    /// path (the fused decision is not validated on such models: docs/limits.md).
    pub linear: bool,
}

/// Ops that may sit between the classifier layer and the logits, or between hidden head layers
/// (an MLP head with activations, normalisation and dropout).
const HEAD_OPS: &[&str] = &[
    "Gemm",
    "MatMul",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Relu",
    "LeakyRelu",
    "PRelu",
    "Elu",
    "Selu",
    "Sigmoid",
    "Tanh",
    "Clip",
    "HardSigmoid",
    "HardSwish",
    "Gelu",
    "Softplus",
    "Dropout",
    "Identity",
    "BatchNormalization",
    "LayerNormalization",
];

/// Ops that reduce a spatial map or a token sequence to a vector for the head (global or windowed
/// pooling, flattening, reshaping).
const POOL_FLATTEN_OPS: &[&str] = &[
    "Flatten",
    "Reshape",
    "Squeeze",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "AveragePool",
    "MaxPool",
    "ReduceMean",
    "ReduceMax",
    "ReduceSum",
];

/// Ops that may sit inside the pooling chain without ending it: a permutation or normalisation
/// after the pooling (ConvNeXt's LayerNorm2d, Swin's permute; the dynamo exporter writes some of
/// these views as a Gather over the flattened tensor), dropout.
const CHAIN_PASS_OPS: &[&str] =
    &["Transpose", "LayerNormalization", "BatchNormalization", "Dropout", "Identity", "Unsqueeze", "Gather"];

/// Unary ops (or ops with one computed input) an activation written out in elementary ops may use
/// (SiLU as `x·Sigmoid(x)`, GELU as `0.5·x·(1 + Erf(x/√2))`).
const ACTIVATION_PARTS: &[&str] =
    &["Sigmoid", "Tanh", "Erf", "Add", "Sub", "Mul", "Div", "Pow", "Exp", "Softplus", "HardSigmoid", "Relu", "Clip"];

impl Analysis {
    /// One line saying whether (and if not, why not) the gradient builder can differentiate the
    /// model, as `inspect` prints it.
    pub fn differentiability(&self) -> String {
        if self.differentiable {
            "yes: every op on the input→logits path has a backward rule".into()
        } else if !self.unsupported_ops.is_empty() {
            format!("no: unsupported on the input→logits path: {}", self.unsupported_ops.join(", "))
        } else {
            format!("no: {}", self.gradient_blocker.as_deref().unwrap_or("unknown reason"))
        }
    }

    /// A copy for printing: every name that comes from the model or the command line (path,
    /// tensor, node and op names, declared symbolic dims, producer) passed through
    /// [`escape`](crate::escape::escape), so no control character or escape sequence reaches
    /// a terminal. The JSON form keeps the exact names (JSON escapes control characters itself).
    pub fn escaped(&self) -> Analysis {
        let e = |s: &String| crate::escape::escape(s).into_owned();
        let dims = |d: &Vec<Dim>| {
            d.iter().map(|d| if let Dim::Param(p) = d { Dim::Param(e(p)) } else { d.clone() }).collect::<Vec<_>>()
        };
        let mut a = self.clone();
        a.model.path = e(&a.model.path);
        a.model.producer = e(&a.model.producer);
        a.image_input.name = e(&a.image_input.name);
        a.image_input.shape = dims(&a.image_input.shape);
        a.logits.name = e(&a.logits.name);
        a.logits.graph_output = e(&a.logits.graph_output);
        a.logits.head_node = e(&a.logits.head_node);
        a.logits.head_op = e(&a.logits.head_op);
        a.logits.softmax = a.logits.softmax.as_ref().map(e);
        a.feature.name = e(&a.feature.name);
        a.feature.producer_op = a.feature.producer_op.as_ref().map(e);
        a.feature.shape = a.feature.shape.as_ref().map(dims);
        a.feature.reason = e(&a.feature.reason);
        a.op_histogram = a.op_histogram.iter().map(|(k, v)| (e(k), *v)).collect();
        a.path_ops = a.path_ops.iter().map(|(k, v)| (e(k), *v)).collect();
        a.unsupported_ops = a.unsupported_ops.iter().map(e).collect();
        a.gradient_blocker = a.gradient_blocker.as_ref().map(e);
        a
    }
}

/// The image input's name as stored in the graph (borrowed for the path's lifetime).
fn image_key<'a>(g: &Graph<'a>, name: &str) -> &'a str {
    g.proto.input.iter().filter_map(|v| v.name.as_deref()).find(|n| *n == name).unwrap_or("")
}

/// A path error as an analysis error (the topology was validated at load, so only a cycle in an
/// unvalidated model can fail here).
fn grad_error(e: GradError) -> OnnxError {
    match e {
        GradError::Model(e) => e,
        other => OnnxError::NoClassifierHead(other.to_string()),
    }
}

/// Analyses a loaded model. See the module doc for the rules.
pub fn analyze(model: &Model, choice: &FeatureChoice) -> Result<Analysis, OnnxError> {
    let g = Graph::new(model.graph());
    let image_input = find_image_input(&g)?;
    let (logits, k) = find_logits(&g)?;
    // The one definition of the differentiable path is the gradient builder's.
    let path = DiffPath::new(&g, image_key(&g, &image_input.name), &logits.name).map_err(grad_error)?;
    if path.is_empty() {
        return Err(OnnxError::NoClassifierHead(format!(
            "the logits tensor '{}' does not depend on the image input '{}'",
            logits.name, image_input.name
        )));
    }
    let body = Body::of(&g, &path, &logits);
    let linear = matches!(body, Body::Linear);
    let feature = find_feature(&g, choice, &image_input.name, &logits, &path, body)?;
    // Every node whose shape can be inferred statically is checked before anything runs.
    crate::onnx::infer::static_shapes(g.proto, model.opset, &image_input.name, Some(&logits.name))?;

    let mut op_histogram = BTreeMap::new();
    for node in &g.proto.node {
        *op_histogram.entry(node.op().to_string()).or_insert(0) += 1;
    }
    let path_ops = path.op_counts(&g);
    let unsupported_ops = path.unsupported_ops(&g);
    let to_features = crate::grad::path::ancestors(&g, &feature.name);
    let kept = (0..g.proto.node.len()).filter(|&i| path.to_logits[i] || to_features[i]).map(|i| (i, g.node(i)));
    let gradient_blocker = crate::grad::path::output_opset(model.opset, kept).err().map(|e| e.to_string());
    let p = &model.proto;
    let producer =
        format!("{} {}", p.producer_name.as_deref().unwrap_or(""), p.producer_version.as_deref().unwrap_or(""))
            .trim()
            .to_string();
    Ok(Analysis {
        model: ModelSummary {
            path: model.path.display().to_string(),
            ir_version: p.ir_version.unwrap_or(0),
            opset: model.opset,
            producer,
            nodes: g.proto.node.len(),
            initializers: g.proto.initializer.len(),
            initializer_bytes: g
                .proto
                .initializer
                .iter()
                .map(|t| t.raw_data.as_ref().map_or(0, |r| r.len() as u64))
                .sum(),
            widened_from: model.widened.as_ref().map(|w| w.from.clone()),
        },
        image_input,
        logits: logits.info,
        num_classes: k,
        feature,
        op_histogram,
        differentiable: unsupported_ops.is_empty() && gradient_blocker.is_none(),
        path_ops,
        unsupported_ops,
        gradient_blocker,
        linear,
    })
}

/// The image size a model whose input leaves channels, height or width open is audited at (the data's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenDimsFill {
    /// Channels, where the data fixes them.
    pub channels: Option<i64>,
    /// Height in pixels.
    pub height: i64,
    /// Width in pixels.
    pub width: i64,
}

/// Fixes the dims the image input leaves open (a name such as `H`, or no value) to `fill`'s (asked only
/// when a dim is open), in the
/// model's declared input shape, so that the analysis, the shapes and the gradient graph see a
/// model of that size; dims the model fixes stay as they are (a mismatch with the data is then
/// reported as before). Acts only on a graph with one runtime input of rank 4 (NCHW, or NHWC where the
/// model transposes it); returns what it fixed (e.g. `H = 28, W = 28`), `None` when nothing was open
/// (or channels were open and `fill` does not know them).
pub fn fix_open_image_dims(model: &mut Model, fill: impl FnOnce() -> Option<OpenDimsFill>) -> Option<String> {
    let (index, nhwc) = {
        let g = Graph::new(model.graph());
        let [one] = g.runtime_inputs()[..] else { return None };
        let name = one.name.clone().unwrap_or_default();
        let index = model.graph().input.iter().position(|vi| vi.name.as_deref() == Some(name.as_str()))?;
        (index, image_layout(&g, &name) == Layout::Nhwc)
    };
    use crate::onnx::proto::tensor_shape_proto::dimension::Value;
    use crate::onnx::proto::type_proto::Value as TypeValue;
    let graph = model.proto.graph.as_mut()?;
    let Some(TypeValue::TensorType(t)) = graph.input[index].r#type.as_mut().and_then(|t| t.value.as_mut()) else {
        return None;
    };
    let dims = &mut t.shape.as_mut()?.dim;
    if dims.len() != 4 {
        return None;
    }
    let open =
        |d: &crate::onnx::proto::tensor_shape_proto::Dimension| !matches!(d.value, Some(Value::DimValue(v)) if v > 0);
    if !dims[1..].iter().any(open) {
        return None;
    }
    let fill = fill()?;
    let order: [(usize, &str, Option<i64>); 3] = if nhwc {
        [(1, "H", Some(fill.height)), (2, "W", Some(fill.width)), (3, "C", fill.channels)]
    } else {
        [(1, "C", fill.channels), (2, "H", Some(fill.height)), (3, "W", Some(fill.width))]
    };
    if order.iter().any(|&(i, _, value)| open(&dims[i]) && value.is_none()) {
        return None;
    }
    let mut fixed = Vec::new();
    for (i, label, value) in order {
        if let (true, Some(v)) = (open(&dims[i]), value) {
            dims[i].value = Some(Value::DimValue(v));
            fixed.push(format!("{label} = {v}"));
        }
    }
    (!fixed.is_empty()).then(|| fixed.join(", "))
}

fn find_image_input(g: &Graph<'_>) -> Result<ImageInput, OnnxError> {
    let inputs = g.runtime_inputs();
    let vi = match inputs.as_slice() {
        [] => return Err(OnnxError::NoImageInput("the graph has no inputs other than initializers".into())),
        [one] => *one,
        many => {
            let names: Vec<&str> = many.iter().map(|v| v.name.as_deref().unwrap_or("")).collect();
            return Err(OnnxError::NoImageInput(format!(
                "the graph has {} inputs ({}); aegis-audit needs exactly one image input",
                many.len(),
                names.join(", ")
            )));
        }
    };
    let name = vi.name.clone().unwrap_or_default();
    let elem =
        declared_elem_type(vi).ok_or_else(|| OnnxError::NoImageInput(format!("input '{name}' is not a tensor")))?;
    if elem != DataType::Float as i32 {
        return Err(OnnxError::NoImageInput(format!(
            "input '{name}' has element type {}, not float32",
            elem_type_name(elem)
        )));
    }
    let shape = declared_shape(vi)
        .ok_or_else(|| OnnxError::DynamicDims { input: name.clone(), shape: "unknown (no shape declared)".into() })?;
    if shape.len() != 4 {
        return Err(OnnxError::NoImageInput(format!(
            "input '{name}' has rank {} (shape {}); an image input has rank 4 [N, C, H, W]",
            shape.len(),
            shape_string(&shape)
        )));
    }
    let fixed: Vec<Option<i64>> = shape[1..]
        .iter()
        .map(|d| match d {
            Dim::Fixed(v) if *v > 0 => Some(*v),
            _ => None,
        })
        .collect();
    let (Some(d1), Some(d2), Some(d3)) = (fixed[0], fixed[1], fixed[2]) else {
        return Err(OnnxError::DynamicDims { input: name, shape: shape_string(&shape) });
    };
    if matches!(shape[0], Dim::Fixed(v) if v <= 0) {
        return Err(OnnxError::DynamicDims { input: name, shape: shape_string(&shape) });
    }
    if image_layout(g, &name) == Layout::Nhwc {
        return Ok(ImageInput {
            name,
            layout: Layout::Nhwc.to_string(),
            shape,
            dtype: "float32".into(),
            channels: d3,
            height: d1,
            width: d2,
        });
    }
    // Channels-last when the last dim looks like channels (1 or 3, or a small count below the
    // second dim) and the second does not; without a Transpose to NCHW it cannot be read.
    let nhwc = !matches!(d1, 1 | 3) && (matches!(d3, 1 | 3) || (d3 <= 4 && d1 > d3));
    if nhwc {
        return Err(OnnxError::WrongLayout { input: name, shape: shape_string(&shape) });
    }
    Ok(ImageInput {
        name,
        layout: Layout::Nchw.to_string(),
        shape,
        dtype: "float32".into(),
        channels: d1,
        height: d2,
        width: d3,
    })
}

struct FoundLogits {
    name: String,
    head_data_input: String,
    info: Logits,
}

impl FoundLogits {
    /// The classifier layer, for messages: `Gemm 'fc'`.
    fn head(&self) -> String {
        format!("{} '{}'", self.info.head_op, self.info.head_node)
    }
}

/// The one input of node `i` that is computed (not a constant) and carries data.
fn computed_input(g: &Graph<'_>, i: usize) -> Result<String, String> {
    let computed = computed_inputs(g, i);
    match computed.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!("node '{}' ({}) has no computed input", g.label(i), g.node(i).op())),
        _ => Err(format!("node '{}' ({}) has {} computed inputs", g.label(i), g.node(i).op(), computed.len())),
    }
}

/// The computed (non-constant) data inputs of node `i`.
fn computed_inputs(g: &Graph<'_>, i: usize) -> Vec<String> {
    let node = g.node(i);
    node.input
        .iter()
        .enumerate()
        .filter(|(slot, t)| !t.is_empty() && crate::onnx::graph::is_data_input(node.op(), *slot) && !g.is_constant(t))
        .map(|(_, t)| t.clone())
        .collect()
}

/// The tensor an activation written out in elementary ops applies to: node `i` has several
/// computed inputs that all derive, within a few unary steps ([`ACTIVATION_PARTS`]), from one
/// tensor (`x·Sigmoid(x)`, `0.5·x·(1 + Erf(x/√2))`). `None` when they do not (a residual sum).
fn activation_source(g: &Graph<'_>, i: usize) -> Option<String> {
    const DEPTH: usize = 5;
    if !ACTIVATION_PARTS.contains(&g.node(i).op()) {
        return None;
    }
    // For each computed input, the chain of tensors reachable backwards through unary parts.
    let chains: Vec<Vec<String>> = computed_inputs(g, i)
        .into_iter()
        .map(|t| {
            let mut chain = vec![t.clone()];
            let mut cur = t;
            for _ in 0..DEPTH {
                let Some(p) = g.producer(&cur) else { break };
                if !ACTIVATION_PARTS.contains(&g.node(p).op()) {
                    break;
                }
                let Ok(next) = computed_input(g, p) else { break };
                chain.push(next.clone());
                cur = next;
            }
            chain
        })
        .collect();
    if chains.len() < 2 {
        return None;
    }
    // The nearest tensor common to every chain: the activation's input.
    chains[0].iter().find(|t| chains[1..].iter().all(|c| c.contains(t))).cloned()
}

/// The classifier layer found walking back from the logits.
enum HeadKind {
    /// A Gemm or MatMul with a constant weight.
    Dense,
    /// A convolution whose output channels are the classes, pooled to the logits (SqueezeNet).
    Conv,
}

fn find_logits(g: &Graph<'_>) -> Result<(FoundLogits, usize), OnnxError> {
    let outputs: Vec<&str> = g.proto.output.iter().map(|o| o.name.as_deref().unwrap_or("")).collect();
    if outputs.is_empty() {
        return Err(OnnxError::NoClassifierHead("the graph has no outputs".into()));
    }
    let mut candidates: Vec<(String, &str, Option<String>)> = Vec::new();
    for &out in &outputs {
        let (logits, softmax) = match g.producer(out).map(|i| g.node(i)) {
            Some(n) if matches!(n.op(), "Softmax" | "LogSoftmax") => (n.input[0].clone(), Some(n.op().to_string())),
            _ => (out.to_string(), None),
        };
        if !candidates.iter().any(|c| c.0 == logits) {
            candidates.push((logits, out, softmax));
        }
    }
    if candidates.len() > 1 {
        return Err(OnnxError::NoClassifierHead(format!(
            "cannot tell which graph output is the logits: {}",
            outputs.join(", ")
        )));
    }
    let (name, graph_output, softmax) = candidates.remove(0);
    let fail = |msg: String| OnnxError::NoClassifierHead(msg);

    // Walk back from the logits to the final Gemm/MatMul, or to a convolution whose output is
    // pooled and flattened into the logits.
    let mut t = name.clone();
    let mut pooled = false;
    let (head, kind) = loop {
        let Some(p) = g.producer(&t) else {
            return Err(fail(format!(
                "the logits tensor '{name}' is not computed by a Gemm/MatMul layer ('{t}' is a graph input or initializer)"
            )));
        };
        let node = g.node(p);
        match node.op() {
            "Gemm" | "MatMul" => break (p, HeadKind::Dense),
            // A convolutional classifier (SqueezeNet) reads features computed by earlier layers; a
            // lone convolution over the image input is no classifier head.
            "Conv" if pooled && g.producer(&node.input[0]).is_some() => break (p, HeadKind::Conv),
            op if HEAD_OPS.contains(&op) || POOL_FLATTEN_OPS.contains(&op) => {
                pooled |= POOL_FLATTEN_OPS.contains(&op) && !matches!(op, "Flatten" | "Reshape" | "Squeeze");
                t = computed_input(g, p)
                    .map_err(|e| fail(format!("while walking back from the logits '{name}': {e}")))?;
            }
            op => {
                return Err(fail(format!(
                    "the logits tensor '{name}' comes from {op} node '{}', not from a Gemm/MatMul classifier layer \
                     or a pooled convolution",
                    g.label(p)
                )))
            }
        }
    };
    let node = g.node(head);
    let label = g.label(head);
    let weight_name = node.input.get(1).cloned().unwrap_or_default();
    let data_input = node.input.first().cloned().unwrap_or_default();
    let weight = g.constant(&weight_name).ok_or_else(|| {
        fail(format!("the weight '{weight_name}' of the final {} node '{label}' is not a constant", node.op()))
    })?;
    let dims = &weight.dims;
    let k = match (node.op(), kind) {
        ("Conv", _) | (_, HeadKind::Conv) => match dims.first() {
            Some(&out) if dims.len() >= 3 => out,
            _ => return Err(fail(format!("the weight '{weight_name}' of Conv node '{label}' has dims {dims:?}"))),
        },
        ("Gemm", _) => {
            if dims.len() != 2 {
                return Err(fail(format!(
                    "the weight '{weight_name}' of Gemm node '{label}' has dims {dims:?}, not rank 2"
                )));
            }
            let trans_b = node.get_attr_or::<i64>("transB", 0)?;
            if trans_b != 0 {
                dims[0]
            } else {
                dims[1]
            }
        }
        _ => match dims.last() {
            Some(&last) if dims.len() >= 2 => last,
            _ => return Err(fail(format!("the weight '{weight_name}' of MatMul node '{label}' has dims {dims:?}"))),
        },
    };
    if k < 2 {
        return Err(fail(format!(
            "the final {} node '{label}' has {k} output(s); a classifier needs at least 2 classes",
            node.op()
        )));
    }
    if let Some(shape) = g.value_info(&name).and_then(declared_shape) {
        if shape.len() != 2 {
            return Err(fail(format!(
                "the logits tensor '{name}' has shape {}; logits must be rank 2 [N, K]",
                shape_string(&shape)
            )));
        }
        if let Dim::Fixed(d) = shape[1] {
            if d != k {
                return Err(fail(format!(
                    "the logits tensor '{name}' declares {d} classes but the final layer '{label}' has {k}"
                )));
            }
        }
    }
    let info = Logits {
        name: name.clone(),
        graph_output: graph_output.to_string(),
        softmax,
        head_node: label,
        head_op: node.op().to_string(),
    };
    Ok((FoundLogits { name, head_data_input: data_input, info }, k as usize))
}

fn find_feature(
    g: &Graph<'_>,
    choice: &FeatureChoice,
    image: &str,
    logits: &FoundLogits,
    path: &DiffPath<'_>,
    body: Body,
) -> Result<Feature, OnnxError> {
    let head = logits.head();
    let (name, how, reason) = match choice {
        FeatureChoice::Penultimate => (
            logits.head_data_input.clone(),
            "penultimate",
            format!("the input of the classifier layer {head} (--feature-layer penultimate)"),
        ),
        FeatureChoice::Named(n) => {
            let on_path = match g.producer(n) {
                Some(p) => path.on_path[p],
                None if n == image => true,
                None if g.proto.input.iter().any(|i| i.name.as_deref() == Some(n)) || g.initializer(n).is_some() => {
                    false
                }
                None => return Err(OnnxError::Feature(format!("no tensor named '{n}' in the graph"))),
            };
            if !on_path {
                return Err(OnnxError::Feature(format!(
                    "tensor '{n}' is not on the path from the image input '{image}' to the logits '{}'",
                    logits.name
                )));
            }
            (n.clone(), "named", "named with --feature-tensor".to_string())
        }
        FeatureChoice::LastConv => match body {
            Body::Hidden(t, why) => (t, "last-hidden", why),
            Body::Linear => {
                let t = past_dropout(g, &logits.head_data_input);
                let why = format!(
                    "the network has no convolution and no hidden layer (a linear model of the image): the \
                         input of its classifier layer {head}"
                );
                (t, "classifier-input", why)
            }
            Body::Convolutional => {
                let (t, why) = if logits.info.head_op == "Conv" {
                    conv_head_feature(g, &logits.head_data_input, &head)
                } else {
                    last_block_feature(g, &logits.head_data_input, &head)?
                };
                (t, "last-conv", why)
            }
        },
    };
    if name == image && *choice != FeatureChoice::Named(name.clone()) {
        return Err(OnnxError::Feature(format!(
            "the classifier head reads the image input '{image}' directly (no layer to take features from); use --feature-tensor NAME"
        )));
    }
    let producer_op = g.producer(&name).map(|p| g.node(p).op().to_string());
    let shape = g.value_info(&name).and_then(declared_shape);
    Ok(Feature { name, choice: how.to_string(), producer_op, shape, reason })
}

/// Ops that make a network convolutional: without one on the image→logits path, the feature layer is
/// the last hidden layer ([`last_hidden_feature`]).
const CONV_OPS: &[&str] = &["Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "DeformConv"];

/// What the image→logits path is built of, which decides the default feature layer and whether the
/// model is linear in the image.
enum Body {
    /// A convolution lies on the path.
    Convolutional,
    /// No convolution: the last hidden layer and why it was taken ([`last_hidden_feature`]).
    Hidden(String, String),
    /// No convolution and no hidden layer: a linear model of the image.
    Linear,
}

impl Body {
    fn of(g: &Graph<'_>, path: &DiffPath<'_>, logits: &FoundLogits) -> Body {
        if path.order.iter().any(|&i| path.on_path[i] && CONV_OPS.contains(&g.node(i).op())) {
            return Body::Convolutional;
        }
        match last_hidden_feature(g, path, &logits.head_data_input, &logits.head()) {
            Some((t, why)) => Body::Hidden(t, why),
            None => Body::Linear,
        }
    }
}

/// Ops with learned weights that make a hidden layer.
const LAYER_OPS: &[&str] = &["Gemm", "MatMul", "MatMulInteger", "QLinearMatMul", "Einsum"];

/// For a network without convolutions (a multi-layer perceptron): its last hidden layer, the input of
/// the classifier layer past Dropout and Identity, when a layer with learned weights lies on the path
/// before it. `None` for a classifier with no hidden layer (a linear model of the image).
fn last_hidden_feature(g: &Graph<'_>, path: &DiffPath<'_>, head_input: &str, head: &str) -> Option<(String, String)> {
    let t = past_dropout(g, head_input);
    // Whether a learned layer on the path feeds `t`: walk its ancestors.
    let mut stack = vec![t.clone()];
    let mut seen = std::collections::HashSet::new();
    let mut hidden = false;
    while let Some(name) = stack.pop() {
        let Some(p) = g.producer(&name) else { continue };
        if !seen.insert(p) || !path.on_path[p] {
            continue;
        }
        if LAYER_OPS.contains(&g.node(p).op()) {
            hidden = true;
            break;
        }
        stack.extend(g.node(p).input.iter().filter(|i| !i.is_empty()).cloned());
    }
    hidden.then(|| {
        let op = g.producer(&t).map_or("input", |p| g.node(p).op());
        (
            t.clone(),
            format!(
                "the network has no convolution: its last hidden layer, the {op} output that feeds the classifier \
                 layer {head}"
            ),
        )
    })
}

/// `t`, or the tensor before the Dropout and Identity nodes that produce it.
fn past_dropout(g: &Graph<'_>, t: &str) -> String {
    let mut t = t.to_string();
    while let Some(p) = g.producer(&t) {
        match (g.node(p).op(), g.node(p).input.first()) {
            ("Dropout" | "Identity", Some(input)) => t = input.clone(),
            _ => break,
        }
    }
    t
}

/// For a convolutional classifier (SqueezeNet): the input of the classifier convolution, past
/// dropout — the features before the final conv.
fn conv_head_feature(g: &Graph<'_>, conv_input: &str, head: &str) -> (String, String) {
    let mut t = conv_input.to_string();
    let mut skipped = Vec::new();
    while let Some(p) = g.producer(&t) {
        if !matches!(g.node(p).op(), "Dropout" | "Identity") {
            break;
        }
        skipped.push(g.node(p).op().to_string());
        t = g.node(p).input[0].clone();
    }
    let past = if skipped.is_empty() { String::new() } else { format!(" (past {})", skipped.join(", ")) };
    (t, format!("the input of the convolutional classifier {head}{past}: the features before the final conv"))
}

/// One node passed walking back from the head.
struct Step {
    /// Node index.
    node: usize,
    /// The tensor the walk continued from (the node's data input).
    input: String,
    /// The node's output that the walk came through.
    output: String,
}

/// How a step relates to the pooling chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StepKind {
    /// Pooling, flattening or reshaping to the head's input.
    Pool,
    /// Selecting one token of a sequence (a ViT class token: `x[:, 0]`).
    Token,
    /// May sit inside the chain (permutation, normalisation, dropout).
    Pass,
    /// A head layer or activation.
    Head,
}

fn step_kind(g: &Graph<'_>, i: usize) -> StepKind {
    let node = g.node(i);
    let op = node.op();
    if is_token_select(g, i) {
        return StepKind::Token;
    }
    if POOL_FLATTEN_OPS.contains(&op) {
        return StepKind::Pool;
    }
    if CHAIN_PASS_OPS.contains(&op) {
        return StepKind::Pass;
    }
    StepKind::Head
}

/// Whether node `i` picks one position of axis 1 (the token axis of [N, T, D]): Gather with a
/// constant scalar index on axis 1, or Slice of one element on axis 1.
fn is_token_select(g: &Graph<'_>, i: usize) -> bool {
    let node = g.node(i);
    let ints = |t: &str| g.constant(t).and_then(|c| crate::onnx::tensor::tensor_i64(&c).ok());
    match node.op() {
        "Gather" => {
            let axis = node.get_attr_or::<i64>("axis", 0).unwrap_or(0);
            let scalar = node.input.get(1).and_then(|t| g.constant(t)).is_some_and(|c| c.dims.is_empty());
            axis == 1 && scalar
        }
        "Slice" if node.input.len() >= 4 => {
            let (Some(st), Some(en), Some(ax)) = (ints(&node.input[1]), ints(&node.input[2]), ints(&node.input[3]))
            else {
                return false;
            };
            let steps = node.input.get(4).filter(|t| !t.is_empty()).and_then(|t| ints(t));
            ax == [1] && st.len() == 1 && en.len() == 1 && en[0] - st[0] == 1 && steps.is_none_or(|s| s == [1])
        }
        _ => false,
    }
}

/// Walks back from the head's data input through head layers and the pooling chain and returns
/// the last block's output (the input of the pooling chain) or, for a transformer, the selected
/// class token; with the reason in words.
fn last_block_feature(g: &Graph<'_>, head_input: &str, head: &str) -> Result<(String, String), OnnxError> {
    let mut steps: Vec<Step> = Vec::new();
    let mut t = head_input.to_string();
    let stop = loop {
        let Some(p) = g.producer(&t) else { break format!("'{t}' is a graph input") };
        let op = g.node(p).op();
        let allowed = HEAD_OPS.contains(&op)
            || POOL_FLATTEN_OPS.contains(&op)
            || CHAIN_PASS_OPS.contains(&op)
            || is_token_select(g, p)
            || ACTIVATION_PARTS.contains(&op);
        if !allowed {
            break format!("reached {op} node '{}'", g.label(p));
        }
        let next = match computed_input(g, p) {
            Ok(n) => n,
            Err(e) => match activation_source(g, p) {
                Some(src) => src,
                None => break e,
            },
        };
        steps.push(Step { node: p, input: next.clone(), output: t.clone() });
        t = next;
        if steps.len() > 64 {
            break "walked 64 nodes without leaving the head".into();
        }
    };
    // The first pooling group seen from the head: pooling steps, possibly with pass-through
    // steps between them.
    let kinds: Vec<StepKind> = steps.iter().map(|s| step_kind(g, s.node)).collect();
    let Some(first) = kinds.iter().position(|k| matches!(k, StepKind::Pool | StepKind::Token)) else {
        return Err(no_pooling(g, head, &steps, &t, &stop));
    };
    let mut last = first;
    for (j, k) in kinds.iter().enumerate().skip(first + 1) {
        match k {
            StepKind::Pool | StepKind::Token => last = j,
            StepKind::Pass => {}
            StepKind::Head => break,
        }
    }
    let walked = |upto: usize| {
        let mut ops: Vec<&str> = steps[..=upto].iter().map(|s| g.node(s.node).op()).collect();
        ops.reverse();
        ops.join(" → ")
    };
    // A token selection inside the group: the feature is the selected token.
    if let Some(tok) = (first..=last).find(|&j| kinds[j] == StepKind::Token) {
        let s = &steps[tok];
        return Ok((
            s.output.clone(),
            format!(
                "the class token that {} node '{}' selects from the token sequence '{}' for the head {head} \
                 (path: {} → head)",
                g.node(s.node).op(),
                g.label(s.node),
                s.input,
                walked(tok)
            ),
        ));
    }
    let s = &steps[last];
    Ok((
        s.input.clone(),
        format!(
            "the last block's output, before the pooling chain {} → head {head} (the layer AEGIS clusters)",
            walked(last)
        ),
    ))
}

/// The error when no pooling chain or token selection feeds the head: names the tensors passed
/// (the nearest candidates) and the flags.
fn no_pooling(g: &Graph<'_>, head: &str, steps: &[Step], last: &str, stop: &str) -> OnnxError {
    let mut cands: Vec<String> = steps
        .iter()
        .map(|s| format!("'{}' ({} output)", s.output, g.node(s.node).op()))
        .chain(std::iter::once(match g.producer(last) {
            Some(p) => format!("'{last}' ({} output)", g.node(p).op()),
            None => format!("'{last}'"),
        }))
        .collect();
    cands.dedup();
    cands.truncate(4);
    OnnxError::Feature(format!(
        "cannot find the pooling, Flatten or class-token selection that feeds the classifier head {head} \
         (walking back from it: {stop}); nearest candidates: {}; pick one with --feature-tensor NAME, or use \
         --feature-layer penultimate",
        cands.join(", ")
    ))
}
