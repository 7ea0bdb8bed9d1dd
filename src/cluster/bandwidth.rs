//! `estimate_bandwidth` as scikit-learn computes it: the mean, over points, of the distance to their
//! `k`-th nearest neighbour, `k = max(1, floor(n * quantile))`, the point itself counted as the
//! first neighbour; optionally on a seeded random subsample of `n_samples` points.

use ndarray::{Array2, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::distance::sq_dist;
use super::Result;
use crate::fit_input::{check_matrix, require};

/// Estimates a mean-shift bandwidth for `x` (scikit-learn's default `quantile` is 0.3).
///
/// With `n_samples = Some(m)`, a random subsample of `m` points drawn with `seed` is used (the draw
/// is this crate's own, so it does not reproduce scikit-learn's subsample); with `None`, all points
/// are used and the result matches scikit-learn.
///
/// ```
/// use aegis_audit::cluster::estimate_bandwidth;
/// use ndarray::array;
/// let x = array![[0.0], [1.0], [3.0], [6.0]];
/// // k = max(1, floor(4 * 0.5)) = 2: distances to the nearest other point, averaged.
/// let bw = estimate_bandwidth(&x, 0.5, None, 0).unwrap();
/// assert!((bw - (1.0 + 1.0 + 2.0 + 3.0) / 4.0).abs() < 1e-12);
/// ```
pub fn estimate_bandwidth(x: &Array2<f64>, quantile: f64, n_samples: Option<usize>, seed: u64) -> Result<f64> {
    check_matrix(x)?;
    require((0.0..=1.0).contains(&quantile), "quantile", quantile, "must be in [0, 1]")?;
    require(n_samples != Some(0), "n_samples", 0.0, "must be at least 1")?;
    let sub;
    let x = match n_samples {
        Some(m) if m < x.nrows() => {
            let mut idx: Vec<usize> = (0..x.nrows()).collect();
            idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
            idx.truncate(m);
            sub = x.select(Axis(0), &idx);
            &sub
        }
        _ => x,
    };
    let n = x.nrows();
    let k = ((n as f64 * quantile) as usize).clamp(1, n);
    let mut d = vec![0.0; n];
    let mut total = 0.0;
    for i in 0..n {
        let xi = x.row(i);
        for (j, dj) in d.iter_mut().enumerate() {
            *dj = sq_dist(xi, x.row(j));
        }
        let (_, kth, _) = d.select_nth_unstable_by(k - 1, |a, b| a.total_cmp(b));
        total += kth.sqrt();
    }
    Ok(total / n as f64)
}
