//! Backward rules of matrix products: Gemm and MatMul (rank ≥ 2, numpy batch broadcasting).

use std::collections::HashMap;

use crate::grad::rules::{Ctx, Rule};
use crate::grad::shapes::TensorShape;
use crate::grad::GradError;
use crate::onnx::builder::{attr_float, attr_int, attr_ints};

pub(crate) fn register(map: &mut HashMap<&'static str, Rule>) {
    map.insert("Gemm", gemm);
    map.insert("MatMul", matmul);
}

/// Y = α·op(A)·op(B) + β·C.
fn gemm(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    let (a, b, cc) = (c.input(0).to_string(), c.input(1).to_string(), c.input(2).to_string());
    let alpha = c.float_attr("alpha", 1.0)?;
    let beta = c.float_attr("beta", 1.0)?;
    let ta = c.int_attr("transA", 0)? != 0;
    let tb = c.int_attr("transB", 0)? != 0;
    let gemm_attrs = |t_a: bool, t_b: bool| {
        vec![attr_float("alpha", alpha), attr_int("transA", t_a as i64), attr_int("transB", t_b as i64)]
    };
    let mut res = vec![None, None, None];
    if c.needs(0) {
        // dop(A) = α·dY·op(B)ᵀ; dA is its transpose when transA.
        res[0] = Some(if ta {
            c.b.op("Gemm", &[&b, &dy], gemm_attrs(tb, true))
        } else {
            c.b.op("Gemm", &[&dy, &b], gemm_attrs(false, !tb))
        });
    }
    if c.needs(1) {
        // dop(B) = α·op(A)ᵀ·dY; dB is its transpose when transB.
        res[1] = Some(if tb {
            c.b.op("Gemm", &[&dy, &a], gemm_attrs(true, ta))
        } else {
            c.b.op("Gemm", &[&a, &dy], gemm_attrs(!ta, false))
        });
    }
    if c.needs(2) && !cc.is_empty() {
        let g = if beta == 1.0 {
            dy.clone()
        } else {
            let s = c.scalar(beta);
            c.b.op("Mul", &[&dy, &s], vec![])
        };
        let out = c.shape(c.output(0))?.clone();
        res[2] = Some(c.reduce_to(&g, &out, &cc)?);
    }
    Ok(res)
}

/// The permutation swapping the last two axes of a rank-`r` tensor.
fn swap_last(r: usize) -> Vec<i64> {
    let mut p: Vec<i64> = (0..r as i64).collect();
    p.swap(r - 2, r - 1);
    p
}

/// Y = A·B with A [..., M, K], B [..., K, N].
fn matmul(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    let (a, b) = (c.input(0).to_string(), c.input(1).to_string());
    let (sa, sb) = (c.shape(&a)?.clone(), c.shape(&b)?.clone());
    let sy = c.shape(c.output(0))?.clone();
    if sa.rank() < 2 || sb.rank() < 2 {
        return Err(c.unsupported(format!(
            "operands of rank {} and {}: only rank ≥ 2 is supported",
            sa.rank(),
            sb.rank()
        )));
    }
    // The full (broadcast) gradient of an operand has Y's batch dims and the operand's matrix dims.
    let full = |s: &TensorShape| {
        let r = sy.rank();
        let mut dims = sy.dims[..r - 2].to_vec();
        let mut batch = sy.batch[..r - 2].to_vec();
        dims.extend_from_slice(&s.dims[s.rank() - 2..]);
        batch.extend_from_slice(&s.batch[s.rank() - 2..]);
        TensorShape { dims, batch }
    };
    let mut res = vec![None, None];
    if c.needs(0) {
        let bt = c.b.op("Transpose", &[&b], vec![attr_ints("perm", &swap_last(sb.rank()))]);
        let g = c.b.op("MatMul", &[&dy, &bt], vec![]);
        res[0] = Some(c.reduce_to(&g, &full(&sa), &a)?);
    }
    if c.needs(1) {
        let at = c.b.op("Transpose", &[&a], vec![attr_ints("perm", &swap_last(sa.rank()))]);
        let g = c.b.op("MatMul", &[&at, &dy], vec![]);
        res[1] = Some(c.reduce_to(&g, &full(&sb), &b)?);
    }
    Ok(res)
}
