//! Reverse-mode differentiation written as standard ONNX ops: turns a classifier into a graph with inputs `x`, `y` and outputs `logits`, `features`, `loss`, `grad`. One file per op family holds its backward rule.

use thiserror::Error;

mod build;
mod layout;
mod opset;
mod rules;
pub mod shapes;

pub use build::{add_initializer_shapes, build, shape_probe_tensors, GradSpec, MIN_OUTPUT_OPSET};
pub use layout::nchw_front;
pub use shapes::{RuntimeProbe, ShapeMap, ShapeProbe, TensorShape};

use crate::onnx::proto::ModelProto;

/// Probes the shapes `build` needs with `probe` (ONNX Runtime in practice: [`RuntimeProbe`]) and
/// builds the gradient graph of `model` (see [`build`]). A channels-last image input is presented
/// as NCHW `x` ([`nchw_front`]).
pub fn build_probed(model: &ModelProto, spec: &GradSpec, probe: &mut dyn ShapeProbe) -> Result<ModelProto, GradError> {
    let fronted = nchw_front(model, &spec.input)?;
    let model = fronted.as_ref().unwrap_or(model);
    let tensors = shape_probe_tensors(model, spec)?;
    let mut shapes = shapes::probe(model, &spec.input, &tensors, probe)?;
    add_initializer_shapes(model, &mut shapes);
    build(model, spec, &shapes)
}

/// ONNX op types (default domain) that the gradient builder can differentiate through.
/// `inspect` reports ops outside this list on the input→logits path as not differentiable.
pub const SUPPORTED_OPS: &[&str] = &[
    "Conv",
    "BatchNormalization",
    "Relu",
    "LeakyRelu",
    "Sigmoid",
    "Tanh",
    "Clip",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "Flatten",
    "Reshape",
    "Gemm",
    "MatMul",
    "Transpose",
    "Concat",
    "Pad",
    "Identity",
    "Dropout",
    "Constant",
    "Softmax",
    "LogSoftmax",
    "HardSigmoid",
    "HardSwish",
    "Gelu",
    "ReduceSum",
    "ReduceMean",
    "ReduceSumSquare",
    "ReduceL2",
    "Slice",
    "Gather",
    "GatherElements",
    "GatherND",
    "Split",
    "Squeeze",
    "Unsqueeze",
    "Expand",
    "Neg",
    "Exp",
    "Log",
    "Sqrt",
    "Reciprocal",
    "Erf",
    "Pow",
    "LayerNormalization",
    "Einsum",
];

/// Whether the gradient builder has a backward rule for `op_type` (default ONNX domain).
pub fn is_supported(op_type: &str) -> bool {
    SUPPORTED_OPS.contains(&op_type)
}

/// Errors of the `grad` module.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GradError {
    /// A node on the input→logits path has no backward rule.
    #[error("node '{node}' ({op}): no gradient rule for op '{op}' (supported: {})", SUPPORTED_OPS.join(", "))]
    UnsupportedOp {
        /// The node's name.
        node: String,
        /// The node's op type (with its domain when not the default one).
        op: String,
    },
    /// A node is on the path but one of its inputs or attributes is outside what its rule handles.
    #[error("node '{node}' ({op}): {reason}")]
    UnsupportedCase {
        /// The node's name.
        node: String,
        /// The node's op type.
        op: String,
        /// What is not supported, with values.
        reason: String,
    },
    /// A node attribute has the wrong type or an invalid value.
    #[error("node '{node}' ({op}), attribute '{attr}': {reason}")]
    BadAttribute {
        /// The node's name.
        node: String,
        /// The node's op type.
        op: String,
        /// The attribute.
        attr: String,
        /// What is wrong.
        reason: String,
    },
    /// A tensor named in the [`GradSpec`] does not exist in the graph.
    #[error("tensor '{name}' ({role}) is not in the model's graph")]
    MissingTensor {
        /// The tensor's name.
        name: String,
        /// Its role: image input, logits or features.
        role: &'static str,
    },
    /// The shape of a tensor the backward pass needs is unknown (not probed).
    #[error("no static shape known for tensor '{0}' (shape probe incomplete)")]
    MissingShape(String),
    /// The model does not have the form the gradient graph needs.
    #[error("{0}")]
    BadModel(String),
    /// The model imports an ONNX opset this builder cannot emit rules for.
    #[error("{0}")]
    Opset(String),
    /// Probing static shapes with ONNX Runtime failed.
    #[error("shape probe failed: {0}")]
    Probe(String),
}
