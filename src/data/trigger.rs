//! Trigger specifications (YAML, written by the model zoo): load, validate and stamp a trigger onto images,
//! so that aegis-audit measures attack success with exactly the trigger a model was poisoned with.
//!
//! The schema is the model zoo's (`plugins/torch/README.md`):
//!
//! ```yaml
//! name: localised
//! type: patch                    # patch | pattern
//! image: {channels: 1, height: 28, width: 28}
//! target: 7                      # optional: the class the trigger leads to
//! patches:                       # type patch: each rectangle's pixels (all channels) are set to `value`
//!   - {row: 25, col: 25, height: 2, width: 2, value: 1.0}
//! pattern: static.npy            # type pattern: float32 .npy [C, H, W], relative to the YAML file
//! intensity: 0.1                 # x' = clamp(x + intensity * pattern, 0, 1)
//! ```

use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use super::npy::read_npy_f32;
use super::DataError;

/// The family a trigger belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TriggerKind {
    /// Rectangles of fixed value (the visible triggers).
    Patch,
    /// An additive low-intensity pattern (the invisible triggers).
    Pattern,
}

/// A rectangle whose pixels (all channels) are set to `value`.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Patch {
    /// Top row.
    pub row: usize,
    /// Left column.
    pub col: usize,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
    /// Value in `[0, 1]`.
    pub value: f32,
}

/// The YAML form of the additive pattern.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageYaml {
    channels: usize,
    height: usize,
    width: usize,
}

/// The pattern part of a spec.
#[derive(Debug, Clone)]
struct PatternYaml {
    file: PathBuf,
    intensity: f32,
}

/// The YAML document.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecYaml {
    name: String,
    #[serde(rename = "type")]
    kind: TriggerKind,
    image: ImageYaml,
    #[serde(default)]
    target: Option<i64>,
    #[serde(default)]
    patches: Vec<Patch>,
    #[serde(default)]
    pattern: Option<PathBuf>,
    #[serde(default)]
    intensity: Option<f32>,
}

/// A loaded additive pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    /// The `.npy` file it was read from.
    pub file: PathBuf,
    /// Scale applied to the pattern.
    pub intensity: f32,
    /// `C * H * W` values.
    pub values: Vec<f32>,
}

/// A validated trigger: shape, patches and optional pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerSpec {
    /// The trigger's name.
    pub name: String,
    /// Patch or pattern.
    pub kind: TriggerKind,
    /// The class the trigger leads to, when the spec says.
    pub target: Option<i64>,
    /// Image shape `[C, H, W]` it applies to.
    pub image_shape: [usize; 3],
    /// Rectangles set to a value, applied after the pattern.
    pub patches: Vec<Patch>,
    /// The additive pattern, applied first.
    pub pattern: Option<Pattern>,
}

impl TriggerSpec {
    /// Reads and validates the YAML spec at `path` (and its pattern file).
    ///
    /// Rejects unknown fields and kinds, another `version`, patches outside the image or with a value outside
    /// `[0, 1]`, a pattern path that is absolute or escapes the YAML's folder, a pattern whose shape is not
    /// `image_shape`, and non-finite numbers.
    pub fn load(path: &Path) -> Result<Self, DataError> {
        let err = |problem: String| DataError::Trigger { path: path.to_path_buf(), problem };
        let text = crate::fsio::read_text(path, 1 << 20, "a trigger specification")?;
        let yaml: SpecYaml = serde_saphyr::from_str(&text).map_err(|e| err(format!("invalid YAML: {e}")))?;
        let image_shape = [yaml.image.channels, yaml.image.height, yaml.image.width];
        let [c, h, w] = image_shape;
        if c == 0 || h == 0 || w == 0 || c.saturating_mul(h).saturating_mul(w) > super::MAX_DATASET_VALUES {
            return Err(err(format!("image {:?} is not a valid [C, H, W]", image_shape)));
        }
        for (i, p) in yaml.patches.iter().enumerate() {
            let fits = p.row.checked_add(p.height).is_some_and(|b| b <= h)
                && p.col.checked_add(p.width).is_some_and(|r| r <= w);
            if !fits || p.height == 0 || p.width == 0 {
                return Err(err(format!(
                    "patch {i} (row {}, col {}, {}×{}) does not fit in the {h}×{w} image",
                    p.row, p.col, p.height, p.width
                )));
            }
            if !(0.0..=1.0).contains(&p.value) {
                return Err(err(format!("patch {i} value {} is outside [0, 1]", p.value)));
            }
        }
        let pattern = match (yaml.kind, yaml.pattern, yaml.intensity) {
            (TriggerKind::Patch, None, None) if !yaml.patches.is_empty() => None,
            (TriggerKind::Patch, _, _) => {
                return Err(err("type patch needs `patches` and no `pattern`/`intensity`".into()))
            }
            (TriggerKind::Pattern, Some(file), Some(intensity)) if yaml.patches.is_empty() => {
                Some(load_pattern(path, &PatternYaml { file, intensity }, image_shape).map_err(err)?)
            }
            (TriggerKind::Pattern, _, _) => {
                return Err(err("type pattern needs `pattern` and `intensity` and no `patches`".into()))
            }
        };
        Ok(TriggerSpec {
            name: yaml.name,
            kind: yaml.kind,
            target: yaml.target,
            image_shape,
            patches: yaml.patches,
            pattern,
        })
    }

    /// Stamps the trigger onto `n` NCHW images in place: pattern first (`x + intensity·pattern`, clamped to
    /// `[0, 1]`), then patches. Errors when `(c, h, w)` is not the spec's shape or `images` has another length.
    pub fn apply(&self, images: &mut [f32], n: usize, c: usize, h: usize, w: usize) -> Result<(), DataError> {
        if [c, h, w] != self.image_shape {
            return Err(DataError::ShapeMismatch {
                path: PathBuf::from(&self.name),
                problem: format!("trigger is for images {:?}, got [{c}, {h}, {w}]", self.image_shape),
            });
        }
        let len = c * h * w;
        if n.checked_mul(len) != Some(images.len()) {
            return Err(DataError::ShapeMismatch {
                path: PathBuf::from(&self.name),
                problem: format!("{} values do not hold {n} images of [{c}, {h}, {w}]", images.len()),
            });
        }
        for img in images.chunks_exact_mut(len.max(1)) {
            if let Some(p) = &self.pattern {
                for (x, &v) in img.iter_mut().zip(&p.values) {
                    *x = (*x + p.intensity * v).clamp(0.0, 1.0);
                }
            }
            for p in &self.patches {
                for ch in 0..c {
                    for r in p.row..p.row + p.height {
                        let start = (ch * h + r) * w + p.col;
                        img[start..start + p.width].fill(p.value);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Resolves and reads a pattern file relative to the spec at `spec`; the error is the problem.
fn load_pattern(spec: &Path, p: &PatternYaml, shape: [usize; 3]) -> Result<Pattern, String> {
    if !p.intensity.is_finite() {
        return Err(format!("pattern intensity {} is not finite", p.intensity));
    }
    let escapes =
        p.file.is_absolute() || p.file.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
    if escapes || p.file.as_os_str().is_empty() {
        return Err(format!("pattern file '{}' must be a relative path inside the spec's folder", p.file.display()));
    }
    let dir = spec.parent().unwrap_or(Path::new("."));
    let file = dir.join(&p.file);
    // A symbolic link may still lead outside: compare canonical paths.
    let canon_dir = dir.canonicalize().map_err(|e| format!("{}: {e}", dir.display()))?;
    let canon = file.canonicalize().map_err(|e| format!("pattern file {}: {e}", file.display()))?;
    if !canon.starts_with(&canon_dir) {
        return Err(format!("pattern file '{}' leads outside the spec's folder", p.file.display()));
    }
    let (npy_shape, values) = read_npy_f32(&file).map_err(|e| e.to_string())?;
    if npy_shape != shape {
        return Err(format!("pattern {} has shape {npy_shape:?}, image_shape is {shape:?}", file.display()));
    }
    if values.iter().any(|v| !v.is_finite()) {
        return Err(format!("pattern {} holds non-finite values", file.display()));
    }
    Ok(Pattern { file, intensity: p.intensity, values })
}
