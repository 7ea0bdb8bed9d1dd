//! Presets: the per-dataset settings of the AEGIS paper (and aegis-audit's additions), read from
//! `config/presets.yaml` (compiled in) or a user's `--config FILE`, chosen by name or by the model's
//! input shape. [`Preset::apply`] resolves an audit's [`Options`] against a preset into an
//! [`AuditPlan`]: a flag overrides the preset's value; in the fused decision (`--method auto`) the
//! preset's `fused:` sections replace its detector sections first (cheaper settings, since every
//! detector runs).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::AuditError;
use super::flags::{ClusteringSettings, FlagGroup, GeneralSettings};
use super::options::{MethodChoice, Options};
use super::plan::AuditPlan;
use crate::data::ImageShape;
use crate::detect::aegis::translate::TranslationParams;
use crate::detect::aegis::{AegisParams, BandwidthRule, DecisionRule};
use crate::detect::neural_cleanse::NeuralCleanseParams;
use crate::detect::precondition::PreconditionParams;
use crate::detect::reach::ReachParams;
use crate::detect::universal::UniversalParams;

/// The presets file compiled into the binary.
pub const DEFAULT_PRESETS: &str = include_str!("../../config/presets.yaml");

/// A presets file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresetFile {
    /// Format version (1).
    pub version: u32,
    /// Presets by name.
    pub presets: BTreeMap<String, Preset>,
    /// Where the file came from (`built-in` or its path), for messages.
    #[serde(skip)]
    pub origin: String,
}

/// Embedding settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingParams {
    /// PCA dimensions before t-SNE.
    pub pca_dims: usize,
    /// t-SNE perplexity.
    pub perplexity: f64,
}

/// Clustering and decision settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionParams {
    /// Which rule flags a class (`shortcut` or the paper's `clusters`).
    #[serde(default)]
    pub rule: DecisionRule,
    /// Shortcut rule: low-side anomaly index above which a class is flagged.
    #[serde(default = "default_shortcut_threshold")]
    pub shortcut_threshold: f64,
    /// The bandwidth rule (see `crate::detect::aegis::BandwidthRule`).
    pub bandwidth: BandwidthRule,
    /// Clusters below this fraction of the embedded points are not counted.
    pub min_cluster_fraction: f64,
    /// More clusters than this flags a class.
    pub max_clusters: usize,
}

fn default_shortcut_threshold() -> f64 {
    2.0
}

/// One dataset's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// The input shape the preset is for.
    pub image: ImageShape,
    /// Whether the preset is chosen automatically for inputs of its shape (one per shape).
    #[serde(default)]
    pub auto: bool,
    /// AEGIS translation.
    pub translation: TranslationParams,
    /// Embedding.
    pub embedding: EmbeddingParams,
    /// Clustering and decision.
    pub decision: DecisionParams,
    /// The paper's fixed mean-shift bandwidth (for `--bandwidth paper`), in old t-SNE units.
    pub paper_bandwidth: f64,
    /// The robustness precondition.
    pub precondition: PreconditionParams,
    /// Neural Cleanse (standard models); defaults when absent.
    #[serde(default)]
    pub neural_cleanse: NeuralCleanseParams,
    /// Targeted reachability (robust models); defaults when absent.
    #[serde(default)]
    pub reach: ReachParams,
    /// Universal reach; defaults when absent.
    #[serde(default)]
    pub universal: UniversalParams,
    /// The settings the fused decision (`--method auto`) uses instead of the sections above.
    #[serde(default)]
    pub fused: FusedPreset,
    /// For a preset derived for an input shape that no preset matches ([`PresetFile::derive`]): how it
    /// was derived, in words (never read from a file).
    #[serde(skip)]
    pub derivation: Option<String>,
}

/// A preset's settings for the fused decision, where every detector runs on every model: each section
/// given replaces the preset's section of the same name (whole: a field it leaves out takes the
/// detector's default, not the preset's value); a flag still overrides both.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FusedPreset {
    /// AEGIS's translation.
    #[serde(default)]
    pub translation: Option<TranslationParams>,
    /// The robustness precondition.
    #[serde(default)]
    pub precondition: Option<PreconditionParams>,
    /// Neural Cleanse.
    #[serde(default)]
    pub neural_cleanse: Option<NeuralCleanseParams>,
    /// Reach.
    #[serde(default)]
    pub reach: Option<ReachParams>,
    /// Universal reach.
    #[serde(default)]
    pub universal: Option<UniversalParams>,
}

impl PresetFile {
    /// Parses a presets file; `origin` names it in errors. A YAML syntax error is reported as such, with
    /// its line and column, before the file's fields are read.
    pub fn parse(text: &str, origin: &str) -> Result<PresetFile, AuditError> {
        let bad = |problem: String| AuditError::Presets { origin: origin.to_string(), problem };
        if let Err(e) = serde_saphyr::from_str::<serde_json::Value>(text) {
            return Err(bad(format!("YAML syntax error: {}", yaml_problem(&e))));
        }
        let mut file: PresetFile = serde_saphyr::from_str(text).map_err(|e| bad(yaml_problem(&e)))?;
        if file.version != 1 {
            return Err(bad(format!("version {} (aegis-audit reads version 1)", file.version)));
        }
        if file.presets.is_empty() {
            return Err(bad("no presets".into()));
        }
        file.origin = origin.to_string();
        Ok(file)
    }

    /// The compiled-in presets.
    pub fn builtin() -> PresetFile {
        PresetFile::parse(DEFAULT_PRESETS, "built-in config/presets.yaml").expect("the compiled-in presets parse")
    }

    /// Reads a presets file from disk (at most 1 MiB).
    pub fn load(path: &Path) -> Result<PresetFile, AuditError> {
        const MAX_BYTES: u64 = 1 << 20;
        let origin = path.display().to_string();
        let bad = |problem: String| AuditError::Presets { origin: origin.clone(), problem };
        let text = crate::fsio::read_text(path, MAX_BYTES, "a presets file").map_err(|e| bad(e.problem()))?;
        PresetFile::parse(&text, &origin)
    }

    /// The preset `name`, or the first (by name) whose image shape matches `shape` and is marked `auto`,
    /// or, when none matches, one derived from the nearest automatic preset ([`PresetFile::derive`]).
    pub fn select(&self, name: Option<&str>, shape: ImageShape) -> Result<(String, Preset), AuditError> {
        let available = || self.presets.keys().cloned().collect::<Vec<_>>().join(", ");
        if let Some(name) = name {
            return self.presets.get(name).map(|p| (name.to_string(), p.clone())).ok_or_else(|| {
                AuditError::Usage(format!("--preset {name}: no preset named '{name}' (available: {})", available()))
            });
        }
        if let Some((n, p)) = self.presets.iter().find(|(_, p)| p.auto && p.image == shape) {
            return Ok((n.clone(), p.clone()));
        }
        self.derive(shape).ok_or_else(|| {
            AuditError::Usage(format!(
                "no preset matches input {}×{}×{} and {} has no automatic preset to derive settings from; name one \
                 with --preset (available: {})",
                shape.c,
                shape.h,
                shape.w,
                self.origin,
                available()
            ))
        })
    }

    /// Settings for an input shape that no preset matches, derived from the automatic preset nearest to
    /// it: the same channel count where one has it (else any), then the nearest pixel count on a log
    /// scale (ties: by name). Every count (seeds, images, steps, epochs) is kept; every L2 budget (the
    /// translation bound, the robustness radius, reach's and universal reach's budget ladders) is
    /// multiplied by `√(c·h·w / c₀·h₀·w₀)`, since the L2 norm of a perturbation of the same per-pixel size
    /// grows with the square root of the pixel count. The preset is named `derived-C×H×W` (stable, so a
    /// calibration measured on such models names it) and says how it was derived
    /// ([`Preset::derivation`]). `None` when the file has no automatic preset.
    pub fn derive(&self, shape: ImageShape) -> Option<(String, Preset)> {
        let dim = |s: &ImageShape| (s.c * s.h * s.w).max(1) as f64;
        let distance = |p: &Preset| (dim(&shape).ln() - dim(&p.image).ln()).abs();
        let auto: Vec<(&String, &Preset)> = self.presets.iter().filter(|(_, p)| p.auto).collect();
        let same_channels: Vec<(&String, &Preset)> =
            auto.iter().copied().filter(|(_, p)| p.image.c == shape.c).collect();
        let pool = if same_channels.is_empty() { auto } else { same_channels };
        let (base_name, base) = pool.into_iter().min_by(|a, b| distance(a.1).total_cmp(&distance(b.1)))?;
        let factor = (dim(&shape) / dim(&base.image)).sqrt();
        let mut p = base.clone();
        p.image = shape;
        p.auto = false;
        p.scale_budgets(factor);
        p.derivation = Some(format!(
            "no preset matches input {}×{}×{}: settings derived from preset '{base_name}' ({}×{}×{}) of {}, every \
             count kept, every L2 budget × {factor:.3} (√ of the pixel-count ratio)",
            shape.c, shape.h, shape.w, base.image.c, base.image.h, base.image.w, self.origin
        ));
        Some((format!("derived-{}x{}x{}", shape.c, shape.h, shape.w), p))
    }

    /// The presets an audit with `--preset name` (or without, `None`) may use: the named one, or every
    /// preset chosen by shape. Each is resolved against the options and checked before any model is
    /// loaded.
    pub fn candidates(&self, name: Option<&str>) -> Result<Vec<(String, Preset)>, AuditError> {
        match name {
            Some(_) => Ok(vec![self.select(name, ImageShape::new(0, 0, 0))?]),
            None => Ok(self.presets.iter().filter(|(_, p)| p.auto).map(|(n, p)| (n.clone(), p.clone())).collect()),
        }
    }

    /// Checks every preset of the file on its own (each resolved with no flag given, for an explicit
    /// method and for the fused decision).
    pub fn check(&self) -> Result<(), AuditError> {
        // Both the sections an explicit method uses and those the fused decision replaces them with.
        let single = Options { method: Some(MethodChoice::Aegis), ..Options::default() };
        let fused = Options { method: Some(MethodChoice::Auto), ..Options::default() };
        for (name, preset) in &self.presets {
            preset.apply(name, &self.origin, &single).check()?;
            preset.apply(name, &self.origin, &fused).check()?;
        }
        Ok(())
    }
}

/// A serde-saphyr error as one line with its position.
fn yaml_problem(e: &serde_saphyr::Error) -> String {
    let plain = e.without_snippet().to_string();
    let first = plain.lines().next().unwrap_or("").trim().to_string();
    match e.location() {
        Some(l) if !first.contains(" line ") => format!("{first} at line {}, column {}", l.line(), l.column()),
        _ => first,
    }
}

impl Preset {
    /// Multiplies every L2 budget of the preset by `factor`: the translation bound, the robustness
    /// radius, reach's budget sweep and universal reach's ladder, in the detector sections and in the
    /// fused decision's replacements.
    fn scale_budgets(&mut self, factor: f64) {
        let f32f = factor as f32;
        let translation = |t: &mut TranslationParams| t.eps *= f32f;
        let precondition = |p: &mut PreconditionParams| p.eps *= f32f;
        let reach = |r: &mut ReachParams| r.eps_sweep.iter_mut().for_each(|e| *e *= f32f);
        let universal = |u: &mut UniversalParams| u.levels.iter_mut().for_each(|e| *e *= f32f);
        translation(&mut self.translation);
        precondition(&mut self.precondition);
        reach(&mut self.reach);
        universal(&mut self.universal);
        self.fused.translation.iter_mut().for_each(translation);
        self.fused.precondition.iter_mut().for_each(precondition);
        self.fused.reach.iter_mut().for_each(reach);
        self.fused.universal.iter_mut().for_each(universal);
    }

    /// Resolves `options` against this preset (named `name`, from `origin`) into a plan: each flag group
    /// is written over its section ([`FlagGroup::resolve`]); in the fused decision the preset's `fused:`
    /// sections replace its detector sections first. Nothing is checked here: see [`AuditPlan::check`].
    pub fn apply(&self, name: &str, origin: &str, o: &Options) -> AuditPlan {
        let method = o.method.unwrap_or_default();
        let fused = (method == MethodChoice::Auto).then_some(&self.fused);
        let general = o.general.resolve(GeneralSettings::default());
        let clustering = o.clustering.resolve(ClusteringSettings::defaults());
        let embedding = o.embedding.resolve(self.embedding.clone());
        let decision = o.decision.resolve(self.decision.clone());
        let aegis = AegisParams {
            translation: o.translation.resolve(or_fused(&self.translation, fused.and_then(|f| f.translation.as_ref()))),
            reducer: clustering.reducer,
            pca_dims: embedding.pca_dims,
            perplexity: embedding.perplexity,
            clusterer: clustering.clusterer,
            bandwidth: clustering.bandwidth.map_or(decision.bandwidth, |b| b.rule(self.paper_bandwidth)),
            min_cluster_size: clustering.min_cluster_size,
            min_cluster_fraction: decision.min_cluster_fraction,
            max_clusters: decision.max_clusters,
            decision: decision.rule,
            shortcut_threshold: decision.shortcut_threshold,
            // The features, the embedding and the clustering only when the cluster rule or the
            // evidence's scatter plots need them.
            embed: decision.rule == DecisionRule::Clusters || o.evidence.is_some(),
            batch_size: general.batch_size,
            seed: general.seed,
        };
        // Resolved even with --skip-precondition, so that its flags are range-checked either way.
        let precondition =
            o.precondition.resolve(or_fused(&self.precondition, fused.and_then(|f| f.precondition.as_ref())));
        let mut nc =
            o.neural_cleanse.resolve(or_fused(&self.neural_cleanse, fused.and_then(|f| f.neural_cleanse.as_ref())));
        nc.seed = general.seed;
        let mut reach = o.reach.resolve(or_fused(&self.reach, fused.and_then(|f| f.reach.as_ref())));
        if o.reach.sweep_images_per_class.is_none() {
            // The preset's sweep size shrinks with a smaller --reach-images; a given one is checked.
            reach.sweep_images_per_class = reach.sweep_images_per_class.min(reach.images_per_class);
        }
        (reach.batch_size, reach.seed) = (general.batch_size, general.seed);
        let mut universal = o.universal.resolve(or_fused(&self.universal, fused.and_then(|f| f.universal.as_ref())));
        (universal.batch_size, universal.seed) = (general.batch_size, general.seed);
        AuditPlan {
            preset: name.to_string(),
            preset_origin: origin.to_string(),
            preset_derivation: self.derivation.clone(),
            method,
            aegis,
            neural_cleanse: nc,
            reach,
            universal,
            detectors: o.detectors.clone(),
            calibration_path: o.calibration.clone(),
            calibration: None,
            runs: general.runs,
            classes: general.classes,
            effort: super::EffortParams {
                mode: o.effort.unwrap_or(super::EffortMode::Auto),
                seed: general.seed,
                ..super::EffortParams::default()
            },
            time_budget: o.time_budget,
            input_normalisation: o
                .input_mean
                .clone()
                .zip(o.input_std.clone())
                .map(|(mean, std)| crate::grad::InputNormalisation { mean, std }),
            skipped_precondition: o.skip_precondition.then(|| precondition.clone()),
            precondition: (!o.skip_precondition).then_some(precondition),
            given: o.clone(),
        }
    }
}

/// The fused decision's replacement of a section when it has one, else the section.
fn or_fused<T: Clone>(section: &T, fused: Option<&T>) -> T {
    fused.unwrap_or(section).clone()
}

#[cfg(test)]
mod tests {
    use super::PresetFile;
    use crate::data::ImageShape;

    #[test]
    fn builtin_presets_parse_and_select_by_shape() {
        let file = PresetFile::builtin();
        let (name, p) = file.select(None, ImageShape::new(1, 28, 28)).unwrap();
        assert_eq!(name, "mnist");
        assert_eq!(p.translation.eps, 100.0);
        let (name, p) = file.select(None, ImageShape::new(3, 32, 32)).unwrap();
        assert_eq!(name, "cifar10");
        assert_eq!(p.translation.eps, 500.0);
        assert_eq!(file.select(Some("fashion-mnist"), ImageShape::new(0, 0, 0)).unwrap().1.paper_bandwidth, 28.0);
        let (name, p) = file.select(None, ImageShape::new(3, 224, 224)).unwrap();
        assert_eq!(name, "imagenet");
        assert_eq!(p.precondition.eps, 3.0);
    }

    #[test]
    fn a_shape_no_preset_matches_gets_derived_settings() {
        let file = PresetFile::builtin();
        let mnist = &file.presets["mnist"];
        // 1×28×56 (two-digit composites): from mnist, the same channels; budgets × √2.
        let (name, p) = file.select(None, ImageShape::new(1, 28, 56)).unwrap();
        assert_eq!(name, "derived-1x28x56");
        assert_eq!(p.image, ImageShape::new(1, 28, 56));
        assert!(!p.auto);
        let r2 = 2f32.sqrt();
        assert!((p.translation.eps - 100.0 * r2).abs() < 1e-3, "{}", p.translation.eps);
        assert!((p.precondition.eps - 1.5 * r2).abs() < 1e-5);
        let fused = p.fused.precondition.as_ref().unwrap();
        assert!((fused.eps - 1.5 * r2).abs() < 1e-5);
        assert!((p.fused.translation.as_ref().unwrap().eps - 100.0 * r2).abs() < 1e-3);
        for (a, b) in p.universal.levels.iter().zip(&mnist.universal.levels) {
            assert!((a - b * r2).abs() < 1e-5);
        }
        for (a, b) in p.reach.eps_sweep.iter().zip(&mnist.reach.eps_sweep) {
            assert!((a - b * r2).abs() < 1e-5);
        }
        // Counts are kept.
        assert_eq!(p.translation.seeds_per_class, mnist.translation.seeds_per_class);
        assert_eq!(p.neural_cleanse, mnist.neural_cleanse);
        let how = p.derivation.as_deref().unwrap();
        assert!(how.contains("derived from preset 'mnist'") && how.contains("× 1.414"), "{how}");
        // 3×64×64: the nearest RGB preset by pixel count is cifar10 (4× its pixels, 74× fewer than
        // imagenet's): budgets × 2.
        let (name, p) = file.select(None, ImageShape::new(3, 64, 64)).unwrap();
        assert_eq!(name, "derived-3x64x64");
        assert!((p.translation.eps - 1000.0).abs() < 1e-3 && (p.precondition.eps - 1.0).abs() < 1e-6);
        // A channel count no preset has: the nearest pixel count of any (2×20×20 = 800 → mnist's 784, not
        // cifar10's 3072; 2×28×28 = 1568 is nearer cifar10's on the log scale).
        let (_, p) = file.select(None, ImageShape::new(2, 20, 20)).unwrap();
        assert!(p.derivation.unwrap().contains("'mnist'"));
        let (_, p) = file.select(None, ImageShape::new(2, 28, 28)).unwrap();
        assert!(p.derivation.unwrap().contains("'cifar10'"));
        // The derived preset resolves into a plan that passes every check, and the plan carries it.
        let o = super::Options::default();
        let (name, p) = file.select(None, ImageShape::new(1, 28, 56)).unwrap();
        let plan = p.apply(&name, &file.origin, &o);
        plan.check().unwrap();
        assert!(plan.preset_derivation.is_some());
        // A shape a preset matches is never derived.
        assert!(file.select(None, ImageShape::new(1, 28, 28)).unwrap().1.derivation.is_none());
    }

    #[test]
    fn unknown_names_shapes_fields_and_versions_are_errors() {
        let file = PresetFile::builtin();
        assert!(file
            .select(Some("tiny-imagenet"), ImageShape::new(1, 28, 28))
            .unwrap_err()
            .to_string()
            .contains("no preset named 'tiny-imagenet'"));
        // A file without an automatic preset has nothing to derive from.
        let manual = super::DEFAULT_PRESETS.replace("auto: true", "auto: false");
        let manual = PresetFile::parse(&manual, "manual.yaml").unwrap();
        let err = manual.select(None, ImageShape::new(3, 64, 64)).unwrap_err().to_string();
        assert!(err.contains("no preset matches input 3×64×64") && err.contains("--preset"), "{err}");
        let err = PresetFile::parse("version: 2\npresets: {}\n", "x.yaml").unwrap_err();
        assert!(err.to_string().contains("version 2"), "{err}");
        let bad = super::DEFAULT_PRESETS.replace("perplexity: 30.0", "perplexity: 30.0, perplexty: 5");
        assert!(PresetFile::parse(&bad, "x.yaml").is_err());
    }
}
