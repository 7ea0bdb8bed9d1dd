//! Input normalisation in front of a model that expects normalised images rather than pixels in
//! [0, 1] (`(x − mean) / std` per channel, as torchvision's `Normalize` does outside the model): the
//! gradient graph then takes pixels in [0, 1], where every budget of the audit is set, and the model
//! sees what it was trained on. [`normalise_front`] puts a `Sub` and a `Div` by per-channel constants
//! between the (NCHW) image input and the nodes that read it.

use serde::Serialize;

use super::layout::{fresh_name, rename_reads};
use crate::grad::GradError;
use crate::onnx::builder::tensor_f32;
use crate::onnx::proto::{ModelProto, NodeProto};

/// The largest number of values `--input-mean` or `--input-std` may list.
pub const MAX_NORMALISATION_VALUES: usize = 4096;

/// Per-channel mean and standard deviation of the model's input normalisation, in pixel units of
/// [0, 1]: one value for every channel, or one value per channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputNormalisation {
    /// Subtracted from each channel.
    pub mean: Vec<f32>,
    /// Each channel is divided by it after the subtraction.
    pub std: Vec<f32>,
}

impl InputNormalisation {
    /// Checks the values alone: at least one of each, at most [`MAX_NORMALISATION_VALUES`], every
    /// value finite, every standard deviation above 0. The message names the list at fault.
    pub fn check(&self) -> Result<(), String> {
        for (flag, values) in [("--input-mean", &self.mean), ("--input-std", &self.std)] {
            if values.is_empty() || values.len() > MAX_NORMALISATION_VALUES {
                return Err(format!(
                    "{flag}: {} values; give one for every channel or one per channel (at most \
                     {MAX_NORMALISATION_VALUES})",
                    values.len()
                ));
            }
            if let Some(v) = values.iter().find(|v| !v.is_finite()) {
                return Err(format!("{flag}: {v} is not a finite number"));
            }
        }
        if let Some(v) = self.std.iter().find(|v| **v <= 0.0) {
            return Err(format!("--input-std: {v}: a standard deviation must be above 0"));
        }
        Ok(())
    }

    /// The mean and standard deviation per channel of an input with `channels` channels, or a message
    /// naming the list whose length fits neither 1 nor `channels`.
    pub fn per_channel(&self, channels: usize) -> Result<(Vec<f32>, Vec<f32>), String> {
        let expand = |flag: &str, v: &[f32]| match v.len() {
            1 => Ok(vec![v[0]; channels]),
            n if n == channels => Ok(v.to_vec()),
            n => Err(format!("{flag}: {n} values for a model whose image input has {channels} channel(s)")),
        };
        Ok((expand("--input-mean", &self.mean)?, expand("--input-std", &self.std)?))
    }
}

/// A copy of `model` whose NCHW image input `input` (of `channels` channels) is normalised by
/// `normalisation` before any node reads it: `(input − mean) / std`, with `[1, C, 1, 1]` constants.
pub fn normalise_front(
    model: &ModelProto,
    input: &str,
    channels: usize,
    normalisation: &InputNormalisation,
) -> Result<ModelProto, GradError> {
    let (mean, std) = normalisation.per_channel(channels).map_err(GradError::BadModel)?;
    let mut m = model.clone();
    let g = m.graph.as_mut().ok_or_else(|| GradError::BadModel("the model has no graph".into()))?;
    let normalised = fresh_name(g, &format!("{input}__normalised"));
    rename_reads(g, input, &normalised);
    let (mean_name, std_name, centred) = (
        fresh_name(g, &format!("{input}__mean")),
        fresh_name(g, &format!("{input}__std")),
        fresh_name(g, &format!("{input}__centred")),
    );
    let dims = [1, channels as i64, 1, 1];
    g.initializer.push(tensor_f32(&mean_name, &dims, &mean));
    g.initializer.push(tensor_f32(&std_name, &dims, &std));
    let node = |op: &str, inputs: [&str; 2], output: &str| NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.to_string()],
        name: Some(format!("{output}_{}", op.to_lowercase())),
        op_type: Some(op.into()),
        ..Default::default()
    };
    g.node.insert(0, node("Div", [&centred, &std_name], &normalised));
    g.node.insert(0, node("Sub", [input, &mean_name], &centred));
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::InputNormalisation;

    fn n(mean: &[f32], std: &[f32]) -> InputNormalisation {
        InputNormalisation { mean: mean.to_vec(), std: std.to_vec() }
    }

    #[test]
    fn values_are_checked_and_named() {
        assert!(n(&[0.485, 0.456, 0.406], &[0.229, 0.224, 0.225]).check().is_ok());
        assert_eq!(n(&[0.5], &[0.0]).check().unwrap_err(), "--input-std: 0: a standard deviation must be above 0");
        assert_eq!(n(&[f32::NAN], &[1.0]).check().unwrap_err(), "--input-mean: NaN is not a finite number");
        assert!(n(&[], &[1.0]).check().unwrap_err().starts_with("--input-mean: 0 values"));
    }

    #[test]
    fn one_value_serves_every_channel_and_other_counts_are_refused() {
        assert_eq!(n(&[0.5], &[0.25]).per_channel(3).unwrap(), (vec![0.5; 3], vec![0.25; 3]));
        assert_eq!(n(&[0.1, 0.2], &[1.0]).per_channel(2).unwrap(), (vec![0.1, 0.2], vec![1.0, 1.0]));
        assert_eq!(
            n(&[0.1, 0.2], &[1.0]).per_channel(3).unwrap_err(),
            "--input-mean: 2 values for a model whose image input has 3 channel(s)"
        );
    }
}
