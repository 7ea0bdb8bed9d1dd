//! Barnes-Hut t-SNE to 2-D, following scikit-learn's `TSNE` (`_t_sne.py`, `_barnes_hut_tsne.pyx`)
//! with its current defaults: PCA initialisation scaled to standard deviation 1e-4 on the first
//! axis, learning rate `max(n / 12 / 4, 50)`, early exaggeration 12 for 250 iterations at momentum
//! 0.5, then momentum 0.8 up to 1000 iterations, per-coordinate gains (+0.2 / x0.8, floor 0.01),
//! progress checks every 50 iterations (stop after 300 without progress or when the gradient norm
//! falls to 1e-7), angle 0.5, one degree of freedom. The reported KL divergence is computed as
//! scikit-learn's `kl_divergence_` is (over the sparse `P`, with the Barnes-Hut normaliser).

mod affinity;
mod quadtree;

use ndarray::Array2;

use self::affinity::SparseP;
use self::quadtree::QuadTree;
use super::{Pca, Result};
use crate::fit_input::{check_samples, require, setters};

const EXPLORATION_ITER: usize = 250;
const N_ITER_CHECK: usize = 50;
const FLOAT32_TINY: f64 = f32::MIN_POSITIVE as f64;

/// Barnes-Hut t-SNE.
#[derive(Debug, Clone, Copy)]
pub struct Tsne;

impl Tsne {
    /// Parameters with scikit-learn's defaults: perplexity 30, early exaggeration 12, 1000
    /// iterations, angle 0.5, automatic learning rate, 300 iterations without progress, minimum
    /// gradient norm 1e-7, seed 0, threads = available cores (at most 8).
    ///
    /// ```
    /// use aegis_audit::embed::Tsne;
    /// use ndarray::Array2;
    /// let x = Array2::from_shape_fn((40, 5), |(i, j)| ((i * 7 + j * 3) % 11) as f64 + (i / 20) as f64 * 20.0);
    /// let emb = Tsne::params().perplexity(5.0).seed(1).fit(&x).unwrap();
    /// assert_eq!(emb.points.dim(), (40, 2));
    /// assert!(emb.kl_divergence.is_finite());
    /// ```
    pub fn params() -> TsneParams {
        TsneParams {
            perplexity: 30.0,
            early_exaggeration: 12.0,
            learning_rate: None,
            max_iter: 1000,
            n_iter_without_progress: 300,
            min_grad_norm: 1e-7,
            angle: 0.5,
            seed: 0,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(8)),
        }
    }
}

/// t-SNE hyperparameters (see [`Tsne::params`] for the defaults).
#[derive(Debug, Clone, Copy)]
pub struct TsneParams {
    perplexity: f64,
    early_exaggeration: f64,
    learning_rate: Option<f64>,
    max_iter: usize,
    n_iter_without_progress: usize,
    min_grad_norm: f64,
    angle: f64,
    seed: u64,
    threads: usize,
}

/// The result of a t-SNE fit.
#[derive(Debug, Clone)]
pub struct TsneEmbedding {
    /// The 2-D points, one row per sample.
    pub points: Array2<f64>,
    /// KL divergence after optimisation (comparable to scikit-learn's `kl_divergence_`).
    pub kl_divergence: f64,
    /// Index of the last iteration run (scikit-learn's `n_iter_`).
    pub n_iter: usize,
    /// The learning rate used.
    pub learning_rate: f64,
}

impl TsneParams {
    setters! {
        /// Perplexity (default 30); must be below the number of samples.
        perplexity: f64,
        /// Early exaggeration factor (default 12).
        early_exaggeration: f64,
        /// Fixed learning rate; `None` (default) is scikit-learn's "auto".
        learning_rate: Option<f64>,
        /// Total iterations (default 1000, at least 250).
        max_iter: usize,
        /// Barnes-Hut angle (default 0.5).
        angle: f64,
        /// Seed. The PCA initialisation is deterministic; the seed is kept for API stability and
        /// recorded in reports.
        seed: u64,
    }
    /// Worker threads for the neighbour search and the gradient (default: cores, at most 8).
    pub fn threads(mut self, v: usize) -> Self {
        self.threads = v.max(1);
        self
    }

    /// Checks the parameters (one error per rule).
    pub fn check(&self) -> Result<()> {
        let (p, e) = (self.perplexity, self.early_exaggeration);
        require(p > 0.0 && p.is_finite(), "perplexity", p, "must be positive")?;
        require(e >= 1.0, "early_exaggeration", e, "must be at least 1")?;
        if let Some(lr) = self.learning_rate {
            require(lr > 0.0, "learning_rate", lr, "must be positive")?;
        }
        require(self.max_iter >= EXPLORATION_ITER, "max_iter", self.max_iter as f64, "must be at least 250")?;
        require((0.0..=1.0).contains(&self.angle), "angle", self.angle, "must be in [0, 1]")?;
        Ok(())
    }

    /// Embeds `x` (rows are samples) in 2-D.
    pub fn fit(&self, x: &Array2<f64>) -> Result<TsneEmbedding> {
        self.check()?;
        let n = check_samples(x, "t-SNE", 2)?;
        require(self.perplexity < n as f64, "perplexity", self.perplexity, "must be less than the number of samples")?;
        let k = (n - 1).min((3.0 * self.perplexity + 1.0) as usize);
        let nn = affinity::knn_squared(x, k, self.threads);
        let cond = affinity::binary_search_perplexity(&nn, self.perplexity);
        let p = affinity::joint_probabilities(&nn, &cond);

        let init = pca_init(x)?;
        let lr = self.learning_rate.unwrap_or_else(|| (n as f64 / self.early_exaggeration / 4.0).max(50.0));
        let mut opt = Optimiser {
            p,
            threads: self.threads.min(n).max(1),
            squared_theta: self.angle * self.angle,
            learning_rate: lr,
            min_grad_norm: self.min_grad_norm,
        };
        let mut y = init;
        opt.scale_p(self.early_exaggeration);
        let (err, it) = opt.descend(&mut y, 0, EXPLORATION_ITER, 0.5, EXPLORATION_ITER);
        opt.scale_p(1.0 / self.early_exaggeration);
        let (mut err, mut it) = (err, it);
        if it < EXPLORATION_ITER - 1 || self.max_iter > EXPLORATION_ITER {
            (err, it) = opt.descend(&mut y, it + 1, self.max_iter, 0.8, self.n_iter_without_progress);
        }
        let points = Array2::from_shape_fn((n, 2), |(i, a)| y[i][a]);
        Ok(TsneEmbedding { points, kl_divergence: err, n_iter: it, learning_rate: lr })
    }
}

/// PCA to 2-D scaled so the first coordinate has standard deviation 1e-4.
fn pca_init(x: &Array2<f64>) -> Result<Vec<[f64; 2]>> {
    let n = x.nrows();
    let pca = Pca::params(2).fit(x)?;
    let z = pca.transform(x)?;
    let col0 = z.column(0);
    let mean = col0.sum() / n as f64;
    let std = (col0.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64).sqrt();
    let scale = if std > 0.0 { 1e-4 / std } else { 1.0 };
    Ok((0..n)
        .map(|i| {
            let second = if z.ncols() > 1 { z[[i, 1]] } else { 0.0 };
            [z[[i, 0]] * scale, second * scale]
        })
        .collect())
}

struct Optimiser {
    p: SparseP,
    threads: usize,
    squared_theta: f64,
    learning_rate: f64,
    min_grad_norm: f64,
}

impl Optimiser {
    fn scale_p(&mut self, factor: f64) {
        for v in &mut self.p.values {
            *v *= factor;
        }
    }

    /// scikit-learn's `_gradient_descent`: returns the last error and iteration index.
    fn descend(
        &self,
        y: &mut [[f64; 2]],
        start: usize,
        max_iter: usize,
        momentum: f64,
        n_iter_without_progress: usize,
    ) -> (f64, usize) {
        let n = y.len();
        let mut update = vec![[0.0f64; 2]; n];
        let mut gains = vec![[1.0f64; 2]; n];
        let mut grad = vec![[0.0f64; 2]; n];
        let mut error = f64::MAX;
        let mut best_error = f64::MAX;
        let mut best_iter = start;
        let mut i = start;
        for it in start..max_iter {
            i = it;
            let check = (it + 1) % N_ITER_CHECK == 0;
            let compute_error = check || it == max_iter - 1;
            let e = self.gradient(y, &mut grad, compute_error);
            if compute_error {
                error = e;
            }
            let mut norm2 = 0.0;
            for j in 0..n {
                for a in 0..2 {
                    let g = grad[j][a];
                    if update[j][a] * g < 0.0 {
                        gains[j][a] += 0.2;
                    } else {
                        gains[j][a] *= 0.8;
                    }
                    gains[j][a] = gains[j][a].max(0.01);
                    let g = g * gains[j][a];
                    norm2 += g * g;
                    update[j][a] = momentum * update[j][a] - self.learning_rate * g;
                    y[j][a] += update[j][a];
                }
            }
            if check {
                if error < best_error {
                    best_error = error;
                    best_iter = it;
                } else if it - best_iter > n_iter_without_progress {
                    break;
                }
                if norm2.sqrt() <= self.min_grad_norm {
                    break;
                }
            }
        }
        (error, i)
    }

    /// Fills `grad` with the KL gradient (times 4, scikit-learn's constant for one degree of
    /// freedom) and returns the KL divergence when asked (else 0).
    fn gradient(&self, y: &[[f64; 2]], grad: &mut [[f64; 2]], compute_error: bool) -> f64 {
        let tree = QuadTree::build(y);
        let n = y.len();
        let chunk = n.div_ceil(self.threads);
        // Negative forces and Z.
        let sum_q = sum_over_chunks(grad, chunk, |first, out| {
            let mut stack = Vec::with_capacity(64);
            let mut partial = 0.0;
            for (r, g) in out.iter_mut().enumerate() {
                let (f, q) = tree.negative_force(y[first + r], self.squared_theta, &mut stack);
                *g = f;
                partial += q;
            }
            partial
        });
        // Positive forces and the error; combine.
        let p = &self.p;
        sum_over_chunks(grad, chunk, |first, out| {
            let mut c = 0.0;
            for (r, g) in out.iter_mut().enumerate() {
                let i = first + r;
                let mut pos = [0.0; 2];
                for k in p.indptr[i]..p.indptr[i + 1] {
                    let j = p.indices[k];
                    let pij = p.values[k];
                    let d0 = y[i][0] - y[j][0];
                    let d1 = y[i][1] - y[j][1];
                    let q = 1.0 / (1.0 + d0 * d0 + d1 * d1);
                    let w = pij * q;
                    if compute_error {
                        let qn = q / sum_q;
                        c += pij * (pij.max(FLOAT32_TINY) / qn.max(FLOAT32_TINY)).ln();
                    }
                    pos[0] += w * d0;
                    pos[1] += w * d1;
                }
                g[0] = 4.0 * (pos[0] - g[0] / sum_q);
                g[1] = 4.0 * (pos[1] - g[1] / sum_q);
            }
            c
        })
    }
}

/// Runs `work(first_row, rows)` on each `chunk`-row slice of `grad`, each in its own scoped thread, and
/// sums what they return in chunk order (so the sum does not depend on which thread finishes first).
fn sum_over_chunks<F>(grad: &mut [[f64; 2]], chunk: usize, work: F) -> f64
where
    F: Fn(usize, &mut [[f64; 2]]) -> f64 + Sync,
{
    let work = &work;
    let mut total = 0.0;
    std::thread::scope(|scope| {
        let handles: Vec<_> =
            grad.chunks_mut(chunk).enumerate().map(|(t, out)| scope.spawn(move || work(t * chunk, out))).collect();
        for h in handles {
            total += h.join().expect("t-SNE worker panicked");
        }
    });
    total
}
