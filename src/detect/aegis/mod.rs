//! AEGIS (Soremekun et al., arXiv 2003.00865) for one model: per class, translate random training
//! images toward the class, embed the features of the translated and of clean class images (PCA,
//! t-SNE), cluster the embedding, and flag the class when there are more than two clusters.
//!
//! The cluster count must not depend on the embedding's scale: the paper's fixed bandwidths (35 / 28 /
//! 21) were tuned to the coordinate scale of an old t-SNE and mean nothing for today's (PCA
//! initialisation, automatic learning rate). [`BandwidthRule`] therefore offers, besides the paper's
//! rules, a bandwidth relative to the embedding's own spread, and clusters holding less than
//! `min_cluster_fraction` of the points are not counted (mean shift with a small bandwidth always finds
//! a few stray points at the fringe).
//!
//! On the small robust CNNs measured here the cluster count does not separate backdoored from clean
//! classes (docs/methods-and-results.md, "The AEGIS decision rule"). [`DecisionRule::Shortcut`] decides from the same
//! translation instead: a backdoor is a shortcut, so images translated toward its target class move
//! less (they gain the trigger and keep their own digit) than images translated toward any other
//! class. The per-class mean L2 displacement is compared across classes with the MAD anomaly index,
//! which is free of scale: it depends neither on the embedding nor on the attack's step size.
//!
//! The features of clean class images, the embedding and the clustering are computed only when
//! [`AegisParams::embed`] asks for them (the cluster rule and the evidence scatter plots need them; the
//! shortcut decision does not).
//!
//! [`run_aegis`] runs the detector over the audited classes, `runs` times with seeds `seed`, `seed + 1`,
//! …, and owns the decision: under either rule a class is flagged when more than half of the runs flag
//! it. Its [`AegisResult`] becomes the common [`DetectorOutcome`].

mod class;
mod shortcut;
pub mod translate;

use std::time::Instant;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

pub use class::{aegis_class, AegisClass, ClusterInfo};
pub use shortcut::{
    mean_displacement, seed_displacements, shortcut_decision, shortcut_votes, ShortcutDecision, ShortcutVotes,
    SHORTCUT_MIN_CLASSES,
};

use super::outcome::{ClassStatistic, DetectorOutcome};
use super::rules::Rules;
use super::DetectError;
use crate::attack::GradientModel;
use crate::cluster::{estimate_bandwidth, Clusterer};
use crate::embed::Reducer;
use translate::TranslationParams;

/// How the mean-shift bandwidth is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "rule", deny_unknown_fields)]
pub enum BandwidthRule {
    /// scikit-learn's `estimate_bandwidth` at this quantile (the paper's automatic choice: 0.3).
    Estimate {
        /// Neighbour quantile.
        quantile: f64,
    },
    /// A fixed bandwidth in embedding units (the paper's 35 / 28 / 21; scale-dependent).
    Fixed {
        /// The bandwidth.
        value: f64,
    },
    /// `factor` × the embedding's RMS distance to its centroid (scale-invariant).
    Relative {
        /// The factor.
        factor: f64,
    },
}

impl BandwidthRule {
    /// The bandwidth for `points`.
    pub fn bandwidth(&self, points: &Array2<f64>, seed: u64) -> Result<f64, DetectError> {
        Ok(match *self {
            BandwidthRule::Estimate { quantile } => estimate_bandwidth(points, quantile, None, seed)?,
            BandwidthRule::Fixed { value } => value,
            BandwidthRule::Relative { factor } => factor * rms_radius(points),
        })
    }
}

/// Root-mean-square distance of the rows of `points` to their centroid.
pub fn rms_radius(points: &Array2<f64>) -> f64 {
    let n = points.nrows().max(1) as f64;
    let centroid = points.sum_axis(ndarray::Axis(0)) / n;
    let ss: f64 = points.rows().into_iter().map(|r| (&r - &centroid).mapv(|v| v * v).sum()).sum();
    (ss / n).sqrt()
}

/// How AEGIS turns a class's translation into a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DecisionRule {
    /// The paper's rule: more than `max_clusters` counted clusters in the class's embedding.
    Clusters,
    /// Translation shortcut: the class's mean translation displacement is a low outlier across
    /// classes (MAD anomaly index above the threshold).
    #[default]
    Shortcut,
}

/// AEGIS parameters beyond the translation (serialised as the report's parameters name them).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AegisParams {
    /// How images are translated toward each class.
    pub translation: TranslationParams,
    /// Dimensionality reduction before clustering.
    pub reducer: Reducer,
    /// PCA dimensions before t-SNE (the paper: 150).
    pub pca_dims: usize,
    /// t-SNE perplexity.
    pub perplexity: f64,
    /// The clustering algorithm.
    pub clusterer: Clusterer,
    /// Mean-shift bandwidth rule.
    pub bandwidth: BandwidthRule,
    /// HDBSCAN's minimum cluster size.
    pub min_cluster_size: usize,
    /// Clusters with fewer than this fraction of all points (clean + translated) are not counted.
    pub min_cluster_fraction: f64,
    /// A class with more clusters than this is flagged by the cluster rule (the paper: 2).
    pub max_clusters: usize,
    /// Which rule flags a class.
    pub decision: DecisionRule,
    /// Shortcut rule: anomaly index (low side) above which a class is flagged.
    pub shortcut_threshold: f64,
    /// Whether to compute what only the cluster rule and the evidence use: the features of the clean
    /// class images, the embedding (PCA, t-SNE) and the clustering. When false, only the translation
    /// and its displacement (the shortcut statistic) are computed; the cluster rule needs it true.
    pub embed: bool,
    /// Images per model evaluation.
    pub batch_size: usize,
    /// Seed of every random choice.
    pub seed: u64,
}

impl AegisParams {
    /// Checks every rule (the translation's too); the error names the parameter, its value and the rule.
    pub fn check(&self) -> Result<(), DetectError> {
        self.translation.check()?;
        let r = Rules("");
        r.count("embedding.pca_dims", self.pca_dims)?;
        r.positive("embedding.perplexity", self.perplexity)?;
        match self.bandwidth {
            BandwidthRule::Estimate { quantile } => r.require(
                (0.0..=1.0).contains(&quantile),
                "decision.bandwidth",
                format!("estimate:{quantile}"),
                "the quantile must be in [0, 1]",
            ),
            BandwidthRule::Fixed { value } => r.positive("decision.bandwidth", value),
            BandwidthRule::Relative { factor } => r.require(
                factor.is_finite() && factor > 0.0,
                "decision.bandwidth",
                format!("relative:{factor}"),
                "the factor must be finite and > 0",
            ),
        }?;
        let fraction = self.min_cluster_fraction;
        r.require((0.0..1.0).contains(&fraction), "decision.min_cluster_fraction", fraction, "must be in [0, 1)")?;
        let size = self.min_cluster_size;
        let hdbscan = self.clusterer == Clusterer::Hdbscan;
        r.require(!hdbscan || size >= 2, "decision.min_cluster_size", size, "must be >= 2 for HDBSCAN")?;
        r.positive("decision.shortcut_threshold", self.shortcut_threshold)?;
        r.count("batch_size", self.batch_size)?;
        let clusters = self.decision == DecisionRule::Clusters;
        r.require(
            !clusters || self.embed,
            "decision.rule",
            "clusters",
            "needs the embedding and the clustering (embed = true)",
        )
    }
}

/// Where AEGIS is: translating the seeds of `class` toward it in run `run` (0-based) of `runs`, `done`
/// of `total` seed images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AegisProgress {
    /// The class being translated toward.
    pub class: usize,
    /// The run, from 0.
    pub run: usize,
    /// Runs in all.
    pub runs: usize,
    /// Seed images translated so far in this run.
    pub done: usize,
    /// Seed images per class.
    pub total: usize,
}

/// Wall time of AEGIS's stages over every class and run, seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AegisTimings {
    /// Translation (PGD).
    pub translation: f64,
    /// Features of the clean class images.
    pub features: f64,
    /// PCA and t-SNE.
    pub embedding: f64,
    /// Bandwidth and clustering.
    pub clustering: f64,
    /// The cross-class decision and the vote.
    pub decision: f64,
}

/// One class's AEGIS outcome over every run.
#[derive(Debug, Clone)]
pub struct AegisClassResult {
    /// The first run (its embedding, clusters and translations are the evidence).
    pub first: AegisClass,
    /// Counted clusters in each run.
    pub counts: Vec<usize>,
    /// Runs whose cluster count exceeds `max_clusters`.
    pub cluster_votes: usize,
    /// Whether the cluster rule flags the class (more than half of the runs).
    pub cluster_flagged: bool,
    /// The shortcut decision over the runs.
    pub shortcut: ShortcutVotes,
    /// Whether the shortcut rule flags the class (more than half of the runs).
    pub shortcut_flagged: bool,
    /// The flag under the configured decision rule.
    pub flagged: bool,
    /// One sentence with the numbers behind the flag.
    pub summary: String,
}

/// What AEGIS found over the audited classes.
#[derive(Debug, Clone)]
pub struct AegisResult {
    /// The parameters used (seed of the first run).
    pub params: AegisParams,
    /// Runs per class.
    pub runs: usize,
    /// One result per audited class, in the order given.
    pub classes: Vec<AegisClassResult>,
    /// Wall time of each stage.
    pub timings: AegisTimings,
}

/// Runs AEGIS on `classes` of the training set (`images` NCHW in [0, 1], `labels`), `runs` times per
/// class with seeds `params.seed + r`, and decides every class under `params.decision`.
pub fn run_aegis(
    model: &mut dyn GradientModel,
    images: &[f32],
    labels: &[i64],
    classes: &[usize],
    params: &AegisParams,
    runs: usize,
    mut progress: impl FnMut(AegisProgress),
) -> Result<AegisResult, DetectError> {
    let runs = runs.max(1);
    let mut timings = AegisTimings::default();
    let mut per_class = Vec::with_capacity(classes.len());
    for &class in classes {
        let mut first: Option<AegisClass> = None;
        let mut counts = Vec::with_capacity(runs);
        let mut displacements = Vec::with_capacity(runs);
        for run in 0..runs {
            let run_params = AegisParams { seed: params.seed.wrapping_add(run as u64), ..params.clone() };
            let total = run_params.translation.seeds_per_class;
            let result = aegis_class(model, images, labels, class, &run_params, |done| {
                progress(AegisProgress { class, run, runs, done, total })
            })?;
            timings.translation += result.samples.translation_s;
            timings.features += result.samples.features_s;
            timings.embedding += result.embedding_s;
            timings.clustering += result.clustering_s;
            displacements.push(result.displacement);
            counts.push(result.clusters);
            if first.is_none() {
                first = Some(result);
            }
        }
        per_class.push((first.expect("at least one run"), counts, displacements));
    }
    let started = Instant::now();
    let displacements: Vec<Vec<f64>> = per_class.iter().map(|(_, _, d)| d.clone()).collect();
    let votes = shortcut_votes(&displacements, params.shortcut_threshold, params.decision == DecisionRule::Shortcut)?;
    let classes = per_class
        .into_iter()
        .zip(votes)
        .map(|((first, counts, _), shortcut)| decide_class(params, first, counts, shortcut))
        .collect();
    timings.decision = started.elapsed().as_secs_f64();
    Ok(AegisResult { params: params.clone(), runs, classes, timings })
}

/// One class's flag under the decision rule (a majority of runs), and its summary sentence.
fn decide_class(
    params: &AegisParams,
    first: AegisClass,
    counts: Vec<usize>,
    shortcut: ShortcutVotes,
) -> AegisClassResult {
    let class = first.class;
    let n_runs = counts.len();
    let cluster_votes = if first.clustered { counts.iter().filter(|&&c| c > params.max_clusters).count() } else { 0 };
    let cluster_flagged = cluster_votes * 2 > n_runs;
    let shortcut_flagged = shortcut.votes * 2 > n_runs;
    let flagged = match params.decision {
        DecisionRule::Shortcut => shortcut_flagged,
        DecisionRule::Clusters => cluster_flagged,
    };
    let shortcut_text = format!(
        "mean translation displacement {:.2} vs median {:.2} over the audited classes, anomaly index \
         {:.2} (runs flagging: {}/{n_runs})",
        shortcut.displacement, shortcut.median, shortcut.index, shortcut.votes
    );
    let cluster_text = if first.clustered {
        format!(
            "{} clusters (counted, min {:.0}% of points) in the {} embedding (runs with more than {}: {cluster_votes}/{n_runs}, counts {counts:?})",
            first.clusters,
            params.min_cluster_fraction * 100.0,
            format!("{:?}", params.reducer).to_lowercase(),
            params.max_clusters,
        )
    } else {
        "clusters not computed (the shortcut decision does not use them; --aegis-decision clusters or \
         --evidence computes them)"
            .to_string()
    };
    let summary = match params.decision {
        DecisionRule::Shortcut => format!(
            "class {class}: {shortcut_text}{}; {cluster_text}; translation reached the class for {:.1}% of seeds",
            if flagged {
                format!(" > {}: translation shortcut, backdoor suspected", params.shortcut_threshold)
            } else {
                String::new()
            },
            first.reached * 100.0
        ),
        DecisionRule::Clusters => format!(
            "class {class}: {cluster_text}{}; {shortcut_text}; translation reached the class for {:.1}% of seeds",
            if flagged { ": more clusters than allowed, backdoor suspected" } else { "" },
            first.reached * 100.0
        ),
    };
    AegisClassResult { first, counts, cluster_votes, cluster_flagged, shortcut, shortcut_flagged, flagged, summary }
}

impl AegisResult {
    /// The common outcome: per class the mean translation displacement, its low-side anomaly index (positive
    /// below the median), the flag under the configured rule and the summary.
    pub fn outcome(&self) -> DetectorOutcome {
        let classes = self
            .classes
            .iter()
            .map(|c| ClassStatistic {
                class: c.first.class,
                value: c.shortcut.displacement,
                anomaly_index: c.shortcut.index,
                flagged: c.flagged,
                reason: c.summary.clone(),
            })
            .collect();
        DetectorOutcome { statistic: "mean translation displacement", classes }
    }
}
