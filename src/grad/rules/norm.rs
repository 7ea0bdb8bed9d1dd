//! Backward rule of LayerNormalization (opset 17): normalisation over the axes from `axis` to the
//! last, with constant scale and bias. (Inference BatchNormalization, a per-channel affine map,
//! lives with Conv in `nn.rs`.)

use crate::grad::rules::Ctx;
use crate::grad::GradError;
use crate::onnx::builder::attr_int;

/// With x̂ = (X − μ)·r, r = 1/√(σ² + ε) over the normalised axes and g = dY·scale:
/// dX = r·(g − mean(g) − x̂·mean(g·x̂)). μ and r are recomputed from X in float32.
pub(super) fn layer_norm(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    c.refuse_input(1, "scale")?;
    c.refuse_input(2, "bias")?;
    if c.dy.iter().skip(1).any(Option::is_some) {
        return Err(c.unsupported("the Mean or InvStdDev output is used on the path to the logits"));
    }
    let dy = c.dy0()?;
    let x = c.input(0).to_string();
    let scale = c.input(1).to_string();
    let sx = c.shape(&x)?.clone();
    let rank = sx.rank();
    let axis = c.axis(c.int_attr("axis", -1)?, rank, "axis")?;
    let eps = c.float_attr("epsilon", 1e-5)?;
    if let Some(a) = (axis..rank).find(|&a| sx.batch[a]) {
        return Err(c.unsupported(format!("normalised axis {a} follows the batch size")));
    }
    let n: i64 = sx.dims[axis..].iter().product();
    let axes: Vec<i64> = (axis as i64..rank as i64).collect();
    let axes = c.b.const_i64("axes", &[axes.len() as i64], &axes);
    let inv_n = c.scalar(1.0 / n.max(1) as f32);
    let keep = || vec![attr_int("keepdims", 1)];
    let mean = |c: &mut Ctx, t: &str| {
        let s = c.b.op("ReduceSum", &[t, &axes], keep());
        c.b.op("Mul", &[&s, &inv_n], vec![])
    };
    let mu = mean(c, &x);
    let xc = c.b.op("Sub", &[&x, &mu], vec![]);
    let sq = c.b.op("Mul", &[&xc, &xc], vec![]);
    let var = mean(c, &sq);
    let e = c.scalar(eps);
    let ve = c.b.op("Add", &[&var, &e], vec![]);
    let sd = c.b.op("Sqrt", &[&ve], vec![]);
    let r = c.b.op("Reciprocal", &[&sd], vec![]);
    let xh = c.b.op("Mul", &[&xc, &r], vec![]);
    let g = if scale.is_empty() { dy } else { c.b.op("Mul", &[&dy, &scale], vec![]) };
    let mg = mean(c, &g);
    let gx = c.b.op("Mul", &[&g, &xh], vec![]);
    let mgx = mean(c, &gx);
    let t = c.b.op("Mul", &[&xh, &mgx], vec![]);
    let d1 = c.b.op("Sub", &[&g, &mg], vec![]);
    let d2 = c.b.op("Sub", &[&d1, &t], vec![]);
    let mut res = vec![None; c.node.input.len()];
    res[0] = Some(c.b.op("Mul", &[&d2, &r], vec![]));
    Ok(res)
}
