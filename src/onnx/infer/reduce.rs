//! Shape functions of reductions: the Reduce* family (axes from the attribute before the opset that
//! made them an input, from the input after; `keepdims`, `noop_with_empty_axes`) and ArgMax/ArgMin.
//! Axes outside the input's rank or repeated are refused.

use crate::onnx::infer::{Cx, Out, ShapeFn};
use crate::onnx::OnnxError;

pub(super) fn lookup(op: &str) -> Option<ShapeFn> {
    Some(match op {
        "ReduceMean" | "ReduceMax" | "ReduceMin" | "ReduceSum" | "ReduceProd" | "ReduceL1" | "ReduceL2"
        | "ReduceLogSum" | "ReduceLogSumExp" | "ReduceSumSquare" => reduce,
        "ArgMax" | "ArgMin" => arg_reduce,
        _ => return None,
    })
}

/// Normalised, distinct axes of a rank-`rank` input.
fn check_axes(cx: &Cx<'_>, what: &str, axes: &[i64], rank: usize) -> Result<Vec<usize>, OnnxError> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let n = cx.axis(what, a, rank)?;
        if out.contains(&n) {
            return Err(cx.attr_err(what, format!("{axes:?} names axis {n} twice")));
        }
        out.push(n);
    }
    Ok(out)
}

fn reduce(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let Some(x) = cx.required(0, "data")? else {
        return Ok(Out::unknown());
    };
    let keepdims = cx.int("keepdims", 1)? != 0;
    let axes_are_input = if cx.node.op_type.as_deref() == Some("ReduceSum") { cx.opset >= 13 } else { cx.opset >= 18 };
    let axes: Vec<i64> = if axes_are_input {
        if cx.has(1) {
            match cx.value(1) {
                Some(v) => v.to_vec(),
                None => return Ok(Out::unknown()),
            }
        } else {
            Vec::new()
        }
    } else {
        cx.ints("axes")?.unwrap_or_default()
    };
    let axes = if axes.is_empty() {
        if axes_are_input && cx.int("noop_with_empty_axes", 0)? != 0 {
            return Ok(Out::one(x.to_vec()));
        }
        (0..x.len()).collect()
    } else {
        check_axes(cx, "axes", &axes, x.len())?
    };
    Ok(Out::one(reduced(x, &axes, keepdims)))
}

fn arg_reduce(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let Some(x) = cx.required(0, "data")? else {
        return Ok(Out::unknown());
    };
    let axis = cx.axis("axis", cx.int("axis", 0)?, x.len())?;
    let keepdims = cx.int("keepdims", 1)? != 0;
    Ok(Out::one(reduced(x, &[axis], keepdims)))
}

/// `x` with `axes` set to 1 (`keepdims`) or removed.
fn reduced(x: &[i64], axes: &[usize], keepdims: bool) -> Vec<i64> {
    x.iter()
        .enumerate()
        .filter_map(|(i, &d)| match (axes.contains(&i), keepdims) {
            (true, true) => Some(1),
            (true, false) => None,
            (false, _) => Some(d),
        })
        .collect()
}
