//! Reading, validating, writing and analysing ONNX models: the vendored protobuf types, safe
//! loading (limits, external data confined to the model's directory, no custom-op domains), graph
//! topology, and finding the image input, logits and feature tensors.
//!
//! Entry points: [`load_model`] (with [`LoadLimits`]) gives a validated [`Model`] whose tensors
//! are all inline; [`analyze`] finds what `inspect` prints; [`graph::Graph`] and
//! [`attr::NodeExt`] are the topology and attribute helpers the gradient builder uses.

pub mod analyze;
pub mod attr;
pub mod builder;
mod error;
pub mod external;
pub mod graph;
pub mod infer;
mod limits;
mod load;
pub mod proto;
pub mod shape;
pub mod tensor;
pub mod validate;

pub use crate::escape::{escape, Escaped};
pub use analyze::{analyze, Analysis, Feature, FeatureChoice, ImageInput, Logits};
pub use error::OnnxError;
pub use infer::{static_shapes, StaticShapes};
pub use limits::LoadLimits;
pub use load::{decode, encode, load_model, Model};
pub use shape::Dim;
