//! Backward rules of broadcasting binary arithmetic: Add, Sub, Mul, Div. Gradients are summed over
//! the axes along which an operand was broadcast, so constants ((x − mean)/std) and residual
//! branches both work.

use crate::grad::rules::Ctx;
use crate::grad::GradError;

/// The gradient `g` (shaped like output 0) reduced to input `i`, when wanted.
fn to_input(c: &mut Ctx, i: usize, g: &str) -> Result<Option<String>, GradError> {
    let out = c.shape(c.output(0))?.clone();
    let target = c.input(i).to_string();
    Ok(Some(c.reduce_to(g, &out, &target)?))
}

pub(super) fn add(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    let mut res = vec![None, None];
    for (i, r) in res.iter_mut().enumerate() {
        if c.needs(i) {
            *r = to_input(c, i, &dy)?;
        }
    }
    Ok(res)
}

pub(super) fn sub(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    let mut res = vec![None, None];
    if c.needs(0) {
        res[0] = to_input(c, 0, &dy)?;
    }
    if c.needs(1) {
        let neg = c.b.op("Neg", &[&dy], vec![]);
        res[1] = to_input(c, 1, &neg)?;
    }
    Ok(res)
}

pub(super) fn mul(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    let (a, b) = (c.input(0).to_string(), c.input(1).to_string());
    let mut res = vec![None, None];
    if c.needs(0) {
        let g = c.b.op("Mul", &[&dy, &b], vec![]);
        res[0] = to_input(c, 0, &g)?;
    }
    if c.needs(1) {
        let g = c.b.op("Mul", &[&dy, &a], vec![]);
        res[1] = to_input(c, 1, &g)?;
    }
    Ok(res)
}

/// dA = dY / B; dB = −dY·Y / B.
pub(super) fn div(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    let b = c.input(1).to_string();
    let y = c.output(0).to_string();
    let mut res = vec![None, None];
    let da = c.b.op("Div", &[&dy, &b], vec![]);
    if c.needs(0) {
        res[0] = to_input(c, 0, &da)?;
    }
    if c.needs(1) {
        let t = c.b.op("Mul", &[&da, &y], vec![]);
        let g = c.b.op("Neg", &[&t], vec![]);
        res[1] = to_input(c, 1, &g)?;
    }
    Ok(res)
}
