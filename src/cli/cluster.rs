//! The `cluster` command's flags and its hand-off to the library: read a feature matrix, reduce it
//! (t-SNE, PCA or nothing), cluster it (mean shift, HDBSCAN or affinity propagation), and print the
//! cluster count, the bandwidth and the labels (text or JSON), optionally writing the 2-D points.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use aegis_audit::cluster::Clusterer;
use aegis_audit::data::features::{read_features, write_npy};
use aegis_audit::embed::Reducer;

use super::common::{ClustererArg, ReducerArg};
use super::EXIT_CLEAN;

/// Embed and cluster a feature matrix as AEGIS does (PCA 150 → t-SNE 2-D → mean shift by default).
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// Feature matrix, one row per sample: NPY (float32 or float64, 2-D) or CSV (numbers; an
    /// optional header row).
    #[arg(value_name = "FEATURES")]
    pub features: PathBuf,
    /// Reduction before clustering: PCA to 150 then t-SNE to 2-D, PCA to 2-D, or none.
    #[arg(long, value_enum, default_value_t = ReducerArg::Tsne)]
    pub reducer: ReducerArg,
    /// Clustering algorithm.
    #[arg(long, value_enum, default_value_t = ClustererArg::Meanshift)]
    pub clusterer: ClustererArg,
    /// Mean-shift bandwidth (default: estimated with quantile 0.3 over all points).
    #[arg(long, value_name = "B")]
    pub bandwidth: Option<f64>,
    /// t-SNE perplexity.
    #[arg(long, value_name = "P", default_value_t = 30.0)]
    pub perplexity: f64,
    /// Seed for every random choice.
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,
    /// HDBSCAN's minimum cluster size.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub min_cluster_size: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Write the reduced points (float64 NPY) to this file.
    #[arg(long, value_name = "OUT.npy")]
    pub embedding: Option<PathBuf>,
}

#[derive(Serialize)]
struct Output<'a> {
    n_samples: usize,
    n_features: usize,
    reducer: &'a str,
    clusterer: &'a str,
    n_clusters: usize,
    bandwidth: Option<f64>,
    kl_divergence: Option<f64>,
    labels: &'a [i64],
}

/// Runs the command.
pub fn run(args: ClusterArgs) -> anyhow::Result<ExitCode> {
    let x = read_features(&args.features)?;
    let reducer = Reducer::from(args.reducer);
    let clusterer = Clusterer::from(args.clusterer);
    let reduced = reducer
        .reduce(&x, args.perplexity, args.seed)
        .with_context(|| format!("reducing {} ({:?})", args.features.display(), args.reducer))?;
    if let Some(out) = &args.embedding {
        write_npy(out, &reduced.points)?;
    }
    let clustering = clusterer
        .cluster(&reduced.points, args.bandwidth, args.min_cluster_size, args.seed)
        .with_context(|| format!("clustering {} ({:?})", args.features.display(), args.clusterer))?;
    let name = |v: &dyn std::fmt::Debug| format!("{v:?}").to_lowercase();
    let (reducer_name, clusterer_name) = (name(&args.reducer), name(&args.clusterer));
    if args.json {
        let out = Output {
            n_samples: x.nrows(),
            n_features: x.ncols(),
            reducer: &reducer_name,
            clusterer: &clusterer_name,
            n_clusters: clustering.n_clusters,
            bandwidth: clustering.bandwidth,
            kl_divergence: reduced.kl_divergence,
            labels: &clustering.labels,
        };
        println!("{}", serde_json::to_string(&out)?);
    } else {
        println!("samples: {} x {} features", x.nrows(), x.ncols());
        println!("reducer: {reducer_name}, clusterer: {clusterer_name}");
        if let Some(kl) = reduced.kl_divergence {
            println!("t-SNE KL divergence: {kl:.6}");
        }
        println!("clusters: {}", clustering.n_clusters);
        match clustering.bandwidth {
            Some(b) => println!("bandwidth: {b}"),
            None => println!("bandwidth: n/a"),
        }
        let labels: Vec<String> = clustering.labels.iter().map(i64::to_string).collect();
        println!("labels: {}", labels.join(" "));
    }
    Ok(ExitCode::from(EXIT_CLEAN))
}
