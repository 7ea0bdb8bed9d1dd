//! Seeded sampling of image indices: seed images for the attacks and clean per-class samples.
//!
//! Every function draws with a ChaCha8 generator seeded from `seed`, so the same call gives the same indices
//! on every machine.

use rand::seq::index;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::DataError;

/// `k` distinct indices in `0..n`, in draw order, seeded by `seed`; errors when `k > n`.
///
/// ```
/// use aegis_audit::data::sample_indices;
/// let a = sample_indices(100, 5, 7).unwrap();
/// assert_eq!(a, sample_indices(100, 5, 7).unwrap());
/// assert_eq!(a.len(), 5);
/// ```
pub fn sample_indices(n: usize, k: usize, seed: u64) -> Result<Vec<usize>, DataError> {
    if k > n {
        return Err(DataError::Sampling(format!("{k} samples requested from {n} images")));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Ok(index::sample(&mut rng, n, k).into_vec())
}

/// `k` distinct indices drawn (seeded) among those whose label passes `keep`, as indices into `labels`.
fn sample_where(
    labels: &[i64],
    keep: impl Fn(i64) -> bool,
    k: usize,
    seed: u64,
    what: &str,
) -> Result<Vec<usize>, DataError> {
    let pool: Vec<usize> = (0..labels.len()).filter(|&i| keep(labels[i])).collect();
    if k > pool.len() {
        return Err(DataError::Sampling(format!("{k} samples requested from {what}, which has {} images", pool.len())));
    }
    let picks = sample_indices(pool.len(), k, seed)?;
    Ok(picks.into_iter().map(|p| pool[p]).collect())
}

/// `k` distinct indices of images labelled `class` (clean per-class sample), seeded by `seed`.
/// Errors naming the class and its size when it has fewer than `k` images.
pub fn per_class_sample(labels: &[i64], class: i64, k: usize, seed: u64) -> Result<Vec<usize>, DataError> {
    sample_where(labels, |l| l == class, k, seed, &format!("class {class}"))
}

/// `k` distinct indices of images *not* labelled `class` (seed images translated towards `class`), seeded.
pub fn sample_other_classes(labels: &[i64], class: i64, k: usize, seed: u64) -> Result<Vec<usize>, DataError> {
    sample_where(labels, |l| l != class, k, seed, &format!("the classes other than {class}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_distinct_in_range_and_seeded() {
        let a = sample_indices(50, 50, 1).unwrap();
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        assert_ne!(sample_indices(1000, 10, 1).unwrap(), sample_indices(1000, 10, 2).unwrap());
    }

    #[test]
    fn too_many_is_an_error() {
        let err = sample_indices(3, 4, 0).unwrap_err().to_string();
        assert!(err.contains("4 samples requested from 3"), "{err}");
    }

    #[test]
    fn per_class_picks_only_that_class() {
        let labels: Vec<i64> = (0..100).map(|i| i % 4).collect();
        let idx = per_class_sample(&labels, 2, 10, 9).unwrap();
        assert_eq!(idx.len(), 10);
        assert!(idx.iter().all(|&i| labels[i] == 2));
        let err = per_class_sample(&labels, 2, 26, 9).unwrap_err().to_string();
        assert!(err.contains("class 2, which has 25 images"), "{err}");
        let other = sample_other_classes(&labels, 2, 75, 9).unwrap();
        assert!(other.iter().all(|&i| labels[i] != 2));
    }
}
