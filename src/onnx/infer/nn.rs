//! Shape functions of the sliding-window and normalisation ops: Conv, ConvTranspose, MaxPool,
//! AveragePool, LpPool, their global forms, BatchNormalization, InstanceNormalization, LRN and
//! LayerNormalization. Kernel, stride, dilation and pad values, `auto_pad`, `group` against the
//! channels and the bias and statistics sizes are checked; a window larger than its padded input
//! (a non-positive output dimension) is refused with the values involved.

use crate::onnx::infer::{Cx, Out, ShapeFn};
use crate::onnx::OnnxError;

pub(super) fn lookup(op: &str) -> Option<ShapeFn> {
    Some(match op {
        "Conv" => conv,
        "ConvTranspose" => conv_transpose,
        "MaxPool" | "AveragePool" | "LpPool" => pool,
        "GlobalAveragePool" | "GlobalMaxPool" | "GlobalLpPool" => global_pool,
        "BatchNormalization" => batch_norm,
        "InstanceNormalization" => instance_norm,
        "LRN" | "LayerNormalization" | "MeanVarianceNormalization" => same_as_input,
        _ => return None,
    })
}

fn same_as_input(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    Ok(cx.required(0, "X")?.map_or_else(Out::unknown, |s| Out::one(s.to_vec())))
}

/// How the window is padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AutoPad {
    NotSet,
    SameUpper,
    SameLower,
    Valid,
}

/// Strides, dilations, pads and `auto_pad` of a window op, read and checked.
#[derive(Debug, Clone)]
struct Window {
    kernel: Vec<i64>,
    strides: Vec<i64>,
    dilations: Vec<i64>,
    pads: Vec<i64>,
    auto_pad: AutoPad,
}

/// A list attribute of `n` values (default `default` each), every one at least `min`.
fn spatial_list(cx: &Cx<'_>, attr: &str, n: usize, default: i64, min: i64) -> Result<Vec<i64>, OnnxError> {
    let Some(v) = cx.ints(attr)? else {
        return Ok(vec![default; n]);
    };
    if v.len() != n {
        return Err(cx.attr_err(attr, format!("{v:?} has {} values; the input has {n} spatial axes", v.len())));
    }
    if let Some(bad) = v.iter().find(|&&x| x < min) {
        let rule = if min == 0 { "must not be negative" } else { "must be positive" };
        return Err(cx.attr_err(attr, format!("{v:?}: every value {rule} (found {bad})")));
    }
    Ok(v)
}

/// Reads the window attributes of a node with `n` spatial axes and the given kernel.
fn read_window(cx: &Cx<'_>, kernel: Vec<i64>) -> Result<Window, OnnxError> {
    let n = kernel.len();
    check_kernel(cx, &kernel)?;
    let strides = spatial_list(cx, "strides", n, 1, 1)?;
    let dilations = spatial_list(cx, "dilations", n, 1, 1)?;
    let auto_pad = match cx.string("auto_pad", "NOTSET")?.as_str() {
        "NOTSET" | "" => AutoPad::NotSet,
        "SAME_UPPER" => AutoPad::SameUpper,
        "SAME_LOWER" => AutoPad::SameLower,
        "VALID" => AutoPad::Valid,
        other => {
            return Err(cx.attr_err(
                "auto_pad",
                format!("unknown value '{other}': expected NOTSET, SAME_UPPER, SAME_LOWER or VALID"),
            ))
        }
    };
    let pads = spatial_list(cx, "pads", 2 * n, 0, 0)?;
    Ok(Window { kernel, strides, dilations, pads, auto_pad })
}

/// Refuses a `kernel_shape` with a value below 1.
fn check_kernel(cx: &Cx<'_>, kernel: &[i64]) -> Result<(), OnnxError> {
    match kernel.iter().find(|&&k| k < 1) {
        Some(bad) => {
            Err(cx.attr_err("kernel_shape", format!("{kernel:?}: every value must be positive (found {bad})")))
        }
        None => Ok(()),
    }
}

/// The kernel of a Conv or ConvTranspose: `kernel_shape` when given (positive and equal to the
/// weight's spatial dims), else the weight's spatial dims (positive).
fn conv_kernel(cx: &Cx<'_>, wt: &[i64]) -> Result<Vec<i64>, OnnxError> {
    let from_weight = &wt[2..];
    match cx.ints("kernel_shape")? {
        Some(k) => {
            check_kernel(cx, &k)?;
            if k != from_weight {
                return Err(cx.attr_err(
                    "kernel_shape",
                    format!("{k:?} differs from the spatial dims {from_weight:?} of the weight W {wt:?}"),
                ));
            }
            Ok(k)
        }
        None => match from_weight.iter().find(|&&k| k < 1) {
            Some(bad) => Err(cx.err(format!("weight W has shape {wt:?}: kernel dimension {bad} is not positive"))),
            None => Ok(from_weight.to_vec()),
        },
    }
}

/// The extent of a dilated kernel, `(k − 1)·d + 1`, or an error on overflow.
fn extent(cx: &Cx<'_>, k: i64, d: i64) -> Result<i64, OnnxError> {
    (k - 1)
        .checked_mul(d)
        .and_then(|v| v.checked_add(1))
        .ok_or_else(|| cx.attr_err("dilations", format!("kernel {k} with dilation {d} overflows")))
}

/// Output spatial dims of a Conv or pool window over `input` (spatial dims); `None` for an axis whose
/// size ONNX Runtime computes with a formula this does not reproduce (pools with SAME padding and
/// dilation). Refuses a window larger than the padded input.
fn window_output(
    cx: &Cx<'_>,
    w: &Window,
    input: &[i64],
    ceil: bool,
    is_pool: bool,
) -> Result<Vec<Option<i64>>, OnnxError> {
    let n = w.kernel.len();
    let mut out = Vec::with_capacity(n);
    let mut short = Vec::new();
    for (i, &d) in input.iter().enumerate().take(n) {
        let s = w.strides[i];
        let e = extent(cx, w.kernel[i], w.dilations[i])?;
        let o = match w.auto_pad {
            AutoPad::SameUpper | AutoPad::SameLower => {
                if is_pool && w.dilations[i] != 1 {
                    None
                } else {
                    Some((d + s - 1) / s)
                }
            }
            AutoPad::NotSet | AutoPad::Valid => {
                let pads = if w.auto_pad == AutoPad::Valid { 0 } else { w.pads[i].saturating_add(w.pads[i + n]) };
                let room = d.saturating_add(pads).saturating_sub(e);
                if room < 0 {
                    short.push(i);
                    Some(room)
                } else if ceil {
                    // ONNX Runtime's kernels (as PyTorch): round up, but drop a last window that
                    // would start in the end padding.
                    let out = (room + s - 1) / s + 1;
                    let head = if w.auto_pad == AutoPad::Valid { 0 } else { w.pads[i] };
                    Some(if (out - 1).saturating_mul(s) >= d.saturating_add(head) { out - 1 } else { out })
                } else {
                    Some(room / s + 1)
                }
            }
        };
        out.push(o);
    }
    if !short.is_empty() {
        let extents: Vec<i64> = (0..n).map(|i| extent(cx, w.kernel[i], w.dilations[i])).collect::<Result<_, _>>()?;
        let pads = if w.auto_pad == AutoPad::Valid { vec![0; 2 * n] } else { w.pads.clone() };
        return Err(cx.err(format!(
            "the window is larger than the padded input: kernel_shape {:?} with dilations {:?} spans {extents:?}, \
             but the input is {input:?} with pads {pads:?}, so the output would have no positions",
            w.kernel, w.dilations
        )));
    }
    Ok(out)
}

/// X's shape, W's shape and `group`.
type ConvOperands<'n> = (&'n [i64], &'n [i64], i64);

/// What Conv and ConvTranspose check first: X and W are given and `group` is positive. Returns X's and
/// W's shapes and `group` when both shapes are known.
fn conv_operands<'n>(cx: &Cx<'n>) -> Result<Option<ConvOperands<'n>>, OnnxError> {
    let x = cx.required(0, "X")?;
    let wt = cx.required(1, "W, the weight")?;
    let group = cx.int("group", 1)?;
    if group < 1 {
        return Err(cx.attr_err("group", format!("{group}: must be positive")));
    }
    Ok(x.zip(wt).map(|(x, wt)| (x, wt, group)))
}

/// Conv: X [N, C, D...], W [M, C/group, k...], optional B [M].
fn conv(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let Some((x, wt, group)) = conv_operands(cx)? else {
        return Ok(Out::unknown());
    };
    if x.len() < 3 {
        return Err(cx.err(format!("input X has shape {x:?}; Conv needs [N, C, spatial...] (rank 3 or more)")));
    }
    if wt.len() != x.len() {
        return Err(cx.err(format!(
            "weight W has shape {wt:?}, of rank {} instead of the input's {}",
            wt.len(),
            x.len()
        )));
    }
    let (c, m) = (x[1], wt[0]);
    if m < 1 {
        return Err(cx.err(format!("weight W has shape {wt:?}: no output channels")));
    }
    if c % group != 0 || wt[1].checked_mul(group) != Some(c) {
        return Err(cx.attr_err(
            "group",
            format!("{group} does not fit: the input has {c} channels and the weight {wt:?} takes {} per group", wt[1]),
        ));
    }
    if m % group != 0 {
        return Err(cx.attr_err("group", format!("{group} does not divide the weight's {m} output channels")));
    }
    let kernel = conv_kernel(cx, wt)?;
    if cx.has(2) {
        if let Some(b) = cx.shape(2) {
            if b != [m] {
                return Err(cx.err(format!(
                    "bias B has shape {b:?}; the weight {wt:?} gives {m} output channels, so B must be [{m}]"
                )));
            }
        }
    }
    let w = read_window(cx, kernel)?;
    let spatial = window_output(cx, &w, &x[2..], false, false)?;
    Ok(spatial_out(x[0], m, spatial))
}

/// `[batch, channels, spatial...]` when every spatial dim is known.
fn spatial_out(batch: i64, channels: i64, spatial: Vec<Option<i64>>) -> Out {
    let dims: Option<Vec<i64>> = spatial.into_iter().collect();
    match dims {
        Some(d) => {
            let mut s = vec![batch, channels];
            s.extend(d);
            Out::one(s)
        }
        None => Out::unknown(),
    }
}

/// ConvTranspose: X [N, C, D...], W [C, M/group, k...], optional B [M].
fn conv_transpose(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let Some((x, wt, group)) = conv_operands(cx)? else {
        return Ok(Out::unknown());
    };
    if x.len() < 3 || wt.len() != x.len() {
        return Err(cx.err(format!("input X {x:?} and weight W {wt:?} do not form a transposed convolution")));
    }
    let n = x.len() - 2;
    let c = x[1];
    if wt[0] != c || c % group != 0 {
        return Err(cx.attr_err(
            "group",
            format!("{group} does not fit: the input has {c} channels and the weight W is {wt:?}"),
        ));
    }
    let m = wt[1].checked_mul(group).ok_or_else(|| cx.attr_err("group", format!("{group} overflows")))?;
    if m < 1 {
        return Err(cx.err(format!("weight W has shape {wt:?}: no output channels")));
    }
    let kernel = conv_kernel(cx, wt)?;
    if cx.has(2) {
        if let Some(b) = cx.shape(2) {
            if b != [m] {
                return Err(cx.err(format!("bias B has shape {b:?}; the layer has {m} output channels")));
            }
        }
    }
    let w = read_window(cx, kernel)?;
    let output_padding = spatial_list(cx, "output_padding", n, 0, 0)?;
    let explicit = cx.ints("output_shape")?;
    let mut spatial = Vec::with_capacity(n);
    if let Some(os) = explicit {
        let os = match os.len() {
            l if l == n => os,
            l if l == n + 2 => os[2..].to_vec(),
            l => return Err(cx.attr_err("output_shape", format!("{os:?} has {l} values; expected {n}"))),
        };
        if let Some(bad) = os.iter().find(|&&v| v < 1) {
            return Err(cx.attr_err("output_shape", format!("{os:?}: every value must be positive (found {bad})")));
        }
        spatial.extend(os.into_iter().map(Some));
    } else {
        for i in 0..n {
            let o = match w.auto_pad {
                AutoPad::SameUpper | AutoPad::SameLower => x[i + 2].checked_mul(w.strides[i]),
                _ => {
                    let e = extent(cx, w.kernel[i], w.dilations[i])?;
                    let pads = if w.auto_pad == AutoPad::Valid { 0 } else { w.pads[i].saturating_add(w.pads[i + n]) };
                    (x[i + 2] - 1)
                        .checked_mul(w.strides[i])
                        .and_then(|v| v.checked_add(output_padding[i]))
                        .and_then(|v| v.checked_add(e))
                        .map(|v| v.saturating_sub(pads))
                }
            };
            let o = o.ok_or_else(|| cx.err("output size overflows"))?;
            if o < 1 {
                return Err(cx.err(format!(
                    "pads {:?} remove more than the transposed convolution produces: the output would have {o} positions along spatial axis {i}",
                    w.pads
                )));
            }
            spatial.push(Some(o));
        }
    }
    Ok(spatial_out(x[0], m, spatial))
}

/// MaxPool, AveragePool, LpPool: X [N, C, D...] → [N, C, out...] (MaxPool's Indices alike).
fn pool(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let kernel = cx.required_attr::<&[i64]>("kernel_shape")?.to_vec();
    let x = cx.required(0, "X")?;
    let w = read_window(cx, kernel)?;
    let ceil = cx.int("ceil_mode", 0)? != 0;
    let Some(x) = x else {
        return Ok(Out::unknown());
    };
    if x.len() != w.kernel.len() + 2 {
        return Err(cx.attr_err(
            "kernel_shape",
            format!(
                "{:?} has {} values but the input {x:?} has {} spatial axes",
                w.kernel,
                w.kernel.len(),
                x.len().saturating_sub(2)
            ),
        ));
    }
    let spatial = window_output(cx, &w, &x[2..], ceil, true)?;
    let mut out = spatial_out(x[0], x[1], spatial);
    if let Some(Some(y)) = out.shapes.first().cloned() {
        out.shapes.push(Some(y));
    }
    Ok(out)
}

/// GlobalAveragePool and friends: [N, C, D...] → [N, C, 1...].
fn global_pool(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let Some(x) = cx.required(0, "X")? else {
        return Ok(Out::unknown());
    };
    if x.len() < 3 {
        return Err(cx.err(format!("input X has shape {x:?}; global pooling needs [N, C, spatial...]")));
    }
    let mut s = x[..2].to_vec();
    s.extend(std::iter::repeat_n(1, x.len() - 2));
    Ok(Out::one(s))
}

/// BatchNormalization: scale, B, mean and var must each be [C].
fn batch_norm(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let x = cx.required(0, "X")?;
    for slot in 1..=4 {
        cx.required(slot, ["", "scale", "B", "input_mean", "input_var"][slot])?;
    }
    let Some(x) = x else {
        return Ok(Out::unknown());
    };
    if x.len() < 2 {
        return Err(cx.err(format!("input X has shape {x:?}; BatchNormalization needs [N, C, ...]")));
    }
    let spatial_mode = cx.opset >= 9 || cx.int("spatial", 1)? != 0;
    if spatial_mode {
        for (slot, what) in [(1, "scale"), (2, "B"), (3, "input_mean"), (4, "input_var")] {
            if let Some(s) = cx.shape(slot) {
                if s != [x[1]] {
                    return Err(cx.err(format!(
                        "{what} has shape {s:?}; the input {x:?} has {} channels, so it must be [{}]",
                        x[1], x[1]
                    )));
                }
            }
        }
    }
    let c = vec![x[1]];
    Ok(Out { shapes: vec![Some(x.to_vec()), Some(c.clone()), Some(c)], value: None })
}

/// InstanceNormalization: scale and B must be [C].
fn instance_norm(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let Some(x) = cx.required(0, "X")? else {
        return Ok(Out::unknown());
    };
    if x.len() < 3 {
        return Err(cx.err(format!("input X has shape {x:?}; InstanceNormalization needs [N, C, spatial...]")));
    }
    for (slot, what) in [(1, "scale"), (2, "B")] {
        if let Some(s) = cx.shape(slot) {
            if s != [x[1]] {
                return Err(cx.err(format!("{what} has shape {s:?}; it must be [{}]", x[1])));
            }
        }
    }
    Ok(Out::one(x.to_vec()))
}
