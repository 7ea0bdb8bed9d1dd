//! Channels-last (NHWC) image inputs: the gradient graph always takes NCHW images. For a model
//! whose image input is NHWC and transposed to NCHW inside it (as tf2onnx writes Keras models),
//! [`nchw_front`] gives a copy whose input is NCHW followed by a Transpose to the model's layout,
//! so the model is fed in its own layout and `grad` comes back NCHW like every other model's.

use std::collections::HashSet;

use crate::grad::GradError;
use crate::onnx::builder::attr_ints;
use crate::onnx::graph::Graph;
use crate::onnx::layout::{image_layout, Layout};
use crate::onnx::proto::type_proto;
use crate::onnx::proto::{GraphProto, ModelProto, NodeProto};

/// `base` followed by the smallest number that no tensor, node output, initializer or value of `g` is
/// named yet.
pub(super) fn fresh_name(g: &GraphProto, base: &str) -> String {
    let taken: HashSet<String> = g
        .node
        .iter()
        .flat_map(|n| n.input.iter().chain(&n.output).cloned())
        .chain(g.initializer.iter().filter_map(|t| t.name.clone()))
        .chain(g.input.iter().chain(&g.output).chain(&g.value_info).filter_map(|v| v.name.clone()))
        .collect();
    (0..).map(|k| format!("{base}{k}")).find(|n| !taken.contains(n)).expect("a free name")
}

/// Makes every node of `g` that reads `from` read `to` instead.
pub(super) fn rename_reads(g: &mut GraphProto, from: &str, to: &str) {
    for n in &mut g.node {
        for t in n.input.iter_mut().filter(|t| t.as_str() == from) {
            *t = to.to_string();
        }
    }
}

/// For an NHWC image input `input` (see [`image_layout`]), a copy of `model` whose input `input`
/// is [N, C, H, W] and is transposed (perm [0, 2, 3, 1]) to a fresh tensor that the model's nodes
/// read instead; `None` for an NCHW input (nothing to do).
pub fn nchw_front(model: &ModelProto, input: &str) -> Result<Option<ModelProto>, GradError> {
    let graph = model.graph.as_ref().ok_or_else(|| GradError::BadModel("the model has no graph".into()))?;
    if image_layout(&Graph::new(graph), input) != Layout::Nhwc {
        return Ok(None);
    }
    let mut m = model.clone();
    let g = m.graph.as_mut().expect("checked above");
    let inner = fresh_name(g, &format!("{input}__nhwc"));
    rename_reads(g, input, &inner);
    g.value_info.retain(|v| v.name.as_deref() != Some(input));
    let vi = g
        .input
        .iter_mut()
        .find(|v| v.name.as_deref() == Some(input))
        .ok_or_else(|| GradError::MissingTensor { name: input.to_string(), role: "image input" })?;
    let Some(type_proto::Value::TensorType(tt)) = vi.r#type.as_mut().and_then(|t| t.value.as_mut()) else {
        return Err(GradError::BadModel(format!("input '{input}' is not a tensor")));
    };
    let shape = tt.shape.as_mut().ok_or_else(|| GradError::BadModel(format!("input '{input}' has no shape")))?;
    if shape.dim.len() != 4 {
        return Err(GradError::BadModel(format!("input '{input}' has rank {}, not 4", shape.dim.len())));
    }
    // [N, H, W, C] → [N, C, H, W].
    let c = shape.dim.remove(3);
    shape.dim.insert(1, c);
    g.node.insert(
        0,
        NodeProto {
            input: vec![input.to_string()],
            output: vec![inner.clone()],
            name: Some(format!("{inner}_transpose")),
            op_type: Some("Transpose".into()),
            attribute: vec![attr_ints("perm", &[0, 2, 3, 1])],
            ..Default::default()
        },
    );
    Ok(Some(m))
}
