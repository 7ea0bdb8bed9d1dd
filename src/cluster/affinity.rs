//! Affinity propagation as `sklearn.cluster.AffinityPropagation` (1.7) runs it with its defaults:
//! similarities `-|x_i - x_j|^2`, preference = their median (diagonal included), damping 0.5, 200
//! iterations at most, convergence when the exemplar set is unchanged for 15 iterations, tiny
//! seeded noise added to the similarities to break ties (scikit-learn's formula, this crate's
//! random numbers), then exemplar refinement and labels numbered by exemplar index.
//!
//! Labels match scikit-learn's wherever they do not hinge on that tie-breaking noise.

use ndarray::{Array1, Array2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::distance::sq_dist;
use super::Result;
use crate::fit_input::{check_matrix, require, setters};

/// Affinity-propagation clustering.
#[derive(Debug, Clone, Copy)]
pub struct AffinityPropagation;

impl AffinityPropagation {
    /// Parameters with scikit-learn's defaults: damping 0.5, `max_iter` 200, `convergence_iter`
    /// 15, preference = median similarity, seed 0.
    ///
    /// ```
    /// use aegis_audit::cluster::AffinityPropagation;
    /// use ndarray::array;
    /// let x = array![[0.0, 0.0], [0.2, 0.0], [0.0, 0.2], [8.0, 8.0], [8.2, 8.0], [8.0, 8.2]];
    /// let fit = AffinityPropagation::params().fit(&x).unwrap();
    /// assert_eq!(fit.cluster_centers_indices.len(), 2);
    /// assert_eq!(fit.labels[0], fit.labels[1]);
    /// ```
    pub fn params() -> AffinityPropagationParams {
        AffinityPropagationParams { damping: 0.5, max_iter: 200, convergence_iter: 15, preference: None, seed: 0 }
    }
}

/// Affinity-propagation hyperparameters.
#[derive(Debug, Clone, Copy)]
pub struct AffinityPropagationParams {
    damping: f64,
    max_iter: usize,
    convergence_iter: usize,
    preference: Option<f64>,
    seed: u64,
}

/// The result of an affinity-propagation fit.
#[derive(Debug, Clone)]
pub struct AffinityPropagationFit {
    /// Label per sample (`-1` for all when it did not converge to any exemplar).
    pub labels: Vec<i64>,
    /// Sample index of each cluster's exemplar, ascending.
    pub cluster_centers_indices: Vec<usize>,
    /// Iterations run.
    pub n_iter: usize,
    /// Whether the exemplars stabilised before `max_iter`.
    pub converged: bool,
}

impl AffinityPropagationParams {
    setters! {
        /// Damping in [0.5, 1).
        damping: f64,
        /// Iteration cap.
        max_iter: usize,
        /// Iterations without change that count as converged.
        convergence_iter: usize,
        /// Preference for every sample (`None`: the median similarity).
        preference: Option<f64>,
        /// Seed of the tie-breaking noise.
        seed: u64,
    }

    /// Checks the parameters.
    pub fn check(&self) -> Result<()> {
        require((0.5..1.0).contains(&self.damping), "damping", self.damping, "must be in [0.5, 1)")?;
        require(
            self.convergence_iter > 0 && self.max_iter > 0,
            "max_iter/convergence_iter",
            self.max_iter.min(self.convergence_iter) as f64,
            "must be at least 1",
        )?;
        if let Some(p) = self.preference {
            require(p.is_finite(), "preference", p, "must be finite")?;
        }
        Ok(())
    }

    /// Clusters `x` (rows are samples).
    pub fn fit(&self, x: &Array2<f64>) -> Result<AffinityPropagationFit> {
        self.check()?;
        check_matrix(x)?;
        let n = x.nrows();
        let mut s = Array2::from_shape_fn((n, n), |(i, j)| -sq_dist(x.row(i), x.row(j)));
        let preference = self.preference.unwrap_or_else(|| median(s.iter().copied().collect()));
        if n == 1 {
            return Ok(AffinityPropagationFit {
                labels: vec![0],
                cluster_centers_indices: vec![0],
                n_iter: 0,
                converged: true,
            });
        }
        let off = s[[0, 1]];
        let all_equal = (0..n).all(|i| (0..n).all(|j| i == j || s[[i, j]] == off));
        if all_equal && preference == off {
            // scikit-learn's degenerate case: equal similarities and preferences.
            return Ok(AffinityPropagationFit {
                labels: vec![0; n],
                cluster_centers_indices: vec![0],
                n_iter: 0,
                converged: true,
            });
        }
        for i in 0..n {
            s[[i, i]] = preference;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let (eps, tiny) = (f64::EPSILON, f64::MIN_POSITIVE);
        s.mapv_inplace(|v| v + (eps * v + tiny * 100.0) * standard_normal(&mut rng));

        let mut a = Array2::<f64>::zeros((n, n));
        let mut r = Array2::<f64>::zeros((n, n));
        let mut tmp = Array2::<f64>::zeros((n, n));
        let mut history = vec![vec![false; self.convergence_iter]; n];
        let mut exemplar = vec![false; n];
        let mut converged = false;
        let mut n_iter = self.max_iter;
        let d = self.damping;
        for it in 0..self.max_iter {
            // Responsibilities.
            for i in 0..n {
                let (mut best, mut best_j, mut second) = (f64::NEG_INFINITY, 0, f64::NEG_INFINITY);
                for j in 0..n {
                    let v = a[[i, j]] + s[[i, j]];
                    if v > best {
                        second = best;
                        best = v;
                        best_j = j;
                    } else if v > second {
                        second = v;
                    }
                }
                for j in 0..n {
                    let new = if j == best_j { s[[i, j]] - second } else { s[[i, j]] - best };
                    r[[i, j]] = d * r[[i, j]] + (1.0 - d) * new;
                }
            }
            // Availabilities.
            for i in 0..n {
                for j in 0..n {
                    tmp[[i, j]] = if i == j { r[[i, j]] } else { r[[i, j]].max(0.0) };
                }
            }
            let col_sums: Array1<f64> = tmp.sum_axis(Axis(0));
            for i in 0..n {
                for j in 0..n {
                    let neg_a = tmp[[i, j]] - col_sums[j];
                    let neg_a = if i == j { neg_a } else { neg_a.max(0.0) };
                    a[[i, j]] = d * a[[i, j]] - (1.0 - d) * neg_a;
                }
            }
            // Convergence.
            let mut k = 0;
            for i in 0..n {
                exemplar[i] = a[[i, i]] + r[[i, i]] > 0.0;
                history[i][it % self.convergence_iter] = exemplar[i];
                k += usize::from(exemplar[i]);
            }
            if it >= self.convergence_iter {
                let stable = history.iter().all(|h| h.iter().all(|&e| e) || h.iter().all(|&e| !e));
                if stable && k > 0 {
                    converged = true;
                    n_iter = it + 1;
                    break;
                }
            }
        }
        let mut centers: Vec<usize> = (0..n).filter(|&i| exemplar[i]).collect();
        if centers.is_empty() {
            return Ok(AffinityPropagationFit {
                labels: vec![-1; n],
                cluster_centers_indices: Vec::new(),
                n_iter,
                converged,
            });
        }
        let assign = |centers: &[usize]| -> Vec<usize> {
            let mut c: Vec<usize> = (0..n).map(|i| argmax(centers.iter().map(|&e| s[[i, e]]))).collect();
            for (k, &e) in centers.iter().enumerate() {
                c[e] = k;
            }
            c
        };
        let c = assign(&centers);
        for (k, center) in centers.iter_mut().enumerate() {
            let members: Vec<usize> = (0..n).filter(|&i| c[i] == k).collect();
            let j = argmax(members.iter().map(|&col| members.iter().map(|&row| s[[row, col]]).sum::<f64>()));
            *center = members[j];
        }
        let c = assign(&centers);
        let raw: Vec<usize> = c.iter().map(|&k| centers[k]).collect();
        let mut unique = raw.clone();
        unique.sort_unstable();
        unique.dedup();
        let labels = raw.iter().map(|e| unique.binary_search(e).expect("exemplar present") as i64).collect();
        Ok(AffinityPropagationFit { labels, cluster_centers_indices: unique, n_iter, converged })
    }
}

/// Index of the first maximum (numpy's `argmax`).
fn argmax(values: impl Iterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

/// numpy's median (mean of the two middle values for an even count).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_unstable_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// A standard normal draw (Box-Muller).
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}
