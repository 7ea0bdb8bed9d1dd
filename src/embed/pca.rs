//! Exact PCA by symmetric eigendecomposition (of the covariance or of the Gram matrix, whichever is
//! smaller), with scikit-learn's conventions: variance with `n - 1`, components' signs flipped so the
//! largest-magnitude loading is positive (`svd_flip`), and `k` capped at `min(n_samples, n_features)`.
//!
//! `linfa-reduction`'s `Pca` is not used: it divides explained variance by the number of components
//! instead of `n - 1`, and its LOBPCG solver is approximate for many components.

use linfa_linalg::eigh::{EigSort, EighInto};
use linfa_linalg::Order;
use ndarray::{Array1, Array2, Axis};

use super::Result;
use crate::fit_input::FitError;
use crate::fit_input::{check_samples, require, setters};

/// Principal component analysis.
#[derive(Debug, Clone, Copy)]
pub struct Pca;

impl Pca {
    /// Parameters for a PCA to `n_components` dimensions (150 in AEGIS). The fit keeps
    /// `min(n_components, n_samples, n_features)` components.
    ///
    /// ```
    /// use aegis_audit::embed::Pca;
    /// use ndarray::array;
    /// let x = array![[0.0, 0.0], [1.0, 1.0], [2.0, 2.1], [3.0, 2.9]];
    /// let pca = Pca::params(1).fit(&x).unwrap();
    /// assert_eq!(pca.transform(&x).unwrap().ncols(), 1);
    /// assert!(pca.explained_variance_ratio()[0] > 0.99);
    /// ```
    pub fn params(n_components: usize) -> PcaParams {
        PcaParams { n_components }
    }
}

/// PCA hyperparameters.
#[derive(Debug, Clone, Copy)]
pub struct PcaParams {
    n_components: usize,
}

impl PcaParams {
    setters! {
        /// Sets the target dimension.
        n_components: usize,
    }

    /// Checks the parameters.
    pub fn check(&self) -> Result<()> {
        require(self.n_components > 0, "n_components", 0.0, "must be at least 1")
    }

    /// Fits the model to `x` (rows are samples).
    pub fn fit(&self, x: &Array2<f64>) -> Result<FittedPca> {
        self.check()?;
        let n = check_samples(x, "PCA", 2)?;
        let d = x.ncols();
        let k = self.n_components.min(n).min(d);
        let mean = x.mean_axis(Axis(0)).expect("n > 0");
        let xc = x - &mean;
        let denom = (n - 1) as f64;
        let total_variance = xc.map_axis(Axis(0), |c| c.dot(&c)).sum() / denom;

        let (values, mut components) = if d <= n {
            let cov = xc.t().dot(&xc) / denom;
            let (vals, vecs) = eig_desc(cov)?;
            let comps = vecs.slice(ndarray::s![.., ..k]).t().to_owned();
            (vals.slice(ndarray::s![..k]).to_owned(), comps)
        } else {
            let gram = xc.dot(&xc.t());
            let (vals, vecs) = eig_desc(gram)?;
            let mut comps = Array2::zeros((k, d));
            for j in 0..k {
                let lambda = vals[j];
                if lambda > 0.0 {
                    let v = xc.t().dot(&vecs.column(j)) / lambda.sqrt();
                    comps.row_mut(j).assign(&v);
                }
            }
            (vals.slice(ndarray::s![..k]).mapv(|v| v / denom), comps)
        };
        for mut row in components.rows_mut() {
            let (mut best, mut sign) = (0.0f64, 1.0);
            for &v in row.iter() {
                if v.abs() > best {
                    best = v.abs();
                    sign = v.signum();
                }
            }
            row *= sign;
        }
        let explained_variance = values.mapv(|v| v.max(0.0));
        Ok(FittedPca { mean, components, explained_variance, total_variance })
    }
}

/// Eigenvalues in descending order with their eigenvectors as columns.
fn eig_desc(m: Array2<f64>) -> Result<(Array1<f64>, Array2<f64>)> {
    let (vals, vecs) = m.eigh_into().map_err(|e| FitError::Linalg(e.to_string()))?;
    Ok((vals, vecs).sort_eig(Order::Largest))
}

/// A fitted PCA.
#[derive(Debug, Clone)]
pub struct FittedPca {
    mean: Array1<f64>,
    components: Array2<f64>,
    explained_variance: Array1<f64>,
    total_variance: f64,
}

impl FittedPca {
    /// Projects `x` onto the components (centred with the fitted mean).
    pub fn transform(&self, x: &Array2<f64>) -> Result<Array2<f64>> {
        if x.ncols() != self.mean.len() {
            return Err(FitError::FeatureMismatch { expected: self.mean.len(), got: x.ncols() });
        }
        Ok((x - &self.mean).dot(&self.components.t()))
    }

    /// Variance along each component (`n - 1` denominator), largest first.
    pub fn explained_variance(&self) -> &Array1<f64> {
        &self.explained_variance
    }

    /// Each component's share of the total variance.
    pub fn explained_variance_ratio(&self) -> Array1<f64> {
        if self.total_variance > 0.0 {
            &self.explained_variance / self.total_variance
        } else {
            Array1::zeros(self.explained_variance.len())
        }
    }

    /// Components as rows (`k x n_features`).
    pub fn components(&self) -> &Array2<f64> {
        &self.components
    }

    /// The fitted per-feature mean.
    pub fn mean(&self) -> &Array1<f64> {
        &self.mean
    }
}
