//! External tensor data, read safely: the `location` must be a relative path whose canonical form
//! stays inside the model's canonical directory (no `..`, no absolute path, no symlink leaving
//! it), must name a regular file, and `offset`/`length` must lie within that file. The bytes are
//! moved into the tensor's `raw_data`, so code after loading never sees external data.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use crate::onnx::proto::tensor_proto::DataLocation;
use crate::onnx::proto::TensorProto;
use crate::onnx::tensor::tensor_name;
use crate::onnx::OnnxError;

/// Whether the tensor stores its data in an external file.
pub fn is_external(t: &TensorProto) -> bool {
    t.data_location == Some(DataLocation::External as i32)
}

/// Reads the tensor's external data into `raw_data` and returns the canonical path of the file read.
/// `model_dir` must be the canonicalised directory of the model file; `expected` is the byte size its
/// shape and type declare.
pub fn resolve(t: &mut TensorProto, model_dir: &Path, expected: u64) -> Result<PathBuf, OnnxError> {
    let mut location = None;
    let mut offset = None;
    let mut length = None;
    let name = tensor_name(t).to_string();
    for entry in &t.external_data {
        let value = entry.value.clone().unwrap_or_default();
        match entry.key.as_deref().unwrap_or("") {
            "location" => location = Some(value),
            "offset" => offset = Some(value),
            "length" => length = Some(value),
            _ => {}
        }
    }
    let location = location.ok_or_else(|| OnnxError::ExternalData {
        tensor: name.clone(),
        location: String::new(),
        reason: "no 'location' key".into(),
    })?;
    let fail = |reason: String| OnnxError::ExternalData { tensor: name.clone(), location: location.clone(), reason };
    let parse = |key: &str, v: Option<String>| -> Result<Option<u64>, OnnxError> {
        v.map(|s| s.trim().parse::<u64>().map_err(|_| fail(format!("'{key}' is not a non-negative integer: '{s}'"))))
            .transpose()
    };
    let offset = parse("offset", offset)?.unwrap_or(0);
    let length = parse("length", length)?;

    let rel = Path::new(&location);
    if location.is_empty() {
        return Err(fail("empty location".into()));
    }
    if rel.is_absolute() || location.starts_with('/') || location.starts_with('\\') {
        return Err(fail("absolute path: external data must lie inside the model's directory".into()));
    }
    if location.contains(':') {
        return Err(fail("drive or scheme prefix in location".into()));
    }
    for comp in rel.components() {
        match comp {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => {
                return Err(fail("'..' in location: external data must lie inside the model's directory".into()))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(fail("absolute path".into()));
            }
        }
    }
    if location.split(['/', '\\']).any(|c| c == "..") {
        return Err(fail("'..' in location: external data must lie inside the model's directory".into()));
    }
    let joined = model_dir.join(rel);
    let canonical = joined.canonicalize().map_err(|e| fail(format!("cannot open '{}': {e}", joined.display())))?;
    if !canonical.starts_with(model_dir) {
        return Err(fail(format!(
            "resolves to '{}', outside the model's directory '{}' (symlink leaving it)",
            canonical.display(),
            model_dir.display()
        )));
    }
    // Opened once, without blocking on a FIFO; checked to be a regular file on the open descriptor.
    let (mut file, file_len) = crate::fsio::open_input(&canonical).map_err(|e| match e {
        crate::fsio::FileError::NotRegular { kind, .. } => {
            fail(format!("'{}' is {kind}, not a regular file", canonical.display()))
        }
        other => fail(format!("cannot open '{}': {}", canonical.display(), other.problem())),
    })?;
    let length = length.unwrap_or_else(|| file_len.saturating_sub(offset));
    let end = offset.checked_add(length).ok_or_else(|| fail(format!("offset {offset} + length {length} overflows")))?;
    if end > file_len {
        return Err(fail(format!(
            "offset {offset} + length {length} = {end} is beyond the end of the {file_len}-byte file"
        )));
    }
    if length != expected {
        return Err(fail(format!("length {length} differs from the {expected} bytes that dims {:?} declare", t.dims)));
    }
    file.seek(SeekFrom::Start(offset)).map_err(|e| fail(format!("cannot seek to {offset}: {e}")))?;
    let mut buf = Vec::with_capacity(length as usize);
    file.take(length).read_to_end(&mut buf).map_err(|e| fail(format!("cannot read: {e}")))?;
    if buf.len() as u64 != length {
        return Err(fail(format!("read {} bytes, expected {length} (file changed while reading?)", buf.len())));
    }
    t.raw_data = Some(buf);
    t.external_data.clear();
    t.data_location = Some(DataLocation::Default as i32);
    Ok(canonical)
}
