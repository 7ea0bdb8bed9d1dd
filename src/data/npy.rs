//! NumPy `.npy` files, read and written in one place: little-endian `float32` (`<f4`) and `float64`
//! (`<f8`), C or Fortran order. Trigger patterns read `float32` in C order ([`parse_npy_f32`]), feature
//! matrices any float as a 2-D `f64` matrix ([`parse_npy_matrix`]); embeddings are written as `<f8`.

use std::path::Path;

use ndarray::Array2;

use super::DataError;

/// The NPY magic string.
const MAGIC: &[u8] = b"\x93NUMPY";
/// Upper bound on elements read from one file (1 GiB of `f32`).
const MAX_ELEMENTS: usize = 1 << 28;

/// A parsed header and the data bytes after it.
struct Npy<'a> {
    /// `<f4` or `<f8` (a bare `f4`/`f8` is read as little-endian).
    descr: &'a str,
    fortran_order: bool,
    shape: Vec<usize>,
    /// Elements, the product of `shape`.
    count: usize,
    data: &'a [u8],
}

impl Npy<'_> {
    fn width(&self) -> usize {
        if self.descr.ends_with('8') {
            8
        } else {
            4
        }
    }

    /// Checks that the data holds exactly `count` elements of the dtype.
    fn check_size(&self) -> Result<(), String> {
        let need = self.count * self.width();
        if self.data.len() != need {
            return Err(format!(
                "shape {:?} of {} needs {need} data bytes, the file has {}",
                self.shape,
                self.descr,
                self.data.len()
            ));
        }
        Ok(())
    }

    /// The values as `f64`, in file order.
    fn values_f64(&self) -> Vec<f64> {
        if self.width() == 4 {
            self.data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64).collect()
        } else {
            self.data.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))).collect()
        }
    }
}

/// Parses the header; the error is the problem, without the path.
fn parse(bytes: &[u8]) -> Result<Npy<'_>, String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not a .npy file (wrong magic)".into());
    }
    let (header_len, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10usize),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let end = start.checked_add(header_len).filter(|&e| e <= bytes.len()).ok_or("truncated .npy header")?;
    let header = std::str::from_utf8(&bytes[start..end]).map_err(|_| ".npy header is not text")?;
    let descr = dict_value(header, "descr").ok_or(".npy header has no 'descr'")?;
    let descr = match descr.trim_matches(|c| c == '\'' || c == '"') {
        "<f4" | "f4" => "<f4",
        "<f8" | "f8" => "<f8",
        other => return Err(format!("dtype {other} is not supported: expected float32 (<f4) or float64 (<f8)")),
    };
    let fortran_order = dict_value(header, "fortran_order").ok_or(".npy header has no 'fortran_order'")? == "True";
    let shape_text = dict_value(header, "shape").ok_or(".npy header has no 'shape'")?;
    let shape = shape_text
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("malformed shape {shape_text}"))?
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
    Ok(Npy { descr, fortran_order, shape, count, data: &bytes[end..] })
}

/// Reads a `float32` `.npy` file: its shape and values (C order). Errors name the file and the problem:
/// wrong magic, another dtype, Fortran order, a size that does not match the header.
pub fn read_npy_f32(path: &Path) -> Result<(Vec<usize>, Vec<f32>), DataError> {
    let bytes = crate::fsio::read_input(path, (MAX_ELEMENTS as u64) * 4 + (1 << 16), "an NPY file")?;
    parse_npy_f32(&bytes).map_err(|problem| DataError::malformed(path, problem))
}

/// Parses `.npy` bytes (see [`read_npy_f32`]); the error is the problem, without the path.
pub fn parse_npy_f32(bytes: &[u8]) -> Result<(Vec<usize>, Vec<f32>), String> {
    let npy = parse(bytes)?;
    if npy.descr != "<f4" {
        return Err(format!("dtype {}, expected '<f4' (little-endian float32)", npy.descr));
    }
    if npy.fortran_order {
        return Err("Fortran order is not supported (save with C order)".into());
    }
    npy.check_size()?;
    let values = npy.data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    Ok((npy.shape, values))
}

/// Parses a 2-D `float32` or `float64` `.npy` matrix (C or Fortran order) into `f64`, rows first.
pub fn parse_npy_matrix(bytes: &[u8]) -> Result<Array2<f64>, String> {
    let npy = parse(bytes)?;
    let &[rows, cols] = npy.shape.as_slice() else {
        return Err(format!(
            "expected a 2-D matrix (samples x features), got {}-D shape {:?}",
            npy.shape.len(),
            npy.shape
        ));
    };
    npy.check_size()?;
    let values = npy.values_f64();
    let matrix = if npy.fortran_order {
        Array2::from_shape_vec((cols, rows), values).map(|a| a.reversed_axes().as_standard_layout().to_owned())
    } else {
        Array2::from_shape_vec((rows, cols), values)
    };
    matrix.map_err(|e| e.to_string())
}

/// Encodes a version-1 `.npy` file (C order) from its dtype, shape and little-endian data bytes.
fn npy_bytes(descr: &str, shape: &[usize], data: impl IntoIterator<Item = u8>) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = MAGIC.to_vec();
    out.extend([1u8, 0]);
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

/// Encodes `values` with `shape` as a little-endian `float32` `.npy` file (C order).
pub fn npy_f32_bytes(shape: &[usize], values: &[f32]) -> Vec<u8> {
    npy_bytes("<f4", shape, values.iter().flat_map(|v| v.to_le_bytes()))
}

/// Encodes a matrix as a little-endian `float64` `.npy` file (C order).
pub fn npy_matrix_bytes(x: &Array2<f64>) -> Vec<u8> {
    npy_bytes("<f8", &[x.nrows(), x.ncols()], x.iter().flat_map(|v| v.to_le_bytes()))
}

/// The raw text of `key`'s value in a Python dict literal (the NPY header): a tuple up to its `)`,
/// anything else up to the next `,` or `}`.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header.find(&format!("'{key}'")).or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = header[at + key.len() + 2..].trim_start().strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') { rest.find(')')? + 1 } else { rest.find([',', '}'])? };
    Some(rest[..end].trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let (shape, v) = parse_npy_f32(&npy_f32_bytes(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.5])).unwrap();
        assert_eq!(shape, vec![2, 3]);
        assert_eq!(v[5], 6.5);
        let x = ndarray::array![[1.5, -2.0, 3.25], [0.0, 1e-300, 7.0]];
        assert_eq!(parse_npy_matrix(&npy_matrix_bytes(&x)).unwrap(), x);
        // A float32 file reads as a matrix too.
        let m = parse_npy_matrix(&npy_f32_bytes(&[2, 2], &[1.0, 2.0, 3.0, 4.0])).unwrap();
        assert_eq!(m[[1, 0]], 3.0);
    }

    #[test]
    fn rejects_truncated_and_wrong_dtype() {
        let mut b = npy_f32_bytes(&[4], &[1.0, 2.0, 3.0, 4.0]);
        b.pop();
        assert!(parse_npy_f32(&b).unwrap_err().contains("needs 16 data bytes"));
        let f8 = npy_matrix_bytes(&ndarray::array![[0.0]]);
        assert!(parse_npy_f32(&f8).unwrap_err().contains("dtype"));
        assert!(parse_npy_f32(b"hello world").unwrap_err().contains("magic"));
        let mut i4 = npy_f32_bytes(&[1], &[0.0]);
        let at = i4.windows(3).position(|w| w == b"<f4").unwrap();
        i4[at + 1] = b'i';
        assert!(parse_npy_matrix(&i4).unwrap_err().contains("<i4"));
        assert!(parse_npy_matrix(&npy_f32_bytes(&[4], &[0.0; 4])).unwrap_err().contains("1-D"));
        assert!(parse_npy_matrix(&npy_f32_bytes(&[3, 2], &[0.0; 4])).unwrap_err().contains("needs 24 data bytes"));
    }

    #[test]
    fn reads_fortran_order() {
        let mut b = npy_bytes("<f8", &[2, 3], [1.0f64, 4.0, 2.0, 5.0, 3.0, 6.0].iter().flat_map(|v| v.to_le_bytes()));
        let at = b.windows(5).position(|w| w == b"False").unwrap();
        b.splice(at..at + 5, *b"True ");
        assert_eq!(parse_npy_matrix(&b).unwrap(), ndarray::array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
        assert!(parse_npy_f32(&npy_bytes("<f4", &[1], 0f32.to_le_bytes())).is_ok());
    }
}
