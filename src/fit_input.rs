//! What every algorithm that fits a feature matrix (the reductions of [`crate::embed`], the clusterings of
//! [`crate::cluster`]) rejects in the same way: an empty matrix, a non-finite value, a parameter out of its
//! range, too few samples. One error type, the input checks and the params structs' builder setters, shared by
//! both.

use ndarray::Array2;
use thiserror::Error;

/// Why a reduction or a clustering could not fit (or apply) its model: the one error type of
/// [`crate::embed`] and [`crate::cluster`], as linfa's algorithms share one.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum FitError {
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
    /// A matrix to transform has the wrong number of columns.
    #[error("expected {expected} features, got {got}")]
    FeatureMismatch {
        /// Columns the model was fitted on.
        expected: usize,
        /// Columns given.
        got: usize,
    },
    /// The eigendecomposition failed.
    #[error("eigendecomposition failed: {0}")]
    Linalg(String),
    /// Mean shift found no seed with a point within the bandwidth.
    #[error("no point was within bandwidth {bandwidth} of any seed; increase the bandwidth")]
    NoCenters {
        /// The bandwidth used.
        bandwidth: f64,
    },
    /// The estimated bandwidth is zero (too many identical points).
    #[error("estimated bandwidth is 0 (quantile {quantile}): too many identical points; give a bandwidth")]
    ZeroBandwidth {
        /// The quantile used.
        quantile: f64,
    },
}

/// The result type of every reduction and clustering.
pub type Result<T, E = FitError> = std::result::Result<T, E>;

/// Rejects an empty matrix and the first non-finite value (row-major order).
pub fn check_matrix(x: &Array2<f64>) -> Result<(), FitError> {
    if x.nrows() == 0 || x.ncols() == 0 {
        return Err(FitError::Empty { rows: x.nrows(), cols: x.ncols() });
    }
    if let Some(((row, col), _)) = x.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(FitError::NonFinite { row, col });
    }
    Ok(())
}

/// Rejects what [`check_matrix`] rejects, then a matrix of fewer than `needed` rows (`algorithm` names the fit in
/// the error); returns the number of rows.
pub fn check_samples(x: &Array2<f64>, algorithm: &'static str, needed: usize) -> Result<usize, FitError> {
    check_matrix(x)?;
    let got = x.nrows();
    if got < needed {
        return Err(FitError::TooFewSamples { algorithm, needed, got });
    }
    Ok(got)
}

/// `Ok` when `ok`, else [`FitError::InvalidParam`]: parameter `name` is `value`, which breaks `rule`.
pub fn require(ok: bool, name: &'static str, value: f64, rule: &'static str) -> Result<(), FitError> {
    if ok {
        Ok(())
    } else {
        Err(FitError::InvalidParam { name, value, rule })
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
    use super::{check_matrix, FitError};
    use ndarray::{array, Array2};

    #[test]
    fn empty_and_non_finite_are_named() {
        assert_eq!(check_matrix(&Array2::zeros((0, 3))), Err(FitError::Empty { rows: 0, cols: 3 }));
        assert_eq!(check_matrix(&array![[1.0, 2.0], [3.0, f64::NAN]]), Err(FitError::NonFinite { row: 1, col: 1 }));
        assert_eq!(check_matrix(&array![[1.0, f64::INFINITY]]), Err(FitError::NonFinite { row: 0, col: 1 }));
        assert_eq!(check_matrix(&array![[1.0, 2.0]]), Ok(()));
    }
}
