//! Backward rules of Conv (as ConvTranspose with explicit pads and output_padding) and inference
//! BatchNormalization (a per-channel scale).

use crate::grad::rules::Ctx;
use crate::grad::GradError;
use crate::onnx::builder::{attr_int, attr_ints};

/// A sliding-window geometry over the spatial axes, resolved to explicit pads.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    pub kernel: Vec<i64>,
    pub strides: Vec<i64>,
    pub dilations: Vec<i64>,
    /// Begin pads then end pads, as ONNX lists them.
    pub pads: Vec<i64>,
}

impl Window {
    /// Reads strides, dilations, pads and auto_pad of `c.node` for a window of size `kernel` over
    /// the input `x` whose output is output 0.
    pub fn read(c: &Ctx, kernel: Vec<i64>, x: &str) -> Result<Window, GradError> {
        let n = kernel.len();
        let strides = c.ints_attr("strides")?.unwrap_or(vec![1; n]);
        let dilations = c.ints_attr("dilations")?.unwrap_or(vec![1; n]);
        let auto_pad = c.string_attr("auto_pad", "NOTSET")?;
        if strides.len() != n || dilations.len() != n {
            return Err(c.bad_attr("strides", format!("expected {n} spatial values")));
        }
        let sx = c.shape(x)?.dims.clone();
        let sy = c.shape(c.output(0))?.dims.clone();
        if sx.len() != n + 2 || sy.len() != n + 2 {
            return Err(c.unsupported(format!("input rank {} does not match a {n}-d kernel", sx.len())));
        }
        let pads = match auto_pad.as_str() {
            "NOTSET" => c.ints_attr("pads")?.unwrap_or(vec![0; 2 * n]),
            "VALID" => vec![0; 2 * n],
            "SAME_UPPER" | "SAME_LOWER" => {
                let mut begin = vec![0; n];
                let mut end = vec![0; n];
                for i in 0..n {
                    let need = (sy[i + 2] - 1) * strides[i] + dilations[i] * (kernel[i] - 1) + 1 - sx[i + 2];
                    let total = need.max(0);
                    let small = total / 2;
                    (begin[i], end[i]) =
                        if auto_pad == "SAME_UPPER" { (small, total - small) } else { (total - small, small) };
                }
                begin.extend(end);
                begin
            }
            other => return Err(c.bad_attr("auto_pad", format!("unknown value '{other}'"))),
        };
        if pads.len() != 2 * n {
            return Err(c.bad_attr("pads", format!("expected {} values, found {}", 2 * n, pads.len())));
        }
        Ok(Window { kernel, strides, dilations, pads })
    }

    /// ConvTranspose attributes mapping a gradient of the window's output (shape `out`, spatial)
    /// back onto its input (shape `inp`, spatial): explicit pads and output_padding; where the
    /// forward windows ran past the padded input (ceil_mode) the end pad grows instead.
    pub fn transpose_attrs(&self, inp: &[i64], out: &[i64], group: i64) -> Vec<crate::onnx::proto::AttributeProto> {
        let n = self.kernel.len();
        let mut pads = self.pads.clone();
        let mut output_padding = vec![0; n];
        for i in 0..n {
            let produced =
                (out[i] - 1) * self.strides[i] - pads[i] - pads[i + n] + self.dilations[i] * (self.kernel[i] - 1) + 1;
            let extra = inp[i] - produced;
            if extra >= 0 {
                output_padding[i] = extra;
            } else {
                pads[i + n] -= extra;
            }
        }
        vec![
            attr_ints("kernel_shape", &self.kernel),
            attr_ints("strides", &self.strides),
            attr_ints("dilations", &self.dilations),
            attr_ints("pads", &pads),
            attr_ints("output_padding", &output_padding),
            attr_int("group", group),
        ]
    }
}

/// dX = ConvTranspose(dY, W) with Conv's strides, pads, dilations and group.
pub(super) fn conv(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    c.refuse_input(1, "weight")?;
    c.refuse_input(2, "bias")?;
    if !c.needs(0) {
        return Ok(vec![None, None, None]);
    }
    let dy = c.dy0()?;
    let (x, w) = (c.input(0).to_string(), c.input(1).to_string());
    let sw = c.shape(&w)?.dims.clone();
    if sw.len() < 3 {
        return Err(c.unsupported(format!("weight '{w}' has rank {}", sw.len())));
    }
    let kernel = c.ints_attr("kernel_shape")?.unwrap_or(sw[2..].to_vec());
    let group = c.int_attr("group", 1)?;
    let win = Window::read(c, kernel, &x)?;
    let sx = c.shape(&x)?.dims.clone();
    let sy = c.shape(c.output(0))?.dims.clone();
    let attrs = win.transpose_attrs(&sx[2..], &sy[2..], group);
    Ok(vec![Some(c.b.op("ConvTranspose", &[&dy, &w], attrs)), None, None])
}

/// Inference BatchNormalization is Y = X·s + t per channel with s = scale / √(var + ε): dX = dY·s.
pub(super) fn batch_norm(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    for (i, what) in [(1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")] {
        c.refuse_input(i, what)?;
    }
    if c.int_attr("training_mode", 0)? != 0 {
        return Err(c.unsupported("training_mode=1: only inference BatchNormalization is supported"));
    }
    let dy = c.dy0()?;
    let eps = c.float_attr("epsilon", 1e-5)?;
    let x = c.input(0).to_string();
    let (scale, var) = (c.input(1).to_string(), c.input(4).to_string());
    let rank = c.shape(&x)?.rank();
    if rank < 2 {
        return Err(c.unsupported(format!("input of rank {rank}")));
    }
    let e = c.scalar(eps);
    let ve = c.b.op("Add", &[&var, &e], vec![]);
    let sd = c.b.op("Sqrt", &[&ve], vec![]);
    let s = c.b.op("Div", &[&scale, &sd], vec![]);
    let mut shape = vec![-1i64];
    shape.extend(std::iter::repeat_n(1, rank - 2));
    let shape_c = c.b.const_i64("shape", &[shape.len() as i64], &shape);
    let s = c.b.op("Reshape", &[&s, &shape_c], vec![]);
    Ok(vec![Some(c.b.op("Mul", &[&dy, &s], vec![])), None, None, None, None])
}
