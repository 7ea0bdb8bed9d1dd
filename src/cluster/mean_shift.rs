//! Mean shift with scikit-learn's semantics (`sklearn.cluster.MeanShift`, 1.7): flat kernel, every
//! point is a seed (`bin_seeding` off), each seed moves to the mean of the points within the
//! bandwidth until it moves by at most `1e-3 * bandwidth` or 300 iterations; seeds that end with no
//! point in range are dropped; identical centres are kept once; centres are sorted by intensity
//! (points in range, ties by coordinates, both descending); a centre absorbs every later centre
//! within the bandwidth; every point takes the label of its nearest centre (`cluster_all`).

use std::collections::HashMap;

use ndarray::{Array1, Array2};

use super::bandwidth::estimate_bandwidth;
use super::distance::sq_dist;
use super::Result;
use crate::fit_input::FitError;
use crate::fit_input::{check_matrix, require, setters};

/// Mean-shift clustering.
#[derive(Debug, Clone, Copy)]
pub struct MeanShift;

impl MeanShift {
    /// Parameters with scikit-learn's defaults: bandwidth estimated (quantile 0.3, all points),
    /// `max_iter` 300, threads = available cores (at most 8).
    ///
    /// ```
    /// use aegis_audit::cluster::MeanShift;
    /// use ndarray::array;
    /// let x = array![[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [5.0, 5.0], [5.1, 5.0], [5.0, 5.1]];
    /// let fit = MeanShift::params().bandwidth(Some(1.0)).fit(&x).unwrap();
    /// assert_eq!(fit.centers.nrows(), 2);
    /// assert_eq!(fit.labels[0], fit.labels[2]);
    /// assert_ne!(fit.labels[0], fit.labels[3]);
    /// ```
    pub fn params() -> MeanShiftParams {
        MeanShiftParams {
            bandwidth: None,
            quantile: 0.3,
            bandwidth_n_samples: None,
            seed: 0,
            max_iter: 300,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(8)),
        }
    }
}

/// Mean-shift hyperparameters (see [`MeanShift::params`]).
#[derive(Debug, Clone, Copy)]
pub struct MeanShiftParams {
    bandwidth: Option<f64>,
    quantile: f64,
    bandwidth_n_samples: Option<usize>,
    seed: u64,
    max_iter: usize,
    threads: usize,
}

/// The result of a mean-shift fit.
#[derive(Debug, Clone)]
pub struct MeanShiftFit {
    /// Cluster index of each sample (index into `centers`).
    pub labels: Vec<usize>,
    /// Cluster centres, most intense first.
    pub centers: Array2<f64>,
    /// The bandwidth used (given or estimated).
    pub bandwidth: f64,
    /// The most iterations any seed took (scikit-learn's `n_iter_`).
    pub n_iter: usize,
}

impl MeanShiftParams {
    setters! {
        /// Kernel bandwidth; `None` estimates it with [`estimate_bandwidth`].
        bandwidth: Option<f64>,
        /// Quantile for the estimated bandwidth (default 0.3).
        quantile: f64,
        /// Estimate the bandwidth on a seeded subsample of this many points (default: all points).
        bandwidth_n_samples: Option<usize>,
        /// Seed for the bandwidth subsample.
        seed: u64,
        /// Iteration cap per seed (default 300).
        max_iter: usize,
    }
    /// Worker threads over seeds.
    pub fn threads(mut self, v: usize) -> Self {
        self.threads = v.max(1);
        self
    }

    /// Checks the parameters.
    pub fn check(&self) -> Result<()> {
        if let Some(b) = self.bandwidth {
            require(b > 0.0 && b.is_finite(), "bandwidth", b, "must be positive and finite")?;
        }
        Ok(())
    }

    /// Clusters `x` (rows are samples).
    pub fn fit(&self, x: &Array2<f64>) -> Result<MeanShiftFit> {
        self.check()?;
        check_matrix(x)?;
        let bandwidth = match self.bandwidth {
            Some(b) => b,
            None => {
                let b = estimate_bandwidth(x, self.quantile, self.bandwidth_n_samples, self.seed)?;
                if b <= 0.0 {
                    return Err(FitError::ZeroBandwidth { quantile: self.quantile });
                }
                b
            }
        };
        let n = x.nrows();
        let chunk = n.div_ceil(self.threads.min(n));
        let mut results: Vec<(Array1<f64>, usize, usize)> = Vec::with_capacity(n);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..n)
                .step_by(chunk)
                .map(|start| {
                    scope.spawn(move || {
                        (start..(start + chunk).min(n))
                            .map(|i| shift_seed(x, i, bandwidth, self.max_iter))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for h in handles {
                results.extend(h.join().expect("mean-shift worker panicked"));
            }
        });
        let n_iter = results.iter().map(|r| r.2).max().unwrap_or(0);

        // Keep each distinct centre once (the last seed's intensity wins, as in a Python dict).
        let mut index: HashMap<Vec<u64>, usize> = HashMap::new();
        let mut centers: Vec<(Array1<f64>, usize)> = Vec::new();
        for (c, intensity, _) in results {
            if intensity == 0 {
                continue;
            }
            let key: Vec<u64> = c.iter().map(|v| v.to_bits()).collect();
            match index.get(&key) {
                Some(&k) => centers[k].1 = intensity,
                None => {
                    index.insert(key, centers.len());
                    centers.push((c, intensity));
                }
            }
        }
        if centers.is_empty() {
            return Err(FitError::NoCenters { bandwidth });
        }
        centers.sort_by(|a, b| {
            b.1.cmp(&a.1).then_with(|| {
                for (u, v) in b.0.iter().zip(a.0.iter()) {
                    match u.total_cmp(v) {
                        std::cmp::Ordering::Equal => continue,
                        o => return o,
                    }
                }
                std::cmp::Ordering::Equal
            })
        });
        let bw2 = bandwidth * bandwidth;
        let mut unique = vec![true; centers.len()];
        for i in 0..centers.len() {
            if unique[i] {
                for j in 0..centers.len() {
                    if sq_dist(centers[i].0.view(), centers[j].0.view()) <= bw2 {
                        unique[j] = false;
                    }
                }
                unique[i] = true;
            }
        }
        let kept: Vec<&Array1<f64>> = centers.iter().zip(&unique).filter(|(_, &u)| u).map(|(c, _)| &c.0).collect();
        let mut center_arr = Array2::zeros((kept.len(), x.ncols()));
        for (mut row, c) in center_arr.rows_mut().into_iter().zip(&kept) {
            row.assign(c);
        }
        let labels = x
            .rows()
            .into_iter()
            .map(|p| {
                let mut best = (0, f64::INFINITY);
                for (k, c) in center_arr.rows().into_iter().enumerate() {
                    let d = sq_dist(p, c);
                    if d < best.1 {
                        best = (k, d);
                    }
                }
                best.0
            })
            .collect();
        Ok(MeanShiftFit { labels, centers: center_arr, bandwidth, n_iter })
    }
}

/// scikit-learn's `_mean_shift_single_seed`: the final mean, the number of points within the
/// bandwidth of the previous mean, and the iterations completed.
fn shift_seed(x: &Array2<f64>, seed: usize, bandwidth: f64, max_iter: usize) -> (Array1<f64>, usize, usize) {
    let bw2 = bandwidth * bandwidth;
    let stop = 1e-3 * bandwidth;
    let mut mean = x.row(seed).to_owned();
    let mut completed = 0;
    let mut sum = Array1::zeros(x.ncols());
    loop {
        sum.fill(0.0);
        let mut count = 0usize;
        for row in x.rows() {
            if sq_dist(row, mean.view()) <= bw2 {
                sum += &row;
                count += 1;
            }
        }
        if count == 0 {
            return (mean, 0, completed);
        }
        let new_mean = &sum / count as f64;
        let shift = sq_dist(new_mean.view(), mean.view()).sqrt();
        mean = new_mean;
        if shift <= stop || completed == max_iter {
            return (mean, count, completed);
        }
        completed += 1;
    }
}
