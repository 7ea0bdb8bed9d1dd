//! The one detector interface and the registry of detectors.
//!
//! Every detector is one file here implementing [`ClassDetector`]: it takes the prepared model, the
//! audit's data and its own parameters (from the plan) in a [`DetectContext`], runs its algorithm
//! (`crate::detect::…`) on the classes the context names, and returns its [`DetectorOutcome`] (per class
//! a statistic, its anomaly index, its own flag and a reason) with its [`Measurements`], which give the
//! report's per-class details, the evidence files and the time phases. The audit wraps each run into a
//! [`DetectorRun`] with its cost (seconds, gradient evaluations). The decision step, the report and the
//! evidence iterate over the runs without naming a detector.
//!
//! Adding a detector: its file here (the algorithm may live in `crate::detect`), and one entry in
//! the `registry!` list below, which defines the [`Detector`] names (`--detectors`, reports, calibration
//! files), the order the fused decision runs them in, and which implementation each name runs.

mod aegis;
mod neural_cleanse;
mod reach;
mod universal;

use std::path::Path;

use super::evidence::EvidenceFiles;
use super::one_model::AuditData;
use super::plan::AuditPlan;
use crate::attack::GradientModel;
use crate::data::ImageSet;
use crate::detect::sample::{predict, Predictions};
use crate::detect::DetectorOutcome;
use crate::report::{ClassDetails, Level, Notification, Timings};
use crate::Result;

/// Defines [`Detector`] from the list of registered detectors: each entry is the variant, its name in
/// reports and calibration files, and the unit value implementing [`ClassDetector`].
macro_rules! registry {
    ($($(#[$doc:meta])* $variant:ident = $name:literal => $implementation:path;)*) => {
        /// A detector, by name: the registry's entries.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Detector {
            $($(#[$doc])* $variant,)*
        }

        impl Detector {
            /// Every detector, in the order the fused decision runs them.
            pub const ALL: [Detector; [$($name),*].len()] = [$(Detector::$variant),*];

            /// The detector's name in reports and calibration files (`aegis`, `neural-cleanse`,
            /// `reach`, `universal`).
            pub fn name(self) -> &'static str {
                match self {
                    $(Detector::$variant => $name,)*
                }
            }

            /// The detector's implementation.
            pub(crate) fn implementation(self) -> &'static dyn ClassDetector {
                match self {
                    $(Detector::$variant => &$implementation,)*
                }
            }
        }
    };
}

registry! {
    /// Universal reach: the smallest shared perturbation that sends most images to a class.
    Universal = "universal" => universal::UniversalReach;
    /// AEGIS (translation toward each class; robust models).
    Aegis = "aegis" => aegis::Aegis;
    /// Neural Cleanse (reversed triggers; standard models).
    NeuralCleanse = "neural-cleanse" => neural_cleanse::NeuralCleanse;
    /// Targeted reachability (robust models).
    Reach = "reach" => reach::Reach;
}

impl Detector {
    /// The detector called `name` (as [`Detector::name`] spells it).
    pub fn from_name(name: &str) -> Option<Detector> {
        Detector::ALL.into_iter().find(|d| d.name() == name)
    }
}

/// What a detector is given: the prepared model, the data, the plan (its parameters), the classes.
pub(crate) struct DetectContext<'a> {
    /// The checked plan; each detector reads its own parameters.
    pub plan: &'a AuditPlan,
    /// The train and test splits.
    pub data: &'a AuditData,
    /// The model (counting its evaluations).
    pub model: &'a mut dyn GradientModel,
    /// The audited classes (the report's), in order.
    pub audited: &'a [usize],
    /// An adaptive audit's shortlist: every detector measures these classes only.
    pub measured: Option<&'a [usize]>,
    /// The clean predictions of the test split, computed by the first detector that needs them.
    pub held_out: &'a mut Option<Predictions>,
    /// Whether to show progress bars.
    pub progress: bool,
    /// The audit's notifications (a detector adds the counts the data capped).
    pub notifications: &'a mut Vec<Notification>,
}

impl<'a> DetectContext<'a> {
    /// The held-out (test) images a detector draws from, and the classes it measures: the shortlist, or
    /// every class of the model. `draw`: the detector's parameter that says how many images it draws,
    /// and that count, noted in the audit's notifications when the split holds fewer.
    pub fn held_out_sources(&mut self, draw: Option<(&str, usize)>) -> (&'a ImageSet, Vec<usize>) {
        let test = &self.data.test;
        if let Some((name, asked)) = draw {
            self.notifications.extend(capped(name, asked, test.n, "test"));
        }
        let classes = match self.measured {
            Some(m) => m.to_vec(),
            None => (0..self.model.num_classes()).collect(),
        };
        (test, classes)
    }
}

/// One detector behind the common interface.
pub(crate) trait ClassDetector: Sync {
    /// Runs the detector as `ctx` says: its outcome over the audited (or shortlisted) classes and its
    /// measurements.
    fn run(&self, ctx: &mut DetectContext<'_>) -> Result<(DetectorOutcome, Box<dyn Measurements>)>;

    /// Images one class's full effort evaluates (forward and backward), estimated from the plan;
    /// `universal_levels` and `reach_sweeps` are the budget levels and sweeps expected before a class
    /// succeeds ([`super::effort::prior_levels`] before a screen has measured them).
    fn images_per_class(&self, plan: &AuditPlan, universal_levels: f64, reach_sweeps: f64) -> f64;

    /// Whether the detector's anomaly index changed since the first index version
    /// ([`crate::detect::INDEX_VERSION`]): then [`ClassDetector::reindex`] computes it again.
    fn reindexes(&self) -> bool {
        false
    }

    /// The anomaly indices of this index version from per-class `values` stored by an older version
    /// (every class of the model, in class order; `runs` as the report says), or why they cannot be
    /// computed.
    fn reindex(&self, values: &[f64], runs: Option<u64>) -> std::result::Result<Vec<f64>, &'static str> {
        let _ = (values, runs);
        Err("its stored values give no index")
    }
}

/// Everything a detector measured, for the report's per-class details, the evidence and the timings.
pub(crate) trait Measurements: std::fmt::Debug {
    /// The split whose class names the report shows (the detector's data).
    fn split<'a>(&self, data: &'a AuditData) -> &'a ImageSet {
        &data.test
    }

    /// The report's details of one class (`position` among the outcome's classes).
    fn details(&self, position: usize, class: usize) -> ClassDetails;

    /// Writes the detector's evidence as `request` says: into its folder, classes flagged as the
    /// decision says.
    fn evidence(&self, request: &EvidenceRequest<'_>) -> Result<EvidenceFiles>;

    /// Records the detector's wall time (`seconds`) and its own phases in the report's timings.
    fn record_time(&self, seconds: f64, timings: &mut Timings);
}

/// What a detector's evidence is drawn for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EvidenceRequest<'a> {
    /// The folder the files go into.
    pub dir: &'a Path,
    /// The detector's outcome (the classes it measured).
    pub outcome: &'a DetectorOutcome,
    /// The classes the decision flagged.
    pub flagged: &'a [usize],
    /// The audit's data.
    pub data: &'a AuditData,
}

impl EvidenceRequest<'_> {
    /// Whether the detector measured `class` (its outcome lists it).
    pub fn is_measured(&self, class: usize) -> bool {
        self.outcome.classes.iter().any(|s| s.class == class)
    }

    /// Whether the decision flagged `class`.
    pub fn is_flagged(&self, class: usize) -> bool {
        self.flagged.contains(&class)
    }
}

/// A detector's cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    /// Wall time, seconds.
    pub seconds: f64,
    /// Images run forward and backward through the gradient graph.
    pub gradient_evaluations: u64,
}

/// One detector's run: its outcome, its measurements and its cost.
#[derive(Debug)]
pub struct DetectorRun {
    /// The detector.
    pub detector: Detector,
    /// Per audited class its statistic, anomaly index, flag and reason.
    pub outcome: DetectorOutcome,
    /// Everything it measured.
    pub(crate) measured: Box<dyn Measurements>,
    /// What it cost.
    pub cost: Cost,
}

/// The model's clean predictions of the test split in batches of `batch_size`: those in `held_out` when
/// they were computed with that batch size, else computed now and kept there.
pub(super) fn test_predictions<'a>(
    model: &mut dyn GradientModel,
    test: &ImageSet,
    batch_size: usize,
    held_out: &'a mut Option<Predictions>,
) -> Result<&'a Predictions> {
    if held_out.as_ref().is_none_or(|p| p.batch_size != batch_size) {
        *held_out = Some(predict(model, &test.pixels, &test.labels, batch_size)?.0);
    }
    Ok(held_out.as_ref().expect("just computed"))
}

/// A note that a count was capped by the data, when it was: `asked` is more than the `available` images
/// of the `split` split (`None` when they suffice).
pub(super) fn capped(name: &str, asked: usize, available: usize, split: &str) -> Option<Notification> {
    (asked > available).then(|| Notification {
        level: Level::Note,
        message: format!("{name} = {asked} is more than the {available} images of the {split} split: all are used"),
        class: None,
    })
}

#[cfg(test)]
mod tests {
    use super::{capped, Detector};

    #[test]
    fn names_round_trip() {
        for d in Detector::ALL {
            assert_eq!(Detector::from_name(d.name()), Some(d));
        }
        assert_eq!(Detector::from_name("shortcut"), None);
        assert_eq!(Detector::ALL, [Detector::Universal, Detector::Aegis, Detector::NeuralCleanse, Detector::Reach]);
    }

    #[test]
    fn a_count_is_noted_only_when_the_data_capped_it() {
        assert_eq!(capped("universal.images", 100, 100, "test"), None);
        let note = capped("universal.images", 101, 100, "test").expect("capped");
        assert_eq!(note.message, "universal.images = 101 is more than the 100 images of the test split: all are used");
        assert_eq!(note.class, None);
    }
}
