//! Presets: the per-dataset settings of the AEGIS paper (and aegis-audit's additions), read from
//! `config/presets.yaml` (compiled in) or a user's `--config FILE`, chosen by name or by the model's
//! input shape.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::precondition::PreconditionParams;
use super::translate::TranslationParams;
use super::DetectError;

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
}

/// The input shape a preset is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageShape {
    /// Channels.
    pub channels: usize,
    /// Height.
    pub height: usize,
    /// Width.
    pub width: usize,
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
    pub rule: super::aegis::DecisionRule,
    /// Shortcut rule: low-side anomaly index above which a class is flagged.
    #[serde(default = "default_shortcut_threshold")]
    pub shortcut_threshold: f64,
    /// The bandwidth rule (see `detect::aegis::BandwidthRule`).
    pub bandwidth: super::aegis::BandwidthRule,
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
    pub neural_cleanse: super::neural_cleanse::NeuralCleanseParams,
    /// Targeted reachability (robust models); defaults when absent.
    #[serde(default)]
    pub reach: super::reach::ReachParams,
}

impl PresetFile {
    /// Parses a presets file; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<PresetFile, DetectError> {
        let file: PresetFile = serde_saphyr::from_str(text)
            .map_err(|e| DetectError::InvalidParam(format!("presets file {origin}: {e}")))?;
        if file.version != 1 {
            return Err(DetectError::InvalidParam(format!(
                "presets file {origin}: version {} (aegis-audit reads version 1)",
                file.version
            )));
        }
        if file.presets.is_empty() {
            return Err(DetectError::InvalidParam(format!("presets file {origin}: no presets")));
        }
        Ok(file)
    }

    /// The compiled-in presets.
    pub fn builtin() -> PresetFile {
        PresetFile::parse(DEFAULT_PRESETS, "config/presets.yaml").expect("the compiled-in presets parse")
    }

    /// Reads a presets file from disk.
    pub fn load(path: &Path) -> Result<PresetFile, DetectError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| DetectError::InvalidParam(format!("cannot read presets file {}: {e}", path.display())))?;
        PresetFile::parse(&text, &path.display().to_string())
    }

    /// The preset `name`, or the first (by name) whose image shape matches `(c, h, w)`.
    pub fn select(&self, name: Option<&str>, shape: (usize, usize, usize)) -> Result<(String, Preset), DetectError> {
        if let Some(name) = name {
            return self.presets.get(name).map(|p| (name.to_string(), p.clone())).ok_or_else(|| {
                DetectError::InvalidParam(format!(
                    "no preset named '{name}' (available: {})",
                    self.presets.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            });
        }
        let (c, h, w) = shape;
        self.presets
            .iter()
            .find(|(_, p)| p.auto && (p.image.channels, p.image.height, p.image.width) == (c, h, w))
            .map(|(n, p)| (n.clone(), p.clone()))
            .ok_or_else(|| {
                DetectError::InvalidParam(format!(
                    "no preset matches input {c}×{h}×{w}; name one with --preset (available: {})",
                    self.presets.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::PresetFile;

    #[test]
    fn builtin_presets_parse_and_select_by_shape() {
        let file = PresetFile::builtin();
        let (name, p) = file.select(None, (1, 28, 28)).unwrap();
        assert_eq!(name, "mnist");
        assert_eq!(p.translation.eps, 100.0);
        let (name, p) = file.select(None, (3, 32, 32)).unwrap();
        assert_eq!(name, "cifar10");
        assert_eq!(p.translation.eps, 500.0);
        assert_eq!(file.select(Some("fashion-mnist"), (0, 0, 0)).unwrap().1.paper_bandwidth, 28.0);
    }

    #[test]
    fn unknown_names_shapes_fields_and_versions_are_errors() {
        let file = PresetFile::builtin();
        assert!(file
            .select(Some("imagenet"), (1, 28, 28))
            .unwrap_err()
            .to_string()
            .contains("no preset named 'imagenet'"));
        assert!(file.select(None, (3, 64, 64)).unwrap_err().to_string().contains("no preset matches input 3×64×64"));
        let err = PresetFile::parse("version: 2\npresets: {}\n", "x.yaml").unwrap_err();
        assert!(err.to_string().contains("version 2"), "{err}");
        let bad = super::DEFAULT_PRESETS.replace("perplexity: 30.0", "perplexity: 30.0, perplexty: 5");
        assert!(PresetFile::parse(&bad, "x.yaml").is_err());
    }
}
