//! Test harness for the gradient graph: ONNX Runtime through `ort` (loaded from the project's
//! `.ort/` folder) and helpers to build and run gradient graphs.
#![allow(dead_code)]

pub mod ref64;

use aegis_audit::audit;
use aegis_audit::grad::GradSpec;
use aegis_audit::onnx::proto::ModelProto;
use aegis_audit::runtime::{self, Session, SessionConfig, TensorData};
use prost::Message;

/// Loads ONNX Runtime (the project's `.ort/` folder or wherever `runtime::init` finds it).
pub fn init_ort() {
    runtime::init(None).unwrap_or_else(|e| panic!("{e}"));
}

/// A one-thread CPU session config (the machine is shared).
pub fn config() -> SessionConfig {
    SessionConfig { intra_threads: 1, ..SessionConfig::default() }
}

/// Probes shapes and builds the gradient graph of `model`.
pub fn grad_model(model: &ModelProto, spec: &GradSpec) -> Result<ModelProto, String> {
    init_ort();
    audit::gradient_graph(model, spec, &config()).map_err(|e| e.to_string())
}

/// Output of one gradient-graph evaluation.
pub struct GradOut {
    pub logits: Vec<f32>,
    pub features: Vec<f32>,
    pub loss: Vec<f32>,
    pub grad: Vec<f32>,
    pub grad_shape: Vec<i64>,
}

/// Runs a gradient graph on `x` (shape `shape`) and labels `y`.
pub fn eval_grad(g: &ModelProto, shape: &[i64], x: &[f32], y: &[i64]) -> Result<GradOut, String> {
    init_ort();
    let mut s = Session::from_bytes(&g.encode_to_vec(), &config()).map_err(|e| e.to_string())?;
    let outs = s
        .run(&[
            ("x", TensorData::f32(shape.to_vec(), x.to_vec())),
            ("y", TensorData::i64(vec![y.len() as i64], y.to_vec())),
        ])
        .map_err(|e| e.to_string())?;
    let get = |n: &str| {
        outs.iter()
            .find(|o| o.0 == n)
            .map(|o| (o.1.shape.clone(), o.1.as_f32().map(<[f32]>::to_vec)))
            .and_then(|(s, v)| Some((s, v?)))
            .ok_or_else(|| format!("float output '{n}' missing"))
    };
    let grad = get("grad")?;
    Ok(GradOut {
        logits: get("logits")?.1,
        features: get("features")?.1,
        loss: get("loss")?.1,
        grad_shape: grad.0,
        grad: grad.1,
    })
}

/// ‖a − b‖ / ‖b‖.
pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
    let den: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    num / den.max(1e-30)
}
