//! A small ONNX graph builder: fresh unique tensor names, nodes with typed attributes, constants and
//! initializers, graph inputs and outputs, and the final `ModelProto`. Used by the gradient builder
//! and by tests that assemble small models.

use std::collections::HashSet;

use crate::onnx::proto::attribute_proto::AttributeType;
use crate::onnx::proto::tensor_proto::DataType;
use crate::onnx::proto::tensor_shape_proto::{dimension, Dimension};
use crate::onnx::proto::type_proto::{self, Tensor};
use crate::onnx::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};
pub use crate::onnx::shape::Dim;

/// Builds an ONNX graph node by node, handing out names that collide with nothing already in it.
#[derive(Debug, Default, Clone)]
pub struct GraphBuilder {
    /// The graph so far: its nodes in the order they were added (callers add them in topological
    /// order), initializers, inputs and outputs; [`GraphBuilder::into_model`] names it.
    pub graph: GraphProto,
    used: HashSet<String>,
    counter: usize,
}

impl GraphBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks `name` as taken, so [`GraphBuilder::fresh`] never returns it.
    pub fn reserve(&mut self, name: &str) {
        self.used.insert(name.to_string());
    }

    /// Whether `name` is already taken.
    pub fn is_used(&self, name: &str) -> bool {
        self.used.contains(name)
    }

    /// A new tensor name starting with `hint` that is not used yet (and is reserved from now on).
    pub fn fresh(&mut self, hint: &str) -> String {
        loop {
            let name = format!("{hint}__{}", self.counter);
            self.counter += 1;
            if self.used.insert(name.clone()) {
                return name;
            }
        }
    }

    /// Appends a node as is (its output names are reserved).
    pub fn push_node(&mut self, node: NodeProto) {
        for o in &node.output {
            self.reserve(o);
        }
        self.graph.node.push(node);
    }

    /// Adds a node of `op` reading `inputs` and writing `n_outputs` fresh tensors; returns their names.
    pub fn node_n(&mut self, op: &str, inputs: &[&str], n_outputs: usize, attrs: Vec<AttributeProto>) -> Vec<String> {
        let outputs: Vec<String> = (0..n_outputs).map(|_| self.fresh(&op.to_lowercase())).collect();
        let name = self.fresh(&format!("node_{op}"));
        self.graph.node.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.clone(),
            name: Some(name),
            op_type: Some(op.to_string()),
            attribute: attrs,
            ..Default::default()
        });
        outputs
    }

    /// Adds a node of `op` with one fresh output; returns its name.
    pub fn op(&mut self, op: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        self.node_n(op, inputs, 1, attrs).remove(0)
    }

    /// Adds a node of `op` writing the given (already chosen) output names.
    pub fn op_named(&mut self, op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<AttributeProto>) {
        let name = self.fresh(&format!("node_{op}"));
        for o in outputs {
            self.reserve(o);
        }
        self.graph.node.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            name: Some(name),
            op_type: Some(op.to_string()),
            attribute: attrs,
            ..Default::default()
        });
    }

    /// Adds an initializer named `name` (the name is reserved).
    pub fn initializer(&mut self, tensor: TensorProto) {
        if let Some(n) = &tensor.name {
            self.reserve(n);
        }
        self.graph.initializer.push(tensor);
    }

    /// Adds a float32 initializer under a fresh name derived from `hint`; returns the name.
    pub fn const_f32(&mut self, hint: &str, dims: &[i64], values: &[f32]) -> String {
        let name = self.fresh(hint);
        self.graph.initializer.push(tensor_f32(&name, dims, values));
        name
    }

    /// Adds an int64 initializer under a fresh name derived from `hint`; returns the name.
    pub fn const_i64(&mut self, hint: &str, dims: &[i64], values: &[i64]) -> String {
        let name = self.fresh(hint);
        self.graph.initializer.push(tensor_i64(&name, dims, values));
        name
    }

    /// Declares a graph input.
    pub fn input(&mut self, name: &str, elem_type: DataType, dims: &[Dim]) {
        self.reserve(name);
        self.graph.input.push(value_info(name, elem_type, Some(dims)));
    }

    /// Declares a graph output (`dims: None` leaves the shape unspecified).
    pub fn output(&mut self, name: &str, elem_type: DataType, dims: Option<&[Dim]>) {
        self.graph.output.push(value_info(name, elem_type, dims));
    }

    /// The graph as a model importing the default domain at `opset` with the given IR version.
    pub fn into_model(self, name: &str, opset: i64, ir_version: i64) -> ModelProto {
        ModelProto {
            ir_version: Some(ir_version),
            opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(opset) }],
            producer_name: Some("aegis-audit".into()),
            producer_version: Some(env!("CARGO_PKG_VERSION").into()),
            graph: Some(GraphProto { name: Some(name.to_string()), ..self.graph }),
            ..Default::default()
        }
    }
}

/// A float32 tensor with the given name, dims and values.
pub fn tensor_f32(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    TensorProto { float_data: values.to_vec(), ..empty_tensor(name, dims, DataType::Float) }
}

/// An int64 tensor with the given name, dims and values.
pub fn tensor_i64(name: &str, dims: &[i64], values: &[i64]) -> TensorProto {
    TensorProto { int64_data: values.to_vec(), ..empty_tensor(name, dims, DataType::Int64) }
}

/// A tensor's name, dims and element type, its data not yet set.
fn empty_tensor(name: &str, dims: &[i64], data_type: DataType) -> TensorProto {
    TensorProto {
        name: Some(name.to_string()),
        dims: dims.to_vec(),
        data_type: Some(data_type as i32),
        ..Default::default()
    }
}

/// A tensor value description (`dims: None` leaves the shape unspecified).
pub fn value_info(name: &str, elem_type: DataType, dims: Option<&[Dim]>) -> ValueInfoProto {
    let shape = dims.map(|dims| TensorShapeProto {
        dim: dims
            .iter()
            .map(|d| Dimension {
                denotation: None,
                value: match d {
                    Dim::Fixed(v) => Some(dimension::Value::DimValue(*v)),
                    Dim::Param(p) => Some(dimension::Value::DimParam(p.clone())),
                    Dim::Unknown => None,
                },
            })
            .collect(),
    });
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            denotation: None,
            value: Some(type_proto::Value::TensorType(Tensor { elem_type: Some(elem_type as i32), shape })),
        }),
        ..Default::default()
    }
}

fn attr(name: &str, ty: AttributeType) -> AttributeProto {
    AttributeProto { name: Some(name.to_string()), r#type: Some(ty as i32), ..Default::default() }
}

/// An integer attribute.
pub fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto { i: Some(v), ..attr(name, AttributeType::Int) }
}

/// An integer-list attribute.
pub fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto { ints: v.to_vec(), ..attr(name, AttributeType::Ints) }
}

/// A float attribute.
pub fn attr_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto { f: Some(v), ..attr(name, AttributeType::Float) }
}

/// A string attribute.
pub fn attr_string(name: &str, v: &str) -> AttributeProto {
    AttributeProto { s: Some(v.as_bytes().to_vec()), ..attr(name, AttributeType::String) }
}

/// A tensor attribute (as for `Constant`'s `value`).
pub fn attr_tensor(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto { t: Some(t), ..attr(name, AttributeType::Tensor) }
}

#[cfg(test)]
mod tests {
    use super::{attr_int, GraphBuilder};

    #[test]
    fn fresh_names_never_collide_with_reserved_or_earlier_ones() {
        let mut b = GraphBuilder::new();
        b.reserve("relu__0");
        let a = b.op("Relu", &["x"], vec![]);
        let c = b.op("Relu", &[&a], vec![attr_int("k", 1)]);
        assert_ne!(a, "relu__0");
        assert_ne!(a, c);
        assert_eq!(b.graph.node.len(), 2);
        assert_eq!(b.graph.node[1].input, vec![a]);
        let names: std::collections::HashSet<_> = b.graph.node.iter().map(|n| n.name.clone().unwrap()).collect();
        assert_eq!(names.len(), 2);
    }
}
