//! The audit: the library's front door. Data flows one way:
//!
//! [`Options`] (every flag, given one-to-one by any caller) → [`Preset::apply`] → [`AuditPlan`]
//! ([`AuditPlan::check`] before anything is loaded) → per model: [`AnalysedModel`] (load, analysis;
//! [`AuditPlan::check_classes`]) → data ([`AuditPlan::check_data`]) → [`PreparedModel`] (gradient graph,
//! session) → precondition → method choice → detectors (one interface and registry, `detectors`) →
//! decision → evidence → report →
//! [`AuditRun::write`] (every report at once, or none).
//!
//! [`run`] does all of it; [`subcommands`] holds the entry points of the other subcommands.

mod command;
mod detectors;
mod effort;
mod error;
mod evidence;
mod flags;
mod memory;
mod method;
mod one_model;
mod options;
mod outputs;
mod plan;
mod prepare;
mod preset;
mod progress;
mod stored_reports;
pub mod subcommands;
mod verdict;

pub use command::{run, AuditRun, ModelRun, RenderedRun};
pub use detectors::{Cost, DetectorRun};
pub use effort::{shortlist, EffortMode, EffortParams, Shortlist};
pub use error::{error_chain, AuditError, Error, Result};
pub use flags::{
    bounds, Bound, ClusteringFlags, ClusteringSettings, DecisionFlags, EmbeddingFlags, FlagGroup, GeneralFlags,
    GeneralSettings, NeuralCleanseFlags, PreconditionFlags, ReachFlags, RuntimeFlags, RuntimeSettings,
    TranslationFlags, UniversalFlags, DEFAULT_MIN_CLUSTER_SIZE,
};
pub use memory::{
    format_bytes, parse_size, peak_resident_bytes, MemoryBudget, BYTES_PER_ACTIVATION, DEFAULT_MEMORY_LIMIT,
};
pub use method::{choose, MethodDecision};
pub use one_model::{audit_model, AuditData, EvidenceTarget};
pub use options::{
    parse_classes, parse_detectors, parse_eps_sweep, parse_levels, BandwidthChoice, Clusterer, DecisionRule, Detector,
    Device, FeatureChoice, FeatureFlags, FeatureLayer, MethodChoice, Options, Reducer,
};
pub use outputs::Outputs;
pub use plan::{bounds_help, AuditPlan};
pub use prepare::{gradient_graph, AnalysedModel, PrepareTimings, PreparedModel};
pub use preset::{DecisionParams, EmbeddingParams, FusedPreset, Preset, PresetFile, DEFAULT_PRESETS};
pub use verdict::{decide, fused, Decision, Rule};
