//! Backward rules of Softmax and LogSoftmax along one axis (opset ≥ 13 semantics).

use crate::grad::rules::Ctx;
use crate::grad::GradError;
use crate::onnx::builder::attr_int;

fn axis_const(c: &mut Ctx) -> Result<String, GradError> {
    let axis = c.int_attr("axis", -1)?;
    Ok(c.b.const_i64("axis", &[1], &[axis]))
}

/// dX = Y·(dY − ReduceSum(dY·Y, axis)).
pub(super) fn softmax(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    let y = c.output(0).to_string();
    let axis = axis_const(c)?;
    let gy = c.b.op("Mul", &[&dy, &y], vec![]);
    let s = c.b.op("ReduceSum", &[&gy, &axis], vec![attr_int("keepdims", 1)]);
    let d = c.b.op("Sub", &[&dy, &s], vec![]);
    Ok(vec![Some(c.b.op("Mul", &[&y, &d], vec![]))])
}

/// dX = dY − Exp(Y)·ReduceSum(dY, axis).
pub(super) fn log_softmax(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    let y = c.output(0).to_string();
    let axis = axis_const(c)?;
    let s = c.b.op("ReduceSum", &[&dy, &axis], vec![attr_int("keepdims", 1)]);
    let p = c.b.op("Exp", &[&y], vec![]);
    let t = c.b.op("Mul", &[&p, &s], vec![]);
    Ok(vec![Some(c.b.op("Sub", &[&dy, &t], vec![]))])
}
