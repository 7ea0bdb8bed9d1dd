//! Backward rules of elementwise activations: Relu, LeakyRelu, Sigmoid, Tanh, Clip, HardSigmoid,
//! HardSwish and Gelu (opset 20; exact and tanh forms). At the kinks the one-sided choice is
//! PyTorch's (see docs/coverage.md, "Gradients at kinks").

use crate::grad::rules::Ctx;
use crate::grad::GradError;

/// dX = Where(Y > 0, dY, 0).
///
/// The mask reads the Relu's output, not its input: `max(x, 0) > 0` exactly when `x > 0` (NaN
/// included: neither side is greater than zero), so the gradient is the same to the bit, and a Conv
/// whose output only the Relu reads is then fused with it by ONNX Runtime. `Where`, not a product
/// with the mask: a non-finite dY under a closed mask (`Sqrt(Relu(x))` at 0) must give 0, as
/// PyTorch's `threshold_backward` does, where `dY·0` would give NaN.
pub(super) fn relu(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    let y = c.output(0).to_string();
    let zero = c.scalar(0.0);
    let mask = c.b.op("Greater", &[&y, &zero], vec![]);
    Ok(vec![Some(c.b.op("Where", &[&mask, &dy, &zero], vec![]))])
}

/// dX = Where(X > 0, dY, alpha·dY).
pub(super) fn leaky_relu(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
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
pub(super) fn sigmoid(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    from_output(c, |c, y, one| {
        let omy = c.b.op("Sub", &[one, y], vec![]);
        c.b.op("Mul", &[y, &omy], vec![])
    })
}

/// dX = dY·(1 − Y²).
pub(super) fn tanh(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    from_output(c, |c, y, one| {
        let y2 = c.b.op("Mul", &[y, y], vec![]);
        c.b.op("Sub", &[one, &y2], vec![])
    })
}

/// dX = dY·f(Y) for the activations whose derivative is written in their output Y: `derivative`
/// builds f(Y) from Y's name and a scalar 1.
fn from_output(
    c: &mut Ctx,
    derivative: impl FnOnce(&mut Ctx, &str, &str) -> String,
) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    let y = c.output(0).to_string();
    let one = c.scalar(1.0);
    let d = derivative(c, &y, &one);
    Ok(vec![Some(c.b.op("Mul", &[&dy, &d], vec![]))])
}

/// dX = Where(min ≤ X ≤ max, dY, 0) (bounds inclusive, as PyTorch's clamp); min/max are inputs
/// from opset 11 (older opsets are rejected before the rules run).
pub(super) fn clip(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
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

/// Y = max(0, min(1, αX + β)): dX = α·dY where 0 < αX + β < 1 (PyTorch's hardsigmoid_backward
/// also excludes both ends).
pub(super) fn hard_sigmoid(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    let x = c.input(0).to_string();
    let alpha = c.float_attr("alpha", 0.2)?;
    let beta = c.float_attr("beta", 0.5)?;
    let (a, b) = (c.scalar(alpha), c.scalar(beta));
    let ax = c.b.op("Mul", &[&x, &a], vec![]);
    let v = c.b.op("Add", &[&ax, &b], vec![]);
    let (zero, one) = (c.scalar(0.0), c.scalar(1.0));
    let above = c.b.op("Greater", &[&v, &zero], vec![]);
    let below = c.b.op("Less", &[&v, &one], vec![]);
    let inside = c.b.op("And", &[&above, &below], vec![]);
    let scaled = c.b.op("Mul", &[&dy, &a], vec![]);
    Ok(vec![Some(c.b.op("Where", &[&inside, &scaled, &zero], vec![]))])
}

/// Y = X·HardSigmoid(X) with α = 1/6, β = 1/2: dX = dY·(0 if X < −3; X/3 + 1/2 if X ≤ 3; 1
/// otherwise), PyTorch's hardswish_backward, ends included.
pub(super) fn hard_swish(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    let x = c.input(0).to_string();
    let (lo, hi) = (c.scalar(-3.0), c.scalar(3.0));
    let (third, half, zero, one) = (c.scalar(1.0 / 3.0), c.scalar(0.5), c.scalar(0.0), c.scalar(1.0));
    let x3 = c.b.op("Mul", &[&x, &third], vec![]);
    let mid = c.b.op("Add", &[&x3, &half], vec![]);
    let is_hi = c.b.op("LessOrEqual", &[&x, &hi], vec![]);
    let upper = c.b.op("Where", &[&is_hi, &mid, &one], vec![]);
    let is_lo = c.b.op("Less", &[&x, &lo], vec![]);
    let d = c.b.op("Where", &[&is_lo, &zero, &upper], vec![]);
    Ok(vec![Some(c.b.op("Mul", &[&dy, &d], vec![]))])
}

/// Gelu (opset 20). Exact: dX = dY·(Φ(X) + X·φ(X)); `approximate = "tanh"`: the derivative of
/// 0.5·X·(1 + tanh(√(2/π)·(X + 0.044715·X³))).
pub(super) fn gelu(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    let x = c.input(0).to_string();
    let approx = c.string_attr("approximate", "none")?;
    let half = c.scalar(0.5);
    let one = c.scalar(1.0);
    let d = match approx.as_str() {
        "none" => {
            // Φ(x) = 0.5·(1 + erf(x/√2)); φ(x) = exp(−x²/2)/√(2π).
            let r2 = c.scalar(std::f32::consts::FRAC_1_SQRT_2);
            let xs = c.b.op("Mul", &[&x, &r2], vec![]);
            let e = c.b.op("Erf", &[&xs], vec![]);
            let e1 = c.b.op("Add", &[&e, &one], vec![]);
            let cdf = c.b.op("Mul", &[&e1, &half], vec![]);
            let x2 = c.b.op("Mul", &[&x, &x], vec![]);
            let nh = c.scalar(-0.5);
            let t = c.b.op("Mul", &[&x2, &nh], vec![]);
            let ex = c.b.op("Exp", &[&t], vec![]);
            let k = c.scalar((0.5 / std::f64::consts::PI).sqrt() as f32);
            let pdf = c.b.op("Mul", &[&ex, &k], vec![]);
            let xp = c.b.op("Mul", &[&x, &pdf], vec![]);
            c.b.op("Add", &[&cdf, &xp], vec![])
        }
        "tanh" => {
            // u = k·(x + a·x³); y = 0.5·x·(1 + tanh u); dy/dx = 0.5·(1 + t) + 0.5·x·(1 − t²)·k·(1 + 3a·x²).
            let k = (2.0 / std::f64::consts::PI).sqrt() as f32;
            let a = 0.044715f32;
            let x2 = c.b.op("Mul", &[&x, &x], vec![]);
            let x3 = c.b.op("Mul", &[&x2, &x], vec![]);
            let ac = c.scalar(a);
            let ax3 = c.b.op("Mul", &[&x3, &ac], vec![]);
            let inner = c.b.op("Add", &[&x, &ax3], vec![]);
            let kc = c.scalar(k);
            let u = c.b.op("Mul", &[&inner, &kc], vec![]);
            let t = c.b.op("Tanh", &[&u], vec![]);
            let t1 = c.b.op("Add", &[&t, &one], vec![]);
            let left = c.b.op("Mul", &[&t1, &half], vec![]);
            let t2 = c.b.op("Mul", &[&t, &t], vec![]);
            let sech2 = c.b.op("Sub", &[&one, &t2], vec![]);
            let a3 = c.scalar(3.0 * a);
            let q = c.b.op("Mul", &[&x2, &a3], vec![]);
            let q1 = c.b.op("Add", &[&q, &one], vec![]);
            let du = c.b.op("Mul", &[&q1, &kc], vec![]);
            let hx = c.b.op("Mul", &[&x, &half], vec![]);
            let r = c.b.op("Mul", &[&hx, &sech2], vec![]);
            let right = c.b.op("Mul", &[&r, &du], vec![]);
            c.b.op("Add", &[&left, &right], vec![])
        }
        other => return Err(c.bad_attr("approximate", format!("unknown value '{other}'"))),
    };
    Ok(vec![Some(c.b.op("Mul", &[&dy, &d], vec![]))])
}
