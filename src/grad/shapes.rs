//! Static shapes of the tensors the backward rules need, as seen at batch sizes 1 and 2 (inferred
//! statically by `onnx::infer`, or probed by a caller), so that each dimension is known and so is
//! whether it follows the batch size.

use std::collections::HashMap;

use crate::grad::GradError;

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

    /// Adds every shape of `other` (replacing known ones).
    pub fn extend(&mut self, other: ShapeMap) {
        self.shapes.extend(other.shapes);
    }

    /// Number of tensors with a known shape.
    pub fn len(&self) -> usize {
        self.shapes.len()
    }

    /// Whether no shape is known.
    pub fn is_empty(&self) -> bool {
        self.shapes.is_empty()
    }

    /// Elements per image of the tensors that follow the batch, from their shapes at batch size 2:
    /// in a map of the input→logits path (what [`crate::grad::static_shapes`] returns), the
    /// activations the gradient graph keeps from its forward pass for the backward one.
    pub fn per_image_elements(&self) -> u64 {
        self.shapes
            .values()
            .filter(|s| s.batch.iter().any(|&b| b))
            .map(|s| s.dims.iter().map(|&d| d.max(0) as u64).fold(1u64, u64::saturating_mul) / 2)
            .fold(0, u64::saturating_add)
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
    fn per_image_elements_count_only_tensors_that_follow_the_batch() {
        let at1 = HashMap::from([
            ("act".to_string(), vec![1, 8, 4, 4]),
            ("flat".to_string(), vec![1, 128]),
            ("weight".to_string(), vec![8, 3, 3, 3]),
        ]);
        let at2 = HashMap::from([
            ("act".to_string(), vec![2, 8, 4, 4]),
            ("flat".to_string(), vec![2, 128]),
            ("weight".to_string(), vec![8, 3, 3, 3]),
        ]);
        let m = ShapeMap::from_probes(&at1, &at2).unwrap();
        assert_eq!(m.per_image_elements(), 8 * 4 * 4 + 128);
    }

    #[test]
    fn rank_mismatch_between_runs_is_an_error() {
        let at1 = HashMap::from([("a".to_string(), vec![1, 3])]);
        let at2 = HashMap::from([("a".to_string(), vec![2, 3, 1])]);
        assert!(ShapeMap::from_probes(&at1, &at2).is_err());
    }
}
