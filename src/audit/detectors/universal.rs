//! Universal reach ([`crate::detect::universal`]) behind the detector interface: its run on the test
//! split (sharing the clean predictions with reach), its cost estimate, its report details and its
//! evidence (the budget chart; for flagged classes the shared perturbation beside clean images with it
//! added).

use std::path::Path;

use super::{test_predictions, ClassDetector, DetectContext, EvidenceRequest, Measurements};
use crate::audit::evidence::{bar_chart, class_labels, EvidenceFiles};
use crate::audit::plan::AuditPlan;
use crate::audit::progress::bar;
use crate::data::ImageSet;
use crate::detect::sample::HeldOut;
use crate::detect::universal::{run_universal, ClassUniversal, UniversalResult};
use crate::detect::DetectorOutcome;
use crate::report::evidence::{BarChart, ImageGrid};
use crate::report::{ClassDetails, EvidenceFile, EvidenceKind, Timings};
use crate::Result;

/// Universal reach.
pub(super) struct UniversalReach;

impl ClassDetector for UniversalReach {
    fn run(&self, ctx: &mut DetectContext<'_>) -> Result<(DetectorOutcome, Box<dyn Measurements>)> {
        let params = &ctx.plan.universal;
        let (test, classes) = ctx.held_out_sources(Some(("universal.images", params.images)));
        let pb = bar(classes.len(), "universal reach (classes)".into(), ctx.progress);
        let predictions = test_predictions(ctx.model, test, params.batch_size, ctx.held_out)?;
        let mut done = 0;
        let held_out = HeldOut { predictions: Some(predictions), classes: Some(&classes) };
        let r = run_universal(ctx.model, &test.pixels, &test.labels, held_out, params, |_| {
            done += 1;
            pb.set_position(done)
        })?;
        pb.finish_and_clear();
        Ok((r.outcome(ctx.audited), Box::new(r)))
    }

    /// `images × (steps per level + 1) × levels`.
    fn images_per_class(&self, plan: &AuditPlan, universal_levels: f64, _reach_sweeps: f64) -> f64 {
        let u = &plan.universal;
        (u.images * (u.steps_per_level + 1)) as f64 * universal_levels
    }
}

impl Measurements for UniversalResult {
    fn details(&self, _position: usize, class: usize) -> ClassDetails {
        let c = self.classes.iter().find(|c| c.class == class).expect("a detector's outcome lists measured classes");
        ClassDetails::Universal {
            budget: c.budget,
            reached: c.reached,
            median_budget: self.median_log_budget.exp(),
            anomaly_index: c.anomaly_index,
        }
    }

    /// The budget chart and, for flagged classes, the shared perturbation beside clean images with it
    /// added, with the model's prediction for each.
    fn evidence(&self, request: &EvidenceRequest<'_>) -> Result<EvidenceFiles> {
        let mut out = EvidenceFiles::default();
        let labels = class_labels(self.classes.iter().map(|u| u.class));
        let budgets: Vec<f64> = self.classes.iter().map(|u| u.budget).collect();
        let marks: Vec<bool> = self.classes.iter().map(|u| request.is_flagged(u.class)).collect();
        let title = format!(
            "L2 budget of one perturbation that sends {:.0}% of the images to each class",
            self.params.success_level * 100.0
        );
        let chart = BarChart {
            labels: &labels,
            values: &budgets,
            highlight: &marks,
            title: &title,
            y_max: None,
            threshold: None,
        };
        let caption = "L2 budget of the one perturbation, shared by every source image, that sends most of them to \
                       each class (a backdoor's target needs the least)";
        out.overview.push(bar_chart(request.dir, "universal-budgets.png", &chart, caption.into())?);
        for u in self.classes.iter().filter(|u| request.is_flagged(u.class) && request.is_measured(u.class)) {
            if let Some(file) = perturbation_grid(request.dir, u, &request.data.test)? {
                out.class(u.class, vec![file]);
            }
        }
        Ok(out)
    }

    fn record_time(&self, seconds: f64, timings: &mut Timings) {
        timings.universal = seconds;
    }
}

/// One flagged class's evidence: the shared perturbation (around grey) beside clean test images with
/// it added, captioned with the model's prediction for each (`None` when there is nothing to show).
fn perturbation_grid(dir: &Path, u: &ClassUniversal, test: &ImageSet) -> Result<Option<EvidenceFile>> {
    let (c, h, w) = (test.c, test.h, test.w);
    let dim = c * h * w;
    if u.perturbation.len() != dim || u.examples.is_empty() {
        return Ok(None);
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
    ImageGrid { n, c, h, w, columns: 9, upscale: 3 }.write_png(&dir.join(&name), &images)?;
    let norm = u.perturbation.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
    let predictions: Vec<String> = u.examples.iter().map(|e| format!("{}→{}", e.source_label, e.prediction)).collect();
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
    Ok(Some(file))
}
