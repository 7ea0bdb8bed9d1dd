//! A small reader for NumPy `.npy` files holding little-endian `float32` (`<f4`) in C order: trigger
//! patterns here, shareable with the feature-matrix reader.

use std::path::Path;

use super::DataError;

/// The NPY magic string.
const MAGIC: &[u8] = b"\x93NUMPY";
/// Upper bound on elements read from one file (1 GiB of `f32`).
const MAX_ELEMENTS: usize = 1 << 28;

/// Reads a `float32` `.npy` file: its shape and values (C order). Errors name the file and the problem:
/// wrong magic, another dtype, Fortran order, a size that does not match the header.
pub fn read_npy_f32(path: &Path) -> Result<(Vec<usize>, Vec<f32>), DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    parse_npy_f32(&bytes).map_err(|problem| DataError::malformed(path, problem))
}

/// Parses `.npy` bytes (see [`read_npy_f32`]); the error is the problem, without the path.
pub fn parse_npy_f32(bytes: &[u8]) -> Result<(Vec<usize>, Vec<f32>), String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not a .npy file (wrong magic)".into());
    }
    let (header_len, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10usize),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let end = start.checked_add(header_len).filter(|&e| e <= bytes.len()).ok_or("truncated .npy header")?;
    let header = std::str::from_utf8(&bytes[start..end]).map_err(|_| "header is not text")?;
    let descr = dict_value(header, "descr").ok_or("header has no 'descr'")?;
    let descr = descr.strip_prefix(['\'', '"']).and_then(|d| d.split(['\'', '"']).next()).unwrap_or(descr);
    if !matches!(descr, "<f4" | "f4") {
        return Err(format!("dtype {descr}, expected '<f4' (little-endian float32)"));
    }
    if dict_value(header, "fortran_order").is_some_and(|v| v.starts_with("True")) {
        return Err("Fortran order is not supported (save with C order)".into());
    }
    let shape_text = dict_value(header, "shape").ok_or("header has no 'shape'")?;
    let inner = shape_text
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| format!("malformed shape {shape_text}"))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| format!("malformed shape {shape_text}")))
        .collect::<Result<Vec<_>, _>>()?;
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&c| c <= MAX_ELEMENTS)
        .ok_or_else(|| format!("absurd shape {shape:?}"))?;
    let data = &bytes[end..];
    if data.len() != count * 4 {
        return Err(format!("shape {shape:?} needs {} data bytes, the file has {}", count * 4, data.len()));
    }
    let values = data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    Ok((shape, values))
}

/// Encodes `values` with `shape` as a version-1 little-endian `float32` `.npy` file (C order).
pub fn npy_f32_bytes(shape: &[usize], values: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    for v in values {
        out.extend(v.to_le_bytes());
    }
    out
}

/// The text after `'key':` in a Python dict literal, up to the end of the header.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header.find(&format!("'{key}'")).or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = &header[at + key.len() + 2..];
    Some(rest.trim_start().strip_prefix(':')?.trim_start())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let (shape, v) = parse_npy_f32(&npy_f32_bytes(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.5])).unwrap();
        assert_eq!(shape, vec![2, 3]);
        assert_eq!(v[5], 6.5);
    }

    #[test]
    fn rejects_truncated_and_wrong_dtype() {
        let mut b = npy_f32_bytes(&[4], &[1.0, 2.0, 3.0, 4.0]);
        b.pop();
        assert!(parse_npy_f32(&b).unwrap_err().contains("needs 16 data bytes"));
        let mut f8 = npy_f32_bytes(&[1], &[0.0]);
        let at = f8.windows(3).position(|w| w == b"<f4").unwrap();
        f8[at + 2] = b'8';
        assert!(parse_npy_f32(&f8).unwrap_err().contains("dtype"));
        assert!(parse_npy_f32(b"hello world").unwrap_err().contains("magic"));
    }
}
