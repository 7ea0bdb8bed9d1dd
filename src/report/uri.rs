//! Relative URI references for SARIF artifact locations (GitHub code scanning rejects absolute and
//! `https://` locations).

use std::path::{Component, Path};

/// Characters kept as-is in a URI path segment (RFC 3986 unreserved plus a few sub-delims).
fn keep(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=@".contains(&b)
}

/// A relative, percent-encoded, `/`-separated URI reference for `path`.
///
/// A relative `path` is used as it is (normalising `.` away); an absolute one is made relative to `base`
/// (the SARIF file's folder or the working directory) when it lies under it, otherwise only its file name
/// is kept. The result is never absolute.
///
/// ```
/// use aegis_audit::report::relative_uri;
/// use std::path::Path;
/// assert_eq!(relative_uri(Path::new("./models/a b.onnx"), Path::new("/x")), "models/a%20b.onnx");
/// assert_eq!(relative_uri(Path::new("/x/m/a.onnx"), Path::new("/x")), "m/a.onnx");
/// assert_eq!(relative_uri(Path::new("/y/a.onnx"), Path::new("/x")), "a.onnx");
/// ```
pub fn relative_uri(path: &Path, base: &Path) -> String {
    let rel = if path.is_absolute() {
        match path.strip_prefix(base) {
            Ok(r) => r.to_path_buf(),
            Err(_) => path.file_name().map(Into::into).unwrap_or_default(),
        }
    } else {
        path.to_path_buf()
    };
    let segments: Vec<String> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(encode(&s.to_string_lossy())),
            Component::ParentDir => Some("..".to_string()),
            _ => None,
        })
        .collect();
    if segments.is_empty() {
        "unknown".to_string()
    } else {
        segments.join("/")
    }
}

/// Percent-encodes one path segment.
fn encode(segment: &str) -> String {
    segment.bytes().map(|b| if keep(b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}
