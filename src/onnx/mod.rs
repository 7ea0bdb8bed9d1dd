//! Reading, validating and writing ONNX models: the vendored protobuf types, safe loading (limits,
//! external data confined to the model's directory, no custom-op domains), graph topology, declared
//! and inferred shapes, and the image input's memory layout.
//!
//! Entry points: [`load_model`] (with [`LoadLimits`]) gives a validated [`Model`] whose tensors
//! are all inline; [`graph::Graph`] and [`attr::NodeExt`] are the topology and attribute helpers
//! the analysis ([`crate::analysis`]) and the gradient builder use.

pub mod attr;
pub mod builder;
mod error;
pub mod external;
pub mod graph;
pub mod infer;
pub mod layout;
mod limits;
mod load;
pub mod proto;
pub mod shape;
pub mod tensor;
pub mod validate;
pub mod widen;

pub use crate::escape::{escape, Escaped};
pub use error::OnnxError;
pub use infer::{static_shapes, StaticShapes};
pub use layout::{image_layout, Layout};
pub use limits::LoadLimits;
pub use load::{decode, encode, load_model, Model};
pub use shape::Dim;
