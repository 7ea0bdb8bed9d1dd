//! Backward rules of indexing ops: Slice (constant starts/ends/axes/steps as inputs, or the pre-10
//! attributes), Gather and GatherElements (indices constant or computed), GatherND (constant
//! indices) and Split. Gradients are scattered back into zeros shaped like the input, adding where
//! an element was read more than once.

use crate::grad::rules::Ctx;
use crate::grad::GradError;
use crate::onnx::builder::{attr_int, attr_string};

/// An end value this large means "to the end of the axis" (PyTorch writes INT64_MAX, some
/// exporters INT32_MAX).
const OPEN_END: i64 = 1 << 30;

/// One sliced axis, resolved against its static size.
struct SlicedAxis {
    axis: usize,
    start: i64,
    step: i64,
    count: i64,
    dim: i64,
}

/// Resolves ONNX Slice parameters on one axis of size `dim` (the spec's clamping rules).
fn resolve(start: i64, end: i64, step: i64, dim: i64) -> (i64, i64) {
    let norm = |v: i64| if v < 0 { v.saturating_add(dim) } else { v };
    let (s, e) = (norm(start), norm(end));
    let (s, e) =
        if step > 0 { (s.clamp(0, dim), e.clamp(0, dim)) } else { (s.clamp(0, dim - 1), e.clamp(-1, dim - 1)) };
    let count = if step > 0 { (e - s + step - 1).div_euclid(step) } else { (s - e + (-step) - 1).div_euclid(-step) };
    (s, count.max(0))
}

/// dX: dY scattered back into zeros at the sliced positions (Pad for unit steps, one
/// ScatterElements per axis otherwise).
pub(super) fn slice(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    for (i, what) in [(1, "starts"), (2, "ends"), (3, "axes"), (4, "steps")] {
        c.refuse_input(i, what)?;
    }
    let dy = c.dy0()?;
    let x = c.input(0).to_string();
    let sx = c.shape(&x)?.clone();
    let rank = sx.rank();
    let get = |c: &Ctx, i: usize, what: &str| -> Result<Option<Vec<i64>>, GradError> {
        if c.node.input.len() > 1 {
            // Opset ≥ 10: inputs.
            if c.input(i).is_empty() {
                return Ok(None);
            }
            return c.const_i64s(i, what).map(Some);
        }
        c.ints_attr(what)
    };
    let computed = c.node.input.len() > 1
        && (1..c.node.input.len()).any(|i| !c.input(i).is_empty() && c.consts.i64s(c.input(i)).is_none());
    if computed {
        return slice_by_positions(c, &dy, &x);
    }
    let starts = get(c, 1, "starts")?.ok_or_else(|| c.unsupported("no starts"))?;
    let ends = get(c, 2, "ends")?.ok_or_else(|| c.unsupported("no ends"))?;
    let axes = get(c, 3, "axes")?.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = get(c, 4, "steps")?.unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err(c.unsupported(format!(
            "starts, ends, axes and steps have different lengths ({}, {}, {}, {})",
            starts.len(),
            ends.len(),
            axes.len(),
            steps.len()
        )));
    }
    let mut sliced: Vec<SlicedAxis> = Vec::new();
    for i in 0..starts.len() {
        let axis = c.axis(axes[i], rank, "axes")?;
        let step = steps[i];
        if step == 0 {
            return Err(c.unsupported("a step of 0"));
        }
        let dim = sx.dims[axis];
        if sx.batch[axis] {
            // Only the whole batch axis can be "sliced".
            if starts[i] == 0 && step == 1 && ends[i] >= OPEN_END {
                continue;
            }
            return Err(c.unsupported(format!("slicing axis {axis}, which follows the batch size")));
        }
        let (start, count) = resolve(starts[i], ends[i], step, dim);
        if start == 0 && step == 1 && count == dim {
            continue;
        }
        sliced.push(SlicedAxis { axis, start, step, count, dim });
    }
    let mut g = dy;
    let mut pads = vec![0i64; 2 * rank];
    for s in &sliced {
        if s.step == 1 {
            pads[s.axis] = s.start;
            pads[s.axis + rank] = s.dim - s.start - s.count;
            continue;
        }
        let idx: Vec<i64> = (0..s.count).map(|k| s.start + k * s.step).collect();
        g = scatter_axis(c, &g, s.axis, rank, &idx, s.dim, false);
    }
    if pads.iter().any(|&p| p != 0) {
        let p = c.b.const_i64("pads", &[pads.len() as i64], &pads);
        g = c.b.op("Pad", &[&g, &p], vec![attr_string("mode", "constant")]);
    }
    let mut res = vec![None; c.node.input.len()];
    res[0] = Some(g);
    Ok(res)
}

/// Slice with starts, ends, axes or steps computed in the graph (Swin's shifted windows, exported
/// from shapes): the same Slice applied to the flat positions 0..|X| reshaped like X gives the
/// position of every output element in X; dY is scattered there.
fn slice_by_positions(c: &mut Ctx, dy: &str, x: &str) -> Result<Vec<Option<String>>, GradError> {
    let size = c.b.op("Size", &[x], vec![]);
    let zero = c.b.const_i64("zero", &[], &[0]);
    let one = c.b.const_i64("one", &[], &[1]);
    let range = c.b.op("Range", &[&zero, &size, &one], vec![]);
    let shape = c.shape_of(x);
    let positions = c.b.op("Reshape", &[&range, &shape], vec![]);
    let mut inputs: Vec<String> = vec![positions];
    inputs.extend(c.node.input[1..].iter().cloned());
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let picked = c.b.op("Slice", &refs, vec![]);
    let flat = c.b.const_i64("flat", &[1], &[-1]);
    let idx = c.b.op("Reshape", &[&picked, &flat], vec![]);
    let g = c.b.op("Reshape", &[dy, &flat], vec![]);
    let size1 = c.b.op("Reshape", &[&size, &flat], vec![]);
    let zeros = c.b.op("ConstantOfShape", &[&size1], vec![]);
    let s = c.b.op("ScatterElements", &[&zeros, &idx, &g], vec![attr_int("axis", 0)]);
    let mut res = vec![None; c.node.input.len()];
    res[0] = Some(c.b.op("Reshape", &[&s, &shape], vec![]));
    Ok(res)
}

/// Scatters `g` along `axis` (rank `rank`) into zeros whose size along that axis is `dim`: entry
/// `k` of `g` along the axis goes to position `idx[k]` (summed where `add` and indices repeat).
fn scatter_axis(c: &mut Ctx, g: &str, axis: usize, rank: usize, idx: &[i64], dim: i64, add: bool) -> String {
    let mut idims = vec![1i64; rank];
    idims[axis] = idx.len() as i64;
    let ic = c.b.const_i64("idx", &idims, idx);
    let gshape = c.shape_of(g);
    let ie = c.b.op("Expand", &[&ic, &gshape], vec![]);
    // The zeros' shape: g's shape with `dim` along the axis.
    let pos = c.b.const_i64("axis", &[1], &[axis as i64]);
    let d = c.b.const_i64("dim", &[1], &[dim]);
    let zshape = c.b.op("ScatterElements", &[&gshape, &pos, &d], vec![attr_int("axis", 0)]);
    let zeros = c.b.op("ConstantOfShape", &[&zshape], vec![]);
    let mut attrs = vec![attr_int("axis", axis as i64)];
    if add {
        attrs.push(attr_string("reduction", "add"));
    }
    c.b.op("ScatterElements", &[&zeros, &ie, g], attrs)
}

/// Y = Gather(X, I, axis): dX = ScatterElements(zeros, I, dY, add) along the axis, with dY
/// reshaped so that I's dims become one axis (a scalar index removes the axis) and I broadcast to
/// it. The indices may be computed in the graph (PyTorch's dynamo exporter writes `as_strided` as
/// a Gather over the flattened tensor with indices built from its shape); they carry no gradient.
pub(super) fn gather(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let (dy, x, idx, rank, axis) = gather_operands(c)?;
    // dY as [X dims before the axis, -1, X dims after the axis], from X's runtime shape.
    let sx = c.shape_of(&x);
    let (zero, a, a1, r) = (
        c.b.const_i64("start", &[1], &[0]),
        c.b.const_i64("axis", &[1], &[axis as i64]),
        c.b.const_i64("after", &[1], &[axis as i64 + 1]),
        c.b.const_i64("rank", &[1], &[rank as i64]),
    );
    let before = c.b.op("Slice", &[&sx, &zero, &a], vec![]);
    let after = c.b.op("Slice", &[&sx, &a1, &r], vec![]);
    let minus_one = c.b.const_i64("minus_one", &[1], &[-1]);
    let target = c.b.op("Concat", &[&before, &minus_one, &after], vec![attr_int("axis", 0)]);
    let g = c.b.op("Reshape", &[&dy, &target], vec![]);
    // The indices flattened onto that axis and broadcast over the others (negative indices count
    // from the end, as ScatterElements also reads them).
    let mut idims = vec![1i64; rank];
    idims[axis] = -1;
    let ishape = c.b.const_i64("idx_shape", &[rank as i64], &idims);
    let i = c.b.op("Reshape", &[&idx, &ishape], vec![]);
    let gshape = c.shape_of(&g);
    let ie = c.b.op("Expand", &[&i, &gshape], vec![]);
    Ok(vec![Some(scatter_add(c, &x, &ie, &g, axis)), None])
}

/// Y = GatherElements(X, I, axis): dX = ScatterElements(zeros, I, dY, add) (I may be computed).
pub(super) fn gather_elements(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let (dy, x, idx, _, axis) = gather_operands(c)?;
    Ok(vec![Some(scatter_add(c, &x, &idx, &dy, axis)), None])
}

/// What Gather and GatherElements read first: dY, X, the indices (which must carry no gradient),
/// X's rank and the `axis` attribute normalised to it.
fn gather_operands(c: &mut Ctx) -> Result<(String, String, String, usize, usize), GradError> {
    c.refuse_input(1, "indices")?;
    let dy = c.dy0()?;
    let x = c.input(0).to_string();
    let idx = c.input(1).to_string();
    let rank = c.shape(&x)?.rank();
    let axis = c.axis(c.int_attr("axis", 0)?, rank, "axis")?;
    Ok((dy, x, idx, rank, axis))
}

/// ScatterElements(zeros shaped like `x`, `idx`, `g`, `axis`, reduction = add): `g` added back at the
/// positions a gather along `axis` read.
fn scatter_add(c: &mut Ctx, x: &str, idx: &str, g: &str, axis: usize) -> String {
    let zeros = c.zeros_like(x);
    c.b.op("ScatterElements", &[&zeros, idx, g], vec![attr_int("axis", axis as i64), attr_string("reduction", "add")])
}

/// Y = GatherND(X, I) with constant I and batch_dims = 0: dX = ScatterND(zeros, I, dY, add).
pub(super) fn gather_nd(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    c.refuse_input(1, "indices")?;
    let batch_dims = c.int_attr("batch_dims", 0)?;
    if batch_dims != 0 {
        return Err(c.unsupported(format!("batch_dims = {batch_dims}: only 0 is supported")));
    }
    let dy = c.dy0()?;
    let x = c.input(0).to_string();
    let sx = c.shape(&x)?.clone();
    let idx = c.const_i64s(1, "indices")?;
    let idims = c.consts.dims(c.input(1)).unwrap_or_default();
    let depth = idims.last().copied().unwrap_or(0) as usize;
    if let Some(a) = (0..depth.min(sx.rank())).find(|&a| sx.batch[a]) {
        return Err(c.unsupported(format!("indexing axis {a}, which follows the batch size")));
    }
    // Negative indices count from the end of their axis: normalise them into a new constant.
    let mut norm = idx.clone();
    if depth > 0 {
        for (k, v) in norm.iter_mut().enumerate() {
            if *v < 0 {
                *v += sx.dims[k % depth];
            }
        }
    }
    let ic = c.b.const_i64("idx", &idims, &norm);
    let zeros = c.zeros_like(&x);
    let out = c.b.op("ScatterND", &[&zeros, &ic, &dy], vec![attr_string("reduction", "add")]);
    Ok(vec![Some(out), None])
}

/// dX = Concat(dY_i, axis), zeros standing in for outputs without a gradient.
pub(super) fn split(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    c.refuse_input(1, "split sizes")?;
    let x = c.input(0).to_string();
    let rank = c.shape(&x)?.rank();
    let axis = c.axis(c.int_attr("axis", 0)?, rank, "axis")?;
    let mut parts = Vec::with_capacity(c.node.output.len());
    for i in 0..c.node.output.len() {
        let part = match c.dy[i].clone() {
            Some(g) => g,
            None => {
                let y = c.output(i).to_string();
                c.zeros_like(&y)
            }
        };
        parts.push(part);
    }
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    let mut res = vec![None; c.node.input.len()];
    res[0] = Some(c.b.op("Concat", &refs, vec![attr_int("axis", axis as i64)]));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::resolve;

    #[test]
    fn slice_bounds_follow_the_onnx_clamping_rules() {
        assert_eq!(resolve(0, i64::MAX, 1, 5), (0, 5));
        assert_eq!(resolve(1, 4, 2, 7), (1, 2));
        assert_eq!(resolve(-2, i64::MAX, 1, 5), (3, 2));
        assert_eq!(resolve(-1, i64::MIN, -1, 4), (3, 4));
        assert_eq!(resolve(10, 20, 1, 4), (4, 0));
        assert_eq!(resolve(0, 7, 3, 7), (0, 3));
        assert_eq!(resolve(5, 1, -2, 7), (5, 2));
    }
}
