//! Model analysis: finds the image input (NCHW, fixed C/H/W), the logits tensor and class count
//! (from the final Gemm/MatMul's weights), the feature tensor ([`FeatureChoice`]), the op
//! histogram and the ops on the input→logits path that the gradient builder cannot differentiate.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::grad::{DiffPath, GradError};
use crate::onnx::attr::NodeExt;
use crate::onnx::graph::Graph;
use crate::onnx::proto::tensor_proto::DataType;
use crate::onnx::shape::declared_elem_type;
pub use crate::onnx::shape::{declared_shape, shape_string, Dim};
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
    /// Always `NCHW` (NHWC inputs are rejected).
    pub layout: String,
    /// Declared shape; the batch dim may be symbolic.
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
    /// How it was chosen: `last-conv`, `penultimate` or `named`.
    pub choice: String,
    /// Op of the node producing it (`None` for a graph input).
    pub producer_op: Option<String>,
    /// Declared shape when the model declares one (value_info), else `None`.
    pub shape: Option<Vec<Dim>>,
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
}

/// Ops that may sit between the final Gemm/MatMul and the logits, or between hidden head layers.
const HEAD_OPS: &[&str] = &[
    "Gemm",
    "MatMul",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Relu",
    "LeakyRelu",
    "Sigmoid",
    "Tanh",
    "Clip",
    "Dropout",
    "Identity",
    "BatchNormalization",
];

/// Ops of the pooling/flatten chain between the last conv block and the head.
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
];

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
        a.op_histogram = a.op_histogram.iter().map(|(k, v)| (e(k), *v)).collect();
        a.path_ops = a.path_ops.iter().map(|(k, v)| (e(k), *v)).collect();
        a.unsupported_ops = a.unsupported_ops.iter().map(e).collect();
        a.gradient_blocker = a.gradient_blocker.as_ref().map(e);
        a
    }
}

/// Whether input `slot` of a head or pooling/flatten-chain op carries the data (as opposed to a
/// shape, axes, bounds or statistics).
fn head_data_input(op: &str, slot: usize) -> bool {
    match op {
        "Reshape" | "Squeeze" | "Clip" | "Dropout" | "BatchNormalization" | "ReduceMean" | "ReduceMax" => slot == 0,
        _ => true,
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
    let feature = find_feature(&g, choice, &image_input.name, &logits, &path)?;
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
    })
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
    // Channels-last when the last dim looks like channels (1 or 3, or a small count below the
    // second dim) and the second does not.
    let nhwc = !matches!(d1, 1 | 3) && (matches!(d3, 1 | 3) || (d3 <= 4 && d1 > d3));
    if nhwc {
        return Err(OnnxError::WrongLayout { input: name, shape: shape_string(&shape) });
    }
    Ok(ImageInput { name, layout: "NCHW".into(), shape, dtype: "float32".into(), channels: d1, height: d2, width: d3 })
}

struct FoundLogits {
    name: String,
    head_data_input: String,
    info: Logits,
}

/// The one input of node `i` that is computed (not a constant) and carries data.
fn computed_input(g: &Graph<'_>, i: usize) -> Result<String, String> {
    let node = g.node(i);
    let computed: Vec<&String> = node
        .input
        .iter()
        .enumerate()
        .filter(|(slot, t)| !t.is_empty() && head_data_input(node.op(), *slot) && !g.is_constant(t))
        .map(|(_, t)| t)
        .collect();
    match computed.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(format!("node '{}' ({}) has no computed input", g.label(i), node.op())),
        _ => Err(format!("node '{}' ({}) has {} computed inputs", g.label(i), node.op(), computed.len())),
    }
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

    // Walk back from the logits to the final Gemm/MatMul.
    let mut t = name.clone();
    let head = loop {
        let Some(p) = g.producer(&t) else {
            return Err(fail(format!(
                "the logits tensor '{name}' is not computed by a Gemm/MatMul layer ('{t}' is a graph input or initializer)"
            )));
        };
        let node = g.node(p);
        match node.op() {
            "Gemm" | "MatMul" => break p,
            op if HEAD_OPS.contains(&op) || matches!(op, "Flatten" | "Reshape" | "Squeeze") => {
                t = computed_input(g, p)
                    .map_err(|e| fail(format!("while walking back from the logits '{name}': {e}")))?;
            }
            op => {
                return Err(fail(format!(
                    "the logits tensor '{name}' comes from {op} node '{}', not from a Gemm/MatMul classifier layer",
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
    let k = match node.op() {
        "Gemm" => {
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
) -> Result<Feature, OnnxError> {
    let (name, how) = match choice {
        FeatureChoice::Penultimate => (logits.head_data_input.clone(), "penultimate"),
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
            (n.clone(), "named")
        }
        FeatureChoice::LastConv => (last_conv(g, &logits.head_data_input)?, "last-conv"),
    };
    if name == image && *choice != FeatureChoice::Named(name.clone()) {
        return Err(OnnxError::Feature(format!(
            "the classifier head reads the image input '{image}' directly (no convolutional block); use --feature-tensor NAME"
        )));
    }
    let producer_op = g.producer(&name).map(|p| g.node(p).op().to_string());
    let shape = g.value_info(&name).and_then(declared_shape);
    Ok(Feature { name, choice: how.to_string(), producer_op, shape })
}

/// Walks back from the head's data input through head layers to the pooling/flatten chain and
/// returns that chain's input.
fn last_conv(g: &Graph<'_>, head_input: &str) -> Result<String, OnnxError> {
    let fail =
        |msg: String| OnnxError::Feature(format!("{msg}; use --feature-layer penultimate or --feature-tensor NAME"));
    let mut t = head_input.to_string();
    let mut in_chain = false;
    loop {
        let Some(p) = g.producer(&t) else {
            if in_chain {
                return Ok(t);
            }
            return Err(fail(format!("no pooling or Flatten before the classifier head: '{t}' is a graph input")));
        };
        let op = g.node(p).op();
        if POOL_FLATTEN_OPS.contains(&op) {
            in_chain = true;
            t = g.node(p).input[0].clone();
        } else if in_chain {
            return Ok(t);
        } else if HEAD_OPS.contains(&op) {
            t = computed_input(g, p).map_err(fail)?;
        } else {
            return Err(fail(format!(
                "cannot find the pooling or Flatten that feeds the classifier head: reached {op} node '{}'",
                g.label(p)
            )));
        }
    }
}
