//! The `cluster` command's flags and its hand-off to the library: read a feature matrix, reduce it
//! (t-SNE, PCA or nothing), cluster it (mean shift, HDBSCAN or affinity propagation), and print the
//! cluster count, the bandwidth and the labels (text or JSON), optionally writing the 2-D points.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use aegis_audit::audit::subcommands::{self as tools, ClusterOptions};
use aegis_audit::report::EXIT_CLEAN;

use aegis_audit::audit::{Clusterer, Reducer};

/// Embed and cluster a feature matrix as AEGIS does (PCA 150 → t-SNE 2-D → mean shift by default).
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// Feature matrix, one row per sample: NPY (float32 or float64, 2-D) or CSV (numbers; an
    /// optional header row).
    #[arg(value_name = "FEATURES")]
    pub features: PathBuf,
    /// Reduction before clustering: PCA to 150 then t-SNE to 2-D, PCA to 2-D, or none.
    #[arg(long, value_enum, default_value_t = Reducer::Tsne)]
    pub reducer: Reducer,
    /// Clustering algorithm.
    #[arg(long, value_enum, default_value_t = Clusterer::MeanShift)]
    pub clusterer: Clusterer,
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
    let options = ClusterOptions {
        features: args.features.clone(),
        reducer: args.reducer,
        clusterer: args.clusterer,
        bandwidth: args.bandwidth,
        perplexity: args.perplexity,
        seed: args.seed,
        min_cluster_size: args.min_cluster_size,
    };
    if let Some(out) = &args.embedding {
        tools::check_output("--embedding", out, &[("the feature file read", &args.features)])?;
    }
    let c = tools::cluster_features(&options).with_context(|| {
        format!("clustering {} ({:?}, {:?})", args.features.display(), args.reducer, args.clusterer)
    })?;
    if let Some(out) = &args.embedding {
        tools::write_embedding(out, &c)?;
    }
    let name = |v: &dyn std::fmt::Debug| format!("{v:?}").to_lowercase();
    let (reducer_name, clusterer_name) = (name(&args.reducer), name(&args.clusterer));
    if args.json {
        let out = Output {
            n_samples: c.n_samples,
            n_features: c.n_features,
            reducer: &reducer_name,
            clusterer: &clusterer_name,
            n_clusters: c.clustering.n_clusters,
            bandwidth: c.clustering.bandwidth,
            kl_divergence: c.reduced.kl_divergence,
            labels: &c.clustering.labels,
        };
        println!("{}", serde_json::to_string(&out)?);
    } else {
        println!("samples: {} x {} features", c.n_samples, c.n_features);
        println!("reducer: {reducer_name}, clusterer: {clusterer_name}");
        if let Some(kl) = c.reduced.kl_divergence {
            println!("t-SNE KL divergence: {kl:.6}");
        }
        println!("clusters: {}", c.clustering.n_clusters);
        match c.clustering.bandwidth {
            Some(b) => println!("bandwidth: {b}"),
            None => println!("bandwidth: n/a"),
        }
        let labels: Vec<String> = c.clustering.labels.iter().map(i64::to_string).collect();
        println!("labels: {}", labels.join(" "));
    }
    Ok(ExitCode::from(EXIT_CLEAN))
}
