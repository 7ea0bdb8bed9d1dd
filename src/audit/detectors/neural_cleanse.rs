//! Neural Cleanse ([`crate::detect::neural_cleanse`]) behind the detector interface: its run on the
//! test split, its cost estimate, the index of older reports computed again (on the log scale since
//! index version 2), its report details and its evidence (each class's reversed mask and pattern).

use super::{ClassDetector, DetectContext, EvidenceRequest, Measurements};
use crate::audit::evidence::EvidenceFiles;
use crate::audit::plan::AuditPlan;
use crate::audit::progress::bar;
use crate::detect::neural_cleanse::{flag_outliers, run_neural_cleanse_on, signed_indices, NeuralCleanseResult};
use crate::detect::DetectorOutcome;
use crate::report::{evidence, ClassDetails, EvidenceFile, EvidenceKind, Timings};
use crate::Result;

/// Neural Cleanse.
pub(super) struct NeuralCleanse;

impl ClassDetector for NeuralCleanse {
    fn run(&self, ctx: &mut DetectContext<'_>) -> Result<(DetectorOutcome, Box<dyn Measurements>)> {
        let params = &ctx.plan.neural_cleanse;
        let (test, classes) = ctx.held_out_sources(Some(("neural_cleanse.images", params.images)));
        let pb = bar(classes.len() * params.epochs, "Neural Cleanse (epochs)".into(), ctx.progress);
        let mut done = vec![0usize; ctx.model.num_classes()];
        let r = run_neural_cleanse_on(ctx.model, &test.pixels, &test.labels, &classes, params, |class, e| {
            if let Some(d) = done.get_mut(class) {
                *d = e;
            }
            pb.set_position(done.iter().sum::<usize>() as u64);
        })?;
        pb.finish_and_clear();
        Ok((r.outcome(ctx.audited), Box::new(r)))
    }

    /// `images × (epochs + 1)` (no early stop).
    fn images_per_class(&self, plan: &AuditPlan, _universal_levels: f64, _reach_sweeps: f64) -> f64 {
        (plan.neural_cleanse.images * (plan.neural_cleanse.epochs + 1)) as f64
    }

    fn reindexes(&self) -> bool {
        true
    }

    /// The detector's own indices ([`flag_outliers`], [`signed_indices`]): on the log scale, positive
    /// below the median.
    fn reindex(&self, values: &[f64], _runs: Option<u64>) -> std::result::Result<Vec<f64>, &'static str> {
        let (stats, _) = flag_outliers(values, f64::INFINITY).map_err(|_| "its stored values give no index")?;
        Ok(signed_indices(values, &stats))
    }
}

impl Measurements for NeuralCleanseResult {
    fn details(&self, _position: usize, class: usize) -> ClassDetails {
        let t = self.classes.iter().find(|t| t.class == class).expect("a detector's outcome lists measured classes");
        ClassDetails::NeuralCleanse { mask_l1: t.mask_l1, anomaly_index: t.anomaly_index }
    }

    /// Each measured class's reversed mask and pattern.
    fn evidence(&self, request: &EvidenceRequest<'_>) -> Result<EvidenceFiles> {
        let (c, h, w) = self.image_shape;
        let mut out = EvidenceFiles::default();
        for t in self.classes.iter().filter(|t| request.is_measured(t.class)) {
            let name = format!("class-{}-nc-mask.png", t.class);
            evidence::mask_png(&request.dir.join(&name), &t.trigger.mask, &t.trigger.pattern, c, h, w, 4)?;
            let file = EvidenceFile {
                kind: EvidenceKind::Mask,
                path: name,
                caption: format!(
                    "Class {}: the reversed mask, the pattern and the trigger as stamped (mask⊙pattern), left to \
                     right (‖m‖₁ = {:.2})",
                    t.class, t.mask_l1
                ),
            };
            out.class(t.class, vec![file]);
        }
        Ok(out)
    }

    fn record_time(&self, seconds: f64, timings: &mut Timings) {
        timings.neural_cleanse = seconds;
    }
}
