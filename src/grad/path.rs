//! The one definition of the differentiable path, asked by both the gradient builder and
//! `analysis::analyze` (so `inspect` and `export-grad` always agree): a node is on the input→logits
//! path when one of its inputs depends on the image input and the logits depend on its output.
//! Dependence propagates through every input of every op except the ops in [`NO_GRADIENT`], whose
//! outputs carry no gradient (integer or boolean results, or values that only depend on a
//! tensor's shape); an op on the path needs a backward rule ([`is_supported`]). Ops whose
//! derivative is zero almost everywhere (Floor, Round, Sign, Ceil, OneHot, Range...) have no rule:
//! on the path they make the model not differentiable, since a gradient through them says nothing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::OnceLock;

use crate::grad::rules::{registry, Rule};
use crate::grad::GradError;
use crate::onnx::attr::NodeExt;
use crate::onnx::graph::{node_label, Graph};
use crate::onnx::proto::NodeProto;
use crate::onnx::validate::is_standard_domain;

/// Ops (default domain) whose outputs carry no gradient: dependence on the image input stops
/// there, so `Shape(x) → Concat → Reshape` is fine.
pub const NO_GRADIENT: &[&str] = &[
    "Shape",
    "Size",
    "ArgMax",
    "ArgMin",
    "NonZero",
    "Equal",
    "Greater",
    "GreaterOrEqual",
    "Less",
    "LessOrEqual",
    "Not",
    "And",
    "Or",
    "Xor",
    "IsNaN",
    "IsInf",
    "ConstantOfShape",
    "EyeLike",
    "RandomNormalLike",
    "RandomUniformLike",
];

/// What the gradient builder does with a node of an op type when it lies on the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpClass {
    /// A backward rule differentiates through it.
    Rule,
    /// Its outputs carry no gradient: the path stops there.
    NoGradient,
    /// Neither: on the path it makes the model not differentiable.
    Unsupported,
}

fn rules() -> &'static HashMap<&'static str, Rule> {
    static RULES: OnceLock<HashMap<&'static str, Rule>> = OnceLock::new();
    RULES.get_or_init(registry)
}

/// The backward rule of `op`, if there is one.
pub(crate) fn rule(op: &str) -> Option<Rule> {
    rules().get(op).copied()
}

/// Whether the gradient builder has a backward rule for `op_type` (default ONNX domain).
pub fn is_supported(op_type: &str) -> bool {
    rules().contains_key(op_type)
}

/// How the gradient builder treats a default-domain node of `op_type` on the path.
pub fn op_class(op_type: &str) -> OpClass {
    if NO_GRADIENT.contains(&op_type) {
        OpClass::NoGradient
    } else if is_supported(op_type) {
        OpClass::Rule
    } else {
        OpClass::Unsupported
    }
}

/// The input→logits path of one graph.
#[derive(Debug, Clone)]
pub struct DiffPath<'a> {
    /// Node indices in topological order.
    pub order: Vec<usize>,
    /// Per node: whether the logits depend on its outputs (through any input).
    pub to_logits: Vec<bool>,
    /// Per node: whether it lies on the path (depends on the input and feeds the logits).
    pub on_path: Vec<bool>,
    /// Tensors that depend on the image input through differentiable ops (the input included).
    pub from_x: HashSet<&'a str>,
}

impl<'a> DiffPath<'a> {
    /// The path from the tensor `input` to the tensor `logits` in `g`.
    pub fn new(g: &Graph<'a>, input: &'a str, logits: &str) -> Result<Self, GradError> {
        let order = g.topo_order()?;
        let to_logits = ancestors(g, logits);
        let mut from_x: HashSet<&'a str> = HashSet::from([input]);
        let mut on_path = vec![false; g.proto.node.len()];
        for &i in &order {
            let n = g.node(i);
            if op_class(n.op()) == OpClass::NoGradient {
                continue;
            }
            if n.input.iter().any(|t| from_x.contains(t.as_str())) {
                from_x.extend(n.output.iter().filter(|o| !o.is_empty()).map(String::as_str));
                on_path[i] = to_logits[i];
            }
        }
        Ok(DiffPath { order, to_logits, on_path, from_x })
    }

    /// Indices of the nodes on the path, in topological order.
    pub fn nodes(&self) -> impl Iterator<Item = usize> + '_ {
        self.order.iter().copied().filter(|&i| self.on_path[i])
    }

    /// Whether no node lies on the path (the logits do not depend on the input).
    pub fn is_empty(&self) -> bool {
        !self.on_path.iter().any(|&b| b)
    }

    /// Count of path nodes per op type.
    pub fn op_counts(&self, g: &Graph<'_>) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for i in self.nodes() {
            *counts.entry(g.node(i).op().to_string()).or_insert(0) += 1;
        }
        counts
    }

    /// Op types on the path without a backward rule (sorted, each once).
    pub fn unsupported_ops(&self, g: &Graph<'_>) -> Vec<String> {
        let mut ops: Vec<String> = self
            .nodes()
            .map(|i| g.node(i))
            .filter(|n| op_class(n.op()) == OpClass::Unsupported || !is_default_domain(n))
            .map(|n| n.op().to_string())
            .collect();
        ops.sort();
        ops.dedup();
        ops
    }
}

/// Whether the node belongs to the default ONNX domain (no domain, `""` or `"ai.onnx"`).
pub(crate) fn is_default_domain(n: &NodeProto) -> bool {
    is_standard_domain(n.domain.as_deref().unwrap_or(""))
}

/// Per node: whether `root` depends on its outputs (through any input).
pub(crate) fn ancestors(g: &Graph<'_>, root: &str) -> Vec<bool> {
    let mut seen = vec![false; g.proto.node.len()];
    let mut stack: Vec<usize> = g.producer(root).into_iter().collect();
    while let Some(i) = stack.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        stack.extend(g.preds(i).iter().copied().filter(|&p| !seen[p]));
    }
    seen
}

/// Ops whose semantics changed at opset 13; a model importing opset 11 or 12 that uses one of them
/// (among the kept nodes) cannot have its import raised and is rejected. (Squeeze, Unsqueeze,
/// ReduceSum and Split only moved an attribute to an input: the gradient builder rewrites them, see
/// `grad::opset`.)
const CHANGED_AT_13: &[&str] = &["Softmax", "LogSoftmax", "Hardmax"];

/// The default-domain opset the gradient graph imports at least (ScatterElements with
/// `reduction` needs 16; 17 is what PyTorch exports by default).
pub const MIN_OUTPUT_OPSET: i64 = 17;

/// The opset the gradient graph of a model importing standard opset `opset` will import, given
/// the nodes it keeps; an error explains why the import cannot be raised.
pub fn output_opset<'n>(opset: i64, kept: impl IntoIterator<Item = (usize, &'n NodeProto)>) -> Result<i64, GradError> {
    if opset < 11 {
        return Err(GradError::Opset(format!(
            "the model imports ONNX opset {opset}; opset 11 or later is required (Clip and Pad take \
             their bounds as inputs from 11): re-export the model with a newer opset"
        )));
    }
    if opset < 13 {
        if let Some((i, n)) = kept.into_iter().find(|(_, n)| is_default_domain(n) && CHANGED_AT_13.contains(&n.op())) {
            return Err(GradError::Opset(format!(
                "the model imports ONNX opset {opset} and node '{}' ({}) changed meaning at opset 13, \
                 so the import cannot be raised to {MIN_OUTPUT_OPSET}: re-export with opset ≥ 13",
                node_label(n, i),
                n.op()
            )));
        }
    }
    Ok(opset.max(MIN_OUTPUT_OPSET))
}
