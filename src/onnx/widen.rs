//! Widening a half-precision model (float16 or bfloat16) to float32, so that it is analysed, run and
//! differentiated as the float32 models are: every half-precision tensor (initializers, Constant and
//! ConstantOfShape values, sparse tensors' values, in subgraphs too: validation's tensor walk) is
//! converted value for value (exactly: every float16 and bfloat16 value is a float32 value), every
//! declared half-precision type becomes float32, and a Cast (or any `to`/`dtype` attribute) to half
//! precision casts to float32 instead. The model then computes in float32 throughout: the same
//! function up to its half-precision roundings.

use crate::onnx::proto::tensor_proto::DataType;
use crate::onnx::proto::type_proto::Value as TypeValue;
use crate::onnx::proto::{GraphProto, ModelProto, TensorProto, TypeProto};
use crate::onnx::tensor::tensor_name;
use crate::onnx::{validate, LoadLimits, OnnxError};

/// What widening changed: the element type it widened from and how many tensors it converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Widened {
    /// `float16`, `bfloat16`, or `float16 and bfloat16`.
    pub from: String,
    /// Tensors converted (initializers and attribute values).
    pub tensors: usize,
}

/// The float32 value of a float16 bit pattern (IEEE 754 binary16), exact.
pub fn f16_to_f32(bits: u16) -> f32 {
    let sign = u32::from(bits >> 15) << 31;
    let exp = u32::from((bits >> 10) & 0x1f);
    let frac = u32::from(bits & 0x3ff);
    let magnitude = match (exp, frac) {
        (0, 0) => 0,
        // Subnormal: frac · 2^-24, exactly representable in float32.
        (0, f) => {
            let v = f as f32 * 2f32.powi(-24);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, 0) => 0x7f80_0000,
        (0x1f, f) => 0x7f80_0000 | (f << 13),
        (e, f) => ((e + 127 - 15) << 23) | (f << 13),
    };
    f32::from_bits(sign | magnitude)
}

/// The float32 value of a bfloat16 bit pattern (the upper half of a float32), exact.
pub fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits(u32::from(bits) << 16)
}

fn is_half(data_type: i32) -> bool {
    data_type == DataType::Float16 as i32 || data_type == DataType::Bfloat16 as i32
}

/// Widens `model` in place (see the module doc); `None` when it holds no half-precision type. The
/// float32 tensors it makes count against `limits.max_total_initializer_bytes` as validation counts them.
pub fn widen_half_precision(model: &mut ModelProto, limits: &LoadLimits) -> Result<Option<Widened>, OnnxError> {
    let mut seen = (false, false);
    let mut tensors = 0usize;
    let Some(graph) = model.graph.as_mut() else { return Ok(None) };
    validate::visit_tensors(graph, &mut |t| {
        tensors += usize::from(widen_tensor(t, &mut seen)?);
        Ok(())
    })?;
    widen_types(graph, &mut seen);
    let from = match seen {
        (false, false) => return Ok(None),
        (true, false) => "float16",
        (false, true) => "bfloat16",
        (true, true) => "float16 and bfloat16",
    };
    validate::check_total_bytes(graph, limits)?;
    Ok(Some(Widened { from: from.to_string(), tensors }))
}

fn note(data_type: i32, seen: &mut (bool, bool)) {
    if data_type == DataType::Float16 as i32 {
        seen.0 = true;
    } else if data_type == DataType::Bfloat16 as i32 {
        seen.1 = true;
    }
}

/// The declared types of `g` and its subgraphs (inputs, outputs, value infos, type attributes) and the
/// `to`/`dtype` attributes naming half precision, made float32.
fn widen_types(g: &mut GraphProto, seen: &mut (bool, bool)) {
    for vi in g.input.iter_mut().chain(g.output.iter_mut()).chain(g.value_info.iter_mut()) {
        if let Some(t) = vi.r#type.as_mut() {
            widen_type(t, seen);
        }
    }
    for a in g.node.iter_mut().flat_map(|n| n.attribute.iter_mut()) {
        let name = a.name.as_deref().unwrap_or("");
        if matches!(name, "to" | "dtype") && a.i.is_some_and(|v| is_half(v as i32)) {
            note(a.i.unwrap_or_default() as i32, seen);
            a.i = Some(DataType::Float as i64);
        }
        for tp in a.tp.iter_mut().chain(a.type_protos.iter_mut()) {
            widen_type(tp, seen);
        }
        for sub in a.g.iter_mut().chain(a.graphs.iter_mut()) {
            widen_types(sub, seen);
        }
    }
}

fn widen_type(t: &mut TypeProto, seen: &mut (bool, bool)) {
    match t.value.as_mut() {
        Some(TypeValue::TensorType(tt)) => {
            if let Some(e) = tt.elem_type.filter(|&e| is_half(e)) {
                note(e, seen);
                tt.elem_type = Some(DataType::Float as i32);
            }
        }
        Some(TypeValue::SequenceType(s)) => {
            if let Some(inner) = s.elem_type.as_deref_mut() {
                widen_type(inner, seen);
            }
        }
        Some(TypeValue::OptionalType(o)) => {
            if let Some(inner) = o.elem_type.as_deref_mut() {
                widen_type(inner, seen);
            }
        }
        Some(TypeValue::MapType(m)) => {
            if let Some(inner) = m.value_type.as_deref_mut() {
                widen_type(inner, seen);
            }
        }
        _ => {}
    }
}

/// Converts a half-precision tensor to float32 in place (raw little-endian bytes, or one value per
/// `int32_data` entry); false for any other tensor.
fn widen_tensor(t: &mut TensorProto, seen: &mut (bool, bool)) -> Result<bool, OnnxError> {
    let dt = t.data_type.unwrap_or(0);
    if !is_half(dt) {
        return Ok(false);
    }
    note(dt, seen);
    let convert = if dt == DataType::Float16 as i32 { f16_to_f32 } else { bf16_to_f32 };
    let bits: Vec<u16> = match &t.raw_data {
        Some(raw) if raw.len() % 2 == 0 => raw.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect(),
        Some(raw) => {
            return Err(OnnxError::Tensor {
                tensor: tensor_name(t).to_string(),
                reason: format!("half-precision raw data of odd length {}", raw.len()),
            })
        }
        None => t.int32_data.iter().map(|&v| v as u16).collect(),
    };
    let mut raw = Vec::with_capacity(bits.len() * 4);
    for b in bits {
        raw.extend_from_slice(&convert(b).to_le_bytes());
    }
    t.raw_data = Some(raw);
    t.int32_data.clear();
    t.data_type = Some(DataType::Float as i32);
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::{bf16_to_f32, f16_to_f32};

    #[test]
    fn half_precision_values_convert_exactly() {
        // (bits, value) pairs as IEEE 754 binary16 defines them (numpy.float16 agrees).
        let cases: [(u16, f32); 10] = [
            (0x0000, 0.0),
            (0x3c00, 1.0),
            (0xc000, -2.0),
            (0x3555, 0.333_251_95),
            (0x7bff, 65504.0),
            (0x0400, 6.103_515_6e-5),
            (0x0001, 5.960_464_5e-8),
            (0x83ff, -6.097_555e-5),
            (0x7c00, f32::INFINITY),
            (0xfc00, f32::NEG_INFINITY),
        ];
        for (bits, want) in cases {
            assert_eq!(f16_to_f32(bits), want, "{bits:#06x}");
        }
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0x8000).to_bits(), 0x8000_0000, "negative zero keeps its sign");
        // Every finite value against the format's definition, computed in float64:
        // (−1)^s · 2^(e − 15) · (1 + f/1024), or 2^−14 · f/1024 for e = 0.
        for bits in 0u16..=0xffff {
            let (s, e, f) = (bits >> 15, i32::from((bits >> 10) & 0x1f), f64::from(bits & 0x3ff));
            if e == 0x1f {
                continue;
            }
            let m = if e == 0 { 2f64.powi(-14) * f / 1024.0 } else { 2f64.powi(e - 15) * (1.0 + f / 1024.0) };
            let want = if s == 1 { -m } else { m };
            assert_eq!(f64::from(f16_to_f32(bits)), want, "{bits:#06x}");
        }
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
        assert_eq!(bf16_to_f32(0xc040), -3.0);
    }
}
