//! Flags shared by several subcommands: where ONNX Runtime comes from and where it runs, and which
//! tensor of the model is the feature representation.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use aegis_audit::audit::{Clusterer, Device, FeatureChoice, Reducer};

/// Where ONNX Runtime is loaded from and which execution provider runs it.
#[derive(Debug, Clone, Args)]
pub struct RuntimeArgs {
    /// Path to the ONNX Runtime shared library (libonnxruntime.so.1.31.1). Otherwise: ORT_DYLIB_PATH,
    /// then the project's .ort/ folder, then an installed Python `onnxruntime` package.
    #[arg(long, value_name = "PATH", global = true)]
    pub ort_lib: Option<PathBuf>,
    /// Execution provider: cpu (default), cuda (an error if CUDA is unusable), or auto (CUDA if
    /// usable, else CPU, and says so).
    #[arg(long, value_enum, global = true)]
    pub device: Option<DeviceArg>,
    /// Intra-op threads for ONNX Runtime (default 0: ONNX Runtime's default, one per core; at most
    /// 1024).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
}

/// The `--device` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    /// CPU execution provider.
    Cpu,
    /// CUDA execution provider; an error if it cannot be registered.
    Cuda,
    /// CUDA when usable, otherwise CPU (with a notice).
    Auto,
}

/// Which tensor is the feature representation.
#[derive(Debug, Clone, Args)]
pub struct FeatureArgs {
    /// Which layer gives the features: the last convolutional block's output before the pooling or
    /// Flatten that feeds the classifier head (as the AEGIS authors took it), or the input of the
    /// final Gemm/MatMul.
    #[arg(long, value_enum, default_value_t = FeatureLayerArg::LastConv)]
    pub feature_layer: FeatureLayerArg,
    /// Name of the tensor to use as features; overrides --feature-layer.
    #[arg(long, value_name = "NAME")]
    pub feature_tensor: Option<String>,
}

/// The `--feature-layer` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FeatureLayerArg {
    /// Output of the last convolutional block, before pooling/Flatten.
    LastConv,
    /// Input of the final Gemm/MatMul.
    Penultimate,
}

impl FeatureArgs {
    /// The library's [`FeatureChoice`] for these flags.
    pub fn choice(&self) -> FeatureChoice {
        match (&self.feature_tensor, self.feature_layer) {
            (Some(name), _) => FeatureChoice::Named(name.clone()),
            (None, FeatureLayerArg::LastConv) => FeatureChoice::LastConv,
            (None, FeatureLayerArg::Penultimate) => FeatureChoice::Penultimate,
        }
    }
}

impl From<DeviceArg> for Device {
    fn from(arg: DeviceArg) -> Self {
        match arg {
            DeviceArg::Cpu => Device::Cpu,
            DeviceArg::Cuda => Device::Cuda,
            DeviceArg::Auto => Device::Auto,
        }
    }
}

/// The `--reducer` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReducerArg {
    /// PCA to 150 dimensions (`--pca-dims`), then Barnes-Hut t-SNE to 2-D (AEGIS).
    Tsne,
    /// PCA to 2-D (the paper's ablation).
    Pca,
    /// Cluster the features as given.
    None,
}

impl From<ReducerArg> for Reducer {
    fn from(arg: ReducerArg) -> Self {
        match arg {
            ReducerArg::Tsne => Self::Tsne,
            ReducerArg::Pca => Self::Pca,
            ReducerArg::None => Self::None,
        }
    }
}

/// The `--clusterer` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClustererArg {
    /// Mean shift, flat kernel (AEGIS).
    Meanshift,
    /// HDBSCAN (the paper's ablation).
    Hdbscan,
    /// Affinity propagation (the paper's ablation).
    Affinity,
}

impl From<ClustererArg> for Clusterer {
    fn from(arg: ClustererArg) -> Self {
        match arg {
            ClustererArg::Meanshift => Self::MeanShift,
            ClustererArg::Hdbscan => Self::Hdbscan,
            ClustererArg::Affinity => Self::Affinity,
        }
    }
}
