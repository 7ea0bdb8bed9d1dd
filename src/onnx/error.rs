//! The `onnx` module's error type: one variant per rule, each message naming the offending file,
//! tensor, node, op or attribute with its values, so the CLI can print it on one line.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::escape::escape;

/// A path as printed in messages: displayed, then escaped like every name from outside.
fn esc_path(path: &Path) -> String {
    escape(&path.display().to_string()).into_owned()
}

/// Errors of the `onnx` module: reading, validating and analysing a model.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OnnxError {
    /// The model file (or an external-data file) could not be read.
    #[error("cannot read '{}': {source}", esc_path(.path))]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The model file is larger than [`LoadLimits::max_file_bytes`](crate::onnx::LoadLimits).
    #[error("model file '{}' is {size} bytes, above the limit of {limit} bytes", esc_path(.path))]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The bytes are not an ONNX model (empty, truncated, or not protobuf).
    #[error("not an ONNX model: {}", escape(.reason))]
    NotOnnx {
        /// What is wrong, with the file name where known.
        reason: String,
    },
    /// The model's IR version is outside what aegis-audit and ONNX Runtime 1.31 read.
    #[error("unsupported ONNX IR version {version}: aegis-audit reads IR versions {min} to {max}")]
    IrVersion {
        /// The model's IR version.
        version: i64,
        /// The lowest supported version.
        min: i64,
        /// The highest supported version.
        max: i64,
    },
    /// The standard ONNX opset the model imports is outside what ONNX Runtime 1.31 runs.
    #[error("unsupported ONNX opset {version}: aegis-audit reads models importing opset {min} to {max} of the standard domain")]
    OpsetVersion {
        /// The imported version.
        version: i64,
        /// The lowest supported version.
        min: i64,
        /// The highest supported version.
        max: i64,
    },
    /// The model imports an operator set from a domain other than the standard ONNX one.
    #[error("opset import of domain '{}' (version {version}): only the standard ONNX domain is supported; custom-op domains are rejected and no custom-op library is ever loaded", escape(.domain))]
    ForeignOpset {
        /// The imported domain.
        domain: String,
        /// The imported version.
        version: i64,
    },
    /// The model does not import the standard ONNX operator set.
    #[error("the model imports no standard ONNX opset (domain '' or 'ai.onnx')")]
    MissingOpset,
    /// A node's op belongs to a non-standard domain (a custom op).
    #[error("node '{}' (op {}) is in custom-op domain '{}': only standard ONNX ops are supported and no custom-op library is ever loaded", escape(.node), escape(.op), escape(.domain))]
    CustomOp {
        /// The node's name (or `#index` when unnamed).
        node: String,
        /// The op type.
        op: String,
        /// The node's domain.
        domain: String,
    },
    /// The model defines model-local functions (custom composite ops).
    #[error("the model defines local function '{}' in domain '{}': model-local functions are not supported", escape(.name), escape(.domain))]
    LocalFunction {
        /// The function's name.
        name: String,
        /// The function's domain.
        domain: String,
    },
    /// The model has no graph.
    #[error("the model has no graph")]
    NoGraph,
    /// Too many nodes (counting nodes of subgraphs).
    #[error("the model has {count} nodes, above the limit of {limit}")]
    TooManyNodes {
        /// The number of nodes.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A node reads a tensor that nothing defines.
    #[error("node '{}' (op {}) reads tensor '{}', which is neither a graph input, an initializer nor a node output", escape(.node), escape(.op), escape(.tensor))]
    UndefinedInput {
        /// The node.
        node: String,
        /// Its op type.
        op: String,
        /// The undefined tensor.
        tensor: String,
    },
    /// Two definitions of the same tensor name.
    #[error("tensor '{}' is defined twice (second definition: {})", escape(.tensor), escape(.by))]
    DuplicateDefinition {
        /// The tensor.
        tensor: String,
        /// What defines it the second time (a node, an initializer or an input).
        by: String,
    },
    /// The graph has a cycle.
    #[error("the graph is cyclic: node '{}' (op {}) lies on a cycle", escape(.node), escape(.op))]
    Cycle {
        /// A node on the cycle.
        node: String,
        /// Its op type.
        op: String,
    },
    /// A tensor (initializer, constant or declared shape) breaks a size rule.
    #[error("tensor '{}': {}", escape(.tensor), escape(.reason))]
    Tensor {
        /// The tensor's name.
        tensor: String,
        /// What is wrong, with values.
        reason: String,
    },
    /// The initializers together are larger than [`LoadLimits::max_total_initializer_bytes`](crate::onnx::LoadLimits).
    #[error("initializers declare {total} bytes in total, above the limit of {limit} bytes")]
    TotalTooLarge {
        /// The declared total so far.
        total: u64,
        /// The limit.
        limit: u64,
    },
    /// External data is missing, escapes the model's directory, or lies beyond its file.
    #[error("external data of tensor '{}' (location '{}'): {}", escape(.tensor), escape(.location), escape(.reason))]
    ExternalData {
        /// The tensor.
        tensor: String,
        /// The `location` it names.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// An attribute is missing or has the wrong type.
    #[error("node '{}' ({}), attribute '{}': {}", escape(.node), escape(.op), escape(.attr), escape(.reason))]
    Attribute {
        /// The node.
        node: String,
        /// Its op type.
        op: String,
        /// The attribute.
        attr: String,
        /// What is wrong.
        reason: String,
    },
    /// A node's inputs and attributes give an impossible output shape (a non-positive dimension,
    /// operands that do not fit together), found by static shape inference before anything runs.
    #[error("node '{}' ({}): {}", escape(.node), escape(.op), escape(.reason))]
    Shape {
        /// The node.
        node: String,
        /// Its op type.
        op: String,
        /// What is wrong, with the shapes and attribute values involved.
        reason: String,
    },
    /// No image input could be found.
    #[error("no image input: {}", escape(.0))]
    NoImageInput(String),
    /// The image input's channel, height or width is not a fixed positive number.
    #[error("dynamic dims that cannot be resolved: image input '{}' has shape {}; channels, height and width must be fixed positive numbers (an audit fixes open ones to its --data images' size)", escape(.input), escape(.shape))]
    DynamicDims {
        /// The input.
        input: String,
        /// Its shape as declared, e.g. `[N, C, 28, 28]`.
        shape: String,
    },
    /// The image input looks channels-last but is not transposed to NCHW inside the model.
    #[error("wrong data layout: aegis-audit needs NCHW, but image input '{}' has shape {} (NHWC) and the model never transposes it to NCHW (perm [0, 3, 1, 2]); NHWC inputs are read when the model does, as tf2onnx writes Keras models", escape(.input), escape(.shape))]
    WrongLayout {
        /// The input.
        input: String,
        /// Its declared shape.
        shape: String,
    },
    /// No logits tensor / classifier head could be found.
    #[error("no classifier head: {}", escape(.0))]
    NoClassifierHead(String),
    /// The feature tensor could not be chosen or the named one is unusable.
    #[error("feature tensor: {}", escape(.0))]
    Feature(String),
    /// A tensor's data could not be read as the requested type.
    #[error("tensor '{}': cannot read as {}: {}", escape(.tensor), escape(.wanted), escape(.reason))]
    TensorData {
        /// The tensor.
        tensor: String,
        /// The requested element type.
        wanted: &'static str,
        /// What is wrong.
        reason: String,
    },
}
