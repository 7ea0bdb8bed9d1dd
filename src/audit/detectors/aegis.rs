//! AEGIS ([`crate::detect::aegis`]) behind the detector interface: its run on the train split (its
//! seeds), its cost estimate, the index of older reports computed again (on the log scale since index
//! version 2; one run only), its report details, its phases' timings and its evidence: the bar chart of
//! the displacements, for flagged classes a grid of the shortest translations beside their seeds (where a
//! trigger shows) and, where the clustering ran, per class the embedding scatter (clean vs translated,
//! coloured by cluster) and for flagged classes a grid of translated images per cluster.

use std::path::Path;

use super::{capped, ClassDetector, DetectContext, EvidenceRequest, Measurements};
use crate::audit::evidence::{bar_chart, class_labels, create_dir, EvidenceFiles};
use crate::audit::one_model::AuditData;
use crate::audit::plan::AuditPlan;
use crate::audit::progress::PartBars;
use crate::data::ImageSet;
use crate::detect::aegis::{run_aegis, seed_displacements, shortcut_decision, AegisClass, AegisResult};
use crate::detect::sample::gather;
use crate::detect::DetectorOutcome;
use crate::report::evidence::{BarChart, ImageGrid};
use crate::report::{evidence, ClassDetails, EvidenceFile, EvidenceKind, Timings};
use crate::Result;

/// AEGIS.
pub(super) struct Aegis;

impl ClassDetector for Aegis {
    /// AEGIS measures the audited classes (or the shortlist): its indices compare those.
    fn run(&self, ctx: &mut DetectContext<'_>) -> Result<(DetectorOutcome, Box<dyn Measurements>)> {
        let (plan, train) = (ctx.plan, &ctx.data.train);
        let seeds = plan.aegis.translation.seeds_per_class;
        ctx.notifications.extend(capped("translation.seeds_per_class", seeds, train.n, "train"));
        let classes = ctx.measured.unwrap_or(ctx.audited);
        let mut bars = PartBars::new(ctx.progress);
        let r = run_aegis(ctx.model, &train.pixels, &train.labels, classes, &plan.aegis, plan.runs, |p| {
            bars.set((p.class, p.run), p.total, p.done, || format!("class {} run {}/{}", p.class, p.run + 1, p.runs))
        })?;
        bars.finish();
        Ok((r.outcome(), Box::new(r)))
    }

    /// `seeds × (steps + 1) × runs`.
    fn images_per_class(&self, plan: &AuditPlan, _universal_levels: f64, _reach_sweeps: f64) -> f64 {
        let t = &plan.aegis.translation;
        (t.seeds_per_class * (t.steps + 1) * plan.runs) as f64
    }

    fn reindexes(&self) -> bool {
        true
    }

    /// The shortcut decision's indices ([`shortcut_decision`]) of one run: a report of several runs
    /// stores their mean displacement, which does not give them.
    fn reindex(&self, values: &[f64], runs: Option<u64>) -> std::result::Result<Vec<f64>, &'static str> {
        if runs.is_some_and(|n| n != 1) {
            return Err("average several AEGIS runs");
        }
        shortcut_decision(values, f64::INFINITY).map(|d| d.indices).map_err(|_| "its stored values give no index")
    }
}

impl Measurements for AegisResult {
    fn split<'a>(&self, data: &'a AuditData) -> &'a ImageSet {
        &data.train
    }

    fn details(&self, position: usize, _class: usize) -> ClassDetails {
        let c = &self.classes[position];
        let first = &c.first;
        ClassDetails::Aegis {
            decision: format!("{:?}", self.params.decision).to_lowercase(),
            displacement: c.shortcut.displacement,
            displacement_median: c.shortcut.median,
            shortcut_votes: c.shortcut.votes,
            shortcut_index: c.shortcut.index,
            shortcut_threshold: self.params.shortcut_threshold,
            cluster_flagged: first.clustered.then_some(c.cluster_flagged),
            clusters: first.clustered.then_some(first.clusters),
            cluster_sizes: first.cluster_info.iter().map(|c| c.clean + c.translated).collect(),
            translated_per_cluster: first.cluster_info.iter().map(|c| c.translated).collect(),
            clean_per_cluster: first.cluster_info.iter().map(|c| c.clean).collect(),
            bandwidth: first.clustering.bandwidth.unwrap_or(f64::NAN),
            max_clusters: self.params.max_clusters,
        }
    }

    fn evidence(&self, request: &EvidenceRequest<'_>) -> Result<EvidenceFiles> {
        write_evidence(request.dir, self, request.flagged, &request.data.train)
    }

    fn record_time(&self, seconds: f64, timings: &mut Timings) {
        timings.aegis = seconds;
        timings.translation = self.timings.translation;
        timings.features = self.timings.features;
        timings.embedding = self.timings.embedding;
        timings.clustering = self.timings.clustering;
        timings.decision += self.timings.decision;
    }
}

/// Per class its evidence ([`aegis_class`]), and the displacement chart.
fn write_evidence(dir: &Path, r: &AegisResult, flagged: &[usize], train: &ImageSet) -> Result<EvidenceFiles> {
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

/// Translated images shown per cluster.
const GRID_IMAGES: usize = 36;

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
        r.reduced.points.rows().into_iter().map(|row| [row[0], if row.len() > 1 { row[1] } else { 0.0 }]).collect();
    let clusters: Vec<usize> =
        r.clustering.labels.iter().map(|&l| if l < 0 { usize::MAX } else { l as usize }).collect();
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
            let members: Vec<usize> = r.clustering.labels[n_clean..]
                .iter()
                .enumerate()
                .filter(|(_, &l)| l == info.label)
                .map(|(i, _)| i)
                .take(GRID_IMAGES)
                .collect();
            let images = gather(&r.samples.translated_images, dim, &members);
            let name = format!("class-{}-cluster-{}.png", r.class, info.label);
            ImageGrid { n: members.len(), c, h, w, columns: 6, upscale: 3 }.write_png(&dir.join(&name), &images)?;
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
    ImageGrid { n, c, h, w, columns: 6, upscale: 3 }.write_png(&dir.join(&name), &images)?;
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
    let labels = class_labels(classes.iter().copied());
    let chart = BarChart {
        labels: &labels,
        values: displacement,
        highlight: flagged,
        title: "mean L2 displacement of the translation toward each class",
        y_max: None,
        threshold: None,
    };
    let caption = "Mean L2 distance between translated images and their seeds, per target class (a backdoor's \
                   target moves least)";
    bar_chart(dir, "aegis-displacement.png", &chart, caption.into())
}
