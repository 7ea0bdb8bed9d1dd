//! Exact forward reorderings made before differentiating: a `Relu` whose only reader is a
//! `MaxPool` is moved after it ([`pool_before_relu`]), so the activation, its backward mask and the
//! pooling's gradient work on the pooled tensor instead of the full-size one. The logits, loss and
//! input gradient stay bit-identical (see the function's proof); only the time changes.

use std::collections::HashSet;

use crate::grad::build::GradSpec;
use crate::grad::opset::collect_names;
use crate::grad::path::is_default_domain;
use crate::grad::GradError;
use crate::onnx::attr::NodeExt;
use crate::onnx::graph::Graph;
use crate::onnx::proto::{ModelProto, NodeProto};

/// A copy of `model` in which every `Relu → MaxPool` pair that qualifies reads
/// `MaxPool → Relu`, or `None` when no pair does.
///
/// Why the result is the same to the bit. ReLU is non-decreasing, so `max(relu(a)) = relu(max(a))`
/// over any window that holds at least one real cell (both are exact float operations). The
/// gradient: if a window's maximum is positive, the first position of the maximum is the same in
/// `a` and in `relu(a)` (the positive values are unchanged, the rest become 0 below them), so both
/// orders send dY to the same cell, where `a > 0`; otherwise `relu(a)` is all zeros in the window,
/// and both orders give it no gradient (the Relu mask `a > 0` is false at whichever cell the
/// pooling picked, and `max(a) > 0` is false). Other monotone activations are left alone: LeakyRelu
/// and Clip can map different inputs to one float, which moves the tie-breaking cell.
///
/// A pair qualifies when the Relu's output is read by that MaxPool only (no other node, subgraph,
/// graph output, or the spec's features or logits), the MaxPool's Indices are not used by the
/// model, and every pooling window holds a real cell: no dilation, no `ceil_mode`, and pads smaller
/// than the kernel (`auto_pad` SAME pads are, always).
pub fn pool_before_relu(model: &ModelProto, spec: &GradSpec) -> Result<Option<ModelProto>, GradError> {
    let graph = model.graph.as_ref().ok_or_else(|| GradError::BadModel("the model has no graph".into()))?;
    let index = Graph::new(graph);
    let mut pinned: HashSet<&str> = graph.output.iter().filter_map(|v| v.name.as_deref()).collect();
    pinned.extend([spec.features.as_str(), spec.logits.as_str()]);

    let mut pairs = Vec::new();
    for (j, m) in graph.node.iter().enumerate() {
        if !is_default(m, "MaxPool")
            || m.output.first().is_none_or(String::is_empty)
            || m.output.iter().skip(1).any(|o| !o.is_empty())
            || !every_window_real(m)
        {
            continue;
        }
        let Some(r_out) = m.input.first().filter(|t| !t.is_empty()) else { continue };
        let Some(i) = index.producer(r_out) else { continue };
        let r = &graph.node[i];
        // `succs` counts every reading input slot, subgraphs' outer-scope reads included: the
        // MaxPool must be the Relu's one reader.
        if is_default(r, "Relu")
            && r.input.len() == 1
            && !r.input[0].is_empty()
            && r.output.len() == 1
            && index.succs(i) == [j]
            && !pinned.contains(r_out.as_str())
        {
            pairs.push((i, j));
        }
    }
    if pairs.is_empty() {
        return Ok(None);
    }

    let mut taken: HashSet<String> = HashSet::new();
    collect_names(graph, &mut taken);
    let mut m = model.clone();
    let g = m.graph.as_mut().expect("checked above");
    for (i, j) in pairs {
        let pre = g.node[i].input[0].clone();
        let relu_out = g.node[i].output[0].clone();
        let out = g.node[j].output[0].clone();
        let pooled = (0..).map(|k| format!("{pre}__pooled{k}")).find(|c| !taken.contains(c)).expect("a free name");
        taken.insert(pooled.clone());
        // Position i (where the Relu was, after `pre` is computed) now pools; position j applies
        // the Relu to the pooled tensor and writes the MaxPool's old output: topological order
        // holds and every other reader is untouched.
        g.node.swap(i, j);
        let pool = &mut g.node[i];
        pool.input[0] = pre;
        pool.output.truncate(1);
        pool.output[0] = pooled.clone();
        let relu = &mut g.node[j];
        relu.input[0] = pooled;
        relu.output[0] = out;
        g.value_info.retain(|v| v.name.as_deref() != Some(relu_out.as_str()));
    }
    Ok(Some(m))
}

fn is_default(n: &NodeProto, op: &str) -> bool {
    n.op_type.as_deref() == Some(op) && is_default_domain(n)
}

/// Whether every window of MaxPool `n` overlaps its input: dilation 1, no `ceil_mode`, and each
/// explicit pad smaller than the kernel on its axis (then a window starts after −kernel and, in
/// floor mode, ends before input + kernel). Unreadable attributes answer no (the backward rule
/// reports them later).
fn every_window_real(n: &NodeProto) -> bool {
    let Ok(Some(kernel)) = n.get_attr_opt::<&[i64]>("kernel_shape") else { return false };
    let k = kernel.len();
    let dil_ok = match n.get_attr_opt::<&[i64]>("dilations") {
        Ok(None) => true,
        Ok(Some(d)) => d.iter().all(|&v| v == 1),
        Err(_) => false,
    };
    let ceil_ok = matches!(n.get_attr_or("ceil_mode", 0i64), Ok(0));
    let pads_ok = match n.get_attr_or("auto_pad", "NOTSET") {
        Ok("SAME_UPPER" | "SAME_LOWER" | "VALID") => true,
        Ok("NOTSET") => match n.get_attr_opt::<&[i64]>("pads") {
            Ok(None) => true,
            Ok(Some(p)) => p.len() == 2 * k && p.iter().enumerate().all(|(a, &v)| v >= 0 && v < kernel[a % k]),
            Err(_) => false,
        },
        _ => false,
    };
    dil_ok && ceil_ok && pads_ok && kernel.iter().all(|&v| v >= 1)
}
