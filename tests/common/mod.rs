//! Test harness for the gradient graph: ONNX Runtime through `ort` (loaded from the project's
//! `.ort/` folder), a [`ShapeProbe`] over it, and helpers to build and run gradient graphs.
#![allow(dead_code)]

pub mod ref64;

use std::path::PathBuf;
use std::sync::Once;

use aegis_audit::grad::{self, GradSpec, ShapeMap, ShapeProbe};
use aegis_audit::onnx::proto::ModelProto;
use ort::session::Session;
use ort::value::{Tensor, ValueType};
use prost::Message;

static INIT: Once = Once::new();

/// Loads ONNX Runtime once per test process.
pub fn init_ort() {
    INIT.call_once(|| {
        let lib = std::env::var_os("ORT_DYLIB_PATH")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".ort/libonnxruntime.so.1.31.1")
            });
        let env = ort::init_from(&lib)
            .unwrap_or_else(|e| panic!("loading ONNX Runtime from {}: {e}", lib.display()))
            .build()
            .unwrap_or_else(|e| panic!("ONNX Runtime environment: {e}"));
        // The environment lives for the whole test process.
        std::mem::forget(env);
    });
}

/// A session over a serialized model (one intra-op thread: the machine is shared).
pub fn session(bytes: &[u8]) -> Result<Session, String> {
    init_ort();
    Session::builder()
        .and_then(|b| b.with_intra_threads(1))
        .map_err(|e| e.to_string())?
        .commit_from_memory(bytes)
        .map_err(|e| e.to_string())
}

/// An input value.
pub enum In {
    F32(Vec<i64>, Vec<f32>),
    I64(Vec<i64>, Vec<i64>),
}

/// Runs `bytes` on named inputs and returns every float32 output (name, shape, values).
pub fn run(bytes: &[u8], inputs: Vec<(&str, In)>) -> Result<Vec<(String, Vec<i64>, Vec<f32>)>, String> {
    let mut s = session(bytes)?;
    let mut vals = Vec::new();
    for (name, v) in inputs {
        let dv = match v {
            In::F32(shape, data) => Tensor::from_array((shape, data)).map(|t| t.into_dyn()),
            In::I64(shape, data) => Tensor::from_array((shape, data)).map(|t| t.into_dyn()),
        }
        .map_err(|e| e.to_string())?;
        vals.push((name.to_string(), dv));
    }
    let outs = s.run(vals).map_err(|e| e.to_string())?;
    let mut res = Vec::new();
    for (name, v) in outs.iter() {
        if let Ok((shape, data)) = v.try_extract_tensor::<f32>() {
            res.push((name.to_string(), shape.to_vec(), data.to_vec()));
        }
    }
    Ok(res)
}

/// Probes shapes with ONNX Runtime.
pub struct OrtProbe;

impl ShapeProbe for OrtProbe {
    fn output_shapes(
        &mut self,
        model: &[u8],
        input: &str,
        input_shape: &[i64],
    ) -> Result<Vec<(String, Vec<i64>)>, String> {
        let mut s = session(model)?;
        let n: i64 = input_shape.iter().product();
        let t = Tensor::from_array((input_shape.to_vec(), vec![0f32; n as usize]))
            .map_err(|e| e.to_string())?;
        let outs = s
            .run(vec![(input.to_string(), t.into_dyn())])
            .map_err(|e| e.to_string())?;
        let mut res = Vec::new();
        for (name, v) in outs.iter() {
            if let ValueType::Tensor { shape, .. } = v.dtype() {
                res.push((name.to_string(), shape.to_vec()));
            }
        }
        Ok(res)
    }
}

/// Probes shapes and builds the gradient graph of `model`.
pub fn grad_model(model: &ModelProto, spec: &GradSpec) -> Result<ModelProto, String> {
    let tensors = grad::shape_probe_tensors(model, spec).map_err(|e| e.to_string())?;
    let mut shapes: ShapeMap =
        grad::shapes::probe(model, &spec.input, &tensors, &mut OrtProbe).map_err(|e| e.to_string())?;
    grad::add_initializer_shapes(model, &mut shapes);
    grad::build(model, spec, &shapes).map_err(|e| e.to_string())
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
    let outs = run(
        &g.encode_to_vec(),
        vec![
            ("x", In::F32(shape.to_vec(), x.to_vec())),
            ("y", In::I64(vec![y.len() as i64], y.to_vec())),
        ],
    )?;
    let get = |n: &str| {
        outs.iter()
            .find(|o| o.0 == n)
            .cloned()
            .ok_or_else(|| format!("output '{n}' missing"))
    };
    let grad = get("grad")?;
    Ok(GradOut {
        logits: get("logits")?.2,
        features: get("features")?.2,
        loss: get("loss")?.2,
        grad_shape: grad.1,
        grad: grad.2,
    })
}

/// ‖a − b‖ / ‖b‖.
pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
    let den: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    num / den.max(1e-30)
}
