//! Backward rules of elementwise math: Neg, Exp, Log, Sqrt, Reciprocal, Erf and Pow (broadcasting
//! base and exponent).

use crate::grad::rules::Ctx;
use crate::grad::GradError;
use crate::onnx::proto::tensor_proto::DataType;

pub(super) fn neg(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    Ok(vec![Some(c.b.op("Neg", &[&dy], vec![]))])
}

/// dX = dY·Y.
pub(super) fn exp(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    let y = c.output(0).to_string();
    Ok(vec![Some(c.b.op("Mul", &[&dy, &y], vec![]))])
}

/// dX = dY / X.
pub(super) fn log(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    let x = c.input(0).to_string();
    Ok(vec![Some(c.b.op("Div", &[&dy, &x], vec![]))])
}

/// dX = dY / (2·Y).
pub(super) fn sqrt(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    let y = c.output(0).to_string();
    let two = c.scalar(2.0);
    let d = c.b.op("Mul", &[&y, &two], vec![]);
    Ok(vec![Some(c.b.op("Div", &[&dy, &d], vec![]))])
}

/// Y = 1/X: dX = −dY·Y².
pub(super) fn reciprocal(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    let y = c.output(0).to_string();
    let y2 = c.b.op("Mul", &[&y, &y], vec![]);
    let g = c.b.op("Mul", &[&dy, &y2], vec![]);
    Ok(vec![Some(c.b.op("Neg", &[&g], vec![]))])
}

/// dX = dY·(2/√π)·exp(−X²).
pub(super) fn erf(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    let x = c.input(0).to_string();
    let x2 = c.b.op("Mul", &[&x, &x], vec![]);
    let nx2 = c.b.op("Neg", &[&x2], vec![]);
    let e = c.b.op("Exp", &[&nx2], vec![]);
    let k = c.scalar(std::f32::consts::FRAC_2_SQRT_PI);
    let d = c.b.op("Mul", &[&e, &k], vec![]);
    Ok(vec![Some(c.b.op("Mul", &[&dy, &d], vec![]))])
}

/// Y = X^E: dX = dY·E·X^(E−1); dE = dY·Y·ln X. A constant exponent may be an integer tensor.
pub(super) fn pow(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    let (x, e) = (c.input(0).to_string(), c.input(1).to_string());
    let out = c.shape(c.output(0))?.clone();
    let mut res = vec![None, None];
    if c.needs(0) {
        // E and E − 1 as float32: read from the constant where the exponent is one (its type may
        // be an integer type), computed in the graph otherwise.
        let (ef, em1) = match c.consts.tensors.get(e.as_str()).copied() {
            Some(t) => {
                let vals: Vec<f32> = match DataType::try_from(t.data_type.unwrap_or(0)) {
                    Ok(DataType::Float) => crate::onnx::tensor::tensor_f32(t).ok(),
                    Ok(DataType::Int64 | DataType::Int32) => {
                        crate::onnx::tensor::tensor_i64(t).ok().map(|v| v.iter().map(|&i| i as f32).collect())
                    }
                    _ => None,
                }
                .ok_or_else(|| c.unsupported(format!("exponent '{e}' is neither float32 nor an integer constant")))?;
                let m1: Vec<f32> = vals.iter().map(|v| v - 1.0).collect();
                (c.b.const_f32("exp", &t.dims, &vals), c.b.const_f32("exp_m1", &t.dims, &m1))
            }
            None => {
                let one = c.scalar(1.0);
                (e.clone(), c.b.op("Sub", &[&e, &one], vec![]))
            }
        };
        let p = c.b.op("Pow", &[&x, &em1], vec![]);
        let d = c.b.op("Mul", &[&p, &ef], vec![]);
        let g = c.b.op("Mul", &[&dy, &d], vec![]);
        res[0] = Some(c.reduce_to(&g, &out, &x)?);
    }
    if c.needs(1) {
        let y = c.output(0).to_string();
        let l = c.b.op("Log", &[&x], vec![]);
        let t = c.b.op("Mul", &[&y, &l], vec![]);
        let g = c.b.op("Mul", &[&dy, &t], vec![]);
        res[1] = Some(c.reduce_to(&g, &out, &e)?);
    }
    Ok(res)
}
