//! The PGD step as ONNX ops appended to a gradient graph, so that one session run computes the
//! gradient, takes the step, projects onto the ε-ball and clamps to [0, 1]: no gradient, logits or
//! features leave ONNX Runtime during the steps, and nothing is computed that the step does not need.
//!
//! The arithmetic is the one [`super::Pgd`] does on the Rust side, op for op and in the same
//! precision, so the two paths agree to the last bit except where a float64 sum is added up in a
//! different order (then by one unit in the last place of a norm):
//! L2: `n = √Σ g²` (float64), `x' = x + (s / (n + 1e-10)) · g`, `d = x' − x0`, `m = √Σ d²` (float64),
//! `x'' = clamp(x0 + d · (m > ε ? ε / m : 1), 0, 1)`;
//! L∞: `x' = x + s · sign(g)` (0 where g = 0), `x'' = clamp(clamp(x', x0 − ε, x0 + ε), 0, 1)`,
//! with the signed step `s` (negative for a targeted attack). Both output Σ g² per example in
//! float64, which is finite exactly when every gradient value is (the non-finite check).

use std::collections::HashSet;

use super::{AttackError, Norm};
use crate::onnx::builder::{attr_int, Dim, GraphBuilder};
use crate::onnx::proto::tensor_proto::DataType;
use crate::onnx::proto::{ModelProto, ValueInfoProto};
use crate::onnx::validate::standard_opset;

/// A step graph: inputs `x`, `y` and the three of [`StepNames`]; outputs the two of [`StepNames`].
#[derive(Debug, Clone)]
pub struct StepGraph {
    /// The graph.
    pub model: ModelProto,
    /// Names of its extra inputs and outputs.
    pub names: StepNames,
}

/// The names a step graph adds to the gradient graph's: fresh names, which never collide with a
/// tensor of the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepNames {
    /// Input: the images the attack started from, shaped like `x`.
    pub x0: String,
    /// Input: the signed step size, float32 `[1]` (negative moves toward the label).
    pub step: String,
    /// Input: the radius ε, float32 `[1]`.
    pub eps: String,
    /// Output: the images after the step, float32 `[N, C·H·W]`.
    pub x_next: String,
    /// Output: Σ g² per example, float64 `[N, 1]`.
    pub grad_sq: String,
}

fn bad(msg: impl Into<String>) -> AttackError {
    AttackError::Model(format!("cannot build the PGD step graph: {}", msg.into()))
}

/// Builds the step graph of `grad`, a gradient graph (inputs `x`, `y`; output `grad`) as
/// [`crate::grad::build`] writes it, for `norm`. Nodes the step does not need (the loss, the
/// features head where it is not on the way to the logits) are left out.
pub fn step_graph(grad: &ModelProto, norm: Norm) -> Result<StepGraph, AttackError> {
    let g = grad.graph.as_ref().ok_or_else(|| bad("the gradient graph has no graph"))?;
    let x_info = g.input.iter().find(|v| v.name.as_deref() == Some("x")).ok_or_else(|| bad("no input 'x'"))?;
    let y_info = g.input.iter().find(|v| v.name.as_deref() == Some("y")).ok_or_else(|| bad("no input 'y'"))?;
    if !g.output.iter().any(|v| v.name.as_deref() == Some("grad")) {
        return Err(bad("no output 'grad'"));
    }
    let opset = standard_opset(grad).ok_or_else(|| bad("no default-domain opset import"))?;
    if opset < 13 {
        return Err(bad(format!("opset {opset} < 13 (ReduceSum takes its axes as an input from 13)")));
    }

    let mut b = GraphBuilder::new();
    for n in &g.node {
        for t in n.input.iter().chain(&n.output) {
            b.reserve(t);
        }
    }
    for name in g.initializer.iter().filter_map(|t| t.name.as_deref()) {
        b.reserve(name);
    }
    for name in g.input.iter().chain(&g.output).filter_map(|v| v.name.as_deref()) {
        b.reserve(name);
    }
    for n in &g.node {
        b.push_node(n.clone());
    }
    let x0 = b.fresh("x0");
    let step = b.fresh("step");
    let eps = b.fresh("eps");
    let x_next = b.fresh("x_next");
    let grad_sq = b.fresh("grad_sq");

    let axes = b.const_i64("axes", &[1], &[1]);
    let flat = |b: &mut GraphBuilder, t: &str| b.op("Flatten", &[t], vec![attr_int("axis", 1)]);
    let to = |dt: DataType| vec![attr_int("to", dt as i64)];
    let sum_sq_f64 = |b: &mut GraphBuilder, t: &str| {
        let d = b.op("Cast", &[t], to(DataType::Double));
        let sq = b.op("Mul", &[&d, &d], vec![]);
        b.op("ReduceSum", &[&sq, &axes], vec![attr_int("keepdims", 1)])
    };
    let gf = flat(&mut b, "grad");
    let xf = flat(&mut b, "x");
    let x0f = flat(&mut b, &x0);
    let gsq = sum_sq_f64(&mut b, &gf);
    b.op_named("Identity", &[&gsq], &[&grad_sq], vec![]);
    let zero = b.const_f32("zero", &[], &[0.0]);
    let one = b.const_f32("one", &[], &[1.0]);
    let moved = match norm {
        Norm::L2 => {
            let n64 = b.op("Sqrt", &[&gsq], vec![]);
            let n = b.op("Cast", &[&n64], to(DataType::Float));
            let tiny = b.const_f32("tiny", &[], &[1e-10]);
            let denom = b.op("Add", &[&n, &tiny], vec![]);
            let scale = b.op("Div", &[&step, &denom], vec![]);
            let delta = b.op("Mul", &[&scale, &gf], vec![]);
            let x1 = b.op("Add", &[&xf, &delta], vec![]);
            let d = b.op("Sub", &[&x1, &x0f], vec![]);
            let m64 = sum_sq_f64(&mut b, &d);
            let m64 = b.op("Sqrt", &[&m64], vec![]);
            let m = b.op("Cast", &[&m64], to(DataType::Float));
            let outside = b.op("Greater", &[&m, &eps], vec![]);
            let ratio = b.op("Div", &[&eps, &m], vec![]);
            let shrink = b.op("Where", &[&outside, &ratio, &one], vec![]);
            let ds = b.op("Mul", &[&d, &shrink], vec![]);
            b.op("Add", &[&x0f, &ds], vec![])
        }
        Norm::Linf => {
            // s·sign(g) without the Sign op (slow on ONNX Runtime's CPU provider): s where g > 0,
            // −s where g < 0, 0 where g = 0.
            let neg = b.op("Neg", &[&step], vec![]);
            let pos = b.op("Greater", &[&gf, &zero], vec![]);
            let negm = b.op("Less", &[&gf, &zero], vec![]);
            let lower = b.op("Where", &[&negm, &neg, &zero], vec![]);
            let delta = b.op("Where", &[&pos, &step, &lower], vec![]);
            let x1 = b.op("Add", &[&xf, &delta], vec![]);
            let hi = b.op("Add", &[&x0f, &eps], vec![]);
            let lo = b.op("Sub", &[&x0f, &eps], vec![]);
            let capped = b.op("Min", &[&x1, &hi], vec![]);
            b.op("Max", &[&capped, &lo], vec![])
        }
    };
    b.op_named("Clip", &[&moved, &zero, &one], &[&x_next], vec![]);

    // Inputs: x and y as the gradient graph declares them, x0 like x, the two scalars.
    b.graph.input.push(x_info.clone());
    b.graph.input.push(y_info.clone());
    b.graph.input.push(ValueInfoProto { name: Some(x0.clone()), ..x_info.clone() });
    b.input(&step, DataType::Float, &[Dim::Fixed(1)]);
    b.input(&eps, DataType::Float, &[Dim::Fixed(1)]);
    b.output(&x_next, DataType::Float, Some(&[Dim::Param("N".into()), Dim::Param("D".into())]));
    b.output(&grad_sq, DataType::Double, Some(&[Dim::Param("N".into()), Dim::Fixed(1)]));

    // Keep only what the two outputs need (the loss and, usually, the features head go). A node
    // with a subgraph may read outer tensors its inputs do not name: then everything is kept.
    let mut needed: HashSet<String> = [x_next.clone(), grad_sq.clone()].into();
    let has_subgraph = b.graph.node.iter().any(|n| n.attribute.iter().any(|a| a.g.is_some() || !a.graphs.is_empty()));
    let mut keep = vec![has_subgraph; b.graph.node.len()];
    for (i, n) in b.graph.node.iter().enumerate().rev() {
        if has_subgraph || n.output.iter().any(|o| needed.contains(o)) {
            keep[i] = true;
            needed.extend(n.input.iter().filter(|t| !t.is_empty()).cloned());
        }
    }
    let mut k = keep.iter();
    b.graph.node.retain(|_| *k.next().expect("one flag per node"));
    let initializers: Vec<_> = g
        .initializer
        .iter()
        .filter(|t| has_subgraph || needed.contains(t.name.as_deref().unwrap_or("")))
        .cloned()
        .collect();
    b.graph.initializer.extend(initializers);

    let ir = grad.ir_version.unwrap_or(8);
    let mut model = b.into_model("aegis_pgd_step", opset, ir);
    model.opset_import = grad.opset_import.clone();
    Ok(StepGraph { model, names: StepNames { x0, step, eps, x_next, grad_sq } })
}
