//! Graph topology over a [`GraphProto`]: producers and consumers of tensors, topological order
//! (with the cycle named), constants (initializers and Constant nodes), and node labels for
//! messages. Shared by `analyze`, shape inference and the gradient builder (whose `grad::path`
//! defines the differentiable path over it).

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};

use crate::onnx::builder::{tensor_f32, tensor_i64};
use crate::onnx::proto::{GraphProto, NodeProto, TensorProto, ValueInfoProto};
use crate::onnx::OnnxError;

/// A node's name, or `#index` (with its op) when the node is unnamed.
pub fn node_label(node: &NodeProto, index: usize) -> String {
    match node.name.as_deref() {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => format!("#{index} {}", node.op_type.as_deref().unwrap_or("?")),
    }
}

/// Whether input `slot` of an `op` node carries data that gradients flow through, as opposed to a
/// shape, index, axis or other control value (e.g. Reshape's `shape`, Gather's `indices`).
/// Ops whose outputs are not differentiable at all (Shape, ArgMax, comparisons...) have none.
pub fn is_data_input(op: &str, slot: usize) -> bool {
    match op {
        "Shape" | "Size" | "NonZero" | "ArgMax" | "ArgMin" | "Equal" | "Less" | "Greater" | "LessOrEqual"
        | "GreaterOrEqual" | "Not" | "And" | "Or" | "Xor" | "ConstantOfShape" | "Range" | "OneHot" | "EyeLike"
        | "RandomNormalLike" | "RandomUniformLike" | "Bernoulli" | "IsNaN" | "IsInf" | "Sign" | "Round" | "Floor"
        | "Ceil" | "Multinomial" => false,
        "Reshape" | "Expand" | "Tile" | "Slice" | "Pad" | "Squeeze" | "Unsqueeze" | "Resize" | "Upsample"
        | "Gather" | "GatherElements" | "GatherND" | "Clip" | "Dropout" | "TopK" | "Split" | "ReduceSum"
        | "ReduceMean" | "ReduceMax" | "ReduceMin" | "ReduceProd" | "ReduceL1" | "ReduceL2" | "ReduceLogSum"
        | "ReduceLogSumExp" | "ReduceSumSquare" | "CenterCropPad" => slot == 0,
        "ScatterElements" | "ScatterND" => slot == 0 || slot == 2,
        "Where" => slot != 0,
        _ => true,
    }
}

/// The tensors a node reads: its non-empty inputs, then the outer-scope tensors its subgraphs
/// (Loop, If, Scan bodies) use without defining them (each once).
pub fn node_inputs(node: &NodeProto) -> impl Iterator<Item = &str> {
    node.input.iter().map(String::as_str).filter(|s| !s.is_empty()).chain(implicit_inputs(node))
}

/// The outer-scope tensors that `node`'s subgraph attributes read, sorted and without repeats.
pub fn implicit_inputs(node: &NodeProto) -> Vec<&str> {
    fn walk<'a>(g: &'a GraphProto, outer: &mut BTreeSet<&'a str>) {
        let mut defined: HashSet<&str> = g.input.iter().filter_map(|v| v.name.as_deref()).collect();
        defined.extend(g.initializer.iter().filter_map(|t| t.name.as_deref()));
        defined.extend(g.node.iter().flat_map(|n| n.output.iter().map(String::as_str)));
        for n in &g.node {
            for t in n.input.iter().map(String::as_str).filter(|t| !t.is_empty() && !defined.contains(t)) {
                outer.insert(t);
            }
            let mut inner = BTreeSet::new();
            for a in &n.attribute {
                for sub in a.g.iter().chain(&a.graphs) {
                    walk(sub, &mut inner);
                }
            }
            outer.extend(inner.into_iter().filter(|t| !defined.contains(t)));
        }
    }
    let mut outer = BTreeSet::new();
    for a in &node.attribute {
        for sub in a.g.iter().chain(&a.graphs) {
            walk(sub, &mut outer);
        }
    }
    outer.into_iter().collect()
}

/// An index over one graph's nodes and tensors. Node indices are positions in `GraphProto::node`.
#[derive(Debug, Clone)]
pub struct Graph<'a> {
    /// The graph indexed.
    pub proto: &'a GraphProto,
    producer: HashMap<&'a str, usize>,
    initializers: HashMap<&'a str, &'a TensorProto>,
    /// Per node, the producing node of each input that a node produces (one entry per input slot),
    /// as one flat list: node `i`'s entries are `preds[pred_start[i]..pred_start[i + 1]]`.
    preds: Vec<usize>,
    pred_start: Vec<usize>,
    /// Per node, the nodes reading its outputs (one entry per reading input slot), laid out alike.
    succs: Vec<usize>,
    succ_start: Vec<usize>,
}

impl<'a> Graph<'a> {
    /// Indexes `proto` (no validation; see [`load_model`](crate::onnx::load_model)).
    pub fn new(proto: &'a GraphProto) -> Self {
        let mut producer = HashMap::with_capacity(proto.node.len());
        for (i, node) in proto.node.iter().enumerate() {
            for out in node.output.iter().filter(|o| !o.is_empty()) {
                producer.insert(out.as_str(), i);
            }
        }
        let initializers = proto.initializer.iter().filter_map(|t| Some((t.name.as_deref()?, t))).collect();
        let n = proto.node.len();
        let mut preds = Vec::with_capacity(n);
        let mut pred_start = Vec::with_capacity(n + 1);
        let mut out_degree = vec![0usize; n];
        for node in &proto.node {
            pred_start.push(preds.len());
            for input in node_inputs(node) {
                if let Some(&p) = producer.get(input) {
                    preds.push(p);
                    out_degree[p] += 1;
                }
            }
        }
        pred_start.push(preds.len());
        let mut succ_start = Vec::with_capacity(n + 1);
        let mut total = 0;
        for d in &out_degree {
            succ_start.push(total);
            total += d;
        }
        succ_start.push(total);
        let mut fill = succ_start.clone();
        let mut succs = vec![0usize; total];
        for i in 0..n {
            for &p in &preds[pred_start[i]..pred_start[i + 1]] {
                succs[fill[p]] = i;
                fill[p] += 1;
            }
        }
        Graph { proto, producer, initializers, preds, pred_start, succs, succ_start }
    }

    /// The nodes producing the inputs of node `index` (one entry per input slot a node produces,
    /// then one per outer-scope tensor its subgraphs read: see [`node_inputs`]).
    pub fn preds(&self, index: usize) -> &[usize] {
        &self.preds[self.pred_start[index]..self.pred_start[index + 1]]
    }

    /// The nodes reading the outputs of node `index` (one entry per reading input slot).
    pub fn succs(&self, index: usize) -> &[usize] {
        &self.succs[self.succ_start[index]..self.succ_start[index + 1]]
    }

    /// The node at `index`.
    pub fn node(&self, index: usize) -> &'a NodeProto {
        &self.proto.node[index]
    }

    /// The node's name or `#index op` for messages.
    pub fn label(&self, index: usize) -> String {
        node_label(self.node(index), index)
    }

    /// The index of the node producing `tensor`, if a node does.
    pub fn producer(&self, tensor: &str) -> Option<usize> {
        self.producer.get(tensor).copied()
    }

    /// The indices of nodes reading `tensor` (a node reading it twice appears twice). A scan of
    /// the graph: the analyses walk [`Graph::succs`] instead.
    pub fn consumers(&self, tensor: &str) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, node) in self.proto.node.iter().enumerate() {
            out.extend(node_inputs(node).filter(|t| *t == tensor).map(|_| i));
        }
        out
    }

    /// The initializer named `name`.
    pub fn initializer(&self, name: &str) -> Option<&'a TensorProto> {
        self.initializers.get(name).copied()
    }

    /// The value of `name` when it is an initializer or the output of a Constant node
    /// (`value`, `value_float(s)` or `value_int(s)` attribute).
    pub fn constant(&self, name: &str) -> Option<Cow<'a, TensorProto>> {
        if let Some(t) = self.initializer(name) {
            return Some(Cow::Borrowed(t));
        }
        let node = self.node(self.producer(name)?);
        if node.op_type.as_deref() != Some("Constant") {
            return None;
        }
        for a in &node.attribute {
            let owned = match a.name.as_deref() {
                Some("value") => return a.t.as_ref().map(Cow::Borrowed),
                Some("value_float") => tensor_f32(name, &[], &[a.f?]),
                Some("value_floats") => tensor_f32(name, &[a.floats.len() as i64], &a.floats),
                Some("value_int") => tensor_i64(name, &[], &[a.i?]),
                Some("value_ints") => tensor_i64(name, &[a.ints.len() as i64], &a.ints),
                _ => continue,
            };
            return Some(Cow::Owned(owned));
        }
        None
    }

    /// Whether `name` is an initializer or a Constant node's output.
    pub fn is_constant(&self, name: &str) -> bool {
        self.initializers.contains_key(name)
            || self.producer(name).is_some_and(|i| self.node(i).op_type.as_deref() == Some("Constant"))
    }

    /// Graph inputs that are not initializers (the values a caller must feed).
    pub fn runtime_inputs(&self) -> Vec<&'a ValueInfoProto> {
        self.proto.input.iter().filter(|vi| !self.initializers.contains_key(vi.name.as_deref().unwrap_or(""))).collect()
    }

    /// The declared type of `name` (graph input, output or value_info), if any.
    pub fn value_info(&self, name: &str) -> Option<&'a ValueInfoProto> {
        self.proto
            .input
            .iter()
            .chain(&self.proto.output)
            .chain(&self.proto.value_info)
            .find(|vi| vi.name.as_deref() == Some(name))
    }

    /// Node indices in an order where every node comes after the producers of its inputs.
    /// Errors with a node that lies on a cycle when there is one.
    pub fn topo_order(&self) -> Result<Vec<usize>, OnnxError> {
        let n = self.proto.node.len();
        let mut indegree: Vec<usize> = (0..n).map(|i| self.preds(i).len()).collect();
        let mut ready: Vec<usize> = (0..n).rev().filter(|&i| indegree[i] == 0).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(i) = ready.pop() {
            order.push(i);
            for &c in self.succs(i) {
                indegree[c] -= 1;
                if indegree[c] == 0 {
                    ready.push(c);
                }
            }
        }
        if order.len() == n {
            return Ok(order);
        }
        // Walk back through unfinished producers until a node repeats: that node is on a cycle.
        let mut seen = HashSet::new();
        let mut cur = (0..n).find(|&i| indegree[i] > 0).expect("a node is left");
        while seen.insert(cur) {
            cur = self
                .node(cur)
                .input
                .iter()
                .filter_map(|s| self.producer(s))
                .find(|&p| indegree[p] > 0)
                .expect("an unfinished node has an unfinished producer");
        }
        let node = self.node(cur);
        Err(OnnxError::Cycle { node: node_label(node, cur), op: node.op_type.clone().unwrap_or_default() })
    }
}
