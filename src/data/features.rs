//! Feature matrices on disk: NPY (`<f4`/`<f8`, C or Fortran order, 2-D; parsed by [`super::npy`])
//! and CSV (numbers, an optional header row) read into `Array2<f64>`; NPY (`<f8`) written for
//! embeddings. Every value must be finite; empty, 1-D, ragged or truncated input is an error naming
//! the file and the problem.

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

/// The largest feature matrix file read: 2 GiB (2^28 float64 values, the NPY reader's element bound).
pub const MAX_FEATURE_FILE_BYTES: u64 = 2 << 30;

fn read_bytes(path: &Path) -> Result<Vec<u8>, DataError> {
    Ok(crate::fsio::read_input(path, MAX_FEATURE_FILE_BYTES, "a feature matrix")?)
}

/// Reads a 2-D float32 or float64 NPY file.
pub fn read_npy(path: &Path) -> Result<Array2<f64>, DataError> {
    let bytes = read_bytes(path)?;
    super::npy::parse_npy_matrix(&bytes).map_err(|reason| bad(path, reason))
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
    fs::File::create(path)
        .and_then(|mut f| f.write_all(&super::npy::npy_matrix_bytes(x)))
        .map_err(|source| DataError::FeatureIo { path: path.to_path_buf(), source })
}

/// The bytes of a float64 NPY file (C order) of `x`, for writers that stage their files.
pub fn npy_bytes(x: &Array2<f64>) -> Vec<u8> {
    super::npy::npy_matrix_bytes(x)
}

#[cfg(test)]
mod tests {
    use super::*;

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
