//! Writing an audit's visual evidence: per class the embedding scatter (clean vs translated,
//! coloured by cluster), for flagged classes a grid of translated images per cluster (where a
//! trigger shows), and the `index.html` that links them. Paths in the report are relative to the
//! evidence folder.

use std::path::Path;

use crate::detect::aegis::AegisClass;
use crate::detect::translate::gather;
use crate::report::{evidence, html, AuditReport, EvidenceFile, EvidenceInfo, EvidenceKind, ReportError};
use crate::Result;

/// Translated images shown per cluster.
const GRID_IMAGES: usize = 36;

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io { path: dir.to_path_buf(), source })?;
    Ok(())
}

/// Writes one class's AEGIS evidence into `dir` and returns the files (relative paths).
pub fn aegis_class(
    dir: &Path,
    r: &AegisClass,
    flagged: bool,
    shape: (usize, usize, usize),
) -> Result<Vec<EvidenceFile>> {
    create_dir(dir)?;
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
    let mut files = vec![EvidenceFile {
        kind: EvidenceKind::Scatter,
        path: name,
        caption: format!("Class {}: embedding of clean and translated features, coloured by cluster", r.class),
    }];
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

/// Writes `index.html` for the finished report and returns the evidence summary.
pub fn finish(dir: &Path, report: &AuditReport, files: Vec<EvidenceFile>) -> Result<EvidenceInfo> {
    create_dir(dir)?;
    let info = EvidenceInfo { dir: dir.display().to_string(), index: "index.html".to_string(), files };
    let mut with = report.clone();
    with.evidence = Some(info.clone());
    html::index_html(dir, &with)?;
    Ok(info)
}
