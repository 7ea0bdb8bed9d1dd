//! The memory layout of an image input: [`Layout`] (NCHW or NHWC) and [`image_layout`], the one
//! rule that tells a channels-last input (transposed to NCHW inside the model, as tf2onnx writes
//! Keras models) from a channels-first one. Read by the analysis (to accept an NHWC input) and by
//! the gradient builder (to put an NCHW front on it).

use std::fmt;

use serde::Serialize;

use crate::onnx::attr::NodeExt;
use crate::onnx::graph::Graph;

/// The memory layout of a rank-4 image input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Layout {
    /// Channels first: [N, C, H, W], what ONNX's Conv reads.
    Nchw,
    /// Channels last: [N, H, W, C] (Keras, TensorFlow through tf2onnx), transposed to NCHW
    /// inside the model.
    Nhwc,
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::Nchw => "NCHW",
            Layout::Nhwc => "NHWC",
        })
    }
}

/// Ops that may sit between a channels-last input and its Transpose to NCHW (in-graph scaling or
/// normalisation, casts).
const LAYOUT_PRELUDE_OPS: &[&str] = &["Sub", "Add", "Mul", "Div", "Cast", "Identity", "Clip"];

/// The layout of image input `input`: NHWC when the data path from it reaches a Transpose with
/// perm [0, 3, 1, 2] (to NCHW) through at most a few elementwise ops and nothing else reads it
/// first, as tf2onnx writes Keras models; NCHW otherwise.
pub fn image_layout(g: &Graph<'_>, input: &str) -> Layout {
    let mut frontier = vec![input.to_string()];
    for _ in 0..4 {
        let mut next = Vec::new();
        for t in &frontier {
            for c in g.consumers(t) {
                let node = g.node(c);
                match node.op() {
                    "Transpose" => {
                        let perm: Option<&[i64]> = node.get_attr_opt("perm").ok().flatten();
                        if perm != Some(&[0, 3, 1, 2]) {
                            return Layout::Nchw;
                        }
                    }
                    op if LAYOUT_PRELUDE_OPS.contains(&op) => next.extend(node.output.iter().cloned()),
                    _ => return Layout::Nchw,
                }
            }
        }
        if next.is_empty() {
            return if frontier.iter().all(|t| !g.consumers(t).is_empty()) { Layout::Nhwc } else { Layout::Nchw };
        }
        frontier = next;
    }
    Layout::Nchw
}
