//! Feature matrices on disk: NPY (`<f4`/`<f8`, C or Fortran order, 2-D) and CSV (numbers, an
//! optional header row) read into `Array2<f64>`; NPY (`<f8`) written for embeddings. Every value
//! must be finite; empty, 1-D, ragged or truncated input is an error naming the file and the problem.

use std::fs;
use std::io::Write;
use std::path::Path;

use ndarray::Array2;

use super::DataError;

/// Reads a feature matrix (rows are samples), choosing the format by extension: `.npy` or `.csv`.
pub fn read_features(path: &Path) -> Result<Array2<f64>, DataError> {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).unwrap_or_default();
    let x = match ext.as_str() {
        "npy" => read_npy(path)?,
        "csv" => read_csv(path)?,
        _ => return Err(bad(path, format!("unknown extension {ext:?}: expected .npy or .csv"))),
    };
    if x.nrows() == 0 || x.ncols() == 0 {
        return Err(bad(path, format!("empty matrix ({} x {})", x.nrows(), x.ncols())));
    }
    if let Some(((r, c), v)) = x.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(bad(path, format!("non-finite value {v} at row {r}, column {c}")));
    }
    Ok(x)
}

fn bad(path: &Path, reason: String) -> DataError {
    DataError::FeatureFile { path: path.to_path_buf(), reason }
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, DataError> {
    fs::read(path).map_err(|source| DataError::FeatureIo { path: path.to_path_buf(), source })
}

/// Reads a 2-D float32 or float64 NPY file.
pub fn read_npy(path: &Path) -> Result<Array2<f64>, DataError> {
    let bytes = read_bytes(path)?;
    parse_npy(&bytes).map_err(|reason| bad(path, reason))
}

fn parse_npy(bytes: &[u8]) -> Result<Array2<f64>, String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not an NPY file (bad magic)".into());
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => return Err(format!("unsupported NPY version {v}")),
    };
    let header = bytes.get(start..start + header_len).ok_or("truncated NPY header")?;
    let header = std::str::from_utf8(header).map_err(|_| "NPY header is not text")?;
    let descr = dict_value(header, "descr").ok_or("NPY header has no 'descr'")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let width = match descr {
        "<f4" => 4,
        "<f8" => 8,
        other => return Err(format!("dtype {other} is not supported: expected float32 (<f4) or float64 (<f8)")),
    };
    let fortran = dict_value(header, "fortran_order").ok_or("NPY header has no 'fortran_order'")? == "True";
    let shape_text = dict_value(header, "shape").ok_or("NPY header has no 'shape'")?;
    let shape: Vec<usize> = shape_text
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| format!("bad shape {shape_text}")))
        .collect::<Result<_, _>>()?;
    if shape.len() != 2 {
        return Err(format!("expected a 2-D matrix (samples x features), got {}-D shape {shape_text}", shape.len()));
    }
    let (rows, cols) = (shape[0], shape[1]);
    let data = &bytes[start + header_len..];
    let expected = rows * cols * width;
    if data.len() != expected {
        return Err(format!(
            "data size {} bytes does not match shape ({rows}, {cols}) of {descr} ({expected} bytes)",
            data.len()
        ));
    }
    let values: Vec<f64> = if width == 4 {
        data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64).collect()
    } else {
        data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect()
    };
    let arr = if fortran {
        Array2::from_shape_vec((cols, rows), values).map(|a| a.reversed_axes().as_standard_layout().to_owned())
    } else {
        Array2::from_shape_vec((rows, cols), values)
    };
    arr.map_err(|e| e.to_string())
}

/// The raw text of `key`'s value in a Python dict literal (NPY header).
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let pos = header.find(&format!("'{key}'"))?;
    let rest = header[pos + key.len() + 2..].trim_start().strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') { rest.find(')')? + 1 } else { rest.find([',', '}'])? };
    Some(rest[..end].trim())
}

/// Reads a CSV of numbers; a first row that is not all numbers is taken as a header.
pub fn read_csv(path: &Path) -> Result<Array2<f64>, DataError> {
    let bytes = read_bytes(path)?;
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).trim(csv::Trim::All).from_reader(bytes.as_slice());
    let mut values = Vec::new();
    let mut cols = None;
    let mut rows = 0;
    for (line, record) in reader.records().enumerate() {
        let record = record.map_err(|e| bad(path, format!("line {}: {e}", line + 1)))?;
        if record.iter().all(|f| f.is_empty()) {
            continue;
        }
        let parsed: Result<Vec<f64>, _> = record.iter().map(str::parse::<f64>).collect();
        let row = match parsed {
            Ok(row) => row,
            Err(_) if line == 0 => continue,
            Err(_) => {
                let field = record.iter().find(|f| f.parse::<f64>().is_err()).unwrap_or("");
                return Err(bad(path, format!("line {}: {field:?} is not a number", line + 1)));
            }
        };
        match cols {
            None => cols = Some(row.len()),
            Some(c) if c != row.len() => {
                return Err(bad(path, format!("line {}: {} columns, expected {c}", line + 1, row.len())))
            }
            _ => {}
        }
        values.extend(row);
        rows += 1;
    }
    Array2::from_shape_vec((rows, cols.unwrap_or(0)), values).map_err(|e| bad(path, e.to_string()))
}

/// Writes a matrix as a float64 NPY file (C order).
pub fn write_npy(path: &Path, x: &Array2<f64>) -> Result<(), DataError> {
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({}, {}), }}", x.nrows(), x.ncols());
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + 8 * x.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in x.iter() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    fs::File::create(path)
        .and_then(|mut f| f.write_all(&out))
        .map_err(|source| DataError::FeatureIo { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}\n");
        let mut v = b"\x93NUMPY\x01\x00".to_vec();
        v.extend_from_slice(&(header.len() as u16).to_le_bytes());
        v.extend_from_slice(header.as_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn parses_f4_and_rejects_bad_dtype_and_shape() {
        let data: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let x = parse_npy(&npy("<f4", "(2, 2)", &data)).unwrap();
        assert_eq!(x[[1, 0]], 3.0);
        let err = parse_npy(&npy("<i4", "(2, 2)", &data)).unwrap_err();
        assert!(err.contains("<i4"), "{err}");
        let err = parse_npy(&npy("<f4", "(4,)", &data)).unwrap_err();
        assert!(err.contains("1-D"), "{err}");
        let err = parse_npy(&npy("<f4", "(3, 2)", &data)).unwrap_err();
        assert!(err.contains("does not match"), "{err}");
    }

    #[test]
    fn roundtrips_written_npy() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.npy");
        let x = ndarray::array![[1.5, -2.0, 3.25], [0.0, 1e-300, 7.0]];
        write_npy(&p, &x).unwrap();
        assert_eq!(read_features(&p).unwrap(), x);
    }

    #[test]
    fn csv_header_ragged_and_nan() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.csv");
        fs::write(&p, "a,b\n1,2\n3,4\n").unwrap();
        assert_eq!(read_features(&p).unwrap(), ndarray::array![[1.0, 2.0], [3.0, 4.0]]);
        fs::write(&p, "1,2\n3\n").unwrap();
        assert!(read_features(&p).unwrap_err().to_string().contains("line 2"));
        fs::write(&p, "1,2\nNaN,4\n").unwrap();
        assert!(read_features(&p).unwrap_err().to_string().contains("non-finite"));
        fs::write(&p, "").unwrap();
        assert!(read_features(&p).unwrap_err().to_string().contains("empty"));
    }
}
