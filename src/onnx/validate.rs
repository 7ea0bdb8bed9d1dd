//! Model validation: IR version, opset imports and node domains (standard ONNX only), no local
//! functions, node count, tensor sizes against [`LoadLimits`], external data, and the main graph's
//! topology (every input defined, no name defined twice, acyclic).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::onnx::graph::{node_label, Graph};
use crate::onnx::proto::{GraphProto, ModelProto, NodeProto, TensorProto, TypeProto};
use crate::onnx::tensor::{check_data, declared_bytes, tensor_name};
use crate::onnx::{external, LoadLimits, OnnxError};

/// Lowest ONNX IR version read.
pub const MIN_IR_VERSION: i64 = 3;
/// Highest ONNX IR version read (what ONNX Runtime 1.31 loads).
pub const MAX_IR_VERSION: i64 = 13;

/// Lowest standard opset read: ONNX Runtime only guarantees opset 7 and later.
pub const MIN_OPSET: i64 = 7;
/// Highest standard opset read: the newest ONNX Runtime 1.31 loads.
pub const MAX_OPSET: i64 = 26;

/// Whether `domain` names the standard ONNX operator set.
pub fn is_standard_domain(domain: &str) -> bool {
    domain.is_empty() || domain == "ai.onnx"
}

/// The version of the standard ONNX opset `model` imports (the highest when both `""` and
/// `"ai.onnx"` are listed).
pub fn standard_opset(model: &ModelProto) -> Option<i64> {
    model
        .opset_import
        .iter()
        .filter(|o| is_standard_domain(o.domain.as_deref().unwrap_or("")))
        .filter_map(|o| o.version)
        .max()
}

/// What validation found beside the graph: the standard opset version and the external-data files read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    /// The version of the standard ONNX opset the model imports.
    pub opset: i64,
    /// The canonical paths of the external-data files whose bytes were read, each once, in the order
    /// first read.
    pub external_files: Vec<PathBuf>,
}

/// Validates `model` in place (reading external data from `model_dir`, which must be canonical).
pub fn validate(model: &mut ModelProto, model_dir: &Path, limits: &LoadLimits) -> Result<Validated, OnnxError> {
    let ir = model.ir_version.unwrap_or(0);
    if !(MIN_IR_VERSION..=MAX_IR_VERSION).contains(&ir) {
        return Err(OnnxError::IrVersion { version: ir, min: MIN_IR_VERSION, max: MAX_IR_VERSION });
    }
    let mut opset = None;
    for imp in &model.opset_import {
        let domain = imp.domain.as_deref().unwrap_or("");
        let version = imp.version.unwrap_or(0);
        if !is_standard_domain(domain) {
            return Err(OnnxError::ForeignOpset { domain: domain.to_string(), version });
        }
        opset = Some(opset.map_or(version, |v: i64| v.max(version)));
    }
    let opset = opset.ok_or(OnnxError::MissingOpset)?;
    if !(MIN_OPSET..=MAX_OPSET).contains(&opset) {
        return Err(OnnxError::OpsetVersion { version: opset, min: MIN_OPSET, max: MAX_OPSET });
    }
    if let Some(f) = model.functions.first() {
        return Err(OnnxError::LocalFunction {
            name: f.name.clone().unwrap_or_default(),
            domain: f.domain.clone().unwrap_or_default(),
        });
    }
    // Training graphs are never run by aegis-audit; dropping them means their tensors are never read.
    model.training_info.clear();
    let graph = model.graph.as_mut().ok_or(OnnxError::NoGraph)?;

    let mut nodes = 0usize;
    check_graph_tree(graph, limits, &mut nodes)?;
    check_total_bytes(graph, limits)?;
    let mut external_files: Vec<PathBuf> = Vec::new();
    visit_tensors(graph, &mut |t| {
        if external::is_external(t) {
            let expected = declared_bytes(t, limits)?.ok_or_else(|| OnnxError::Tensor {
                tensor: tensor_name(t).to_string(),
                reason: "string tensor with external data".into(),
            })?;
            let file = external::resolve(t, model_dir, expected)?;
            if !external_files.contains(&file) {
                external_files.push(file);
            }
        }
        check_data(t, limits)
    })?;
    check_topology(graph)?;
    Ok(Validated { opset, external_files })
}

/// Node domains, node count and declared shapes of `g` and all its subgraphs.
fn check_graph_tree(g: &GraphProto, limits: &LoadLimits, nodes: &mut usize) -> Result<(), OnnxError> {
    *nodes += g.node.len();
    if *nodes > limits.max_nodes {
        return Err(OnnxError::TooManyNodes { count: *nodes, limit: limits.max_nodes });
    }
    for vi in g.input.iter().chain(&g.output).chain(&g.value_info) {
        check_declared_shape(vi.name.as_deref().unwrap_or(""), vi.r#type.as_ref(), limits)?;
    }
    for (i, node) in g.node.iter().enumerate() {
        let domain = node.domain.as_deref().unwrap_or("");
        if !is_standard_domain(domain) {
            return Err(OnnxError::CustomOp {
                node: node_label(node, i),
                op: node.op_type.clone().unwrap_or_default(),
                domain: domain.to_string(),
            });
        }
        for sub in subgraphs(node) {
            check_graph_tree(sub, limits, nodes)?;
        }
    }
    Ok(())
}

fn subgraphs(node: &NodeProto) -> impl Iterator<Item = &GraphProto> {
    node.attribute.iter().flat_map(|a| a.g.iter().chain(a.graphs.iter()))
}

fn check_declared_shape(name: &str, ty: Option<&TypeProto>, limits: &LoadLimits) -> Result<(), OnnxError> {
    use crate::onnx::proto::tensor_shape_proto::dimension::Value;
    use crate::onnx::proto::type_proto::Value as TypeValue;
    let Some(TypeValue::TensorType(tt)) = ty.and_then(|t| t.value.as_ref()) else {
        return Ok(());
    };
    let Some(shape) = &tt.shape else {
        return Ok(());
    };
    for d in &shape.dim {
        if let Some(Value::DimValue(v)) = d.value {
            if v < 0 || v > limits.max_dim {
                return Err(OnnxError::Tensor {
                    tensor: name.to_string(),
                    reason: format!("declared dimension {v} is outside 0..={} (absurd dimension)", limits.max_dim),
                });
            }
        }
    }
    Ok(())
}

/// Calls `f` on every tensor stored in `g` and its subgraphs: initializers, sparse initializers,
/// and tensor-valued attributes (e.g. of Constant nodes).
/// The bytes every tensor of `g` declares (initializers, attribute values, subgraphs), in total within
/// `limits.max_total_initializer_bytes`.
pub(crate) fn check_total_bytes(g: &mut GraphProto, limits: &LoadLimits) -> Result<(), OnnxError> {
    let mut total = 0u64;
    visit_tensors(g, &mut |t| {
        let bytes = declared_bytes(t, limits)?.unwrap_or(0);
        total = total.saturating_add(bytes);
        if total > limits.max_total_initializer_bytes {
            return Err(OnnxError::TotalTooLarge { total, limit: limits.max_total_initializer_bytes });
        }
        Ok(())
    })
}

/// Calls `f` on every tensor of `g`: initializers, sparse initializers' values and indices, attribute
/// values, and those of every subgraph.
pub(crate) fn visit_tensors(
    g: &mut GraphProto,
    f: &mut dyn FnMut(&mut TensorProto) -> Result<(), OnnxError>,
) -> Result<(), OnnxError> {
    for t in &mut g.initializer {
        f(t)?;
    }
    for s in &mut g.sparse_initializer {
        for t in s.values.iter_mut().chain(s.indices.iter_mut()) {
            f(t)?;
        }
    }
    for node in &mut g.node {
        for a in &mut node.attribute {
            for t in a.t.iter_mut().chain(a.tensors.iter_mut()) {
                f(t)?;
            }
            for s in a.sparse_tensor.iter_mut().chain(a.sparse_tensors.iter_mut()) {
                for t in s.values.iter_mut().chain(s.indices.iter_mut()) {
                    f(t)?;
                }
            }
            for sub in a.g.iter_mut().chain(a.graphs.iter_mut()) {
                visit_tensors(sub, f)?;
            }
        }
    }
    Ok(())
}

/// Every node input defined, no tensor defined twice, acyclic (main graph).
fn check_topology(g: &GraphProto) -> Result<(), OnnxError> {
    let mut defined: HashSet<&str> = HashSet::new();
    let initializers: HashSet<&str> = g
        .initializer
        .iter()
        .filter_map(|t| t.name.as_deref())
        .chain(g.sparse_initializer.iter().filter_map(|s| s.values.as_ref()?.name.as_deref()))
        .collect();
    for vi in &g.input {
        let name = vi.name.as_deref().unwrap_or("");
        if !defined.insert(name) {
            return Err(OnnxError::DuplicateDefinition { tensor: name.to_string(), by: "graph input".into() });
        }
    }
    for name in &initializers {
        // An initializer may also be listed as a graph input (its default value).
        defined.insert(name);
    }
    for (i, node) in g.node.iter().enumerate() {
        for out in node.output.iter().filter(|o| !o.is_empty()) {
            if !defined.insert(out) {
                return Err(OnnxError::DuplicateDefinition {
                    tensor: out.clone(),
                    by: format!("node '{}' (op {})", node_label(node, i), node.op_type.as_deref().unwrap_or("")),
                });
            }
        }
    }
    for (i, node) in g.node.iter().enumerate() {
        for input in node.input.iter().filter(|s| !s.is_empty()) {
            if !defined.contains(input.as_str()) {
                return Err(OnnxError::UndefinedInput {
                    node: node_label(node, i),
                    op: node.op_type.clone().unwrap_or_default(),
                    tensor: input.clone(),
                });
            }
        }
    }
    for out in &g.output {
        let name = out.name.as_deref().unwrap_or("");
        if !defined.contains(name) {
            return Err(OnnxError::Tensor {
                tensor: name.to_string(),
                reason: "graph output is not produced by any node, input or initializer".into(),
            });
        }
    }
    Graph::new(g).topo_order()?;
    Ok(())
}
