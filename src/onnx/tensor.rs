//! Tensor sizes and data: element types, declared element counts and byte sizes (checked against
//! the limits), consistency of the stored data with the declared shape, and reading values.

use crate::onnx::proto::tensor_proto::DataType;
use crate::onnx::proto::TensorProto;
use crate::onnx::{LoadLimits, OnnxError};

/// The tensor's name, or `<unnamed>`.
pub fn tensor_name(t: &TensorProto) -> &str {
    t.name.as_deref().unwrap_or("<unnamed>")
}

/// A short name of an ONNX element type (`float32`, `int64`, ...), `type N` when unknown.
pub fn elem_type_name(data_type: i32) -> String {
    match DataType::try_from(data_type) {
        Ok(DataType::Float) => "float32".into(),
        Ok(DataType::Double) => "float64".into(),
        Ok(DataType::Float16) => "float16".into(),
        Ok(DataType::Bfloat16) => "bfloat16".into(),
        Ok(dt) => dt.as_str_name().to_ascii_lowercase(),
        Err(_) => format!("type {data_type}"),
    }
}

/// Bits per element of a fixed-size element type; `None` for strings and unknown types.
pub fn elem_bits(data_type: i32) -> Option<u64> {
    let dt = DataType::try_from(data_type).ok()?;
    Some(match dt {
        DataType::Undefined | DataType::String => return None,
        DataType::Uint4 | DataType::Int4 | DataType::Float4e2m1 => 4,
        DataType::Uint8
        | DataType::Int8
        | DataType::Bool
        | DataType::Float8e4m3fn
        | DataType::Float8e4m3fnuz
        | DataType::Float8e5m2
        | DataType::Float8e5m2fnuz
        | DataType::Float8e8m0 => 8,
        DataType::Uint16 | DataType::Int16 | DataType::Float16 | DataType::Bfloat16 => 16,
        DataType::Float | DataType::Int32 | DataType::Uint32 => 32,
        DataType::Double | DataType::Int64 | DataType::Uint64 | DataType::Complex64 => 64,
        DataType::Complex128 => 128,
    })
}

fn err(t: &TensorProto, reason: String) -> OnnxError {
    OnnxError::Tensor { tensor: tensor_name(t).to_string(), reason }
}

/// Checks every dimension of `dims` (non-negative, at most `limits.max_dim`) and returns the
/// element count, which must not exceed `limits.max_tensor_elements`.
pub fn checked_element_count(name: &str, dims: &[i64], limits: &LoadLimits) -> Result<u64, OnnxError> {
    let fail = |reason: String| OnnxError::Tensor { tensor: name.to_string(), reason };
    let mut count: u64 = 1;
    for &d in dims {
        if d < 0 {
            return Err(fail(format!("negative dimension {d} in dims {dims:?}")));
        }
        if d > limits.max_dim {
            return Err(fail(format!("dimension {d} in dims {dims:?} is above the limit of {}", limits.max_dim)));
        }
        count = count.checked_mul(d as u64).filter(|&c| c <= limits.max_tensor_elements).ok_or_else(|| {
            fail(format!("dims {dims:?} declare more than the limit of {} elements", limits.max_tensor_elements))
        })?;
    }
    Ok(count)
}

/// Bytes the tensor's declared shape and type need when stored as `raw_data`
/// (`None` for string tensors, whose size is not fixed).
pub fn declared_bytes(t: &TensorProto, limits: &LoadLimits) -> Result<Option<u64>, OnnxError> {
    let count = checked_element_count(tensor_name(t), &t.dims, limits)?;
    let data_type = t.data_type.unwrap_or(0);
    if data_type == DataType::String as i32 {
        return Ok(None);
    }
    let bits = elem_bits(data_type).ok_or_else(|| err(t, format!("unsupported element type {data_type}")))?;
    Ok(Some((count * bits).div_ceil(8)))
}

/// Checks that the data stored in the tensor (raw or typed fields) matches its declared shape and
/// type. External data must have been resolved into `raw_data` first.
pub fn check_data(t: &TensorProto, limits: &LoadLimits) -> Result<(), OnnxError> {
    if t.segment.is_some() {
        return Err(err(t, "segmented tensors are not supported".into()));
    }
    let count = checked_element_count(tensor_name(t), &t.dims, limits)?;
    let bytes = declared_bytes(t, limits)?;
    if let Some(raw) = &t.raw_data {
        let expected = bytes.ok_or_else(|| err(t, "string tensor with raw_data".into()))?;
        if raw.len() as u64 != expected {
            return Err(err(
                t,
                format!(
                    "dims {:?} of {} need {expected} bytes but the tensor holds {} bytes",
                    t.dims,
                    elem_type_name(t.data_type.unwrap_or(0)),
                    raw.len()
                ),
            ));
        }
        return Ok(());
    }
    let dt = DataType::try_from(t.data_type.unwrap_or(0)).unwrap_or(DataType::Undefined);
    let (held, per_elem) = match dt {
        DataType::Float => (t.float_data.len(), 1),
        DataType::Complex64 => (t.float_data.len(), 2),
        DataType::Double => (t.double_data.len(), 1),
        DataType::Complex128 => (t.double_data.len(), 2),
        DataType::Int64 => (t.int64_data.len(), 1),
        DataType::Uint32 | DataType::Uint64 => (t.uint64_data.len(), 1),
        DataType::String => (t.string_data.len(), 1),
        DataType::Uint4 | DataType::Int4 | DataType::Float4e2m1 => {
            (t.int32_data.len() * 2, 1) // two 4-bit values per int32 entry
        }
        DataType::Undefined => {
            return Err(err(t, "element type is undefined".into()));
        }
        _ => (t.int32_data.len(), 1),
    };
    let needed = count * per_elem;
    let ok = match dt {
        DataType::Uint4 | DataType::Int4 | DataType::Float4e2m1 => held as u64 == needed || held as u64 == needed + 1,
        _ => held as u64 == needed,
    };
    if !ok {
        return Err(err(
            t,
            format!(
                "dims {:?} declare {count} elements of {} but the tensor holds {held} values",
                t.dims,
                elem_type_name(t.data_type.unwrap_or(0))
            ),
        ));
    }
    Ok(())
}

/// The tensor's values as `f32` (from a float32 tensor, raw or typed).
pub fn tensor_f32(t: &TensorProto) -> Result<Vec<f32>, OnnxError> {
    let fail = |reason: String| OnnxError::TensorData { tensor: tensor_name(t).to_string(), wanted: "float32", reason };
    if t.data_type != Some(DataType::Float as i32) {
        return Err(fail(format!("element type is {}", elem_type_name(t.data_type.unwrap_or(0)))));
    }
    match &t.raw_data {
        Some(raw) if raw.len() % 4 == 0 => {
            Ok(raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
        }
        Some(raw) => Err(fail(format!("raw_data has {} bytes", raw.len()))),
        None if t.external_data.is_empty() => Ok(t.float_data.clone()),
        None => Err(fail("external data was not resolved".into())),
    }
}

/// The tensor's values as `i64` (from an int64 or int32 tensor, raw or typed).
pub fn tensor_i64(t: &TensorProto) -> Result<Vec<i64>, OnnxError> {
    let fail = |reason: String| OnnxError::TensorData { tensor: tensor_name(t).to_string(), wanted: "int64", reason };
    let dt = t.data_type.unwrap_or(0);
    match (DataType::try_from(dt), &t.raw_data) {
        (Ok(DataType::Int64), Some(raw)) if raw.len() % 8 == 0 => {
            Ok(raw.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("chunk of 8"))).collect())
        }
        (Ok(DataType::Int32), Some(raw)) if raw.len() % 4 == 0 => {
            Ok(raw.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().expect("chunk of 4")) as i64).collect())
        }
        (Ok(DataType::Int64), None) => Ok(t.int64_data.clone()),
        (Ok(DataType::Int32), None) => Ok(t.int32_data.iter().map(|&v| v as i64).collect()),
        (Ok(DataType::Int64 | DataType::Int32), Some(raw)) => Err(fail(format!("raw_data has {} bytes", raw.len()))),
        _ => Err(fail(format!("element type is {}", elem_type_name(dt)))),
    }
}
