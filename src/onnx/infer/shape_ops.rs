//! Shape functions of data-movement and shape ops: Flatten, Reshape, Transpose, Concat, Squeeze,
//! Unsqueeze, Pad, Slice, Gather, GatherND, Expand, Tile, Split, DepthToSpace/SpaceToDepth, Resize with
//! explicit sizes, and the ops that compute shapes (Shape, Size, Constant, ConstantOfShape), whose
//! integer results are tracked by value. Axes, permutations, element counts and pads are checked.

use crate::onnx::infer::{broadcast, element_count, Cx, Out, ShapeFn, MAX_TRACKED_VALUES};
use crate::onnx::proto::tensor_proto::DataType;
use crate::onnx::proto::TensorProto;
use crate::onnx::tensor::tensor_i64;
use crate::onnx::OnnxError;

pub(super) fn lookup(op: &str) -> Option<ShapeFn> {
    Some(match op {
        "Flatten" => flatten,
        "Reshape" => reshape,
        "Transpose" => transpose,
        "Concat" => concat,
        "Squeeze" => squeeze,
        "Unsqueeze" => unsqueeze,
        "Pad" => pad,
        "Slice" => slice,
        "Gather" => gather,
        "GatherElements" => gather_elements,
        "GatherND" => gather_nd,
        "ScatterElements" | "ScatterND" | "Scatter" => data_shape,
        "Expand" => expand,
        "Tile" => tile,
        "Split" => split,
        "DepthToSpace" | "SpaceToDepth" => depth_space,
        "Resize" | "Upsample" => resize,
        "Shape" => shape,
        "Size" => size,
        "Constant" => constant,
        "ConstantOfShape" => constant_of_shape,
        "Range" => range,
        "OneHot" => one_hot,
        "TopK" => top_k,
        _ => return None,
    })
}

/// The product of `dims` (known to fit: every inferred shape is bounded).
fn product(dims: &[i64]) -> i64 {
    dims.iter().product()
}

fn flatten(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let Some(x) = cx.required(0, "input")? else {
        return Ok(Out::unknown());
    };
    let r = x.len() as i64;
    let axis = cx.int("axis", 1)?;
    let a = if axis < 0 { axis + r } else { axis };
    if !(0..=r).contains(&a) {
        return Err(cx.attr_err("axis", format!("{axis} is outside [-{r}, {r}] for an input of rank {r}")));
    }
    let a = a as usize;
    Ok(Out::valued(vec![product(&x[..a]), product(&x[a..])], cx.value(0).map(<[i64]>::to_vec)))
}

fn reshape(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let x = cx.required(0, "data")?;
    let Some(target) = cx.ints_attr_then_input("shape", 5)? else {
        return Ok(Out::unknown());
    };
    let Some(x) = x else {
        return Ok(Out::unknown());
    };
    let allowzero = cx.opset >= 14 && cx.int("allowzero", 0)? != 0;
    let total = product(x);
    let mut out = Vec::with_capacity(target.len());
    let mut infer_at = None;
    for (i, &t) in target.iter().enumerate() {
        match t {
            -1 if infer_at.is_some() => {
                return Err(cx.err(format!("target shape {target:?} has more than one -1")));
            }
            -1 => {
                infer_at = Some(i);
                out.push(1);
            }
            0 if !allowzero => match x.get(i) {
                Some(&d) => out.push(d),
                None => {
                    return Err(cx.err(format!(
                        "target shape {target:?} copies dimension {i} (a 0) of the input {x:?}, which has none"
                    )))
                }
            },
            t if t < 0 => return Err(cx.err(format!("target shape {target:?} has the negative value {t}"))),
            t => out.push(t),
        }
    }
    let known = out.iter().try_fold(1i64, |acc, &d| acc.checked_mul(d));
    let fail = || cx.err(format!("cannot reshape the input {x:?} ({total} elements) to {target:?}"));
    let known = known.ok_or_else(fail)?;
    if let Some(i) = infer_at {
        if known == 0 || total % known != 0 {
            return Err(fail());
        }
        out[i] = total / known;
    } else if known != total {
        return Err(fail());
    }
    Ok(Out::valued(out, cx.value(0).map(<[i64]>::to_vec)))
}

fn transpose(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let Some(x) = cx.required(0, "data")? else {
        return Ok(Out::unknown());
    };
    let r = x.len();
    let perm = cx.ints("perm")?.unwrap_or_else(|| (0..r as i64).rev().collect());
    let mut seen = vec![false; r];
    let valid = perm.len() == r
        && perm.iter().all(|&p| {
            usize::try_from(p).ok().filter(|&p| p < r).is_some_and(|p| !std::mem::replace(&mut seen[p], true))
        });
    if !valid {
        return Err(cx.attr_err("perm", format!("{perm:?} is not a permutation of the input's {r} axes")));
    }
    let out: Vec<i64> = perm.iter().map(|&p| x[p as usize]).collect();
    // The tracked value, permuted: output position i reads input position inverse-permuted.
    let value = cx.value(0).and_then(|v| {
        let mut inv = vec![0usize; r];
        for (i, &p) in perm.iter().enumerate() {
            inv[p as usize] = i;
        }
        let strides_out: Vec<usize> = (0..r).map(|i| out[i + 1..].iter().product::<i64>() as usize).collect();
        let strides_in: Vec<usize> = (0..r).map(|i| x[i + 1..].iter().product::<i64>() as usize).collect();
        if element_count(x)? as usize != v.len() || v.len() > MAX_TRACKED_VALUES {
            return None;
        }
        let mut t = vec![0i64; v.len()];
        for (flat_in, &val) in v.iter().enumerate() {
            let flat_out: usize = (0..r).map(|a| (flat_in / strides_in[a] % x[a] as usize) * strides_out[inv[a]]).sum();
            t[flat_out] = val;
        }
        Some(t)
    });
    Ok(Out::valued(out, value))
}

fn concat(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let axis = cx.required_attr::<i64>("axis")?;
    let Some(shapes) = cx.given_shapes() else {
        return Ok(Out::unknown());
    };
    let Some(first) = shapes.first() else {
        return Err(cx.err("Concat has no inputs"));
    };
    let r = first.len();
    let a = cx.axis("axis", axis, r)?;
    let mut out = first.to_vec();
    out[a] = 0;
    for s in &shapes {
        let same_rest = s.len() == r && (0..r).all(|i| i == a || s[i] == first[i]);
        if !same_rest {
            return Err(cx.err(format!("inputs of shapes {shapes:?} differ outside the concatenation axis {a}")));
        }
        out[a] = out[a].checked_add(s[a]).ok_or_else(|| cx.err("concatenated size overflows"))?;
    }
    let value = if r == 1 {
        let mut v = Vec::new();
        for slot in (0..cx.node.input.len()).filter(|&s| cx.has(s)) {
            match cx.value(slot) {
                Some(x) if v.len() + x.len() <= MAX_TRACKED_VALUES => v.extend_from_slice(x),
                _ => return Ok(Out::one(out)),
            }
        }
        Some(v)
    } else {
        None
    };
    Ok(Out::valued(out, value))
}

/// The axes of Squeeze/Unsqueeze: the attribute before opset 13, the input from 13. `Ok(None)`
/// when the input is given but its value is unknown; `Ok(Some(empty))` when absent.
fn axes_of(cx: &Cx<'_>) -> Result<Option<Vec<i64>>, OnnxError> {
    if cx.opset < 13 {
        return Ok(Some(cx.ints("axes")?.unwrap_or_default()));
    }
    if !cx.has(1) {
        return Ok(Some(Vec::new()));
    }
    Ok(cx.value(1).map(<[i64]>::to_vec))
}

fn squeeze(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let Some(x) = cx.required(0, "data")? else {
        return Ok(Out::unknown());
    };
    let Some(axes) = axes_of(cx)? else {
        return Ok(Out::unknown());
    };
    let drop: Vec<usize> = if axes.is_empty() {
        (0..x.len()).filter(|&i| x[i] == 1).collect()
    } else {
        let mut d = Vec::new();
        for &a in &axes {
            let n = cx.axis("axes", a, x.len())?;
            if x[n] != 1 {
                return Err(
                    cx.attr_err("axes", format!("{axes:?} names axis {n} of the input {x:?}, whose size is not 1"))
                );
            }
            d.push(n);
        }
        d
    };
    let out = (0..x.len()).filter(|i| !drop.contains(i)).map(|i| x[i]).collect();
    Ok(Out::valued(out, cx.value(0).map(<[i64]>::to_vec)))
}

fn unsqueeze(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let Some(x) = cx.required(0, "data")? else {
        return Ok(Out::unknown());
    };
    let Some(axes) = axes_of(cx)? else {
        return Ok(Out::unknown());
    };
    if axes.is_empty() {
        return Err(cx.attr_err("axes", "no axes given"));
    }
    let r = x.len() + axes.len();
    let mut ones = vec![false; r];
    for &a in &axes {
        let n = cx.axis("axes", a, r)?;
        if std::mem::replace(&mut ones[n], true) {
            return Err(cx.attr_err("axes", format!("{axes:?} names axis {n} twice")));
        }
    }
    let mut rest = x.iter();
    let out = ones.iter().map(|&one| if one { 1 } else { *rest.next().expect("rank adds up") }).collect();
    Ok(Out::valued(out, cx.value(0).map(<[i64]>::to_vec)))
}

fn pad(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let mode = cx.string("mode", "constant")?;
    if !matches!(mode.as_str(), "constant" | "reflect" | "edge" | "wrap") {
        return Err(cx.attr_err("mode", format!("unknown value '{mode}': expected constant, reflect, edge or wrap")));
    }
    let Some(x) = cx.required(0, "data")? else {
        return Ok(Out::unknown());
    };
    let r = x.len();
    let Some(pads) = cx.ints_attr_then_input("pads", 11)? else {
        return Ok(Out::unknown());
    };
    let axes: Vec<usize> = if cx.opset >= 18 && cx.has(3) {
        let Some(v) = cx.value(3) else {
            return Ok(Out::unknown());
        };
        v.iter().map(|&a| cx.axis("axes", a, r)).collect::<Result<_, _>>()?
    } else {
        (0..r).collect()
    };
    let k = axes.len();
    if pads.len() != 2 * k {
        return Err(cx.err(format!("pads {pads:?} have {} values; the input {x:?} needs {}", pads.len(), 2 * k)));
    }
    let mut out = x.to_vec();
    for (j, &a) in axes.iter().enumerate() {
        let d = x[a].checked_add(pads[j]).and_then(|v| v.checked_add(pads[j + k]));
        match d {
            Some(d) if d >= 0 => out[a] = d,
            _ => return Err(cx.err(format!("pads {pads:?} remove more than axis {a} of the input {x:?} holds"))),
        }
    }
    Ok(Out::one(out))
}

/// Slice's starts, ends, and optional axes and steps.
type SliceArgs = (Vec<i64>, Vec<i64>, Option<Vec<i64>>, Option<Vec<i64>>);

fn slice(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let Some(x) = cx.required(0, "data")? else {
        return Ok(Out::unknown());
    };
    let r = x.len();
    let (starts, ends, axes, steps): SliceArgs = if cx.opset < 10 {
        let s = cx.required_attr::<&[i64]>("starts")?.to_vec();
        let e = cx.required_attr::<&[i64]>("ends")?.to_vec();
        (s, e, cx.ints("axes")?, None)
    } else {
        cx.required(1, "starts")?;
        cx.required(2, "ends")?;
        let value = |slot: usize| -> Result<Option<Vec<i64>>, ()> {
            if !cx.has(slot) {
                return Ok(None);
            }
            cx.value(slot).map(|v| Some(v.to_vec())).ok_or(())
        };
        match (value(1), value(2), value(3), value(4)) {
            (Ok(Some(s)), Ok(Some(e)), Ok(a), Ok(st)) => (s, e, a, st),
            _ => return Ok(Out::unknown()),
        }
    };
    let k = starts.len();
    let axes = axes.unwrap_or_else(|| (0..k as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; k]);
    if ends.len() != k || axes.len() != k || steps.len() != k {
        return Err(
            cx.err(format!("starts {starts:?}, ends {ends:?}, axes {axes:?} and steps {steps:?} differ in length"))
        );
    }
    let mut out = x.to_vec();
    // The input positions kept along each axis (for the tracked value).
    let mut select: Vec<Vec<i64>> = Vec::new();
    let track = cx.value(0).is_some();
    if track {
        select = x.iter().map(|&d| (0..d).collect()).collect();
    }
    let mut seen = vec![false; r];
    for j in 0..k {
        let a = cx.axis("axes", axes[j], r)?;
        if std::mem::replace(&mut seen[a], true) {
            return Err(cx.err(format!("axes {axes:?} name axis {a} twice")));
        }
        let step = steps[j];
        if step == 0 {
            return Err(cx.err(format!("steps {steps:?} contain 0")));
        }
        let dim = x[a];
        let norm = |v: i64| if v < 0 { v.saturating_add(dim) } else { v };
        let (s, e) = (norm(starts[j]), norm(ends[j]));
        let (start, len) = if step > 0 {
            let (s, e) = (s.clamp(0, dim), e.clamp(0, dim));
            (s, if e > s { (e - s - 1) / step + 1 } else { 0 })
        } else {
            let (s, e) = (s.clamp(0, dim - 1), e.clamp(-1, dim - 1));
            (s, if s > e { (s - e - 1) / (-step.max(-i64::MAX)) + 1 } else { 0 })
        };
        out[a] = len;
        if track {
            select[a] = (0..len).map(|i| start + i * step).collect();
        }
    }
    let value = cx.value(0).and_then(|v| gather_positions(v, x, &select));
    Ok(Out::valued(out, value))
}

/// The elements of `v` (row-major, shape `shape`) at every combination of the positions `select`
/// lists per axis; `None` when `v` does not hold `shape`'s elements or the result is too long.
fn gather_positions(v: &[i64], shape: &[i64], select: &[Vec<i64>]) -> Option<Vec<i64>> {
    if element_count(shape)? as usize != v.len() || select.len() != shape.len() {
        return None;
    }
    let total = select.iter().try_fold(1usize, |acc, s| acc.checked_mul(s.len()))?;
    if total > MAX_TRACKED_VALUES {
        return None;
    }
    let mut strides = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1] as usize;
    }
    let mut out = Vec::with_capacity(total);
    let mut idx = vec![0usize; shape.len()];
    for _ in 0..total {
        let flat: usize = idx.iter().enumerate().map(|(a, &i)| select[a][i] as usize * strides[a]).sum();
        out.push(*v.get(flat)?);
        for a in (0..idx.len()).rev() {
            idx[a] += 1;
            if idx[a] < select[a].len() {
                break;
            }
            idx[a] = 0;
        }
    }
    Some(out)
}

fn gather(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let (data, indices) = (cx.required(0, "data")?, cx.required(1, "indices")?);
    let (Some(data), Some(indices)) = (data, indices) else {
        return Ok(Out::unknown());
    };
    if data.is_empty() {
        return Err(cx.err("data is a scalar; Gather needs rank 1 or more"));
    }
    let a = cx.axis("axis", cx.int("axis", 0)?, data.len())?;
    let dim = data[a];
    let idx = cx.value(1);
    if let Some(bad) = idx.and_then(|v| v.iter().find(|&&i| i < -dim || i >= dim)) {
        return Err(cx.err(format!("index {bad} is out of range for axis {a} of size {dim}")));
    }
    let mut out = data[..a].to_vec();
    out.extend_from_slice(indices);
    out.extend_from_slice(&data[a + 1..]);
    let value = match (cx.value(0), idx, data.len()) {
        (Some(v), Some(idx), 1) => {
            idx.iter().map(|&i| v.get(usize::try_from(if i < 0 { i + dim } else { i }).ok()?).copied()).collect()
        }
        _ => None,
    };
    Ok(Out::valued(out, value))
}

fn gather_elements(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    cx.required(0, "data")?;
    Ok(cx.required(1, "indices")?.map_or_else(Out::unknown, |s| Out::one(s.to_vec())))
}

/// GatherND: `indices.shape[..-1] ++ data.shape[batch_dims + indices.shape[-1]..]`, the leading
/// `batch_dims` dimensions of both equal.
fn gather_nd(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let (data, indices) = (cx.required(0, "data")?, cx.required(1, "indices")?);
    let b = cx.int("batch_dims", 0)?;
    let (Some(data), Some(indices)) = (data, indices) else {
        return Ok(Out::unknown());
    };
    let (r, q) = (data.len(), indices.len());
    let Some(&last) = indices.last() else {
        return Err(cx.err("indices is a scalar; GatherND needs rank 1 or more"));
    };
    let bu = usize::try_from(b).ok().filter(|&b| b < r.min(q));
    let Some(bu) = bu else {
        return Err(cx.attr_err(
            "batch_dims",
            format!("{b} is outside [0, {}) for data {data:?} and indices {indices:?}", r.min(q)),
        ));
    };
    if data[..bu] != indices[..bu] {
        return Err(
            cx.err(format!("the first {bu} (batch) dimensions of data {data:?} and indices {indices:?} differ"))
        );
    }
    let Some(end) = usize::try_from(last).ok().map(|l| bu + l).filter(|&e| e <= r && last >= 1) else {
        return Err(cx.err(format!(
            "indices {indices:?} index {last} dimensions, but data {data:?} has {} after the {bu} batch dimensions",
            r - bu
        )));
    };
    let mut out = indices[..q - 1].to_vec();
    out.extend_from_slice(&data[end..]);
    Ok(Out::one(out))
}

fn data_shape(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    Ok(cx.required(0, "data")?.map_or_else(Out::unknown, |s| Out::one(s.to_vec())))
}

fn expand(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let x = cx.required(0, "input")?;
    cx.required(1, "shape")?;
    let (Some(x), Some(target)) = (x, cx.value(1)) else {
        return Ok(Out::unknown());
    };
    if let Some(bad) = target.iter().find(|&&d| d < 0) {
        return Err(cx.err(format!("target shape {target:?} has the negative value {bad}")));
    }
    broadcast(&[x, target])
        .map(Out::one)
        .ok_or_else(|| cx.err(format!("the input {x:?} cannot be expanded to {target:?}")))
}

fn tile(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let x = cx.required(0, "input")?;
    cx.required(1, "repeats")?;
    let (Some(x), Some(rep)) = (x, cx.value(1)) else {
        return Ok(Out::unknown());
    };
    if rep.len() != x.len() || rep.iter().any(|&r| r < 0) {
        return Err(cx.err(format!("repeats {rep:?} do not fit the input {x:?} (one non-negative value per axis)")));
    }
    let out: Option<Vec<i64>> = x.iter().zip(rep).map(|(&d, &r)| d.checked_mul(r)).collect();
    out.map(Out::one).ok_or_else(|| cx.err(format!("repeats {rep:?} overflow")))
}

fn split(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let Some(x) = cx.required(0, "input")? else {
        return Ok(Out::unknown());
    };
    let a = cx.axis("axis", cx.int("axis", 0)?, x.len())?;
    let outputs = cx.node.output.len();
    let dim = x[a];
    let sizes: Vec<i64> = if cx.opset < 13 && cx.attr::<&[i64]>("split")?.is_some() {
        cx.ints("split")?.unwrap_or_default()
    } else if cx.opset >= 13 && cx.has(1) {
        match cx.value(1) {
            Some(v) => v.to_vec(),
            None => return Ok(Out::unknown()),
        }
    } else {
        let parts = if cx.opset >= 18 { cx.int("num_outputs", outputs as i64)? } else { outputs as i64 };
        if parts < 1 {
            return Err(cx.attr_err("num_outputs", format!("{parts}: must be positive")));
        }
        let chunk = if cx.opset >= 18 {
            (dim + parts - 1) / parts
        } else {
            if dim % parts != 0 {
                return Err(cx.err(format!("axis {a} of size {dim} cannot be split into {parts} equal parts")));
            }
            dim / parts
        };
        (0..parts).map(|i| chunk.min((dim - i * chunk).max(0))).collect()
    };
    if sizes.len() != outputs || sizes.iter().any(|&s| s < 0) || sizes.iter().sum::<i64>() != dim {
        return Err(cx.err(format!("split sizes {sizes:?} do not cut axis {a} of size {dim} into {outputs} outputs")));
    }
    let shapes = sizes
        .iter()
        .map(|&s| {
            let mut o = x.to_vec();
            o[a] = s;
            Some(o)
        })
        .collect();
    Ok(Out { shapes, value: None })
}

fn depth_space(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let Some(x) = cx.required(0, "input")? else {
        return Ok(Out::unknown());
    };
    let b = cx.required_attr::<i64>("blocksize")?;
    if !(1..=1 << 16).contains(&b) {
        return Err(cx.attr_err("blocksize", format!("{b}: must be between 1 and 65536")));
    }
    if x.len() != 4 {
        return Err(cx.err(format!("input {x:?} is not [N, C, H, W]")));
    }
    let bb = b * b;
    let out = if cx.node.op_type.as_deref() == Some("DepthToSpace") {
        if x[1] % bb != 0 {
            return Err(
                cx.attr_err("blocksize", format!("{b}: the input's {} channels are not a multiple of {bb}", x[1]))
            );
        }
        vec![x[0], x[1] / bb, x[2] * b, x[3] * b]
    } else {
        if x[2] % b != 0 || x[3] % b != 0 {
            return Err(cx.attr_err("blocksize", format!("{b} does not divide the input's height and width {x:?}")));
        }
        vec![x[0], x[1] * bb, x[2] / b, x[3] / b]
    };
    Ok(Out::one(out))
}

/// Resize/Upsample: from explicit `sizes` (Resize input 3, tracked) or constant `scales` (Resize
/// input 2 from opset 11, input 1 before; Upsample input 1, or its attribute before opset 9), with
/// every axis resized; unknown with `axes` or scales computed in the graph.
fn resize(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let Some(x) = cx.required(0, "X")? else {
        return Ok(Out::unknown());
    };
    let is_resize = cx.node.op_type.as_deref() == Some("Resize");
    if is_resize && cx.attr::<&[i64]>("axes")?.is_some() {
        return Ok(Out::unknown());
    }
    if is_resize {
        match cx.value(3) {
            Some(s) if s.len() == x.len() && s.iter().all(|&d| d >= 0) => return Ok(Out::one(s.to_vec())),
            Some(s) => return Err(cx.err(format!("sizes {s:?} do not fit the input {x:?}"))),
            None if cx.has(3) => return Ok(Out::unknown()),
            None => {}
        }
    }
    let scales = match (is_resize, cx.opset) {
        (true, o) if o >= 11 => cx.const_f32(2),
        (true, _) | (false, 9..) => cx.const_f32(1),
        (false, _) => cx.attr::<&[f32]>("scales")?.map(<[f32]>::to_vec),
    };
    let Some(scales) = scales.filter(|s| !s.is_empty()) else {
        return Ok(Out::unknown());
    };
    if scales.len() != x.len() || scales.iter().any(|v| !v.is_finite() || *v <= 0.0) {
        return Err(
            cx.err(format!("scales {scales:?} do not fit the input {x:?} (one positive finite value per axis)"))
        );
    }
    let out: Option<Vec<i64>> = x
        .iter()
        .zip(&scales)
        .map(|(&d, &s)| {
            let v = (d as f64 * s as f64).floor();
            (v < (1u64 << 40) as f64).then_some(v as i64)
        })
        .collect();
    out.map(Out::one).ok_or_else(|| cx.err(format!("scales {scales:?} make the input {x:?} absurdly large")))
}

/// Range with tracked integer start, limit and delta: `max(ceil((limit − start) / delta), 0)` values.
fn range(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    for (slot, what) in [(0, "start"), (1, "limit"), (2, "delta")] {
        cx.required(slot, what)?;
    }
    let (Some([start]), Some([limit]), Some([delta])) = (cx.value(0), cx.value(1), cx.value(2)) else {
        return Ok(Out::unknown());
    };
    if *delta == 0 {
        return Err(cx.err("delta is 0"));
    }
    let span = (*limit as i128) - (*start as i128);
    let d = *delta as i128;
    let n = if (span > 0) == (d > 0) && span != 0 { (span.abs() + d.abs() - 1) / d.abs() } else { 0 };
    let n = i64::try_from(n).map_err(|_| cx.err("the range is absurdly long"))?;
    let value = if n as usize <= MAX_TRACKED_VALUES {
        (0..n).map(|i| start.checked_add(i.checked_mul(*delta)?)).collect()
    } else {
        None
    };
    Ok(Out::valued(vec![n], value))
}

/// OneHot with a constant depth: the indices' shape with `depth` inserted at `axis`.
fn one_hot(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let indices = cx.required(0, "indices")?;
    cx.required(1, "depth")?;
    let depth = match cx.value(1) {
        Some([d]) => Some(*d),
        _ => cx.const_f32(1).and_then(|v| (v.len() == 1).then(|| v[0] as i64)),
    };
    let (Some(indices), Some(depth)) = (indices, depth) else {
        return Ok(Out::unknown());
    };
    if depth < 1 {
        return Err(cx.err(format!("depth {depth} is not positive")));
    }
    let r = indices.len() + 1;
    let a = cx.axis("axis", cx.int("axis", -1)?, r)?;
    let mut out = indices.to_vec();
    out.insert(a, depth);
    Ok(Out::one(out))
}

/// TopK with a tracked k: values and indices have the input's shape with `k` along `axis`.
fn top_k(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let Some(x) = cx.required(0, "X")? else {
        return Ok(Out::unknown());
    };
    let k = if cx.opset < 10 { cx.attr::<i64>("k")? } else { cx.value(1).and_then(|v| (v.len() == 1).then_some(v[0])) };
    let Some(k) = k else {
        return Ok(Out::unknown());
    };
    let a = cx.axis("axis", cx.int("axis", -1)?, x.len())?;
    if k < 0 || k > x[a] {
        return Err(cx.err(format!("k = {k} is outside 0..={} (axis {a} of the input {x:?})", x[a])));
    }
    let mut out = x.to_vec();
    out[a] = k;
    Ok(Out { shapes: vec![Some(out.clone()), Some(out)], value: None })
}

fn shape(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let Some(x) = cx.required(0, "data")? else {
        return Ok(Out::unknown());
    };
    let r = x.len() as i64;
    let clamp = |v: i64| (if v < 0 { v.saturating_add(r) } else { v }).clamp(0, r) as usize;
    let (start, end) = if cx.opset >= 15 {
        (clamp(cx.int("start", 0)?), clamp(cx.attr::<i64>("end")?.unwrap_or(r)))
    } else {
        (0, r as usize)
    };
    let v: Vec<i64> = if start < end { x[start..end].to_vec() } else { Vec::new() };
    Ok(Out::valued(vec![v.len() as i64], Some(v)))
}

fn size(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let Some(x) = cx.required(0, "data")? else {
        return Ok(Out::unknown());
    };
    Ok(Out::valued(vec![], element_count(x).map(|n| vec![n as i64])))
}

/// The value of a tensor attribute when it is a small integer tensor.
fn int_values(t: &TensorProto) -> Option<Vec<i64>> {
    let int = matches!(DataType::try_from(t.data_type.unwrap_or(0)), Ok(DataType::Int64 | DataType::Int32));
    let n = element_count(&t.dims)?;
    (int && n as usize <= MAX_TRACKED_VALUES).then(|| tensor_i64(t).ok()).flatten()
}

fn constant(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    if let Some(t) = cx.attr::<&TensorProto>("value")? {
        return Ok(Out::valued(t.dims.clone(), int_values(t)));
    }
    if let Some(v) = cx.attr::<i64>("value_int")? {
        return Ok(Out::valued(vec![], Some(vec![v])));
    }
    if let Some(v) = cx.attr::<&[i64]>("value_ints")? {
        return Ok(Out::valued(vec![v.len() as i64], Some(v.to_vec())));
    }
    if cx.attr::<f32>("value_float")?.is_some() {
        return Ok(Out::one(vec![]));
    }
    if let Some(v) = cx.attr::<&[f32]>("value_floats")? {
        return Ok(Out::one(vec![v.len() as i64]));
    }
    Ok(Out::unknown())
}

fn constant_of_shape(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    cx.required(0, "shape")?;
    let Some(target) = cx.value(0) else {
        return Ok(Out::unknown());
    };
    if let Some(bad) = target.iter().find(|&&d| d < 0) {
        return Err(cx.err(format!("shape {target:?} has the negative value {bad}")));
    }
    // An integer fill value (zeros by default are float): tracked for small outputs.
    let fill = cx.attr::<&TensorProto>("value")?.and_then(int_values).and_then(|v| (v.len() == 1).then(|| v[0]));
    let n = element_count(target).map(|n| n as usize);
    let value = match (fill, n) {
        (Some(f), Some(n)) if n <= MAX_TRACKED_VALUES => Some(vec![f; n]),
        _ => None,
    };
    Ok(Out::valued(target.to_vec(), value))
}
