//! Static shape inference: the concrete shape of every tensor it can determine, computed from the
//! declared image input, the initializers and the nodes' attributes, before anything is handed to
//! ONNX Runtime. Each node's inputs and attributes are checked on the way (kernel, stride,
//! dilation and pad values, `group` against the channels, bias sizes, `auto_pad`, axes, matching
//! operand shapes), and an impossible shape (such as a non-positive convolution output) is refused
//! with an error naming the node, the attribute and the values. One file per op family holds the
//! shape functions; ops without one (or whose inputs are unknown) leave their outputs unknown, and
//! nothing is refused for them.
//!
//! Shapes are inferred at batch sizes 1 and 2 ([`static_shapes`]), like a probe run would see
//! them, so a dimension that follows the batch is known as such and a model that only runs one
//! image at a time (a `Flatten` with `axis` 0 before the head, a `Reshape` to a fixed batch) is
//! refused naming the node that loses the batch dimension. Small integer tensors (shapes, axes,
//! pads) are tracked by value so that computed `Reshape`/`Pad`/`Slice` arguments are resolved.

use std::collections::HashMap;

use crate::onnx::attr::{AttrValue, NodeExt};
use crate::onnx::graph::{node_label, Graph};
use crate::onnx::proto::tensor_proto::DataType;
use crate::onnx::proto::{GraphProto, NodeProto};
use crate::onnx::shape::{declared_shape, Dim};
use crate::onnx::tensor::tensor_i64;
use crate::onnx::OnnxError;

mod elementwise;
mod linalg;
mod nn;
mod reduce;
mod shape_ops;

/// Most elements any inferred tensor may hold at batch size 1 (2^26, 256 MiB of float32; the
/// largest activation of ResNet-50 at 224×224 holds 2^21.6): a bound on the memory a hostile model
/// can make ONNX Runtime allocate per image.
pub const MAX_INFERRED_ELEMENTS: u64 = 1 << 26;

/// Longest integer tensor whose values are tracked (shapes, axes, pads, slice bounds).
const MAX_TRACKED_VALUES: usize = 4096;

/// Concrete shapes found at batch sizes 1 and 2 (tensors whose shape is not known statically
/// are absent from both maps).
#[derive(Debug, Clone, Default)]
pub struct StaticShapes<'a> {
    /// Shapes with the image input at batch size 1.
    pub at1: HashMap<&'a str, Vec<i64>>,
    /// Shapes with the image input at batch size 2.
    pub at2: HashMap<&'a str, Vec<i64>>,
}

impl StaticShapes<'_> {
    /// The shape of `name` at batch size 1 and 2, when known in both runs.
    pub fn get(&self, name: &str) -> Option<(&[i64], &[i64])> {
        Some((self.at1.get(name)?.as_slice(), self.at2.get(name)?.as_slice()))
    }
}

/// Infers the shapes of `graph` (a validated main graph importing standard opset `opset`) with the
/// image input `input` (declared `[N, C, H, W]`-like, fixed apart from the first dimension) at batch
/// sizes 1 and 2. When `logits` is given, its shape must be `[N, K]` in both runs. Errors name the
/// node whose attributes or inputs give an impossible shape.
pub fn static_shapes<'a>(
    graph: &'a GraphProto,
    opset: i64,
    input: &str,
    logits: Option<&str>,
) -> Result<StaticShapes<'a>, OnnxError> {
    let g = Graph::new(graph);
    let order = g.topo_order()?;
    let Some(dims) = input_dims(graph, input) else {
        return Ok(StaticShapes::default());
    };
    let at = |batch: i64| {
        let mut shape = dims.clone();
        if let Some(first) = shape.first_mut() {
            *first = batch;
        }
        infer_at(&g, &order, opset, input, shape)
    };
    let (at1, done) = at(1);
    done?;
    let (at2, done) = at(2);
    if let Err(e) = done {
        return Err(match batch_breaker(&g, &order, &at1, &at2) {
            Some(hint) => OnnxError::Shape {
                node: hint.node,
                op: hint.op,
                reason: format!("{}, so the model runs one image at a time; with 2 images: {e}", hint.what),
            },
            None => e,
        });
    }
    if let Some(l) = logits {
        if let (Some(s1), Some(s2)) = (at1.shapes.get(l), at2.shapes.get(l)) {
            let per_image = s1.len() == 2 && s2.len() == 2 && s1[0] == 1 && s2[0] == 2 && s1[1] == s2[1];
            if !per_image {
                let shown = format!("{s1:?} for 1 image and {s2:?} for 2");
                return Err(match batch_breaker(&g, &order, &at1, &at2) {
                    Some(hint) => OnnxError::Shape {
                        node: hint.node,
                        op: hint.op,
                        reason: format!("{}: the logits '{l}' are {shown}, not [N, K]", hint.what),
                    },
                    None => OnnxError::NoClassifierHead(format!(
                        "the logits tensor '{l}' has shape {shown}; logits must be [N, K] with one row per image"
                    )),
                });
            }
        }
    }
    Ok(StaticShapes { at1: at1.shapes, at2: at2.shapes })
}

/// The image input's declared dims with every dimension after the first fixed and positive.
fn input_dims(graph: &GraphProto, input: &str) -> Option<Vec<i64>> {
    let vi = graph.input.iter().find(|v| v.name.as_deref() == Some(input))?;
    let shape = declared_shape(vi)?;
    let mut dims = Vec::with_capacity(shape.len());
    for (i, d) in shape.iter().enumerate() {
        match d {
            _ if i == 0 => dims.push(1),
            Dim::Fixed(v) if *v > 0 => dims.push(*v),
            _ => return None,
        }
    }
    (!dims.is_empty()).then_some(dims)
}

/// The first node (in topological order) whose outputs stop following the batch: between the
/// batch-1 and batch-2 runs an output changes other than by doubling its first dimension.
struct BatchBreaker {
    node: String,
    op: String,
    what: String,
}

fn batch_breaker(g: &Graph<'_>, order: &[usize], at1: &Inferred<'_>, at2: &Inferred<'_>) -> Option<BatchBreaker> {
    for &i in order {
        let node = g.node(i);
        for out in node.output.iter().filter(|o| !o.is_empty()) {
            let (Some(s1), Some(s2)) = (at1.shapes.get(out.as_str()), at2.shapes.get(out.as_str())) else {
                continue;
            };
            let follows =
                s1 == s2 || (s1.len() == s2.len() && !s1.is_empty() && s2[0] == 2 * s1[0] && s1[1..] == s2[1..]);
            if !follows {
                return Some(BatchBreaker {
                    node: node_label(node, i),
                    op: node.op().to_string(),
                    what: format!(
                        "its output '{out}' is {s1:?} for 1 image and {s2:?} for 2: the batch dimension is merged or moved"
                    ),
                });
            }
        }
    }
    None
}

/// Shapes and tracked integer values by tensor name, at one batch size.
#[derive(Debug, Default)]
struct Inferred<'a> {
    shapes: HashMap<&'a str, Vec<i64>>,
    values: HashMap<&'a str, Vec<i64>>,
}

/// Runs the shape functions over the graph in `order`; on error also returns what was inferred
/// up to the failing node.
fn infer_at<'a>(
    g: &Graph<'a>,
    order: &[usize],
    opset: i64,
    input: &str,
    input_shape: Vec<i64>,
) -> (Inferred<'a>, Result<(), OnnxError>) {
    let mut inf = Inferred::default();
    for t in &g.proto.initializer {
        let Some(name) = t.name.as_deref() else { continue };
        inf.shapes.insert(name, t.dims.clone());
        let int = matches!(DataType::try_from(t.data_type.unwrap_or(0)), Ok(DataType::Int64 | DataType::Int32));
        if int && element_count(&t.dims).is_some_and(|n| n as usize <= MAX_TRACKED_VALUES) {
            if let Ok(v) = tensor_i64(t) {
                inf.values.insert(name, v);
            }
        }
    }
    // The key borrows the graph's own name (the caller checked the input is declared).
    if let Some(key) = g.proto.input.iter().filter_map(|v| v.name.as_deref()).find(|n| *n == input) {
        inf.shapes.insert(key, input_shape);
    }
    for &i in order {
        let node = g.node(i);
        let out = {
            let cx = Cx::new(g, node, i, opset, &inf);
            let out = match shape_fn(node.op()) {
                Some(f) => f(&cx),
                None => Ok(Out::unknown()),
            };
            out.and_then(|o| cx.check_outputs(o))
        };
        let out = match out {
            Ok(o) => o,
            Err(e) => return (inf, Err(e)),
        };
        for (slot, name) in node.output.iter().enumerate() {
            if name.is_empty() {
                continue;
            }
            if let Some(Some(shape)) = out.shapes.get(slot) {
                inf.shapes.insert(name.as_str(), shape.clone());
            }
        }
        if let (Some(v), Some(name)) = (out.value, node.output.first()) {
            if !name.is_empty() && v.len() <= MAX_TRACKED_VALUES {
                inf.values.insert(name.as_str(), v);
            }
        }
    }
    (inf, Ok(()))
}

/// A shape function: the output shapes (and the value of an integer output 0) of one node.
type ShapeFn = fn(&Cx<'_>) -> Result<Out, OnnxError>;

/// The shape function of `op`, if there is one.
fn shape_fn(op: &str) -> Option<ShapeFn> {
    nn::lookup(op)
        .or_else(|| elementwise::lookup(op))
        .or_else(|| linalg::lookup(op))
        .or_else(|| reduce::lookup(op))
        .or_else(|| shape_ops::lookup(op))
}

/// Output shapes of one node (`None` where unknown) and the value of output 0 when it is a small
/// integer tensor that could be computed.
#[derive(Debug, Default)]
struct Out {
    shapes: Vec<Option<Vec<i64>>>,
    value: Option<Vec<i64>>,
}

impl Out {
    fn unknown() -> Out {
        Out::default()
    }

    fn one(shape: Vec<i64>) -> Out {
        Out { shapes: vec![Some(shape)], value: None }
    }

    fn valued(shape: Vec<i64>, value: Option<Vec<i64>>) -> Out {
        Out { shapes: vec![Some(shape)], value }
    }
}

/// What a shape function sees of its node: input shapes and values, attributes, the opset.
struct Cx<'n> {
    graph: &'n Graph<'n>,
    node: &'n NodeProto,
    index: usize,
    opset: i64,
    shapes: Vec<Option<&'n [i64]>>,
    values: Vec<Option<&'n [i64]>>,
}

impl<'n> Cx<'n> {
    fn new(graph: &'n Graph<'n>, node: &'n NodeProto, index: usize, opset: i64, inf: &'n Inferred<'_>) -> Self {
        let lookup = |m: &'n HashMap<&str, Vec<i64>>, t: &String| {
            (!t.is_empty()).then(|| m.get(t.as_str()).map(Vec::as_slice)).flatten()
        };
        Cx {
            graph,
            node,
            index,
            opset,
            shapes: node.input.iter().map(|t| lookup(&inf.shapes, t)).collect(),
            values: node.input.iter().map(|t| lookup(&inf.values, t)).collect(),
        }
    }

    /// The node's name (or `#index op`) for messages.
    fn label(&self) -> String {
        node_label(self.node, self.index)
    }

    /// Whether input `slot` is given (present and non-empty).
    fn has(&self, slot: usize) -> bool {
        self.node.input.get(slot).is_some_and(|t| !t.is_empty())
    }

    /// The shape of input `slot`, if known.
    fn shape(&self, slot: usize) -> Option<&'n [i64]> {
        self.shapes.get(slot).copied().flatten()
    }

    /// The value of integer input `slot`, if tracked.
    fn value(&self, slot: usize) -> Option<&'n [i64]> {
        self.values.get(slot).copied().flatten()
    }

    /// The float values of input `slot` when it is a small float32 constant (initializer or
    /// Constant node), such as Resize's scales.
    fn const_f32(&self, slot: usize) -> Option<Vec<f32>> {
        let name = self.node.input.get(slot).filter(|t| !t.is_empty())?;
        let t = self.graph.constant(name)?;
        if element_count(&t.dims)? as usize > MAX_TRACKED_VALUES {
            return None;
        }
        crate::onnx::tensor::tensor_f32(&t).ok()
    }

    /// The shape of required input `slot` (`what` names it for the message): an error when the
    /// input is missing, `None` when it is given but its shape is unknown.
    fn required(&self, slot: usize, what: &str) -> Result<Option<&'n [i64]>, OnnxError> {
        if !self.has(slot) {
            return Err(self.err(format!("input {slot} ({what}) is missing")));
        }
        Ok(self.shape(slot))
    }

    /// The shapes of every given input, in slot order; `None` when one of them is unknown.
    fn given_shapes(&self) -> Option<Vec<&'n [i64]>> {
        (0..self.node.input.len()).filter(|&slot| self.has(slot)).map(|slot| self.shape(slot)).collect()
    }

    /// An [`OnnxError::Shape`] naming this node.
    fn err(&self, reason: impl Into<String>) -> OnnxError {
        OnnxError::Shape { node: self.label(), op: self.node.op().to_string(), reason: reason.into() }
    }

    /// An [`OnnxError::Attribute`] naming this node and `attr`.
    fn attr_err(&self, attr: &str, reason: impl Into<String>) -> OnnxError {
        OnnxError::Attribute {
            node: self.label(),
            op: self.node.op().to_string(),
            attr: attr.to_string(),
            reason: reason.into(),
        }
    }

    /// Attribute `name` as `T` (`None` when absent); a wrong type is an error naming the node.
    fn attr<'a, T: AttrValue<'a>>(&'a self, name: &str) -> Result<Option<T>, OnnxError> {
        self.node.get_attr_opt(name).map_err(|e| match e {
            OnnxError::Attribute { attr, reason, .. } => self.attr_err(&attr, reason),
            other => other,
        })
    }

    /// Attribute `name`, which the op requires: an error naming it when absent.
    fn required_attr<'a, T: AttrValue<'a>>(&'a self, name: &str) -> Result<T, OnnxError> {
        self.attr::<T>(name)?.ok_or_else(|| self.attr_err(name, "required attribute is missing"))
    }

    /// An integer list that is attribute `name` before opset `from` and input 1 (also called `name`)
    /// from it on: the input is required, its value `None` when it is not tracked.
    fn ints_attr_then_input(&self, name: &str, from: i64) -> Result<Option<Vec<i64>>, OnnxError> {
        if self.opset < from {
            return Ok(Some(self.required_attr::<&[i64]>(name)?.to_vec()));
        }
        self.required(1, name)?;
        Ok(self.value(1).map(<[i64]>::to_vec))
    }

    /// Integer attribute `name`, or `default`.
    fn int(&self, name: &str, default: i64) -> Result<i64, OnnxError> {
        Ok(self.attr::<i64>(name)?.unwrap_or(default))
    }

    /// Integer-list attribute `name`, if present.
    fn ints(&self, name: &str) -> Result<Option<Vec<i64>>, OnnxError> {
        Ok(self.attr::<&[i64]>(name)?.map(<[i64]>::to_vec))
    }

    /// String attribute `name`, or `default`.
    fn string(&self, name: &str, default: &str) -> Result<String, OnnxError> {
        Ok(self.attr::<&str>(name)?.unwrap_or(default).to_string())
    }

    /// `axis` of a rank-`rank` tensor normalised to `0..rank` (negative values count from the end);
    /// `attr` names it in the error.
    fn axis(&self, attr: &str, axis: i64, rank: usize) -> Result<usize, OnnxError> {
        normalize_axis(axis, rank).ok_or_else(|| {
            self.attr_err(attr, format!("{axis} is outside [-{rank}, {rank}) for an input of rank {rank}"))
        })
    }

    /// Checks every known output shape: non-negative dimensions and at most
    /// [`MAX_INFERRED_ELEMENTS`] elements.
    fn check_outputs(&self, out: Out) -> Result<Out, OnnxError> {
        for (slot, s) in out.shapes.iter().enumerate() {
            let Some(s) = s else { continue };
            if let Some(d) = s.iter().find(|&&d| d < 0) {
                return Err(self.err(format!("output {slot} would have the negative dimension {d} (shape {s:?})")));
            }
            if element_count(s).is_none() {
                return Err(self.err(format!(
                    "output {slot} would have shape {s:?}, more than {MAX_INFERRED_ELEMENTS} elements per image"
                )));
            }
        }
        Ok(out)
    }
}

/// `axis` normalised to `0..rank`, or `None` when outside `[-rank, rank)`.
fn normalize_axis(axis: i64, rank: usize) -> Option<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis.checked_add(r)? } else { axis };
    (0..r).contains(&a).then_some(a as usize)
}

/// The element count of `shape`, or `None` above [`MAX_INFERRED_ELEMENTS`] (or on a negative dim).
fn element_count(shape: &[i64]) -> Option<u64> {
    let mut n: u64 = 1;
    for &d in shape {
        n = n.checked_mul(u64::try_from(d).ok()?)?;
        if n > MAX_INFERRED_ELEMENTS {
            // Zero-sized dims later would bring it back down, but such a tensor is never legitimate here.
            if !shape.contains(&0) {
                return None;
            }
        }
    }
    Some(n)
}

/// Numpy (multidirectional) broadcasting of `shapes`; `None` when they are incompatible.
fn broadcast(shapes: &[&[i64]]) -> Option<Vec<i64>> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1i64; rank];
    for s in shapes {
        let lead = rank - s.len();
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[lead + i];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                return None;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::{broadcast, element_count, normalize_axis};

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(broadcast(&[&[2, 1, 4], &[3, 1]]), Some(vec![2, 3, 4]));
        assert_eq!(broadcast(&[&[], &[5]]), Some(vec![5]));
        assert_eq!(broadcast(&[&[2, 3], &[4, 3]]), None);
        assert_eq!(broadcast(&[&[0, 3], &[1, 3]]), Some(vec![0, 3]));
    }

    #[test]
    fn axes_are_normalised_or_refused() {
        assert_eq!(normalize_axis(-1, 4), Some(3));
        assert_eq!(normalize_axis(4, 4), None);
        assert_eq!(normalize_axis(-5, 4), None);
        assert_eq!(normalize_axis(i64::MIN, 4), None);
    }

    #[test]
    fn element_counts_are_bounded() {
        assert_eq!(element_count(&[2, 3]), Some(6));
        assert_eq!(element_count(&[1 << 20, 1 << 20]), None);
        assert_eq!(element_count(&[1 << 40, 0]), Some(0));
        assert_eq!(element_count(&[-1]), None);
    }
}
