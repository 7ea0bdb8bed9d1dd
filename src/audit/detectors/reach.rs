//! Targeted reachability ([`crate::detect::reach`]) behind the detector interface: its run on the test
//! split (sharing the clean predictions with universal reach), its cost estimate, its report details and
//! its evidence (the rate chart; for flagged classes the images that reached them).

use std::path::Path;

use super::{test_predictions, ClassDetector, DetectContext, Measurements};
use crate::audit::evidence::EvidenceFiles;
use crate::audit::one_model::AuditData;
use crate::audit::plan::AuditPlan;
use crate::audit::progress::bar;
use crate::detect::reach::{run_reach_on, ReachResult};
use crate::detect::sample::HeldOut;
use crate::detect::DetectorOutcome;
use crate::report::{evidence, ClassDetails, EvidenceFile, EvidenceKind, Timings};
use crate::Result;

/// Targeted reachability.
pub(super) struct Reach;

impl ClassDetector for Reach {
    fn run(&self, ctx: &mut DetectContext<'_>) -> Result<(DetectorOutcome, Box<dyn Measurements>)> {
        let params = &ctx.plan.reach;
        let test = &ctx.data.test;
        let classes = ctx.classes();
        let pb = bar(0, "reach".into(), ctx.progress);
        let predictions = test_predictions(ctx.model, test, params.batch_size, ctx.held_out)?;
        let held_out = HeldOut { predictions: Some(predictions), classes: Some(&classes) };
        let r = run_reach_on(ctx.model, &test.pixels, &test.labels, held_out, params, |p| {
            pb.set_length(p.total as u64);
            pb.set_position(p.done as u64);
        })?;
        pb.finish_and_clear();
        Ok((r.outcome(ctx.audited), Box::new(r)))
    }

    /// `sweep images × (steps + 1) × sweeps + (images − sweep images) × (steps + 1)`.
    fn images_per_class(&self, plan: &AuditPlan, _universal_levels: f64, reach_sweeps: f64) -> f64 {
        let r = &plan.reach;
        let per = (r.steps + 1) as f64;
        r.sweep_images_per_class as f64 * per * reach_sweeps
            + r.images_per_class.saturating_sub(r.sweep_images_per_class) as f64 * per
    }
}

impl Measurements for ReachResult {
    fn details(&self, _position: usize, class: usize) -> ClassDetails {
        let c = self.classes.iter().find(|c| c.class == class).expect("a detector's outcome lists measured classes");
        ClassDetails::Reach { success_rate: c.rate, anomaly_index: c.anomaly_index, epsilon: self.eps as f64 }
    }

    fn evidence(
        &self,
        dir: &Path,
        outcome: &DetectorOutcome,
        flagged: &[usize],
        data: &AuditData,
    ) -> Result<EvidenceFiles> {
        let test = &data.test;
        write_evidence(dir, self, outcome, flagged, (test.c, test.h, test.w))
    }

    fn record_time(&self, seconds: f64, timings: &mut Timings) {
        timings.reach = seconds;
    }
}

/// The rate chart and, for flagged classes, the perturbed images that reached them.
fn write_evidence(
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
