//! Backward rules, one file per op family, registered by op type (tract style): each rule receives
//! the forward node, the gradients of its outputs and the static shapes, and appends standard ONNX
//! ops computing the gradients of the inputs that lie on the input→logits path.

use std::collections::HashMap;

use crate::grad::shapes::{ShapeMap, TensorShape};
use crate::grad::GradError;
use crate::onnx::attr::NodeExt;
use crate::onnx::builder::{attr_int, GraphBuilder};
use crate::onnx::graph::node_label;
use crate::onnx::proto::tensor_proto::DataType;
use crate::onnx::proto::{NodeProto, TensorProto};
use crate::onnx::OnnxError;

mod activation;
mod binary;
mod linalg;
mod nn;
mod pool;
mod shape_ops;
mod softmax;

/// A backward rule: returns one gradient (or `None`) per input of the node.
pub(crate) type Rule = fn(&mut Ctx) -> Result<Vec<Option<String>>, GradError>;

/// All rules by op type.
pub(crate) fn registry() -> HashMap<&'static str, Rule> {
    let mut map = HashMap::new();
    activation::register(&mut map);
    binary::register(&mut map);
    linalg::register(&mut map);
    nn::register(&mut map);
    pool::register(&mut map);
    shape_ops::register(&mut map);
    softmax::register(&mut map);
    map
}

/// Constant tensors of the model (initializers and `Constant` nodes), for rules that need values.
#[derive(Debug, Default)]
pub(crate) struct Consts<'a> {
    pub tensors: HashMap<&'a str, &'a TensorProto>,
}

impl Consts<'_> {
    /// The int64 values of constant `name`.
    pub fn i64s(&self, name: &str) -> Option<Vec<i64>> {
        let t = self.tensors.get(name)?;
        if t.data_type != Some(DataType::Int64 as i32) {
            return None;
        }
        if !t.int64_data.is_empty() {
            return Some(t.int64_data.clone());
        }
        let raw = t.raw_data.as_ref()?;
        Some(raw.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
    }
}

/// What a rule sees.
pub(crate) struct Ctx<'a, 'm> {
    /// The forward node.
    pub node: &'a NodeProto,
    /// Its index in the model's graph (for messages about unnamed nodes).
    pub index: usize,
    /// The gradient of each output (`None` where nothing downstream needs it).
    pub dy: Vec<Option<String>>,
    /// For each input, whether its gradient is wanted (it depends on the image input).
    pub needs: Vec<bool>,
    /// Static shapes.
    pub shapes: &'a ShapeMap,
    /// Constant tensors.
    pub consts: &'a Consts<'m>,
    /// Where the backward ops go.
    pub b: &'a mut GraphBuilder,
}

impl Ctx<'_, '_> {
    /// The node's name, or `#index op` when unnamed (for messages).
    pub fn name(&self) -> String {
        node_label(self.node, self.index)
    }

    pub fn op_type(&self) -> String {
        self.node.op_type.clone().unwrap_or_default()
    }

    /// Input `i`'s tensor name ("" when absent).
    pub fn input(&self, i: usize) -> &str {
        self.node.input.get(i).map(String::as_str).unwrap_or("")
    }

    /// Output `i`'s tensor name.
    pub fn output(&self, i: usize) -> &str {
        self.node.output.get(i).map(String::as_str).unwrap_or("")
    }

    /// Whether input `i`'s gradient is wanted.
    pub fn needs(&self, i: usize) -> bool {
        self.needs.get(i).copied().unwrap_or(false)
    }

    /// The gradient of output 0 (rules are only called when some output has one).
    pub fn dy0(&self) -> Result<String, GradError> {
        self.dy
            .first()
            .cloned()
            .flatten()
            .ok_or_else(|| self.unsupported("its first output has no gradient but another one has"))
    }

    pub fn shape(&self, name: &str) -> Result<&TensorShape, GradError> {
        self.shapes.require(name)
    }

    pub fn unsupported(&self, reason: impl Into<String>) -> GradError {
        GradError::UnsupportedCase { node: self.name(), op: self.op_type(), reason: reason.into() }
    }

    pub fn bad_attr(&self, attr: &str, reason: impl Into<String>) -> GradError {
        GradError::BadAttribute { node: self.name(), op: self.op_type(), attr: attr.to_string(), reason: reason.into() }
    }

    /// An attribute read through the one attribute reader ([`NodeExt`]), its error naming this node.
    fn read<T>(&self, r: Result<T, OnnxError>) -> Result<T, GradError> {
        r.map_err(|e| match e {
            OnnxError::Attribute { attr, reason, .. } => self.bad_attr(&attr, reason),
            other => GradError::Model(other),
        })
    }

    pub fn int_attr(&self, name: &str, default: i64) -> Result<i64, GradError> {
        self.read(self.node.get_attr_or(name, default))
    }

    pub fn float_attr(&self, name: &str, default: f32) -> Result<f32, GradError> {
        self.read(self.node.get_attr_or(name, default))
    }

    pub fn ints_attr(&self, name: &str) -> Result<Option<Vec<i64>>, GradError> {
        self.read(self.node.get_attr_opt::<&[i64]>(name)).map(|v| v.map(<[i64]>::to_vec))
    }

    pub fn string_attr(&self, name: &str, default: &str) -> Result<String, GradError> {
        self.read(self.node.get_attr_or(name, default)).map(str::to_string)
    }

    /// Rejects a wanted gradient for input `i` (e.g. a weight computed from the image).
    pub fn refuse_input(&self, i: usize, what: &str) -> Result<(), GradError> {
        if self.needs(i) {
            return Err(self.unsupported(format!(
                "input {i} ('{}', the {what}) depends on the image input; only gradients through \
                 constant {what}s are supported",
                self.input(i)
            )));
        }
        Ok(())
    }

    /// A scalar float32 constant.
    pub fn scalar(&mut self, v: f32) -> String {
        self.b.const_f32("c", &[], &[v])
    }

    /// `Shape(name)`.
    pub fn shape_of(&mut self, name: &str) -> String {
        self.b.op("Shape", &[name], vec![])
    }

    /// Sums `grad` (whose shape is `grad_shape`, numpy-broadcast from `target`) down to the shape
    /// of the tensor `target`.
    pub fn reduce_to(&mut self, grad: &str, grad_shape: &TensorShape, target: &str) -> Result<String, GradError> {
        let t = self.shape(target)?.clone();
        let (rg, rt) = (grad_shape.rank(), t.rank());
        if rt > rg {
            return Err(self.unsupported(format!("operand '{target}' has rank {rt}, above the result's rank {rg}")));
        }
        let lead = rg - rt;
        let mut axes: Vec<i64> = (0..lead as i64).collect();
        for i in 0..rt {
            let (gd, gb) = (grad_shape.dims[lead + i], grad_shape.batch[lead + i]);
            let (td, tb) = (t.dims[i], t.batch[i]);
            if (gd != td || gb != tb) && td == 1 && !tb {
                axes.push((lead + i) as i64);
            }
        }
        if axes.is_empty() {
            return Ok(grad.to_string());
        }
        let axes_c = self.b.const_i64("axes", &[axes.len() as i64], &axes);
        let summed = self.b.op("ReduceSum", &[grad, &axes_c], vec![attr_int("keepdims", 1)]);
        if lead == 0 {
            return Ok(summed);
        }
        let shape = self.shape_of(target);
        Ok(self.b.op("Reshape", &[&summed, &shape], vec![]))
    }
}

#[cfg(test)]
mod tests {
    use super::registry;
    use crate::grad::SUPPORTED_OPS;

    #[test]
    fn every_supported_op_has_a_rule_and_every_rule_is_listed() {
        let rules = registry();
        for op in SUPPORTED_OPS {
            assert!(rules.contains_key(op), "no rule for {op}");
        }
        for op in rules.keys() {
            assert!(SUPPORTED_OPS.contains(op), "{op} has a rule but is not in SUPPORTED_OPS");
        }
    }
}
