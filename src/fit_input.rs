//! What every algorithm that fits a feature matrix (the reductions of [`crate::embed`], the clusterings of
//! [`crate::cluster`]) rejects in the same way: an empty matrix, a non-finite value, a parameter out of its
//! range, too few samples. One error type, the input checks and the params structs' builder setters, shared by
//! both.

use ndarray::Array2;
use thiserror::Error;

/// A feature matrix or a hyperparameter an algorithm cannot fit.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum MatrixError {
    /// The input has no rows or no columns.
    #[error("cannot fit an empty matrix ({rows} rows x {cols} columns)")]
    Empty {
        /// Number of rows.
        rows: usize,
        /// Number of columns.
        cols: usize,
    },
    /// The input holds a NaN or an infinity.
    #[error("input holds a non-finite value at row {row}, column {col}")]
    NonFinite {
        /// Row of the first bad value.
        row: usize,
        /// Column of the first bad value.
        col: usize,
    },
    /// A hyperparameter is out of its range.
    #[error("invalid parameter {name} = {value}: {rule}")]
    InvalidParam {
        /// Parameter name.
        name: &'static str,
        /// The value given.
        value: f64,
        /// What the value must satisfy.
        rule: &'static str,
    },
    /// Too few samples for the algorithm or its parameters.
    #[error("{algorithm} needs at least {needed} samples, got {got}")]
    TooFewSamples {
        /// Which algorithm.
        algorithm: &'static str,
        /// Minimum number of samples.
        needed: usize,
        /// Number of samples given.
        got: usize,
    },
}

/// Rejects an empty matrix and the first non-finite value (row-major order).
pub fn check_matrix(x: &Array2<f64>) -> Result<(), MatrixError> {
    if x.nrows() == 0 || x.ncols() == 0 {
        return Err(MatrixError::Empty { rows: x.nrows(), cols: x.ncols() });
    }
    if let Some(((row, col), _)) = x.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(MatrixError::NonFinite { row, col });
    }
    Ok(())
}

/// Rejects what [`check_matrix`] rejects, then a matrix of fewer than `needed` rows (`algorithm` names the fit in
/// the error); returns the number of rows.
pub fn check_samples(x: &Array2<f64>, algorithm: &'static str, needed: usize) -> Result<usize, MatrixError> {
    check_matrix(x)?;
    let got = x.nrows();
    if got < needed {
        return Err(MatrixError::TooFewSamples { algorithm, needed, got });
    }
    Ok(got)
}

/// `Ok` when `ok`, else [`MatrixError::InvalidParam`]: parameter `name` is `value`, which breaks `rule`.
pub fn require(ok: bool, name: &'static str, value: f64, rule: &'static str) -> Result<(), MatrixError> {
    if ok {
        Ok(())
    } else {
        Err(MatrixError::InvalidParam { name, value, rule })
    }
}

/// Writes a params struct's builder setters, one per `field: Type` (its doc comments go on the setter):
/// `pub fn field(mut self, v: Type) -> Self` sets the field to `v`. A setter that does more than store
/// its value is written by hand.
macro_rules! setters {
    ($($(#[$doc:meta])* $field:ident: $ty:ty),* $(,)?) => {
        $(
            $(#[$doc])*
            pub fn $field(mut self, v: $ty) -> Self {
                self.$field = v;
                self
            }
        )*
    };
}
pub(crate) use setters;

#[cfg(test)]
mod tests {
    use super::{check_matrix, MatrixError};
    use ndarray::{array, Array2};

    #[test]
    fn empty_and_non_finite_are_named() {
        assert_eq!(check_matrix(&Array2::zeros((0, 3))), Err(MatrixError::Empty { rows: 0, cols: 3 }));
        assert_eq!(check_matrix(&array![[1.0, 2.0], [3.0, f64::NAN]]), Err(MatrixError::NonFinite { row: 1, col: 1 }));
        assert_eq!(check_matrix(&array![[1.0, f64::INFINITY]]), Err(MatrixError::NonFinite { row: 0, col: 1 }));
        assert_eq!(check_matrix(&array![[1.0, 2.0]]), Ok(()));
    }
}
