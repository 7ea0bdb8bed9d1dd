//! Exact Euclidean distances between rows (direct differences, no `|a|^2 + |b|^2 - 2ab` shortcut,
//! so ties and radius tests are as exact as a tree search's).

use ndarray::ArrayView1;

/// Squared Euclidean distance between two rows.
#[inline]
pub(crate) fn sq_dist(a: ArrayView1<'_, f64>, b: ArrayView1<'_, f64>) -> f64 {
    a.iter().zip(b.iter()).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Euclidean distance between two rows.
#[inline]
pub(crate) fn dist(a: ArrayView1<'_, f64>, b: ArrayView1<'_, f64>) -> f64 {
    sq_dist(a, b).sqrt()
}
