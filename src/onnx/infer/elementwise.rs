//! Shape functions of elementwise ops: unary ops (the output has the input's shape), numpy
//! broadcasting binary and variadic ops (incompatible operands are refused), Where, PRelu, the
//! softmax family (the axis is checked) and Dropout. Integer values flow through Identity and
//! Cast and through Add, Sub, Mul and exact Div of tracked values.

use crate::onnx::infer::{broadcast, Cx, Out, ShapeFn};
use crate::onnx::OnnxError;

pub(super) fn lookup(op: &str) -> Option<ShapeFn> {
    Some(match op {
        "Identity" | "Cast" | "CastLike" => pass_value,
        "Relu" | "LeakyRelu" | "Sigmoid" | "Tanh" | "HardSigmoid" | "HardSwish" | "Elu" | "Selu" | "Celu" | "Gelu"
        | "Mish" | "Softplus" | "Softsign" | "ThresholdedRelu" | "Shrink" | "Exp" | "Log" | "Neg" | "Abs" | "Sqrt"
        | "Reciprocal" | "Floor" | "Ceil" | "Round" | "Sign" | "Erf" | "Sin" | "Cos" | "Tan" | "Asin" | "Acos"
        | "Atan" | "Sinh" | "Cosh" | "Asinh" | "Acosh" | "Atanh" | "Not" | "IsNaN" | "IsInf" | "Clip" | "Trilu"
        | "CumSum" | "BitwiseNot" => unary,
        "Dropout" => dropout,
        "Softmax" | "LogSoftmax" | "Hardmax" => softmax,
        "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Mod" | "Equal" | "Less" | "Greater" | "LessOrEqual"
        | "GreaterOrEqual" | "And" | "Or" | "Xor" | "BitShift" | "BitwiseAnd" | "BitwiseOr" | "BitwiseXor" | "Max"
        | "Min" | "Sum" | "Mean" | "Where" => broadcasting,
        "PRelu" => prelu,
        _ => return None,
    })
}

/// Output 0 has input 0's shape.
fn unary(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    Ok(cx.required(0, "the input")?.map_or_else(Out::unknown, |s| Out::one(s.to_vec())))
}

/// Identity and Cast: input 0's shape, and its tracked value (a cast between integer types keeps
/// small values; a cast to a floating type drops the tracking).
fn pass_value(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let Some(s) = cx.required(0, "the input")? else {
        return Ok(Out::unknown());
    };
    let keeps = match cx.node.op_type.as_deref() {
        Some("Cast") => matches!(cx.int("to", 0)?, 6 | 7), // INT32, INT64
        Some("CastLike") => false,
        _ => true,
    };
    Ok(Out::valued(s.to_vec(), if keeps { cx.value(0).map(<[i64]>::to_vec) } else { None }))
}

/// Dropout: output and mask have the input's shape.
fn dropout(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let Some(s) = cx.required(0, "data")? else {
        return Ok(Out::unknown());
    };
    Ok(Out { shapes: vec![Some(s.to_vec()), Some(s.to_vec())], value: None })
}

/// Softmax, LogSoftmax, Hardmax: the input's shape; `axis` must lie within its rank.
fn softmax(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let Some(s) = cx.required(0, "the input")? else {
        return Ok(Out::unknown());
    };
    let default = if cx.opset >= 13 { -1 } else { 1 };
    let axis = cx.int("axis", default)?;
    cx.axis("axis", axis, s.len())?;
    Ok(Out::one(s.to_vec()))
}

/// PRelu: the slope broadcasts to X, the output has X's shape.
fn prelu(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let (x, slope) = (cx.required(0, "X")?, cx.required(1, "slope")?);
    let Some(x) = x else {
        return Ok(Out::unknown());
    };
    if let Some(slope) = slope {
        if broadcast(&[x, slope]).as_deref() != Some(x) {
            return Err(cx.err(format!("slope of shape {slope:?} does not broadcast to the input's {x:?}")));
        }
    }
    Ok(Out::one(x.to_vec()))
}

/// Numpy broadcasting over every input (two for binary ops, one or more for Max, Min, Sum, Mean,
/// three for Where).
fn broadcasting(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let op = cx.node.op_type.as_deref().unwrap_or("");
    let needed = match op {
        "Where" => 3,
        "Max" | "Min" | "Sum" | "Mean" => 1,
        _ => 2,
    };
    for slot in 0..needed {
        cx.required(slot, "an operand")?;
    }
    let Some(shapes) = cx.given_shapes() else {
        return Ok(Out::unknown());
    };
    let Some(out) = broadcast(&shapes) else {
        return Err(cx.err(format!("operand shapes {shapes:?} cannot be broadcast together")));
    };
    let value = match (op, cx.value(0), cx.value(1)) {
        ("Add" | "Sub" | "Mul" | "Div", Some(a), Some(b)) if needed == 2 => arith(op, a, b),
        _ => None,
    };
    Ok(Out::valued(out, value))
}

/// Elementwise integer arithmetic of tracked values (equal lengths, or one side a single value);
/// `None` on overflow, division by zero or an inexact division.
fn arith(op: &str, a: &[i64], b: &[i64]) -> Option<Vec<i64>> {
    let n = a.len().max(b.len());
    if !(a.len() == b.len() || a.len() == 1 || b.len() == 1) {
        return None;
    }
    let at = |v: &[i64], i: usize| if v.len() == 1 { v[0] } else { v[i] };
    (0..n)
        .map(|i| {
            let (x, y) = (at(a, i), at(b, i));
            match op {
                "Add" => x.checked_add(y),
                "Sub" => x.checked_sub(y),
                "Mul" => x.checked_mul(y),
                _ => (y != 0 && x.checked_rem(y) == Some(0)).then(|| x.checked_div(y)).flatten(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::arith;

    #[test]
    fn tracked_arithmetic_refuses_what_it_cannot_do_exactly() {
        assert_eq!(arith("Mul", &[2, 3], &[4]), Some(vec![8, 12]));
        assert_eq!(arith("Div", &[8], &[2]), Some(vec![4]));
        assert_eq!(arith("Div", &[7], &[2]), None);
        assert_eq!(arith("Div", &[7], &[0]), None);
        assert_eq!(arith("Add", &[i64::MAX], &[1]), None);
        assert_eq!(arith("Sub", &[1, 2, 3], &[1, 2]), None);
    }
}
