//! Backward rules of pooling: MaxPool (dY written at the argmax indices: MaxUnpool where the
//! windows are disjoint, a scatter-add where they overlap), AveragePool
//! (dY divided by each window's divisor, spread back by a depthwise ConvTranspose of ones) and
//! GlobalAveragePool.

use crate::grad::rules::nn::Window;
use crate::grad::rules::Ctx;
use crate::grad::shapes::TensorShape;
use crate::grad::GradError;
use crate::onnx::builder::{attr_int, attr_ints, attr_string};

/// MaxPool's second output (Indices, flat over N·C·H·W) is added to the forward node by the graph
/// builder. Where no two windows share an input cell (see [`disjoint`]) every index occurs once and
/// dX = MaxUnpool(dY, Indices, Shape(X)), which writes each dY once onto zeros: the same values as
/// the general dX = Reshape(ScatterElements(zeros, Indices, dY, axis=0, reduction=add), Shape(X)),
/// in a tenth of the time on ONNX Runtime's CPU kernels.
pub(super) fn max_pool(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    if c.int_attr("storage_order", 0)? != 0 {
        return Err(c.unsupported("storage_order=1 (column-major indices)"));
    }
    let x = c.input(0).to_string();
    let idx = c.output(1).to_string();
    if idx.is_empty() {
        return Err(c.unsupported("internal: the Indices output was not added"));
    }
    let kernel = c.ints_attr("kernel_shape")?.ok_or_else(|| c.bad_attr("kernel_shape", "required but missing"))?;
    let win = Window::read(c, kernel, &x)?;
    let shape = c.shape_of(&x);
    if disjoint(&win, c.shape(&x)?, c.shape(c.output(0))?) {
        let attrs = vec![
            attr_ints("kernel_shape", &win.kernel),
            attr_ints("strides", &win.strides),
            attr_ints("pads", &win.pads),
        ];
        return Ok(vec![Some(c.b.op("MaxUnpool", &[&dy, &idx, &shape], attrs))]);
    }
    let flat = c.b.const_i64("flat", &[1], &[-1]);
    let one = c.b.const_i64("one", &[1], &[1]);
    let size = c.b.op("Size", &[&x], vec![]);
    let size = c.b.op("Reshape", &[&size, &one], vec![]);
    let zeros = c.b.op("ConstantOfShape", &[&size], vec![]);
    let idx_f = c.b.op("Reshape", &[&idx, &flat], vec![]);
    let dy_f = c.b.op("Reshape", &[&dy, &flat], vec![]);
    let s =
        c.b.op("ScatterElements", &[&zeros, &idx_f, &dy_f], vec![attr_int("axis", 0), attr_string("reduction", "add")]);
    Ok(vec![Some(c.b.op("Reshape", &[&s, &shape], vec![]))])
}

/// Whether MaxUnpool can spread a MaxPool gradient: undilated windows that never overlap (stride ≥
/// kernel on every axis), so each input cell receives at most one dY; MaxUnpool's minimum output
/// size, (out − 1)·stride − pads + kernel, not above the input (ONNX Runtime refuses an output shape
/// below it, as `ceil_mode` windows running past the input would give); spatial sizes that do not
/// follow the batch size.
fn disjoint(win: &Window, sx: &TensorShape, sy: &TensorShape) -> bool {
    let n = win.kernel.len();
    (0..n).all(|a| {
        let (inp, out) = (sx.dims[a + 2], sy.dims[a + 2]);
        let reach = (out - 1) * win.strides[a] - win.pads[a] - win.pads[a + n] + win.kernel[a];
        win.dilations[a] == 1 && win.strides[a] >= win.kernel[a] && reach <= inp && !sx.batch[a + 2] && !sy.batch[a + 2]
    })
}

/// Per spatial axis, the divisor of each output position: the window's cells inside the input
/// (count_include_pad=0) or inside the padded input (count_include_pad=1).
fn divisors(win: &Window, inp: i64, out: i64, axis: usize, include_pad: bool) -> Vec<f32> {
    let n = win.kernel.len();
    let (pb, pe) = (win.pads[axis], win.pads[axis + n]);
    (0..out)
        .map(|o| {
            let start = o * win.strides[axis] - pb;
            let end = (start + win.kernel[axis]).min(inp + pe);
            let count = if include_pad { end - start } else { end.min(inp) - start.max(0) };
            count.max(1) as f32
        })
        .collect()
}

pub(super) fn average_pool(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    let x = c.input(0).to_string();
    let kernel = c.ints_attr("kernel_shape")?.ok_or_else(|| c.bad_attr("kernel_shape", "required but missing"))?;
    let win = Window::read(c, kernel, &x)?;
    if win.dilations.iter().any(|&d| d != 1) {
        return Err(c.unsupported(format!("dilations {:?}", win.dilations)));
    }
    let include_pad = c.int_attr("count_include_pad", 0)? != 0;
    let sx = c.shape(&x)?.clone();
    let sy = c.shape(c.output(0))?.dims.clone();
    if sx.batch[1] {
        return Err(c.unsupported("channel dimension follows the batch size"));
    }
    let channels = sx.dims[1];
    let n = win.kernel.len();
    // The divisor tensor [1, 1, out...]: a product of per-axis divisors.
    let mut div = vec![1f32];
    for a in 0..n {
        let d = divisors(&win, sx.dims[a + 2], sy[a + 2], a, include_pad);
        div = div.iter().flat_map(|p| d.iter().map(move |q| p * q)).collect();
    }
    let recip: Vec<f32> = div.iter().map(|v| 1.0 / v).collect();
    let mut ddims = vec![1, 1];
    ddims.extend_from_slice(&sy[2..]);
    let r = c.b.const_f32("avg_div", &ddims, &recip);
    let scaled = c.b.op("Mul", &[&dy, &r], vec![]);
    let mut wdims = vec![channels, 1];
    wdims.extend_from_slice(&win.kernel);
    let count: i64 = wdims.iter().product();
    let ones = c.b.const_f32("avg_ones", &wdims, &vec![1.0; count as usize]);
    let attrs = win.transpose_attrs(&sx.dims[2..], &sy[2..], channels);
    Ok(vec![Some(c.b.op("ConvTranspose", &[&scaled, &ones], attrs))])
}

/// dX = Expand(dY / (H·W), Shape(X)).
pub(super) fn global_average_pool(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    let x = c.input(0).to_string();
    let sx = c.shape(&x)?.clone();
    if sx.batch.iter().skip(2).any(|&b| b) {
        return Err(c.unsupported("spatial dimensions follow the batch size"));
    }
    let area: i64 = sx.dims.iter().skip(2).product();
    let k = c.scalar(1.0 / area as f32);
    let scaled = c.b.op("Mul", &[&dy, &k], vec![]);
    let shape = c.shape_of(&x);
    Ok(vec![Some(c.b.op("Expand", &[&scaled, &shape], vec![]))])
}
