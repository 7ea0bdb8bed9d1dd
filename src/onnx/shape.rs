//! Declared shapes: the one [`Dim`] type (a fixed size, a named symbolic size, or unknown) and the
//! one place a `ValueInfoProto`'s tensor shape is read ([`declared_shape`]) and written back
//! ([`crate::onnx::builder::value_info`]).

use std::fmt;

use serde::Serialize;

use crate::onnx::proto::tensor_shape_proto::dimension::Value as DimValue;
use crate::onnx::proto::type_proto::Value as TypeValue;
use crate::onnx::proto::ValueInfoProto;

/// One declared dimension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Dim {
    /// A fixed size.
    Fixed(i64),
    /// A named symbolic size (ONNX `dim_param`, e.g. the batch `N`).
    Param(String),
    /// Neither a size nor a name.
    Unknown,
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(v) => write!(f, "{v}"),
            Dim::Param(s) => write!(f, "{s}"),
            Dim::Unknown => write!(f, "?"),
        }
    }
}

/// Formats a shape as `[N, 3, 28, 28]`.
pub fn shape_string(shape: &[Dim]) -> String {
    let parts: Vec<String> = shape.iter().map(Dim::to_string).collect();
    format!("[{}]", parts.join(", "))
}

/// Declared shape of a tensor-typed value: `None` when the value is not a tensor or declares no
/// shape. An empty `dim_param` reads as [`Dim::Unknown`].
pub fn declared_shape(vi: &ValueInfoProto) -> Option<Vec<Dim>> {
    let Some(TypeValue::TensorType(tt)) = vi.r#type.as_ref()?.value.as_ref() else {
        return None;
    };
    let shape = tt.shape.as_ref()?;
    Some(
        shape
            .dim
            .iter()
            .map(|d| match &d.value {
                Some(DimValue::DimValue(v)) => Dim::Fixed(*v),
                Some(DimValue::DimParam(s)) if !s.is_empty() => Dim::Param(s.clone()),
                _ => Dim::Unknown,
            })
            .collect(),
    )
}

/// Declared element type of a tensor-typed value (an ONNX `DataType` number).
pub fn declared_elem_type(vi: &ValueInfoProto) -> Option<i32> {
    match vi.r#type.as_ref()?.value.as_ref()? {
        TypeValue::TensorType(tt) => tt.elem_type,
        _ => None,
    }
}
