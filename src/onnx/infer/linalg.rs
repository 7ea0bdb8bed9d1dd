//! Shape functions of matrix products: Gemm (rank-2 operands, `transA`/`transB`, C broadcast to
//! the result) and MatMul (numpy semantics: 1-D operands promoted, batch dimensions broadcast).
//! Inner dimensions that differ are refused with both operand shapes.

use crate::onnx::infer::{broadcast, Cx, Out, ShapeFn};
use crate::onnx::OnnxError;

pub(super) fn lookup(op: &str) -> Option<ShapeFn> {
    Some(match op {
        "Gemm" => gemm,
        "MatMul" => matmul,
        _ => return None,
    })
}

fn gemm(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let (a, b) = (cx.required(0, "A")?, cx.required(1, "B")?);
    let ta = cx.int("transA", 0)? != 0;
    let tb = cx.int("transB", 0)? != 0;
    let (Some(a), Some(b)) = (a, b) else {
        return Ok(Out::unknown());
    };
    if a.len() != 2 || b.len() != 2 {
        return Err(cx.err(format!("operands A {a:?} and B {b:?} must both be matrices (rank 2)")));
    }
    let (m, ka) = if ta { (a[1], a[0]) } else { (a[0], a[1]) };
    let (kb, n) = if tb { (b[1], b[0]) } else { (b[0], b[1]) };
    if ka != kb {
        return Err(cx.err(format!(
            "A {a:?} (transA {}) and B {b:?} (transB {}) have inner dimensions {ka} and {kb}, which differ",
            ta as i64, tb as i64
        )));
    }
    if cx.has(2) {
        if let Some(c) = cx.shape(2) {
            if broadcast(&[&[m, n], c]).as_deref() != Some(&[m, n][..]) {
                return Err(cx.err(format!("C of shape {c:?} does not broadcast to the result's [{m}, {n}]")));
            }
        }
    }
    Ok(Out::one(vec![m, n]))
}

fn matmul(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let (a, b) = (cx.required(0, "A")?, cx.required(1, "B")?);
    let (Some(a), Some(b)) = (a, b) else {
        return Ok(Out::unknown());
    };
    if a.is_empty() || b.is_empty() {
        return Err(cx.err(format!("operands A {a:?} and B {b:?}: MatMul needs rank 1 or more")));
    }
    let a2: Vec<i64> = if a.len() == 1 { vec![1, a[0]] } else { a.to_vec() };
    let b2: Vec<i64> = if b.len() == 1 { vec![b[0], 1] } else { b.to_vec() };
    let (ra, rb) = (a2.len(), b2.len());
    if a2[ra - 1] != b2[rb - 2] {
        return Err(cx.err(format!(
            "A {a:?} and B {b:?} have inner dimensions {} and {}, which differ",
            a2[ra - 1],
            b2[rb - 2]
        )));
    }
    let Some(mut out) = broadcast(&[&a2[..ra - 2], &b2[..rb - 2]]) else {
        return Err(cx.err(format!("the batch dimensions of A {a:?} and B {b:?} cannot be broadcast together")));
    };
    if a.len() > 1 {
        out.push(a2[ra - 2]);
    }
    if b.len() > 1 {
        out.push(b2[rb - 1]);
    }
    Ok(Out::one(out))
}
