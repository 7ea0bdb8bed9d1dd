//! Static shapes of the tensors the backward rules need, probed by running the forward model once at
//! batch 1 and once at batch 2 (every needed tensor added as a graph output), so that each dimension
//! is known and so is whether it follows the batch size.

use std::collections::HashMap;

use prost::Message;

use crate::grad::GradError;
use crate::onnx::builder::value_info;
use crate::onnx::proto::tensor_proto::DataType;
use crate::onnx::proto::type_proto;
use crate::onnx::proto::ModelProto;
use crate::runtime::{Session, SessionConfig, TensorData};

/// The shape of one tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorShape {
    /// The dimensions as seen at batch size 2.
    pub dims: Vec<i64>,
    /// For each dimension, whether it changes with the batch size.
    pub batch: Vec<bool>,
}

impl TensorShape {
    /// A shape none of whose dimensions follow the batch (a weight, a constant).
    pub fn fixed(dims: &[i64]) -> Self {
        TensorShape { dims: dims.to_vec(), batch: vec![false; dims.len()] }
    }

    /// The rank.
    pub fn rank(&self) -> usize {
        self.dims.len()
    }
}

/// Static shapes by tensor name.
#[derive(Debug, Clone, Default)]
pub struct ShapeMap {
    shapes: HashMap<String, TensorShape>,
}

impl ShapeMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the shape of `name`.
    pub fn insert(&mut self, name: &str, shape: TensorShape) {
        self.shapes.insert(name.to_string(), shape);
    }

    /// The shape of `name`, if known.
    pub fn get(&self, name: &str) -> Option<&TensorShape> {
        self.shapes.get(name)
    }

    /// The shape of `name`, or [`GradError::MissingShape`].
    pub fn require(&self, name: &str) -> Result<&TensorShape, GradError> {
        self.get(name).ok_or_else(|| GradError::MissingShape(name.to_string()))
    }

    /// Combines the shapes seen at batch 1 and batch 2: a dimension that differs follows the batch.
    pub fn from_probes(at1: &HashMap<String, Vec<i64>>, at2: &HashMap<String, Vec<i64>>) -> Result<Self, GradError> {
        let mut map = ShapeMap::new();
        for (name, d2) in at2 {
            let d1 = at1
                .get(name)
                .ok_or_else(|| GradError::Probe(format!("tensor '{name}' missing from the batch-1 run")))?;
            if d1.len() != d2.len() {
                return Err(GradError::Probe(format!(
                    "tensor '{name}' has rank {} at batch 1 but {} at batch 2",
                    d1.len(),
                    d2.len()
                )));
            }
            let batch = d1.iter().zip(d2).map(|(a, b)| a != b).collect();
            map.insert(name, TensorShape { dims: d2.clone(), batch });
        }
        Ok(map)
    }
}

/// Runs a model once on zeros and reports the shapes of its outputs. Implemented over ONNX Runtime
/// by the caller (the library's runtime module, or a test harness).
pub trait ShapeProbe {
    /// Runs `model` (serialized ONNX) with the float32 input `input` of shape `input_shape` filled
    /// with zeros, and returns every graph output's name and shape.
    fn output_shapes(
        &mut self,
        model: &[u8],
        input: &str,
        input_shape: &[i64],
    ) -> Result<Vec<(String, Vec<i64>)>, String>;
}

/// Probes the shapes of `tensors` (names in `model`) by running a copy of the model whose outputs are
/// exactly those tensors, at batch sizes 1 and 2. The image input `input` must have a static shape
/// apart from its first (batch) dimension. The input itself is included in the returned map.
pub fn probe(
    model: &ModelProto,
    input: &str,
    tensors: &[String],
    runner: &mut dyn ShapeProbe,
) -> Result<ShapeMap, GradError> {
    let graph = model.graph.as_ref().ok_or_else(|| GradError::BadModel("the model has no graph".into()))?;
    let vi = graph
        .input
        .iter()
        .find(|v| v.name.as_deref() == Some(input))
        .ok_or_else(|| GradError::MissingTensor { name: input.to_string(), role: "image input" })?;
    let dims = input_dims(vi).ok_or_else(|| {
        GradError::BadModel(format!(
            "input '{input}' has no tensor shape: its dimensions after the batch must be static"
        ))
    })?;
    if let Some(Some(b)) = dims.first() {
        // ONNX Runtime refuses any other batch size for such an input (PyTorch's dynamo exporter
        // writes one when called without dynamic shapes).
        return Err(GradError::BadModel(format!(
            "image input '{input}' has a fixed batch size of {b}: aegis-audit runs the model on batches of \
             varying size; re-export it with a dynamic batch axis (torch.onnx.export(..., \
             dynamic_shapes=({{0: torch.export.Dim(\"N\")}},)) or dynamic_axes={{\"{input}\": {{0: \"N\"}}}})"
        )));
    }
    let mut probe_model = model.clone();
    {
        let g = probe_model.graph.as_mut().expect("checked above");
        g.output =
            tensors.iter().filter(|t| t.as_str() != input).map(|t| value_info(t, DataType::Float, None)).collect();
        g.value_info.clear();
        for o in &mut g.output {
            // Leave the element type to ONNX Runtime's inference: probed tensors may be int64.
            o.r#type = None;
        }
    }
    let bytes = probe_model.encode_to_vec();
    let mut runs = Vec::new();
    for batch in [1i64, 2] {
        let mut shape = Vec::with_capacity(dims.len());
        for (i, d) in dims.iter().enumerate() {
            match (i, d) {
                (0, _) => shape.push(batch),
                (_, Some(v)) => shape.push(*v),
                (_, None) => {
                    return Err(GradError::BadModel(format!(
                        "input '{input}' dimension {i} is symbolic: only the batch (first) dimension may be"
                    )))
                }
            }
        }
        let outs = runner
            .output_shapes(&bytes, input, &shape)
            .map_err(|e| GradError::Probe(format!("at batch {batch}: {e}")))?;
        let mut map: HashMap<String, Vec<i64>> = outs.into_iter().collect();
        map.insert(input.to_string(), shape);
        runs.push(map);
    }
    ShapeMap::from_probes(&runs[0], &runs[1])
}

/// A [`ShapeProbe`] over an ONNX Runtime session (the runtime must be initialised first, see
/// [`crate::runtime::init`]).
#[derive(Debug, Clone, Default)]
pub struct RuntimeProbe {
    /// Session settings for the probe runs.
    pub config: SessionConfig,
}

impl ShapeProbe for RuntimeProbe {
    fn output_shapes(
        &mut self,
        model: &[u8],
        input: &str,
        input_shape: &[i64],
    ) -> Result<Vec<(String, Vec<i64>)>, String> {
        let mut session = Session::from_bytes(model, &self.config).map_err(|e| e.to_string())?;
        let n: i64 = input_shape.iter().product();
        let x = TensorData::f32(input_shape.to_vec(), vec![0.0; n.max(0) as usize]);
        let outs = session.run(&[(input, x)]).map_err(|e| e.to_string())?;
        Ok(outs.into_iter().map(|(name, t)| (name, t.shape)).collect())
    }
}

/// The dimensions of a tensor value: `Some(n)` where static, `None` where symbolic or absent.
fn input_dims(vi: &crate::onnx::proto::ValueInfoProto) -> Option<Vec<Option<i64>>> {
    use crate::onnx::proto::tensor_shape_proto::dimension::Value;
    let ty = vi.r#type.as_ref()?;
    let Some(type_proto::Value::TensorType(t)) = &ty.value else {
        return None;
    };
    let shape = t.shape.as_ref()?;
    Some(
        shape
            .dim
            .iter()
            .map(|d| match &d.value {
                Some(Value::DimValue(v)) if *v > 0 => Some(*v),
                _ => None,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::ShapeMap;

    #[test]
    fn dims_that_change_between_batch_1_and_2_follow_the_batch() {
        let at1 = HashMap::from([("a".to_string(), vec![1, 3, 4])]);
        let at2 = HashMap::from([("a".to_string(), vec![2, 3, 4])]);
        let m = ShapeMap::from_probes(&at1, &at2).unwrap();
        let s = m.require("a").unwrap();
        assert_eq!(s.batch, vec![true, false, false]);
        assert_eq!(s.dims, vec![2, 3, 4]);
        assert!(m.require("b").is_err());
    }

    #[test]
    fn rank_mismatch_between_runs_is_an_error() {
        let at1 = HashMap::from([("a".to_string(), vec![1, 3])]);
        let at2 = HashMap::from([("a".to_string(), vec![2, 3, 1])]);
        assert!(ShapeMap::from_probes(&at1, &at2).is_err());
    }
}
