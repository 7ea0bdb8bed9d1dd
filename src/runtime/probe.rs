//! The shape probe: runs a copy of a model whose outputs are exactly the requested tensors, on zero
//! images at batch sizes 1 and 2, and returns the shapes ONNX Runtime computed. Used only for the
//! tensors static shape inference (`onnx::infer`) could not determine, after it has checked every
//! node it could (so no impossible shape reaches ONNX Runtime from the ops it knows).

use std::collections::HashMap;

use prost::Message;

use crate::onnx::builder::value_info;
use crate::onnx::proto::tensor_proto::DataType;
use crate::onnx::proto::ModelProto;
use crate::onnx::shape::{declared_shape, Dim};

use super::{RuntimeError, Session, SessionConfig, TensorData};

/// Shapes of tensors by name, at one batch size.
pub type ProbedShapes = HashMap<String, Vec<i64>>;

/// Runs `model` with the float32 image input `input` (static apart from its first dimension) on
/// zeros at batch sizes 1 and 2, with `tensors` as the outputs, and returns their shapes in each
/// run (the input included).
pub fn probe_shapes(
    model: &ModelProto,
    input: &str,
    tensors: &[String],
    config: &SessionConfig,
) -> Result<(ProbedShapes, ProbedShapes), RuntimeError> {
    let fail = |reason: String| RuntimeError::Session(format!("shape probe: {reason}"));
    let graph = model.graph.as_ref().ok_or_else(|| fail("the model has no graph".into()))?;
    let vi = graph
        .input
        .iter()
        .find(|v| v.name.as_deref() == Some(input))
        .ok_or_else(|| fail(format!("no graph input '{input}'")))?;
    let dims = declared_shape(vi).ok_or_else(|| fail(format!("input '{input}' declares no tensor shape")))?;
    let mut probe_model = model.clone();
    {
        let g = probe_model.graph.as_mut().expect("checked above");
        g.output =
            tensors.iter().filter(|t| t.as_str() != input).map(|t| value_info(t, DataType::Float, None)).collect();
        g.value_info.clear();
        // A batch dimension declared as a fixed size would refuse the batch-2 run: make it symbolic.
        if let Some(vi) = g.input.iter_mut().find(|v| v.name.as_deref() == Some(input)) {
            let fixed: Vec<Dim> =
                dims.iter().enumerate().map(|(i, d)| if i == 0 { Dim::Param("N".into()) } else { d.clone() }).collect();
            *vi = value_info(input, DataType::Float, Some(&fixed));
        }
        for o in &mut g.output {
            // Leave the element type to ONNX Runtime's inference: probed tensors may be int64.
            o.r#type = None;
        }
    }
    let bytes = probe_model.encode_to_vec();
    let mut session = Session::from_bytes(&bytes, config)?;
    let mut runs = Vec::with_capacity(2);
    for batch in [1i64, 2] {
        let mut shape = Vec::with_capacity(dims.len());
        for (i, d) in dims.iter().enumerate() {
            match (i, d) {
                (0, _) => shape.push(batch),
                (_, Dim::Fixed(v)) if *v > 0 => shape.push(*v),
                _ => {
                    return Err(fail(format!(
                        "input '{input}' dimension {i} is {d}: only the batch (first) dimension may be symbolic"
                    )))
                }
            }
        }
        let n: i64 = shape.iter().product();
        let x = TensorData::f32(shape.clone(), vec![0.0; n.max(0) as usize]);
        let outs = session.run(&[(input, x)]).map_err(|e| match e {
            RuntimeError::Run(m) => RuntimeError::Run(format!("shape probe at batch {batch}: {m}")),
            other => other,
        })?;
        let mut map: ProbedShapes = outs.into_iter().map(|(name, t)| (name, t.shape)).collect();
        map.insert(input.to_string(), shape);
        runs.push(map);
    }
    let at2 = runs.pop().expect("two runs");
    let at1 = runs.pop().expect("two runs");
    Ok((at1, at2))
}
