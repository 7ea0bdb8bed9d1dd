//! t-SNE's input affinities, as scikit-learn computes them for Barnes-Hut: the `3 * perplexity`
//! nearest neighbours by squared Euclidean distance, a per-point binary search for the precision that
//! gives the perplexity, then `P = (P + P^T) / sum`. Stored as sparse rows.

use ndarray::{s, Array1, Array2, Axis};

/// Binary search steps (scikit-learn's `n_steps`).
const N_STEPS: usize = 100;
/// Entropy tolerance (scikit-learn's `PERPLEXITY_TOLERANCE`).
const PERPLEXITY_TOLERANCE: f64 = 1e-5;
/// Floor for a row's probability sum (scikit-learn's `EPSILON_DBL`).
const EPSILON_DBL: f64 = 1e-8;

/// Symmetric joint probabilities in compressed sparse rows.
#[derive(Debug, Clone)]
pub(crate) struct SparseP {
    /// Row start offsets, `n + 1` entries.
    pub indptr: Vec<usize>,
    /// Column of each entry.
    pub indices: Vec<usize>,
    /// Value of each entry.
    pub values: Vec<f64>,
}

/// The `k` nearest neighbours of every row (itself excluded), as (index, squared distance) sorted by
/// distance. Rows are split over `threads` threads.
pub(crate) fn knn_squared(x: &Array2<f64>, k: usize, threads: usize) -> Vec<Vec<(usize, f64)>> {
    let n = x.nrows();
    let norms: Array1<f64> = x.map_axis(Axis(1), |r| r.dot(&r));
    let threads = threads.clamp(1, n.max(1));
    let chunk = n.div_ceil(threads);
    let mut out: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n];
    std::thread::scope(|scope| {
        for (t, rows) in out.chunks_mut(chunk).enumerate() {
            let norms = &norms;
            scope.spawn(move || {
                let start = t * chunk;
                const BLOCK: usize = 256;
                let mut buf: Vec<(usize, f64)> = Vec::with_capacity(n);
                for b0 in (0..rows.len()).step_by(BLOCK) {
                    let b1 = (b0 + BLOCK).min(rows.len());
                    let block = x.slice(s![start + b0..start + b1, ..]);
                    let g = block.dot(&x.t());
                    for (r, grow) in g.rows().into_iter().enumerate() {
                        let i = start + b0 + r;
                        buf.clear();
                        buf.extend(
                            grow.iter()
                                .enumerate()
                                .filter(|(j, _)| *j != i)
                                .map(|(j, &dot)| (j, (norms[i] + norms[j] - 2.0 * dot).max(0.0))),
                        );
                        let k = k.min(buf.len());
                        if k < buf.len() {
                            buf.select_nth_unstable_by(k, |a, b| a.1.total_cmp(&b.1));
                        }
                        let mut nn = buf[..k].to_vec();
                        nn.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
                        rows[b0 + r] = nn;
                    }
                }
            });
        }
    });
    out
}

/// Conditional probabilities `p(j|i)` over each row's neighbours for the target perplexity.
pub(crate) fn binary_search_perplexity(neighbours: &[Vec<(usize, f64)>], perplexity: f64) -> Vec<Vec<f64>> {
    let desired_entropy = perplexity.ln();
    neighbours
        .iter()
        .map(|row| {
            // scikit-learn casts the squared distances to float32 before the search.
            let d: Vec<f64> = row.iter().map(|&(_, d)| d as f32 as f64).collect();
            let mut p = vec![0.0; d.len()];
            let (mut beta, mut beta_min, mut beta_max) = (1.0f64, f64::NEG_INFINITY, f64::INFINITY);
            for _ in 0..N_STEPS {
                let mut sum_p = 0.0;
                for (pj, &dj) in p.iter_mut().zip(&d) {
                    *pj = (-dj * beta).exp();
                    sum_p += *pj;
                }
                if sum_p == 0.0 {
                    sum_p = EPSILON_DBL;
                }
                let mut sum_disti_pi = 0.0;
                for (pj, &dj) in p.iter_mut().zip(&d) {
                    *pj /= sum_p;
                    sum_disti_pi += dj * *pj;
                }
                let entropy = sum_p.ln() + beta * sum_disti_pi;
                let diff = entropy - desired_entropy;
                if diff.abs() <= PERPLEXITY_TOLERANCE {
                    break;
                }
                if diff > 0.0 {
                    beta_min = beta;
                    beta = if beta_max == f64::INFINITY { beta * 2.0 } else { (beta + beta_max) / 2.0 };
                } else {
                    beta_max = beta;
                    beta = if beta_min == f64::NEG_INFINITY { beta / 2.0 } else { (beta + beta_min) / 2.0 };
                }
            }
            p
        })
        .collect()
}

/// `P = (P + P^T) / max(sum, eps)` as sparse rows with sorted columns.
pub(crate) fn joint_probabilities(neighbours: &[Vec<(usize, f64)>], conditional: &[Vec<f64>]) -> SparseP {
    let n = neighbours.len();
    let mut rows: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n];
    for (i, (nb, p)) in neighbours.iter().zip(conditional).enumerate() {
        for (&(j, _), &pij) in nb.iter().zip(p) {
            rows[i].push((j, pij));
            rows[j].push((i, pij));
        }
    }
    let mut indptr = Vec::with_capacity(n + 1);
    let mut indices = Vec::new();
    let mut values = Vec::new();
    indptr.push(0);
    for row in &mut rows {
        row.sort_by_key(|e| e.0);
        let mut last: Option<usize> = None;
        for &(j, v) in row.iter() {
            if last == Some(j) {
                *values.last_mut().expect("entry exists") += v;
            } else {
                indices.push(j);
                values.push(v);
                last = Some(j);
            }
        }
        indptr.push(indices.len());
    }
    let sum: f64 = values.iter().sum();
    let sum = sum.max(f64::EPSILON);
    for v in &mut values {
        *v /= sum;
    }
    SparseP { indptr, indices, values }
}
