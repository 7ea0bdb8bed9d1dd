//! Graph topology over a [`GraphProto`]: producers and consumers of tensors, topological order
//! (with the cycle named), constants (initializers and Constant nodes), and node labels for
//! messages. Shared by `analyze`, shape inference and the gradient builder (whose `grad::path`
//! defines the differentiable path over it).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use crate::onnx::proto::tensor_proto::DataType;
use crate::onnx::proto::{GraphProto, NodeProto, TensorProto, ValueInfoProto};
use crate::onnx::OnnxError;

/// A node's name, or `#index` (with its op) when the node is unnamed.
pub fn node_label(node: &NodeProto, index: usize) -> String {
    match node.name.as_deref() {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => format!("#{index} {}", node.op_type.as_deref().unwrap_or("?")),
    }
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
            for input in node.input.iter().filter(|s| !s.is_empty()) {
                if let Some(&p) = producer.get(input.as_str()) {
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

    /// The nodes producing the inputs of node `index` (one entry per input slot a node produces).
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
            out.extend(node.input.iter().filter(|t| *t == tensor).map(|_| i));
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
            let tensor = |dt: DataType, dims: Vec<i64>| TensorProto {
                dims,
                data_type: Some(dt as i32),
                name: Some(name.to_string()),
                ..Default::default()
            };
            match a.name.as_deref() {
                Some("value") => return a.t.as_ref().map(Cow::Borrowed),
                Some("value_float") => {
                    let mut t = tensor(DataType::Float, vec![]);
                    t.float_data = vec![a.f?];
                    return Some(Cow::Owned(t));
                }
                Some("value_floats") => {
                    let mut t = tensor(DataType::Float, vec![a.floats.len() as i64]);
                    t.float_data = a.floats.clone();
                    return Some(Cow::Owned(t));
                }
                Some("value_int") => {
                    let mut t = tensor(DataType::Int64, vec![]);
                    t.int64_data = vec![a.i?];
                    return Some(Cow::Owned(t));
                }
                Some("value_ints") => {
                    let mut t = tensor(DataType::Int64, vec![a.ints.len() as i64]);
                    t.int64_data = a.ints.clone();
                    return Some(Cow::Owned(t));
                }
                _ => {}
            }
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
