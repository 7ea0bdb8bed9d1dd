//! Dimensionality reduction of feature vectors: PCA and Barnes-Hut t-SNE, with scikit-learn's defaults.
//!
//! Each algorithm is a params struct (builder setters, validated by `fit`) that fits into a result:
//! [`Pca::params`] → [`FittedPca`], [`Tsne::params`] → [`TsneEmbedding`]. [`Reducer`] names the choice
//! the CLI and the audit offer (`--reducer tsne|pca|none`).

mod pca;
mod tsne;

pub use pca::{FittedPca, Pca, PcaParams};
pub use tsne::{Tsne, TsneEmbedding, TsneParams};

use ndarray::Array2;

use crate::fit_input::check_matrix;
pub use crate::fit_input::{FitError, Result};

/// Which reduction runs before clustering (`--reducer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reducer {
    /// PCA to 150 dimensions (fewer when the data has fewer), then Barnes-Hut t-SNE to 2-D (AEGIS).
    #[default]
    Tsne,
    /// PCA straight to 2-D (the paper's RQ7 ablation).
    Pca,
    /// No reduction: cluster the features as given.
    None,
}

impl Reducer {
    /// Reduces `x` as this choice says, with t-SNE's `perplexity` and `seed` where they apply.
    pub fn reduce(self, x: &Array2<f64>, perplexity: f64, seed: u64) -> Result<Reduced> {
        self.reduce_with(x, 150, perplexity, seed)
    }

    /// As [`Reducer::reduce`], with `pca_dims` dimensions (fewer when the data has fewer) before t-SNE.
    pub fn reduce_with(self, x: &Array2<f64>, pca_dims: usize, perplexity: f64, seed: u64) -> Result<Reduced> {
        match self {
            Reducer::None => {
                check_matrix(x)?;
                Ok(Reduced { points: x.clone(), kl_divergence: None })
            }
            Reducer::Pca => {
                let fitted = Pca::params(2).fit(x)?;
                Ok(Reduced { points: fitted.transform(x)?, kl_divergence: None })
            }
            Reducer::Tsne => {
                let pca = Pca::params(pca_dims).fit(x)?;
                let reduced = pca.transform(x)?;
                let emb = Tsne::params().perplexity(perplexity).seed(seed).fit(&reduced)?;
                Ok(Reduced { points: emb.points, kl_divergence: Some(emb.kl_divergence) })
            }
        }
    }
}

/// The output of [`Reducer::reduce`].
#[derive(Debug, Clone, PartialEq)]
pub struct Reduced {
    /// The reduced points, one row per sample.
    pub points: Array2<f64>,
    /// t-SNE's final KL divergence, when t-SNE ran.
    pub kl_divergence: Option<f64>,
}
