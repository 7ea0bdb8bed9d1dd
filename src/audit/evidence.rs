//! Writing an audit's visual evidence, in one place, after the decision: for the fused decision the
//! per-class fused scores against the threshold; for universal reach the budget chart and, for flagged
//! classes, the shared perturbation and clean images with it added; for AEGIS the bar chart of the
//! displacements, for flagged classes a grid of the shortest translations beside their seeds (where a
//! trigger shows) and, where the clustering ran, per class the embedding scatter (clean vs translated,
//! coloured by cluster) and for flagged classes a grid of translated images per cluster; for Neural
//! Cleanse each class's reversed mask and pattern; for reach the rate chart and, for flagged classes,
//! the images that reached them; then the `index.html` that links them. Classes are flagged as the
//! decision says (with the fused decision, every detector draws its evidence for the fused flags).
//! Paths in the report are relative to the evidence folder.

use std::collections::BTreeMap;
use std::path::Path;

use super::verdict::Decision;
use crate::data::ImageSet;
use crate::decide::FusedDecision;
use crate::detect::aegis::{seed_displacements, AegisClass, AegisResult};
use crate::detect::neural_cleanse::NeuralCleanseResult;
use crate::detect::reach::ReachResult;
use crate::detect::sample::gather;
use crate::detect::universal::UniversalResult;
use crate::detect::{DetectorEvidence, DetectorOutcome};
use crate::report::{evidence, html, AuditReport, EvidenceFile, EvidenceInfo, EvidenceKind, ReportError};
use crate::Result;

/// The evidence files written: those of each class, and those not tied to one class (charts), in the
/// order written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvidenceFiles {
    /// Files of each class.
    pub per_class: BTreeMap<usize, Vec<EvidenceFile>>,
    /// Files not tied to one class (the fused chart first, then each detector's).
    pub overview: Vec<EvidenceFile>,
}

impl EvidenceFiles {
    fn class(&mut self, class: usize, files: Vec<EvidenceFile>) {
        self.per_class.entry(class).or_default().extend(files);
    }
}

/// Writes the evidence of every outcome into `dir`, the classes flagged as `decision` says: `train` is
/// the set AEGIS drew its seeds from, `test` the one Neural Cleanse, reach and universal reach used.
pub fn write(
    dir: &Path,
    outcomes: &[DetectorOutcome],
    decision: &Decision,
    train: &ImageSet,
    test: &ImageSet,
) -> Result<EvidenceFiles> {
    create_dir(dir)?;
    let mut out = EvidenceFiles::default();
    if let Some(f) = &decision.fused {
        out.overview.push(fused_chart(dir, f)?);
    }
    let flagged = &decision.flagged;
    for outcome in outcomes {
        let files = match &outcome.evidence {
            DetectorEvidence::Aegis(r) => aegis(dir, r, flagged, train)?,
            DetectorEvidence::NeuralCleanse(r) => neural_cleanse(dir, r, outcome)?,
            DetectorEvidence::Reach(r) => reach(dir, r, outcome, flagged, (test.c, test.h, test.w))?,
            DetectorEvidence::Universal(r) => universal(dir, r, outcome, flagged, test)?,
        };
        out.overview.extend(files.overview);
        for (class, files) in files.per_class {
            out.per_class.entry(class).or_default().extend(files);
        }
    }
    Ok(out)
}

/// The fused score of every audited class against the threshold (flagged classes in red).
fn fused_chart(dir: &Path, f: &FusedDecision) -> Result<EvidenceFile> {
    let name = "fused-scores.png".to_string();
    let labels: Vec<String> = f.classes.iter().map(|c| c.class.to_string()).collect();
    let scores: Vec<f64> = f.classes.iter().map(|c| c.score).collect();
    let marks: Vec<bool> = f.classes.iter().map(|c| c.flagged).collect();
    let top = scores.iter().copied().fold(f.threshold, f64::max) * 1.1;
    evidence::bar_chart_threshold_png(
        &dir.join(&name),
        &labels,
        &scores,
        &marks,
        &format!("fused score per class (threshold {:.1} at α = {})", f.threshold, f.target_fpr),
        Some(top),
        Some(f.threshold),
    )?;
    Ok(EvidenceFile {
        kind: EvidenceKind::BarChart,
        path: name,
        caption: format!(
            "Fused score Σ w·(−ln p) of each class over {}; the line is the threshold a class must reach for a \
             model-level false-positive rate of {} (flagged classes in red)",
            f.detectors.join(", "),
            f.target_fpr
        ),
    })
}

/// Universal reach: the budget chart and, for flagged classes, the shared perturbation beside clean
/// images with it added, with the model's prediction for each.
fn universal(
    dir: &Path,
    r: &UniversalResult,
    outcome: &DetectorOutcome,
    flagged: &[usize],
    test: &ImageSet,
) -> Result<EvidenceFiles> {
    let mut out = EvidenceFiles::default();
    let (c, h, w) = (test.c, test.h, test.w);
    let dim = c * h * w;
    let labels: Vec<String> = r.classes.iter().map(|u| u.class.to_string()).collect();
    let budgets: Vec<f64> = r.classes.iter().map(|u| u.budget).collect();
    let marks: Vec<bool> = r.classes.iter().map(|u| flagged.contains(&u.class)).collect();
    let name = "universal-budgets.png".to_string();
    evidence::bar_chart_png(
        &dir.join(&name),
        &labels,
        &budgets,
        &marks,
        &format!(
            "L2 budget of one perturbation that sends {:.0}% of the images to each class",
            r.params.success_level * 100.0
        ),
        None,
    )?;
    out.overview.push(EvidenceFile {
        kind: EvidenceKind::BarChart,
        path: name,
        caption: "L2 budget of the one perturbation, shared by every source image, that sends most of them to each \
                  class (a backdoor's target needs the least)"
            .into(),
    });
    for u in
        r.classes.iter().filter(|u| flagged.contains(&u.class) && outcome.classes.iter().any(|s| s.class == u.class))
    {
        if u.perturbation.len() != dim || u.examples.is_empty() {
            continue;
        }
        // δ shown around grey: 0.5 + δ / (2 · max |δ|).
        let peak = u.perturbation.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
        let mut images: Vec<f32> = u.perturbation.iter().map(|v| 0.5 + v / (2.0 * peak)).collect();
        for e in &u.examples {
            let x = &test.pixels[e.source_index * dim..(e.source_index + 1) * dim];
            images.extend(x.iter().zip(&u.perturbation).map(|(a, d)| (a + d).clamp(0.0, 1.0)));
        }
        let n = 1 + u.examples.len();
        let name = format!("class-{}-universal.png", u.class);
        evidence::image_grid_png(&dir.join(&name), &images, n, c, h, w, 9, 3)?;
        let norm = u.perturbation.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
        let predictions: Vec<String> =
            u.examples.iter().map(|e| format!("{}→{}", e.source_label, e.prediction)).collect();
        let file = EvidenceFile {
            kind: EvidenceKind::ImageGrid,
            path: name,
            caption: format!(
                "Class {}: the shared perturbation δ (first tile, ‖δ‖₂ = {norm:.2}, grey is 0, scaled to its largest \
                 value) and {} clean test images with δ added; true label → the model's prediction: {}",
                u.class,
                u.examples.len(),
                predictions.join(", ")
            ),
        };
        out.class(u.class, vec![file]);
    }
    Ok(out)
}

fn aegis(dir: &Path, r: &AegisResult, flagged: &[usize], train: &ImageSet) -> Result<EvidenceFiles> {
    let mut out = EvidenceFiles::default();
    let shape = (train.c, train.h, train.w);
    for c in &r.classes {
        let class = c.first.class;
        let files = aegis_class(dir, &c.first, flagged.contains(&class), shape, &train.pixels, &train.labels)?;
        out.class(class, files);
    }
    let classes: Vec<usize> = r.classes.iter().map(|c| c.first.class).collect();
    let displacements: Vec<f64> = r.classes.iter().map(|c| c.shortcut.displacement).collect();
    let marks: Vec<bool> = classes.iter().map(|c| flagged.contains(c)).collect();
    out.overview.push(displacement_chart(dir, &classes, &displacements, &marks)?);
    Ok(out)
}

fn neural_cleanse(dir: &Path, r: &NeuralCleanseResult, outcome: &DetectorOutcome) -> Result<EvidenceFiles> {
    let (c, h, w) = r.image_shape;
    let mut out = EvidenceFiles::default();
    for t in r.classes.iter().filter(|t| outcome.classes.iter().any(|s| s.class == t.class)) {
        let name = format!("class-{}-nc-mask.png", t.class);
        evidence::mask_png(&dir.join(&name), &t.mask, &t.pattern, c, h, w, 4)?;
        let file = EvidenceFile {
            kind: EvidenceKind::Mask,
            path: name,
            caption: format!(
                "Class {}: the reversed mask, the pattern and the trigger as stamped (mask⊙pattern), left to right \
                 (‖m‖₁ = {:.2})",
                t.class, t.mask_l1
            ),
        };
        out.class(t.class, vec![file]);
    }
    Ok(out)
}

fn reach(
    dir: &Path,
    r: &ReachResult,
    outcome: &DetectorOutcome,
    flagged: &[usize],
    (c, h, w): (usize, usize, usize),
) -> Result<EvidenceFiles> {
    let mut out = EvidenceFiles::default();
    let labels: Vec<String> = r.classes.iter().map(|c| c.class.to_string()).collect();
    let marks: Vec<bool> = r.classes.iter().map(|c| c.flagged).collect();
    let name = "reach-rates.png".to_string();
    evidence::bar_chart_png(
        &dir.join(&name),
        &labels,
        &r.rates(),
        &marks,
        &format!("targeted L2 PGD success rate per class at ε = {:.3}", r.eps),
        Some(1.0),
    )?;
    out.overview.push(EvidenceFile {
        kind: EvidenceKind::BarChart,
        path: name,
        caption: format!("Success rate of targeted L2 PGD (ε = {:.3}) toward each class", r.eps),
    });
    for cr in r.classes.iter().filter(|c| outcome.classes.iter().any(|s| s.class == c.class)) {
        if !flagged.contains(&cr.class) || cr.evidence.is_empty() {
            continue;
        }
        let images: Vec<f32> = cr.evidence.iter().flat_map(|e| e.image.iter().copied()).collect();
        let name = format!("class-{}-reach.png", cr.class);
        evidence::image_grid_png(&dir.join(&name), &images, cr.evidence.len(), c, h, w, 4, 3)?;
        let file = EvidenceFile {
            kind: EvidenceKind::ImageGrid,
            path: name,
            caption: format!("Class {}: perturbed images that reached it within ε = {:.3}", cr.class, r.eps),
        };
        out.class(cr.class, vec![file]);
    }
    Ok(out)
}

/// Translated images shown per cluster.
const GRID_IMAGES: usize = 36;

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io { path: dir.to_path_buf(), source })?;
    Ok(())
}

/// Seed/translation pairs shown in the shortest-translations grid.
const SHORTEST_PAIRS: usize = 18;

/// Writes one class's AEGIS evidence into `dir` and returns the files (relative paths); `train` and
/// `labels` are the training images the seeds were drawn from.
fn aegis_class(
    dir: &Path,
    r: &AegisClass,
    flagged: bool,
    shape: (usize, usize, usize),
    train: &[f32],
    labels: &[i64],
) -> Result<Vec<EvidenceFile>> {
    create_dir(dir)?;
    let mut files = Vec::new();
    if flagged {
        files.push(shortest_translations(dir, r, shape, train, labels)?);
    }
    if !r.clustered {
        return Ok(files);
    }
    let n_clean = r.samples.clean_indices.len();
    let points: Vec<[f64; 2]> =
        r.embedding.rows().into_iter().map(|row| [row[0], if row.len() > 1 { row[1] } else { 0.0 }]).collect();
    let clusters: Vec<usize> = r.labels.iter().map(|&l| if l < 0 { usize::MAX } else { l as usize }).collect();
    let translated: Vec<bool> = (0..points.len()).map(|i| i >= n_clean).collect();
    let name = format!("class-{}-embedding.png", r.class);
    evidence::scatter_png(
        &dir.join(&name),
        &points,
        &clusters,
        &translated,
        &format!("class {}: {} counted clusters (○ clean, △ translated)", r.class, r.clusters),
    )?;
    files.push(EvidenceFile {
        kind: EvidenceKind::Scatter,
        path: name,
        caption: format!("Class {}: embedding of clean and translated features, coloured by cluster", r.class),
    });
    if flagged {
        let (c, h, w) = shape;
        let dim = c * h * w;
        for info in r.cluster_info.iter().filter(|i| i.counted && i.translated > 0) {
            let members: Vec<usize> = r.labels[n_clean..]
                .iter()
                .enumerate()
                .filter(|(_, &l)| l == info.label)
                .map(|(i, _)| i)
                .take(GRID_IMAGES)
                .collect();
            let images = gather(&r.samples.translated_images, dim, &members);
            let name = format!("class-{}-cluster-{}.png", r.class, info.label);
            evidence::image_grid_png(&dir.join(&name), &images, members.len(), c, h, w, 6, 3)?;
            files.push(EvidenceFile {
                kind: EvidenceKind::ImageGrid,
                path: name,
                caption: format!(
                    "Class {}: translated images of cluster {} ({} translated, {} clean points)",
                    r.class, info.label, info.translated, info.clean
                ),
            });
        }
    }
    Ok(files)
}

/// The grid of the translations toward `r.class` that moved least (seeds of other classes), each seed
/// beside its translation: a backdoor's shortcut shows as the seed's own digit plus the trigger.
fn shortest_translations(
    dir: &Path,
    r: &AegisClass,
    (c, h, w): (usize, usize, usize),
    train: &[f32],
    labels: &[i64],
) -> Result<EvidenceFile> {
    let dim = c * h * w;
    let s = &r.samples;
    let mut moved = seed_displacements(train, labels, s, dim);
    moved.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    let mut images = Vec::new();
    let mut n = 0;
    for &(k, _) in moved.iter().take(SHORTEST_PAIRS) {
        let i = s.seed_indices[k];
        images.extend_from_slice(&train[i * dim..(i + 1) * dim]);
        images.extend_from_slice(&s.translated_images[k * dim..(k + 1) * dim]);
        n += 2;
    }
    let name = format!("class-{}-shortest.png", r.class);
    evidence::image_grid_png(&dir.join(&name), &images, n, c, h, w, 6, 3)?;
    Ok(EvidenceFile {
        kind: EvidenceKind::ImageGrid,
        path: name,
        caption: format!(
            "Class {}: the {} shortest translations toward the class, each seed (left) beside its translation (right)",
            r.class,
            n / 2
        ),
    })
}

/// Writes the per-class mean translation displacement as a bar chart (flagged classes in red).
fn displacement_chart(dir: &Path, classes: &[usize], displacement: &[f64], flagged: &[bool]) -> Result<EvidenceFile> {
    create_dir(dir)?;
    let name = "aegis-displacement.png".to_string();
    let labels: Vec<String> = classes.iter().map(|c| c.to_string()).collect();
    evidence::bar_chart_png(
        &dir.join(&name),
        &labels,
        displacement,
        flagged,
        "mean L2 displacement of the translation toward each class",
        None,
    )?;
    Ok(EvidenceFile {
        kind: EvidenceKind::BarChart,
        path: name,
        caption: "Mean L2 distance between translated images and their seeds, per target class (a backdoor's \
                  target moves least)"
            .into(),
    })
}

/// Writes `index.html` into `dir` for the finished report, whose evidence will live in `final_dir`, and
/// returns the evidence summary.
pub fn finish(dir: &Path, final_dir: &Path, report: &AuditReport, files: Vec<EvidenceFile>) -> Result<EvidenceInfo> {
    create_dir(dir)?;
    let info = EvidenceInfo { dir: final_dir.display().to_string(), index: "index.html".to_string(), files };
    let mut with = report.clone();
    with.evidence = Some(info.clone());
    html::index_html(dir, &with)?;
    Ok(info)
}
