//! Backward rules of data-movement ops: Identity, Dropout (inference), Flatten, Reshape, Squeeze,
//! Unsqueeze (axes as attribute or input), Expand, Transpose, Concat, Pad (constant mode). Constant
//! has no inputs and so no rule body.

use crate::grad::rules::Ctx;
use crate::grad::GradError;
use crate::onnx::builder::{attr_int, attr_ints};

pub(super) fn constant(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    Ok(vec![None; c.node.input.len()])
}

/// dX = dY (Dropout at inference is the identity; its mask output has no gradient).
pub(super) fn identity(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    let mut res = vec![None; c.node.input.len()];
    res[0] = Some(dy);
    Ok(res)
}

/// Flatten and Reshape: dX = Reshape(dY, Shape(X)), their target shape (input 1, when given)
/// carrying no gradient.
pub(super) fn reshape_back(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    reshape_to_input(c, "target shape")
}

/// Squeeze and Unsqueeze only move axes of size 1: dX = Reshape(dY, Shape(X)). Their axes are
/// the `axes` attribute before opset 13 and a second input from 13.
pub(super) fn squeeze_back(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    reshape_to_input(c, "axes")
}

/// dX = Reshape(dY, Shape(X)) for the ops that only rearrange X's elements; input 1 (`what`, when
/// given) must not need a gradient.
fn reshape_to_input(c: &mut Ctx, what: &str) -> Result<Vec<Option<String>>, GradError> {
    c.refuse_input(1, what)?;
    let dy = c.dy0()?;
    let x = c.input(0).to_string();
    let shape = c.shape_of(&x);
    let mut res = vec![None; c.node.input.len()];
    res[0] = Some(c.b.op("Reshape", &[&dy, &shape], vec![]));
    Ok(res)
}

/// dX = dY summed over the axes Expand broadcast X along.
pub(super) fn expand(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    c.refuse_input(1, "target shape")?;
    let dy = c.dy0()?;
    let out = c.shape(c.output(0))?.clone();
    let x = c.input(0).to_string();
    Ok(vec![Some(c.reduce_to(&dy, &out, &x)?), None])
}

/// dX = Transpose(dY, perm⁻¹).
pub(super) fn transpose(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    let rank = c.shape(c.input(0))?.rank();
    let perm = c.ints_attr("perm")?.unwrap_or_else(|| (0..rank as i64).rev().collect());
    if perm.len() != rank {
        return Err(c.bad_attr("perm", format!("{perm:?} for an input of rank {rank}")));
    }
    let mut inv = vec![0i64; rank];
    for (i, &p) in perm.iter().enumerate() {
        let p = usize::try_from(p)
            .ok()
            .filter(|&p| p < rank)
            .ok_or_else(|| c.bad_attr("perm", format!("{perm:?} is not a permutation")))?;
        inv[p] = i as i64;
    }
    Ok(vec![Some(c.b.op("Transpose", &[&dy], vec![attr_ints("perm", &inv)]))])
}

/// The inputs' gradients are the slices of dY along the axis: Split with their static sizes.
pub(super) fn concat(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    let n = c.node.input.len();
    let rank = c.shape(c.output(0))?.rank() as i64;
    let axis = c.int_attr("axis", 1)?;
    let axis = if axis < 0 { axis + rank } else { axis };
    if !(0..rank).contains(&axis) {
        return Err(c.bad_attr("axis", format!("{axis} for rank {rank}")));
    }
    let mut sizes = Vec::with_capacity(n);
    for i in 0..n {
        let s = c.shape(c.input(i))?;
        if s.batch[axis as usize] {
            return Err(c.unsupported(format!("concatenation along the batch axis {axis}")));
        }
        sizes.push(s.dims[axis as usize]);
    }
    let split = c.b.const_i64("split", &[n as i64], &sizes);
    let outs = c.b.node_n("Split", &[&dy, &split], n, vec![attr_int("axis", axis)]);
    Ok((0..n).zip(outs).map(|(i, o)| c.needs(i).then_some(o)).collect())
}

/// dX = Slice(dY, starts = pads_begin, ends = pads_begin + Shape(X)) (constant mode). The pads may
/// be computed in the graph (PyTorch exports them that way); constant pads are checked to be
/// non-negative.
pub(super) fn pad(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    c.refuse_input(1, "pads")?;
    c.refuse_input(2, "constant value")?;
    let dy = c.dy0()?;
    let mode = c.string_attr("mode", "constant")?;
    if mode != "constant" {
        return Err(c.unsupported(format!("mode '{mode}': only constant padding is supported")));
    }
    let x = c.input(0).to_string();
    let rank = c.shape(&x)?.rank() as i64;
    let pads_name = c.input(1).to_string();
    if let Some(pads) = c.consts.i64s(&pads_name) {
        if pads.iter().any(|&p| p < 0) {
            return Err(c.unsupported(format!("negative pads {pads:?}")));
        }
    }
    let axes = c.input(3).to_string();
    let k = if axes.is_empty() {
        rank
    } else {
        c.consts
            .i64s(&axes)
            .ok_or_else(|| c.unsupported(format!("axes '{axes}' is not a constant int64 tensor")))?
            .len() as i64
    };
    let zero = c.b.const_i64("zero", &[1], &[0]);
    let kc = c.b.const_i64("k", &[1], &[k]);
    let starts = c.b.op("Slice", &[&pads_name, &zero, &kc], vec![]);
    let mut extent = c.shape_of(&x);
    if !axes.is_empty() {
        extent = c.b.op("Gather", &[&extent, &axes], vec![]);
    }
    let ends = c.b.op("Add", &[&starts, &extent], vec![]);
    let mut inputs = vec![dy.as_str(), starts.as_str(), ends.as_str()];
    if !axes.is_empty() {
        inputs.push(axes.as_str());
    }
    let mut res = vec![None; c.node.input.len()];
    res[0] = Some(c.b.op("Slice", &inputs, vec![]));
    Ok(res)
}
