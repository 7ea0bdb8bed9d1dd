//! The `onnx` module's error type: one variant per rule, each message naming the offending file,
//! tensor, node, op or attribute with its values, so the CLI can print it on one line.

use std::path::PathBuf;

use thiserror::Error;

/// Errors of the `onnx` module: reading, validating and analysing a model.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OnnxError {
    /// The model file (or an external-data file) could not be read.
    #[error("cannot read '{path}': {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The model file is larger than [`LoadLimits::max_file_bytes`](crate::onnx::LoadLimits).
    #[error("model file '{path}' is {size} bytes, above the limit of {limit} bytes")]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The bytes are not an ONNX model (empty, truncated, or not protobuf).
    #[error("not an ONNX model: {reason}")]
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
    /// The model imports an operator set from a domain other than the standard ONNX one.
    #[error("opset import of domain '{domain}' (version {version}): only the standard ONNX domain is supported; custom-op domains are rejected and no custom-op library is ever loaded")]
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
    #[error("node '{node}' (op {op}) is in custom-op domain '{domain}': only standard ONNX ops are supported and no custom-op library is ever loaded")]
    CustomOp {
        /// The node's name (or `#index` when unnamed).
        node: String,
        /// The op type.
        op: String,
        /// The node's domain.
        domain: String,
    },
    /// The model defines model-local functions (custom composite ops).
    #[error("the model defines local function '{name}' in domain '{domain}': model-local functions are not supported")]
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
    #[error("node '{node}' (op {op}) reads tensor '{tensor}', which is neither a graph input, an initializer nor a node output")]
    UndefinedInput {
        /// The node.
        node: String,
        /// Its op type.
        op: String,
        /// The undefined tensor.
        tensor: String,
    },
    /// Two definitions of the same tensor name.
    #[error("tensor '{tensor}' is defined twice (second definition: {by})")]
    DuplicateDefinition {
        /// The tensor.
        tensor: String,
        /// What defines it the second time (a node, an initializer or an input).
        by: String,
    },
    /// The graph has a cycle.
    #[error("the graph is cyclic: node '{node}' (op {op}) lies on a cycle")]
    Cycle {
        /// A node on the cycle.
        node: String,
        /// Its op type.
        op: String,
    },
    /// A tensor (initializer, constant or declared shape) breaks a size rule.
    #[error("tensor '{tensor}': {reason}")]
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
    #[error("external data of tensor '{tensor}' (location '{location}'): {reason}")]
    ExternalData {
        /// The tensor.
        tensor: String,
        /// The `location` it names.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// An attribute is missing or has the wrong type.
    #[error("node '{node}' ({op}), attribute '{attr}': {reason}")]
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
    /// No image input could be found.
    #[error("no image input: {0}")]
    NoImageInput(String),
    /// The image input's channel, height or width is not a fixed positive number.
    #[error("dynamic dims that cannot be resolved: image input '{input}' has shape {shape}; channels, height and width must be fixed positive numbers")]
    DynamicDims {
        /// The input.
        input: String,
        /// Its shape as declared, e.g. `[N, C, 28, 28]`.
        shape: String,
    },
    /// The image input looks channels-last but is not transposed to NCHW inside the model.
    #[error("wrong data layout: aegis-audit needs NCHW, but image input '{input}' has shape {shape} (NHWC) and the model never transposes it to NCHW (perm [0, 3, 1, 2]); NHWC inputs are read when the model does, as tf2onnx writes Keras models")]
    WrongLayout {
        /// The input.
        input: String,
        /// Its declared shape.
        shape: String,
    },
    /// No logits tensor / classifier head could be found.
    #[error("no classifier head: {0}")]
    NoClassifierHead(String),
    /// The feature tensor could not be chosen or the named one is unusable.
    #[error("feature tensor: {0}")]
    Feature(String),
    /// A tensor's data could not be read as the requested type.
    #[error("tensor '{tensor}': cannot read as {wanted}: {reason}")]
    TensorData {
        /// The tensor.
        tensor: String,
        /// The requested element type.
        wanted: &'static str,
        /// What is wrong.
        reason: String,
    },
}
