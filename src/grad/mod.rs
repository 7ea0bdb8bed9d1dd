//! Reverse-mode differentiation written as standard ONNX ops: turns a classifier into a graph with
//! inputs `x`, `y` and outputs `logits`, `features`, `loss`, `grad`. One file per op family holds
//! its backward rule; [`path`] is the one definition of the differentiable path (asked by
//! the analysis, `analysis::analyze`, too). Graph building runs nothing: the static shapes it needs come from
//! [`static_shapes`], and the few that static inference cannot determine are passed in by the
//! caller (probed with ONNX Runtime, see `audit::prepare::gradient_graph`).

use thiserror::Error;

mod build;
mod layout;
mod normalise;
mod opset;
pub mod path;
mod reorder;
mod rules;
pub mod shapes;

pub use build::{add_initializer_shapes, build, shape_tensors, static_shapes, GradSpec};
pub use layout::nchw_front;
pub use normalise::{normalise_front, InputNormalisation, MAX_NORMALISATION_VALUES};
pub use path::{is_supported, op_class, DiffPath, OpClass, MIN_OUTPUT_OPSET, NO_GRADIENT};
pub use reorder::pool_before_relu;
pub use shapes::{ShapeMap, TensorShape};

use crate::escape::escape;
use crate::onnx::OnnxError;

/// ONNX op types (default domain) that the gradient builder can differentiate through: the op
/// types of the rule table (`rules::RULES`), in its order ([`is_supported`] asks the same table).
pub const SUPPORTED_OPS: &[&str] = &rules::OP_TYPES;

/// Errors of the `grad` module.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GradError {
    /// A node on the input→logits path has no backward rule.
    #[error("node '{}' ({}): no gradient rule for op '{}' (supported: {})", escape(.node), escape(.op), escape(.op), SUPPORTED_OPS.join(", "))]
    UnsupportedOp {
        /// The node's name.
        node: String,
        /// The node's op type (with its domain when not the default one).
        op: String,
    },
    /// A node is on the path but one of its inputs or attributes is outside what its rule handles.
    #[error("node '{}' ({}): {}", escape(.node), escape(.op), escape(.reason))]
    UnsupportedCase {
        /// The node's name.
        node: String,
        /// The node's op type.
        op: String,
        /// What is not supported, with values.
        reason: String,
    },
    /// A node attribute has the wrong type or an invalid value.
    #[error("node '{}' ({}), attribute '{}': {}", escape(.node), escape(.op), escape(.attr), escape(.reason))]
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
    #[error("tensor '{}' ({role}) is not in the model's graph", escape(.name))]
    MissingTensor {
        /// The tensor's name.
        name: String,
        /// Its role: image input, logits or features.
        role: &'static str,
    },
    /// The shape of a tensor the backward pass needs is unknown (not probed).
    #[error("no static shape known for tensor '{}' (shape probe incomplete)", escape(.0))]
    MissingShape(String),
    /// The model does not have the form the gradient graph needs.
    #[error("{}", escape(.0))]
    BadModel(String),
    /// The model imports an ONNX opset this builder cannot emit rules for.
    #[error("{}", escape(.0))]
    Opset(String),
    /// Probing static shapes with ONNX Runtime failed.
    #[error("shape probe failed: {}", escape(.0))]
    Probe(String),
    /// The model is malformed: static shape inference or topology refused it (the same error
    /// the analysis gives, naming the node).
    #[error(transparent)]
    Model(#[from] OnnxError),
}
