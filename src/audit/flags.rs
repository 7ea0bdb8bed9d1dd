//! Every audit flag that sets a parameter, declared once: its documentation (the `--help` text), its
//! name, the preset key it overrides and its upper bound, grouped by the section of the presets file
//! (or of the built-in defaults) it overrides. One generic step ([`FlagGroup::resolve`]) writes the
//! flags given over a section; the plan's checks ([`crate::audit::AuditPlan::check`]) read the bounds
//! and the flags given from the same declarations ([`FlagGroup::bounds`], [`FlagGroup::given`]).
//!
//! Adding a flag: one line in its group below (and, if it is new behaviour, the field in the section's
//! parameters and the code that uses it).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::options::{parse_classes, parse_eps_sweep, parse_levels, BandwidthChoice};
use super::preset::{DecisionParams, EmbeddingParams};
use crate::cluster::Clusterer;
use crate::detect::aegis::translate::TranslationParams;
use crate::detect::aegis::DecisionRule;
use crate::detect::neural_cleanse::NeuralCleanseParams;
use crate::detect::precondition::PreconditionParams;
use crate::detect::reach::ReachParams;
use crate::detect::universal::UniversalParams;
use crate::embed::Reducer;
use crate::runtime::Device;

/// A group of flags over one section: each flag is an `Option` of the section's field of the same name.
pub trait FlagGroup: clap::Args + Clone + Default {
    /// The section the flags override.
    type Section;
    /// The section's key in a presets file (`neural_cleanse`), or `""` for a section that only flags and
    /// defaults set.
    const SECTION: &'static str;
    /// Writes every flag given over `section`.
    fn apply(&self, section: &mut Self::Section);
    /// The flags given (`--nc-images`, …), in declaration order.
    fn given(&self) -> Vec<&'static str>;
    /// The bounded fields of the section, each with its flag and largest value.
    fn bounds() -> Vec<FieldBound<Self::Section>>;

    /// `section` with every flag given written over it.
    fn resolve(&self, mut section: Self::Section) -> Self::Section {
        self.apply(&mut section);
        section
    }
}

/// An upper bound on one field of a section.
pub struct FieldBound<S> {
    /// The field's key in the section (`images`).
    pub key: &'static str,
    /// The flag that sets it (`--nc-images`).
    pub flag: &'static str,
    /// The largest value accepted.
    pub max: usize,
    /// The field's value as a count (a list: its length).
    pub value: fn(&S) -> usize,
}

/// Writes a flag's value into a section's field: the same type, or an optional field.
pub trait Assign<V> {
    /// Sets `self` from `value`.
    fn assign(&mut self, value: V);
}

impl<V> Assign<V> for V {
    fn assign(&mut self, value: V) {
        *self = value;
    }
}

impl<V> Assign<V> for Option<V> {
    fn assign(&mut self, value: V) {
        *self = Some(value);
    }
}

/// A field's size for its bound: a count is itself, a list its length, an absent list 0.
pub trait Count {
    /// The size.
    fn count(&self) -> usize;
}

impl Count for usize {
    fn count(&self) -> usize {
        *self
    }
}

impl<T> Count for Vec<T> {
    fn count(&self) -> usize {
        self.len()
    }
}

impl<T> Count for Option<Vec<T>> {
    fn count(&self) -> usize {
        self.as_ref().map_or(0, Vec::len)
    }
}

/// The placeholder of a flag's value in `--help` (`--runs <N>`), by the value's type.
pub trait ValueName {
    /// The placeholder.
    const NAME: &'static str;
}

macro_rules! value_names {
    ($($ty:ty => $name:literal),* $(,)?) => {
        $(impl ValueName for $ty { const NAME: &'static str = $name; })*
    };
}

value_names! {
    usize => "N", u64 => "N", f32 => "X", f64 => "X", bool => "BOOL", PathBuf => "PATH", Vec<f32> => "LIST",
    Vec<usize> => "LIST", Reducer => "REDUCER", Clusterer => "CLUSTERER", DecisionRule => "RULE", Device => "DEVICE",
    BandwidthChoice => "RULE",
}

/// Declares a flag group: `field: Type = "flag-name" [, max N];` per flag, with its documentation
/// and any further clap attributes above it.
macro_rules! flag_group {
    (
        $(#[$meta:meta])*
        pub struct $name:ident over $section:ty, key $key:literal {
            $(
                $(#[$fmeta:meta])*
                $field:ident : $ty:ty = $flag:literal $(, max $max:expr)? ;
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, clap::Args)]
        pub struct $name {
            $(
                #[arg(long = $flag, id = $flag, value_name = <$ty as ValueName>::NAME)]
                $(#[$fmeta])*
                pub $field: Option<$ty>,
            )*
        }

        impl FlagGroup for $name {
            type Section = $section;
            const SECTION: &'static str = $key;

            fn apply(&self, section: &mut $section) {
                $(
                    if let Some(value) = &self.$field {
                        Assign::assign(&mut section.$field, value.clone());
                    }
                )*
            }

            fn given(&self) -> Vec<&'static str> {
                let mut given = Vec::new();
                $(
                    if self.$field.is_some() {
                        given.push(concat!("--", $flag));
                    }
                )*
                given
            }

            fn bounds() -> Vec<FieldBound<$section>> {
                vec![$($(
                    FieldBound {
                        key: stringify!($field),
                        flag: concat!("--", $flag),
                        max: $max,
                        value: |s: &$section| Count::count(&s.$field),
                    },
                )?)*]
            }
        }
    };
}

flag_group! {
    /// AEGIS's translation toward each class (preset section `translation`).
    pub struct TranslationFlags over TranslationParams, key "translation" {
        /// Seed images per class (S).
        seeds_per_class: usize = "seeds-per-class", max 100_000;
        /// L2 radius of the translation.
        eps: f32 = "eps";
        /// L2 step of the translation.
        step: f32 = "step";
        /// Translation iterations.
        steps: usize = "steps", max 10_000;
    }
}

flag_group! {
    /// The embedding of AEGIS's features (preset section `embedding`).
    pub struct EmbeddingFlags over EmbeddingParams, key "embedding" {
        /// PCA dimensions before t-SNE.
        pca_dims: usize = "pca-dims", max 10_000;
        /// t-SNE perplexity.
        perplexity: f64 = "perplexity";
    }
}

/// The reduction and clustering of AEGIS's features (no preset section: flags over defaults).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ClusteringSettings {
    /// The reduction before clustering.
    pub reducer: Reducer,
    /// The clustering algorithm.
    pub clusterer: Clusterer,
    /// The mean-shift bandwidth as asked for (`None`: the preset's `decision.bandwidth`).
    pub bandwidth: Option<BandwidthChoice>,
    /// HDBSCAN's minimum cluster size.
    pub min_cluster_size: usize,
}

/// Default of `min_cluster_size` (HDBSCAN).
pub const DEFAULT_MIN_CLUSTER_SIZE: usize = 25;

impl ClusteringSettings {
    /// The defaults: t-SNE, mean shift, the preset's bandwidth, HDBSCAN's minimum cluster size 25.
    pub fn defaults() -> ClusteringSettings {
        ClusteringSettings { min_cluster_size: DEFAULT_MIN_CLUSTER_SIZE, ..ClusteringSettings::default() }
    }
}

flag_group! {
    /// The reduction and clustering of AEGIS's features.
    pub struct ClusteringFlags over ClusteringSettings, key "" {
        /// Reduction before clustering (default tsne).
        #[arg(value_enum)]
        reducer: Reducer = "reducer";
        /// Clustering algorithm (default meanshift).
        #[arg(value_enum)]
        clusterer: Clusterer = "clusterer";
        /// Mean-shift bandwidth: `estimate` (scikit-learn's estimate_bandwidth, quantile 0.3),
        /// `estimate:Q`, `paper` (the preset's fixed value, scale-dependent), `relative:F` (F × the
        /// embedding's RMS radius), or a number.
        #[arg(value_name = "RULE", value_parser = |s: &str| s.parse::<BandwidthChoice>())]
        bandwidth: BandwidthChoice = "bandwidth";
        /// HDBSCAN minimum cluster size (default 25).
        min_cluster_size: usize = "min-cluster-size", max 100_000;
    }
}

flag_group! {
    /// How AEGIS flags a class (preset section `decision`).
    pub struct DecisionFlags over DecisionParams, key "decision" {
        /// Clusters smaller than this fraction of the embedded points are not counted.
        min_cluster_fraction: f64 = "min-cluster-fraction";
        /// Cluster decision: a class with more counted clusters than this is flagged.
        max_clusters: usize = "max-clusters";
        /// How AEGIS flags a class: `shortcut` (default: its mean translation displacement is a low
        /// outlier across classes) or `clusters` (the paper's rule: more than --max-clusters clusters).
        #[arg(value_enum)]
        rule: DecisionRule = "aegis-decision";
        /// Shortcut decision: low-side anomaly index (MAD) above which a class is flagged.
        shortcut_threshold: f64 = "shortcut-threshold";
    }
}

/// The settings every detector shares (no preset section: flags over defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct GeneralSettings {
    /// Independent AEGIS runs.
    pub runs: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// Images per model evaluation.
    pub batch_size: usize,
    /// Only these classes (`None`: all).
    pub classes: Option<Vec<usize>>,
}

impl Default for GeneralSettings {
    fn default() -> GeneralSettings {
        GeneralSettings { runs: 1, seed: 0, batch_size: 100, classes: None }
    }
}

flag_group! {
    /// The settings every detector shares.
    pub struct GeneralFlags over GeneralSettings, key "" {
        /// Only these classes (comma-separated indices); all by default.
        #[arg(value_name = "LIST", value_parser = parse_classes)]
        classes: ::std::vec::Vec<usize> = "classes", max 100_000;
        /// Independent AEGIS runs (seeds SEED, SEED+1, …; default 1); either decision rule flags a class
        /// when more than half of the runs do.
        runs: usize = "runs", max 100;
        /// Seed of every random choice (default 0; recorded in the report).
        seed: u64 = "seed";
        /// Images per model evaluation (default 100).
        batch_size: usize = "batch-size", max 10_000;
    }
}

flag_group! {
    /// The robustness check (preset section `precondition`).
    pub struct PreconditionFlags over PreconditionParams, key "precondition" {
        /// L2 budget of the robustness check.
        eps: f32 = "precondition-eps";
        /// Held-out images attacked by the robustness check.
        images: usize = "precondition-images", max 100_000;
        /// PGD steps of the robustness check.
        steps: usize = "precondition-steps", max 10_000;
        /// L2 step of the robustness check (default: 2.5 × eps / steps).
        step: f32 = "precondition-step";
        /// Minimum adversarial accuracy for the model to count as robust.
        min_adv_accuracy: f64 = "min-adv-accuracy";
    }
}

flag_group! {
    /// Neural Cleanse (preset section `neural_cleanse`).
    pub struct NeuralCleanseFlags over NeuralCleanseParams, key "neural_cleanse" {
        /// Neural Cleanse: images the triggers are reverse-engineered on.
        images: usize = "nc-images", max 100_000;
        /// Neural Cleanse: mini-batch size.
        batch_size: usize = "nc-batch", max 10_000;
        /// Neural Cleanse: maximum epochs per class.
        epochs: usize = "nc-epochs", max 10_000;
        /// Neural Cleanse: initial cost λ on ‖m‖₁.
        init_cost: f64 = "nc-init-cost";
        /// Neural Cleanse: attack success the reversed trigger must reach.
        target_success: f64 = "nc-target-success";
        /// Neural Cleanse: anomaly-index threshold (small side).
        anomaly_threshold: f64 = "nc-anomaly-threshold";
        /// Neural Cleanse: start with cost 0 and set the initial cost once the trigger succeeds.
        #[arg(value_name = "BOOL")]
        reset_cost_to_zero: bool = "nc-reset-cost-to-zero";
        /// Neural Cleanse: epochs of success (or failure) before the cost goes up (or down).
        patience: usize = "nc-patience", max 10_000;
        /// Neural Cleanse: factor the cost is multiplied by going up.
        cost_up: f64 = "nc-cost-up";
        /// Neural Cleanse: factor the cost is divided by going down.
        cost_down: f64 = "nc-cost-down";
        /// Neural Cleanse: stop a class after this many epochs without a smaller mask (0: never).
        early_stop_patience: usize = "nc-early-stop-patience", max 10_000;
        /// Neural Cleanse: Adam learning rate.
        lr: f64 = "nc-lr";
        /// Neural Cleanse: Adam β₁.
        beta1: f64 = "nc-beta1";
        /// Neural Cleanse: Adam β₂.
        beta2: f64 = "nc-beta2";
        /// Neural Cleanse: Adam ε.
        adam_eps: f64 = "nc-adam-eps";
    }
}

flag_group! {
    /// Targeted reachability (preset section `reach`).
    pub struct ReachFlags over ReachParams, key "reach" {
        /// Reach: source images per class.
        images_per_class: usize = "reach-images", max 100_000;
        /// Reach: source images per class during the budget sweep (the first of the same draw; at most
        /// --reach-images; default: the preset's, at most --reach-images).
        sweep_images_per_class: usize = "reach-sweep-images", max 100_000;
        /// Reach: PGD steps.
        steps: usize = "reach-steps", max 10_000;
        /// Reach: PGD step size as a multiple of eps / steps.
        step_factor: f32 = "reach-step-factor";
        /// Reach: candidate L2 budgets, comma-separated and strictly increasing (e.g. 0.25,0.5,1); the
        /// sweep stops at the first whose median class rate reaches --reach-median-level.
        #[arg(value_name = "LIST", value_parser = parse_eps_sweep)]
        eps_sweep: ::std::vec::Vec<f32> = "reach-eps-sweep", max 100;
        /// Reach: the median class rate that fixes the budget.
        median_level: f64 = "reach-median-level";
        /// Reach: anomaly-index threshold (high side).
        anomaly_threshold: f64 = "reach-anomaly-threshold";
        /// Reach: a flagged class's rate must exceed max(RATIO × median, median + GAP): the ratio.
        min_ratio: f64 = "reach-min-ratio";
        /// Reach: ... and the gap.
        min_gap: f64 = "reach-min-gap";
        /// Reach: perturbed images that reached each class kept as evidence.
        evidence_per_class: usize = "reach-evidence", max 1_000;
    }
}

flag_group! {
    /// Universal reach (preset section `universal`).
    pub struct UniversalFlags over UniversalParams, key "universal" {
        /// Universal reach: held-out source images shared by every class (correctly classified).
        images: usize = "universal-images", max 100_000;
        /// Universal reach: the L2 budget ladder, comma-separated and strictly increasing; a class's
        /// budget is the first whose shared perturbation reaches the success level.
        #[arg(value_name = "LIST", value_parser = parse_levels)]
        levels: ::std::vec::Vec<f32> = "universal-levels", max 100;
        /// Universal reach: gradient steps per budget.
        steps_per_level: usize = "universal-steps", max 10_000;
        /// Universal reach: step size as a multiple of budget / steps.
        step_factor: f32 = "universal-step-factor";
        /// Universal reach: share of the sources the shared perturbation must send to the class.
        success_level: f64 = "universal-success-level";
        /// Universal reach: anomaly-index threshold (low side, on the log budget) of its own rule.
        anomaly_threshold: f64 = "universal-anomaly-threshold";
        /// Universal reach: the least spread of the log budgets the anomaly index divides by.
        min_spread: f64 = "universal-min-spread";
    }
}

/// Where ONNX Runtime comes from and where it runs (no preset section: flags over defaults).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RuntimeSettings {
    /// The ONNX Runtime shared library (`None`: found as `runtime::find_library` says).
    pub ort_lib: Option<PathBuf>,
    /// The execution provider.
    #[serde(skip)]
    pub device: Device,
    /// Intra-op threads (0: ONNX Runtime's choice).
    pub threads: usize,
}

flag_group! {
    /// Where ONNX Runtime comes from and where it runs.
    pub struct RuntimeFlags over RuntimeSettings, key "" {
        /// Path to the ONNX Runtime shared library (libonnxruntime.so.1.31.1). Otherwise: ORT_DYLIB_PATH,
        /// then the project's .ort/ folder, then an installed Python `onnxruntime` package.
        #[arg(value_name = "PATH", global = true)]
        ort_lib: PathBuf = "ort-lib";
        /// Execution provider: cpu (default), cuda (an error if CUDA is unusable), or auto (CUDA if
        /// usable, else CPU, and says so).
        #[arg(value_enum, global = true)]
        device: Device = "device";
        /// Intra-op threads for ONNX Runtime (default 0: ONNX Runtime's default, one per core).
        #[arg(global = true)]
        threads: usize = "threads", max 1_024;
    }
}

impl RuntimeFlags {
    /// The settings these flags give.
    pub fn settings(&self) -> RuntimeSettings {
        self.resolve(RuntimeSettings::default())
    }
}

/// One upper bound as `--help` and docs/options.md list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    /// The parameter, as in a presets file (`neural_cleanse.images`), or the key alone for a flag-only
    /// setting (`runs`).
    pub name: String,
    /// The flag that sets it.
    pub flag: &'static str,
    /// The largest value accepted.
    pub max: usize,
}

fn listed<G: FlagGroup>() -> Vec<Bound> {
    G::bounds().into_iter().map(|b| Bound { name: qualified(G::SECTION, b.key), flag: b.flag, max: b.max }).collect()
}

/// `section.key`, or `key` for a flag-only section.
pub fn qualified(section: &str, key: &str) -> String {
    if section.is_empty() {
        key.to_string()
    } else {
        format!("{section}.{key}")
    }
}

/// Every upper bound, group by group.
pub fn bounds() -> Vec<Bound> {
    [
        listed::<TranslationFlags>(),
        listed::<EmbeddingFlags>(),
        listed::<ClusteringFlags>(),
        listed::<GeneralFlags>(),
        listed::<RuntimeFlags>(),
        listed::<PreconditionFlags>(),
        listed::<NeuralCleanseFlags>(),
        listed::<ReachFlags>(),
        listed::<UniversalFlags>(),
    ]
    .concat()
}

/// The first bound that `section` (resolved from `flags` over a preset) breaks: its name, value, and
/// whether a flag set it.
pub fn broken_bound<G: FlagGroup>(
    flags: &G,
    section: &G::Section,
) -> Option<(String, usize, usize, Option<&'static str>)> {
    let given = flags.given();
    G::bounds().into_iter().find_map(|b| {
        let value = (b.value)(section);
        (value > b.max).then(|| (qualified(G::SECTION, b.key), value, b.max, given.contains(&b.flag).then_some(b.flag)))
    })
}

#[cfg(test)]
mod tests {
    use super::{bounds, FlagGroup, NeuralCleanseFlags, PreconditionFlags, ReachFlags};
    use crate::detect::neural_cleanse::NeuralCleanseParams;
    use crate::detect::precondition::PreconditionParams;
    use crate::detect::reach::ReachParams;

    #[test]
    fn a_group_writes_only_the_flags_given_and_names_them() {
        let flags = NeuralCleanseFlags { images: Some(7), lr: Some(0.5), ..NeuralCleanseFlags::default() };
        let base = NeuralCleanseParams::default();
        let p = flags.resolve(base.clone());
        assert_eq!((p.images, p.lr), (7, 0.5));
        assert_eq!(NeuralCleanseParams { images: base.images, lr: base.lr, ..p }, base);
        assert_eq!(flags.given(), vec!["--nc-images", "--nc-lr"]);
        // An optional field takes the flag's value as `Some`.
        let pre = PreconditionFlags { step: Some(0.25), ..PreconditionFlags::default() };
        let preset = crate::audit::PresetFile::builtin().presets["mnist"].precondition.clone();
        let base = PreconditionParams { step: None, ..preset };
        assert_eq!(pre.resolve(base).step, Some(0.25));
        // A list's bound counts its values.
        let reach = ReachFlags { eps_sweep: Some(vec![1.0; 101]), ..ReachFlags::default() };
        let (name, value, max, flag) = super::broken_bound(&reach, &reach.resolve(ReachParams::default())).unwrap();
        assert_eq!((name.as_str(), value, max, flag), ("reach.eps_sweep", 101, 100, Some("--reach-eps-sweep")));
    }

    #[test]
    fn every_bound_has_a_flag_and_a_unique_name() {
        let all = bounds();
        assert!(all.len() >= 20);
        let mut names: Vec<&str> = all.iter().map(|b| b.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        assert!(all.iter().all(|b| b.max >= 100 && b.flag.starts_with("--")));
    }
}
