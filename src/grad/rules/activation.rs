//! Backward rules of elementwise activations: Relu, LeakyRelu, Sigmoid, Tanh, Clip.

use std::collections::HashMap;

use crate::grad::rules::{Ctx, Rule};
use crate::grad::GradError;

pub(crate) fn register(map: &mut HashMap<&'static str, Rule>) {
    map.insert("Relu", relu);
    map.insert("LeakyRelu", leaky_relu);
    map.insert("Sigmoid", sigmoid);
    map.insert("Tanh", tanh);
    map.insert("Clip", clip);
}

/// dX = Where(X > 0, dY, 0).
fn relu(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    let x = c.input(0).to_string();
    let zero = c.scalar(0.0);
    let mask = c.b.op("Greater", &[&x, &zero], vec![]);
    Ok(vec![Some(c.b.op("Where", &[&mask, &dy, &zero], vec![]))])
}

/// dX = Where(X > 0, dY, alpha·dY).
fn leaky_relu(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    let x = c.input(0).to_string();
    let alpha = c.float_attr("alpha", 0.01)?;
    let zero = c.scalar(0.0);
    let a = c.scalar(alpha);
    let mask = c.b.op("Greater", &[&x, &zero], vec![]);
    let scaled = c.b.op("Mul", &[&dy, &a], vec![]);
    Ok(vec![Some(c.b.op("Where", &[&mask, &dy, &scaled], vec![]))])
}

/// dX = dY·Y·(1 − Y).
fn sigmoid(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    let y = c.output(0).to_string();
    let one = c.scalar(1.0);
    let omy = c.b.op("Sub", &[&one, &y], vec![]);
    let d = c.b.op("Mul", &[&y, &omy], vec![]);
    Ok(vec![Some(c.b.op("Mul", &[&dy, &d], vec![]))])
}

/// dX = dY·(1 − Y²).
fn tanh(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    let y = c.output(0).to_string();
    let one = c.scalar(1.0);
    let y2 = c.b.op("Mul", &[&y, &y], vec![]);
    let d = c.b.op("Sub", &[&one, &y2], vec![]);
    Ok(vec![Some(c.b.op("Mul", &[&dy, &d], vec![]))])
}

/// dX = Where(min ≤ X ≤ max, dY, 0) (bounds inclusive, as PyTorch's clamp); min/max are inputs
/// from opset 11 (older opsets are rejected before the rules run).
fn clip(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    c.refuse_input(1, "minimum")?;
    c.refuse_input(2, "maximum")?;
    let dy = c.dy0()?;
    let x = c.input(0).to_string();
    let (lo, hi) = (c.input(1).to_string(), c.input(2).to_string());
    let mut mask: Option<String> = None;
    if !lo.is_empty() {
        mask = Some(c.b.op("GreaterOrEqual", &[&x, &lo], vec![]));
    }
    if !hi.is_empty() {
        let m = c.b.op("LessOrEqual", &[&x, &hi], vec![]);
        mask = Some(match mask {
            Some(prev) => c.b.op("And", &[&prev, &m], vec![]),
            None => m,
        });
    }
    let Some(mask) = mask else {
        return Ok(vec![Some(dy)]);
    };
    let zero = c.scalar(0.0);
    Ok(vec![Some(c.b.op("Where", &[&mask, &dy, &zero], vec![]))])
}
