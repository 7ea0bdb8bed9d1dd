//! Typed access to node attributes with defaults, in tract's `get_attr_opt` style; errors name the
//! node, its op and the attribute. The one attribute reader: static shape inference and the
//! gradient rules (`grad::rules::Ctx`) read attributes through it.

use crate::onnx::proto::attribute_proto::AttributeType;
use crate::onnx::proto::{AttributeProto, GraphProto, NodeProto, TensorProto};
use crate::onnx::OnnxError;

/// A Rust type an attribute can be read as.
pub trait AttrValue<'a>: Sized {
    /// The ONNX attribute type expected, for messages (`INT`, `FLOATS`, ...).
    const EXPECTED: AttributeType;
    /// The value, when the attribute holds this type.
    fn from_attr(attr: &'a AttributeProto) -> Option<Self>;
}

fn type_of(attr: &AttributeProto) -> AttributeType {
    attr.r#type.and_then(|t| AttributeType::try_from(t).ok()).unwrap_or(AttributeType::Undefined)
}

impl<'a> AttrValue<'a> for i64 {
    const EXPECTED: AttributeType = AttributeType::Int;
    fn from_attr(attr: &'a AttributeProto) -> Option<Self> {
        attr.i.filter(|_| type_of(attr) == Self::EXPECTED)
    }
}

impl<'a> AttrValue<'a> for f32 {
    const EXPECTED: AttributeType = AttributeType::Float;
    fn from_attr(attr: &'a AttributeProto) -> Option<Self> {
        attr.f.filter(|_| type_of(attr) == Self::EXPECTED)
    }
}

impl<'a> AttrValue<'a> for &'a str {
    const EXPECTED: AttributeType = AttributeType::String;
    fn from_attr(attr: &'a AttributeProto) -> Option<Self> {
        if type_of(attr) != Self::EXPECTED {
            return None;
        }
        std::str::from_utf8(attr.s.as_deref()?).ok()
    }
}

impl<'a> AttrValue<'a> for &'a [i64] {
    const EXPECTED: AttributeType = AttributeType::Ints;
    fn from_attr(attr: &'a AttributeProto) -> Option<Self> {
        (type_of(attr) == Self::EXPECTED).then_some(attr.ints.as_slice())
    }
}

impl<'a> AttrValue<'a> for &'a [f32] {
    const EXPECTED: AttributeType = AttributeType::Floats;
    fn from_attr(attr: &'a AttributeProto) -> Option<Self> {
        (type_of(attr) == Self::EXPECTED).then_some(attr.floats.as_slice())
    }
}

impl<'a> AttrValue<'a> for &'a TensorProto {
    const EXPECTED: AttributeType = AttributeType::Tensor;
    fn from_attr(attr: &'a AttributeProto) -> Option<Self> {
        attr.t.as_ref().filter(|_| type_of(attr) == Self::EXPECTED)
    }
}

impl<'a> AttrValue<'a> for &'a GraphProto {
    const EXPECTED: AttributeType = AttributeType::Graph;
    fn from_attr(attr: &'a AttributeProto) -> Option<Self> {
        attr.g.as_ref().filter(|_| type_of(attr) == Self::EXPECTED)
    }
}

/// Attribute access on a node: `node.get_attr_opt::<i64>("axis")?.unwrap_or(1)`.
pub trait NodeExt {
    /// The op type (`""` when missing).
    fn op(&self) -> &str;
    /// The node's name (`"<unnamed>"` when missing).
    fn node_name(&self) -> &str;
    /// The raw attribute `name`, if present.
    fn attr(&self, name: &str) -> Option<&AttributeProto>;
    /// The attribute as `T`; `None` when absent, an error when present with another type.
    fn get_attr_opt<'a, T: AttrValue<'a>>(&'a self, name: &str) -> Result<Option<T>, OnnxError>;
    /// The attribute as `T`; an error when absent or of another type.
    fn get_attr<'a, T: AttrValue<'a>>(&'a self, name: &str) -> Result<T, OnnxError> {
        self.get_attr_opt(name)?.ok_or_else(|| self.attr_error(name, "required attribute is missing".into()))
    }
    /// The attribute as `T`, or `default` when absent.
    fn get_attr_or<'a, T: AttrValue<'a>>(&'a self, name: &str, default: T) -> Result<T, OnnxError> {
        Ok(self.get_attr_opt(name)?.unwrap_or(default))
    }
    /// An [`OnnxError::Attribute`] naming this node, its op and `attr`.
    fn attr_error(&self, attr: &str, reason: String) -> OnnxError {
        OnnxError::Attribute {
            node: self.node_name().to_string(),
            op: self.op().to_string(),
            attr: attr.to_string(),
            reason,
        }
    }
}

impl NodeExt for NodeProto {
    fn op(&self) -> &str {
        self.op_type.as_deref().unwrap_or("")
    }

    fn node_name(&self) -> &str {
        match self.name.as_deref() {
            Some(n) if !n.is_empty() => n,
            _ => "<unnamed>",
        }
    }

    fn attr(&self, name: &str) -> Option<&AttributeProto> {
        self.attribute.iter().find(|a| a.name.as_deref() == Some(name))
    }

    fn get_attr_opt<'a, T: AttrValue<'a>>(&'a self, name: &str) -> Result<Option<T>, OnnxError> {
        let Some(a) = self.attr(name) else {
            return Ok(None);
        };
        T::from_attr(a).map(Some).ok_or_else(|| {
            let found = type_of(a);
            let reason = if found != T::EXPECTED {
                format!("expected {}, found {}", T::EXPECTED.as_str_name(), found.as_str_name())
            } else if found == AttributeType::String {
                "the string is not valid UTF-8".to_string()
            } else {
                format!("of type {} but holds no value", found.as_str_name())
            };
            self.attr_error(name, reason)
        })
    }
}
