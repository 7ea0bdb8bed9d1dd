//! Backward rules, one file per op family, registered by op type in one table, [`RULES`] (tract
//! style): each rule receives the forward node, the gradients of its outputs and the static shapes,
//! and appends standard ONNX ops computing the gradients of the inputs that lie on the input→logits
//! path.

use std::collections::HashMap;

use crate::grad::shapes::{ShapeMap, TensorShape};
use crate::grad::GradError;
use crate::onnx::attr::NodeExt;
use crate::onnx::builder::{attr_int, GraphBuilder};
use crate::onnx::graph::node_label;
use crate::onnx::proto::{NodeProto, TensorProto};
use crate::onnx::OnnxError;

mod activation;
mod binary;
mod index;
mod linalg;
mod math;
mod nn;
mod norm;
mod pool;
mod reduce;
mod shape_ops;
mod softmax;

/// A backward rule: returns one gradient (or `None`) per input of the node.
pub(crate) type Rule = fn(&mut Ctx) -> Result<Vec<Option<String>>, GradError>;

/// Every backward rule by op type (default ONNX domain); the bodies live in their op family's file.
/// [`crate::grad::SUPPORTED_OPS`] is the op types of this table, in this order.
pub(crate) const RULES: &[(&str, Rule)] = &[
    ("Conv", nn::conv),
    ("BatchNormalization", nn::batch_norm),
    ("Relu", activation::relu),
    ("LeakyRelu", activation::leaky_relu),
    ("Sigmoid", activation::sigmoid),
    ("Tanh", activation::tanh),
    ("Clip", activation::clip),
    ("Add", binary::add),
    ("Sub", binary::sub),
    ("Mul", binary::mul),
    ("Div", binary::div),
    ("MaxPool", pool::max_pool),
    ("AveragePool", pool::average_pool),
    ("GlobalAveragePool", pool::global_average_pool),
    ("Flatten", shape_ops::reshape_back),
    ("Reshape", shape_ops::reshape_back),
    ("Gemm", linalg::gemm),
    ("MatMul", linalg::matmul),
    ("Transpose", shape_ops::transpose),
    ("Concat", shape_ops::concat),
    ("Pad", shape_ops::pad),
    ("Identity", shape_ops::identity),
    ("Dropout", shape_ops::identity),
    ("Constant", shape_ops::constant),
    ("Softmax", softmax::softmax),
    ("LogSoftmax", softmax::log_softmax),
    ("HardSigmoid", activation::hard_sigmoid),
    ("HardSwish", activation::hard_swish),
    ("Gelu", activation::gelu),
    ("ReduceSum", reduce::reduce_sum),
    ("ReduceMean", reduce::reduce_mean),
    ("ReduceSumSquare", reduce::reduce_sum_square),
    ("ReduceL2", reduce::reduce_l2),
    ("Slice", index::slice),
    ("Gather", index::gather),
    ("GatherElements", index::gather_elements),
    ("GatherND", index::gather_nd),
    ("Split", index::split),
    ("Squeeze", shape_ops::squeeze_back),
    ("Unsqueeze", shape_ops::squeeze_back),
    ("Expand", shape_ops::expand),
    ("Neg", math::neg),
    ("Exp", math::exp),
    ("Log", math::log),
    ("Sqrt", math::sqrt),
    ("Reciprocal", math::reciprocal),
    ("Erf", math::erf),
    ("Pow", math::pow),
    ("LayerNormalization", norm::layer_norm),
    ("Einsum", linalg::einsum),
];

/// The op types of [`RULES`], in order.
pub(crate) const OP_TYPES: [&str; RULES.len()] = {
    let mut ops = [""; RULES.len()];
    let mut i = 0;
    while i < RULES.len() {
        ops[i] = RULES[i].0;
        i += 1;
    }
    ops
};

/// All rules by op type.
pub(crate) fn registry() -> HashMap<&'static str, Rule> {
    RULES.iter().copied().collect()
}

/// Constant tensors of the model (initializers and `Constant` nodes), for rules that need values.
#[derive(Debug, Default)]
pub(crate) struct Consts<'a> {
    pub tensors: HashMap<&'a str, &'a TensorProto>,
}

impl Consts<'_> {
    /// The integer values of constant `name` (int64 or int32 data).
    pub fn i64s(&self, name: &str) -> Option<Vec<i64>> {
        crate::onnx::tensor::tensor_i64(self.tensors.get(name)?).ok()
    }

    /// The dims of constant `name`.
    pub fn dims(&self, name: &str) -> Option<Vec<i64>> {
        self.tensors.get(name).map(|t| t.dims.clone())
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

    /// The integer values of input `i`, which must be a constant (an initializer or a `Constant`
    /// node's output); `what` names it in the error.
    pub fn const_i64s(&self, i: usize, what: &str) -> Result<Vec<i64>, GradError> {
        let name = self.input(i);
        self.consts.i64s(name).ok_or_else(|| {
            self.unsupported(format!(
                "input {i} ('{name}', the {what}) is not a constant integer tensor; only constant {what} are supported"
            ))
        })
    }

    /// Axis `a` of a rank-`rank` tensor, negative values counting from the end.
    pub fn axis(&self, a: i64, rank: usize, attr: &str) -> Result<usize, GradError> {
        let r = rank as i64;
        let n = if a < 0 { a + r } else { a };
        if !(0..r).contains(&n) {
            return Err(self.bad_attr(attr, format!("axis {a} is out of range for rank {rank}")));
        }
        Ok(n as usize)
    }

    /// `ConstantOfShape(Shape(name))`: float32 zeros shaped like `name`.
    pub fn zeros_like(&mut self, name: &str) -> String {
        let s = self.shape_of(name);
        self.b.op("ConstantOfShape", &[&s], vec![])
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
    use super::{registry, RULES};

    #[test]
    fn no_op_type_has_two_rules() {
        assert_eq!(registry().len(), RULES.len(), "an op type is listed twice in RULES");
    }
}
