//! Backward rules of reductions: ReduceSum, ReduceMean, ReduceSumSquare and ReduceL2. The axes come
//! from the `axes` attribute (before opset 18; ReduceSum before 13) or from the constant second
//! input; `keepdims` and `noop_with_empty_axes` are honoured. For the sum and mean,
//! dX = Expand(Unsqueeze(dY) / count, Shape(X)).

use crate::grad::rules::Ctx;
use crate::grad::GradError;

pub(super) fn reduce_sum(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    reduce(c, false)
}

pub(super) fn reduce_mean(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    reduce(c, true)
}

/// The reduced axes of the node (normalised, sorted, distinct), or `None` for the identity
/// (empty axes with `noop_with_empty_axes = 1`).
pub(crate) fn reduced_axes(c: &Ctx, rank: usize) -> Result<Option<Vec<usize>>, GradError> {
    let axes = if c.input(1).is_empty() { c.ints_attr("axes")?.unwrap_or_default() } else { c.const_i64s(1, "axes")? };
    if axes.is_empty() {
        if c.int_attr("noop_with_empty_axes", 0)? != 0 {
            return Ok(None);
        }
        return Ok(Some((0..rank).collect()));
    }
    let mut out = Vec::with_capacity(axes.len());
    for &a in &axes {
        out.push(c.axis(a, rank, "axes")?);
    }
    out.sort_unstable();
    out.dedup();
    Ok(Some(out))
}

fn reduce(c: &mut Ctx, mean: bool) -> Result<Vec<Option<String>>, GradError> {
    c.refuse_input(1, "axes")?;
    let dy = c.dy0()?;
    let x = c.input(0).to_string();
    let sx = c.shape(&x)?.clone();
    let mut res = vec![None; c.node.input.len()];
    let Some(axes) = reduced_axes(c, sx.rank())? else {
        res[0] = Some(dy);
        return Ok(res);
    };
    let mut g = dy;
    if c.int_attr("keepdims", 1)? == 0 {
        let ax: Vec<i64> = axes.iter().map(|&a| a as i64).collect();
        let ax = c.b.const_i64("axes", &[ax.len() as i64], &ax);
        g = c.b.op("Unsqueeze", &[&g, &ax], vec![]);
    }
    if mean {
        if let Some(&a) = axes.iter().find(|&&a| sx.batch[a]) {
            return Err(c.unsupported(format!("mean over axis {a}, which follows the batch size")));
        }
        let count: i64 = axes.iter().map(|&a| sx.dims[a]).product();
        if count == 0 {
            return Err(c.unsupported("mean over an empty axis"));
        }
        let k = c.scalar(1.0 / count as f32);
        g = c.b.op("Mul", &[&g, &k], vec![]);
    }
    let shape = c.shape_of(&x);
    res[0] = Some(c.b.op("Expand", &[&g, &shape], vec![]));
    Ok(res)
}

/// dY and (when `with_y`) Y with the reduced axes put back as size-1 dims (keepdims = 0), or
/// `None` for the identity (empty axes with `noop_with_empty_axes`).
fn kept(c: &mut Ctx, with_y: bool) -> Result<Option<(String, String)>, GradError> {
    c.refuse_input(1, "axes")?;
    let dy = c.dy0()?;
    let x = c.input(0).to_string();
    let rank = c.shape(&x)?.rank();
    let y = c.output(0).to_string();
    let Some(axes) = reduced_axes(c, rank)? else {
        return Ok(None);
    };
    if c.int_attr("keepdims", 1)? != 0 {
        return Ok(Some((dy, y)));
    }
    let ax: Vec<i64> = axes.iter().map(|&a| a as i64).collect();
    let ax = c.b.const_i64("axes", &[ax.len() as i64], &ax);
    let dyk = c.b.op("Unsqueeze", &[&dy, &ax], vec![]);
    let yk = if with_y { c.b.op("Unsqueeze", &[&y, &ax], vec![]) } else { y };
    Ok(Some((dyk, yk)))
}

/// Y = Σ X²: dX = 2·X·dY.
pub(super) fn reduce_sum_square(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let x = c.input(0).to_string();
    let mut res = vec![None; c.node.input.len()];
    let Some((dy, _)) = kept(c, false)? else {
        // The identity on the squares: Y = X².
        let dy = c.dy0()?;
        let two = c.scalar(2.0);
        let t = c.b.op("Mul", &[&x, &two], vec![]);
        res[0] = Some(c.b.op("Mul", &[&dy, &t], vec![]));
        return Ok(res);
    };
    let two = c.scalar(2.0);
    let t = c.b.op("Mul", &[&x, &two], vec![]);
    res[0] = Some(c.b.op("Mul", &[&t, &dy], vec![]));
    Ok(res)
}

/// Y = √(Σ X²): dX = dY·X / Y, and 0 where Y = 0 (as PyTorch's norm backward).
pub(super) fn reduce_l2(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let x = c.input(0).to_string();
    let mut res = vec![None; c.node.input.len()];
    let Some((dy, y)) = kept(c, true)? else {
        // The identity on |X|: dX = dY·sign(X).
        let dy = c.dy0()?;
        let s = c.b.op("Sign", &[&x], vec![]);
        res[0] = Some(c.b.op("Mul", &[&dy, &s], vec![]));
        return Ok(res);
    };
    let zero = c.scalar(0.0);
    let is_zero = c.b.op("Equal", &[&y, &zero], vec![]);
    let one = c.scalar(1.0);
    let safe = c.b.op("Where", &[&is_zero, &one, &y], vec![]);
    let ratio = c.b.op("Div", &[&x, &safe], vec![]);
    let g = c.b.op("Mul", &[&ratio, &dy], vec![]);
    let zeros = c.b.op("Where", &[&is_zero, &zero, &g], vec![]);
    res[0] = Some(zeros);
    Ok(res)
}
