//! Gradient graphs of models this project did not write (exported by PyTorch: residual blocks,
//! BatchNorm, AveragePool, in-graph normalisation, Concat, Pad, Transpose/MatMul heads, a final
//! Softmax) compared with PyTorch autograd gradients computed in float64: every
//! `*.gradcheck.json` under `fixtures/grad/` and `fixtures/zoo/` (keys `model`, `shape`, `x`, `y`,
//! `logits`, `loss`, `grad`; written by `scripts/gen_grad_fixtures.py` and the model zoo).
//!
//! Bounds: relative error of grad < 1e-3, of logits < 1e-4; loss ‖Δ‖ / max(‖loss‖, 1) < 1e-4 (a
//! confidently classified example has a cross-entropy near 1e-4, below float32 log-softmax's
//! absolute resolution at logits of size ~10, so the loss is compared with a mixed tolerance).

mod common;

use std::path::{Path, PathBuf};

use aegis_audit::grad::GradSpec;
use aegis_audit::onnx::proto::ModelProto;
use common::{eval_grad, grad_model, rel_err};
use prost::Message;
use serde::Deserialize;

#[derive(Deserialize)]
struct GradCheck {
    model: String,
    shape: Vec<i64>,
    x: Vec<f64>,
    y: Vec<i64>,
    logits: Vec<f64>,
    loss: Vec<f64>,
    grad: Vec<f64>,
}

/// The tensor names a gradient graph needs: the first graph input that is not an initializer, and
/// the logits (the graph output, or the input of a final Softmax/LogSoftmax). Features are taken
/// as the logits here: they play no part in the gradient.
fn spec_of(model: &ModelProto) -> GradSpec {
    let g = model.graph.as_ref().unwrap();
    let inits: Vec<&str> = g.initializer.iter().filter_map(|t| t.name.as_deref()).collect();
    let input = g.input.iter().filter_map(|v| v.name.clone()).find(|n| !inits.contains(&n.as_str())).unwrap();
    let mut logits = g.output[0].name.clone().unwrap();
    if let Some(n) = g.node.iter().find(|n| n.output.first() == Some(&logits)) {
        if matches!(n.op_type.as_deref(), Some("Softmax" | "LogSoftmax")) {
            logits = n.input[0].clone();
        }
    }
    GradSpec { input, features: logits.clone(), logits }
}

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut out = Vec::new();
    for dir in ["grad", "zoo"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.to_string_lossy().ends_with(".gradcheck.json") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn gradients_match_pytorch_autograd_on_every_fixture() {
    let files = fixtures();
    assert!(files.len() >= 3, "expected the fixtures/grad/*.gradcheck.json files, found {files:?}");
    for f in files {
        let chk: GradCheck = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        let mpath = f.parent().unwrap().join(&chk.model);
        let model = ModelProto::decode(std::fs::read(&mpath).unwrap().as_slice()).unwrap();
        let spec = spec_of(&model);
        let g = grad_model(&model, &spec).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let x: Vec<f32> = chk.x.iter().map(|&v| v as f32).collect();
        let out = eval_grad(&g, &chk.shape, &x, &chk.y).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let to64 = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<_>>();
        let (eg, el, es) = (
            rel_err(&to64(&out.grad), &chk.grad),
            rel_err(&to64(&out.logits), &chk.logits),
            rel_err(&to64(&out.loss), &chk.loss) * chk.loss.iter().map(|v| v * v).sum::<f64>().sqrt().min(1.0),
        );
        eprintln!("{}: grad {eg:.2e}, logits {el:.2e}, loss {es:.2e}", f.display());
        assert_eq!(out.grad_shape, chk.shape, "{}", f.display());
        assert!(el < 1e-4, "{}: logits relative error {el:.3e}", f.display());
        assert!(es < 1e-4, "{}: loss relative error {es:.3e}", f.display());
        assert!(eg < 1e-3, "{}: grad relative error {eg:.3e}", f.display());
    }
}
