//! Reading a model file: the size cap, protobuf decoding and encoding (prost), and the hand-off to
//! validation and external-data resolution. The result, [`Model`], is self-contained.

use std::io::Read;
use std::path::{Path, PathBuf};

use prost::Message;

use crate::fsio::{self, FileError};
use crate::onnx::proto::ModelProto;
use crate::onnx::{validate, widen, LoadLimits, OnnxError};

/// A loaded, validated model: all tensor data inline, float32 where it was stored in half precision,
/// standard ONNX ops only, acyclic.
#[derive(Debug, Clone)]
pub struct Model {
    /// The decoded model (external data already moved into `raw_data`, `training_info` dropped).
    pub proto: ModelProto,
    /// The file it was read from.
    pub path: PathBuf,
    /// The version of the standard ONNX opset it imports.
    pub opset: i64,
    /// SHA-256 of the bytes that were read and decoded, lower-case hex.
    pub sha256: String,
    /// Size of those bytes.
    pub size_bytes: u64,
    /// The canonical paths of the external-data files its tensors were read from (none for a model
    /// stored in one file). Nothing may be written over them either.
    pub external_files: Vec<PathBuf>,
    /// Set when the model was stored in half precision and widened to float32 on loading
    /// ([`widen::widen_half_precision`]).
    pub widened: Option<widen::Widened>,
}

impl Model {
    /// The main graph (validation guarantees it is present).
    pub fn graph(&self) -> &crate::onnx::proto::GraphProto {
        self.proto.graph.as_ref().expect("validated model has a graph")
    }
}

/// Encodes a model as ONNX protobuf bytes.
pub fn encode(model: &ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}

/// Decodes ONNX protobuf bytes. Only decodes: use [`load_model`] for files from outside.
pub fn decode(bytes: &[u8]) -> Result<ModelProto, OnnxError> {
    if bytes.is_empty() {
        return Err(OnnxError::NotOnnx { reason: "empty input".into() });
    }
    let model = ModelProto::decode(bytes).map_err(|e| OnnxError::NotOnnx {
        reason: format!("protobuf decoding failed ({e}); the file may be truncated"),
    })?;
    if model.ir_version.is_none() || model.graph.is_none() {
        return Err(OnnxError::NotOnnx { reason: "no ir_version or no graph in the decoded message".into() });
    }
    Ok(model)
}

/// Reads, decodes and validates the model at `path` within `limits`, and reads its external data
/// (only from inside the model's directory).
pub fn load_model(path: &Path, limits: &LoadLimits) -> Result<Model, OnnxError> {
    let io = |source| OnnxError::Io { path: path.to_path_buf(), source };
    // Opened once, without blocking on a FIFO, and checked to be a regular file on the open descriptor.
    let (file, len) = fsio::open_input(path).map_err(|e| match e {
        FileError::NotRegular { kind, .. } => {
            OnnxError::NotOnnx { reason: format!("'{}' is {kind}, not a regular file", path.display()) }
        }
        other => OnnxError::Io { path: path.to_path_buf(), source: std::io::Error::other(other.problem()) },
    })?;
    if len > limits.max_file_bytes {
        return Err(OnnxError::FileTooLarge { path: path.to_path_buf(), size: len, limit: limits.max_file_bytes });
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(limits.max_file_bytes + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(OnnxError::FileTooLarge {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            limit: limits.max_file_bytes,
        });
    }
    let sha256 = format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let size_bytes = bytes.len() as u64;
    let mut proto = decode(&bytes).map_err(|e| match e {
        OnnxError::NotOnnx { reason } => OnnxError::NotOnnx { reason: format!("'{}': {reason}", path.display()) },
        other => other,
    })?;
    drop(bytes);
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let model_dir = parent.canonicalize().map_err(|source| OnnxError::Io { path: parent.clone(), source })?;
    let validate::Validated { opset, external_files } = validate::validate(&mut proto, &model_dir, limits)?;
    let widened = widen::widen_half_precision(&mut proto, limits)?;
    Ok(Model { proto, path: path.to_path_buf(), opset, sha256, size_bytes, external_files, widened })
}
