//! Targeted reachability ([`crate::detect::reach`]) behind the detector interface: its run on the test
//! split (sharing the clean predictions with universal reach), its cost estimate, its report details and
//! its evidence (the rate chart; for flagged classes the images that reached them).

use super::{test_predictions, ClassDetector, DetectContext, EvidenceRequest, Measurements};
use crate::audit::evidence::{bar_chart, class_labels, EvidenceFiles};
use crate::audit::plan::AuditPlan;
use crate::audit::progress::bar;
use crate::detect::reach::{run_reach, ReachResult};
use crate::detect::sample::HeldOut;
use crate::detect::DetectorOutcome;
use crate::report::evidence::{BarChart, ImageGrid};
use crate::report::{ClassDetails, EvidenceFile, EvidenceKind, Timings};
use crate::Result;

/// Targeted reachability.
pub(super) struct Reach;

impl ClassDetector for Reach {
    fn run(&self, ctx: &mut DetectContext<'_>) -> Result<(DetectorOutcome, Box<dyn Measurements>)> {
        let params = &ctx.plan.reach;
        let (test, classes) = ctx.held_out_sources(None);
        let pb = bar(0, "reach".into(), ctx.progress);
        let predictions = test_predictions(ctx.model, test, params.batch_size, ctx.held_out)?;
        let held_out = HeldOut { predictions: Some(predictions), classes: Some(&classes) };
        let r = run_reach(ctx.model, &test.pixels, &test.labels, held_out, params, |p| {
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

    /// The rate chart and, for flagged classes, the perturbed images that reached them.
    fn evidence(&self, request: &EvidenceRequest<'_>) -> Result<EvidenceFiles> {
        let mut out = EvidenceFiles::default();
        let labels = class_labels(self.classes.iter().map(|c| c.class));
        let marks: Vec<bool> = self.classes.iter().map(|c| c.flagged).collect();
        let title = format!("targeted L2 PGD success rate per class at ε = {:.3}", self.eps);
        let chart = BarChart {
            labels: &labels,
            values: &self.rates(),
            highlight: &marks,
            title: &title,
            y_max: Some(1.0),
            threshold: None,
        };
        let caption = format!("Success rate of targeted L2 PGD (ε = {:.3}) toward each class", self.eps);
        out.overview.push(bar_chart(request.dir, "reach-rates.png", &chart, caption)?);
        let test = &request.data.test;
        for cr in self.classes.iter().filter(|c| request.is_measured(c.class) && request.is_flagged(c.class)) {
            if cr.evidence.is_empty() {
                continue;
            }
            let images: Vec<f32> = cr.evidence.iter().flat_map(|e| e.image.iter().copied()).collect();
            let name = format!("class-{}-reach.png", cr.class);
            ImageGrid { n: cr.evidence.len(), c: test.c, h: test.h, w: test.w, columns: 4, upscale: 3 }
                .write_png(&request.dir.join(&name), &images)?;
            let file = EvidenceFile {
                kind: EvidenceKind::ImageGrid,
                path: name,
                caption: format!("Class {}: perturbed images that reached it within ε = {:.3}", cr.class, self.eps),
            };
            out.class(cr.class, vec![file]);
        }
        Ok(out)
    }

    fn record_time(&self, seconds: f64, timings: &mut Timings) {
        timings.reach = seconds;
    }
}
