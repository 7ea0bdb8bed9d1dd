//! The one shape every detector's result takes: per audited class a statistic, its anomaly index across
//! classes, the detector's own flag and a short reason, plus everything the detector measured (for the
//! report's details and the evidence). The audit collects a list of outcomes and hands them to one
//! decision step.

use super::aegis::shortcut_decision;
use super::aegis::AegisResult;
use super::neural_cleanse::NeuralCleanseResult;
use super::neural_cleanse::{flag_outliers, signed_indices};
use super::reach::ReachResult;
use super::universal::UniversalResult;

/// The version of the per-class anomaly indices the detectors compute, written in every report's
/// detector sections and checked in calibration files: 1, the first; 2 since Neural Cleanse and AEGIS
/// compare their statistics on the log scale ([`super::anomaly::AnomalyIndex::on_log_scale`]). Reach and universal
/// reach compute the same indices in both.
pub const INDEX_VERSION: u32 = 2;

/// The anomaly indices of this [`INDEX_VERSION`], computed from one detector's per-class `values`
/// (every class of the model, in class order) stored by an older version: Neural Cleanse's and AEGIS's
/// indices on the log scale, positive below the median, computed by the detectors' own functions
/// ([`flag_outliers`] and [`signed_indices`], [`shortcut_decision`]; AEGIS with one run). `None` for the
/// detectors whose index did not change, and for values that give no index (NaN; AEGIS with fewer than
/// three classes).
pub fn reindex(detector: Detector, values: &[f64]) -> Option<Vec<f64>> {
    match detector {
        Detector::NeuralCleanse => {
            let (stats, _) = flag_outliers(values, f64::INFINITY).ok()?;
            Some(signed_indices(values, &stats))
        }
        Detector::Aegis => shortcut_decision(values, f64::INFINITY).ok().map(|d| d.indices),
        Detector::Reach | Detector::Universal => None,
    }
}

/// Which detector produced an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detector {
    /// AEGIS (translation toward each class; robust models).
    Aegis,
    /// Neural Cleanse (reversed triggers; standard models).
    NeuralCleanse,
    /// Targeted reachability (robust models).
    Reach,
    /// Universal reach: the smallest shared perturbation that sends most images to a class.
    Universal,
}

impl Detector {
    /// Every detector, in the order the fused decision runs them.
    pub const ALL: [Detector; 4] = [Detector::Universal, Detector::Aegis, Detector::NeuralCleanse, Detector::Reach];

    /// The detector's name in reports and calibration files: `aegis`, `neural-cleanse`, `reach`,
    /// `universal`.
    pub fn name(self) -> &'static str {
        match self {
            Detector::Aegis => "aegis",
            Detector::NeuralCleanse => "neural-cleanse",
            Detector::Reach => "reach",
            Detector::Universal => "universal",
        }
    }

    /// The detector called `name` (as [`Detector::name`] spells it).
    pub fn from_name(name: &str) -> Option<Detector> {
        Detector::ALL.into_iter().find(|d| d.name() == name)
    }
}

/// One class's statistic as every detector reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassStatistic {
    /// The class.
    pub class: usize,
    /// The detector's per-class measurement (AEGIS: mean translation displacement; Neural Cleanse: the
    /// reversed mask's L1 norm; reach: the targeted success rate; universal: the shared perturbation's
    /// L2 budget).
    pub value: f64,
    /// MAD anomaly index of `value` across classes, positive on the side the detector finds suspicious
    /// (below the median for AEGIS, Neural Cleanse and universal, above it for reach), negative on the
    /// other; NaN where no comparison could be made.
    pub anomaly_index: f64,
    /// Whether the detector flags the class under its own rule.
    pub flagged: bool,
    /// One sentence with the numbers behind the flag.
    pub reason: String,
}

/// Everything a detector measured, kept for the report's per-class details and the evidence.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // one per audit
pub enum DetectorEvidence {
    /// AEGIS's per-class runs and embeddings.
    Aegis(AegisResult),
    /// Neural Cleanse's reversed triggers (every class, not only the audited ones).
    NeuralCleanse(NeuralCleanseResult),
    /// Reach's sweep and per-class rates (every class).
    Reach(ReachResult),
    /// Universal reach's budgets and shared perturbations (every class).
    Universal(UniversalResult),
}

/// A detector's result over the audited classes.
#[derive(Debug, Clone)]
pub struct DetectorOutcome {
    /// The detector.
    pub detector: Detector,
    /// What [`ClassStatistic::value`] measures.
    pub statistic: &'static str,
    /// One statistic per audited class, in the audited order.
    pub classes: Vec<ClassStatistic>,
    /// The full measurements.
    pub evidence: DetectorEvidence,
}

impl DetectorOutcome {
    /// The classes this detector flags, in the audited order.
    pub fn flagged(&self) -> impl Iterator<Item = usize> + '_ {
        self.classes.iter().filter(|c| c.flagged).map(|c| c.class)
    }
}

/// Signed anomaly index: `index` when `value` lies on the suspicious side of `median` (below it when
/// `low_is_suspicious`), `-index` on the other side, 0 on the median.
pub fn signed_index(value: f64, median: f64, index: f64, low_is_suspicious: bool) -> f64 {
    let below = value < median;
    if value == median {
        0.0
    } else if below == low_is_suspicious {
        index
    } else {
        -index
    }
}

#[cfg(test)]
mod tests {
    use super::signed_index;

    #[test]
    fn names_round_trip() {
        for d in super::Detector::ALL {
            assert_eq!(super::Detector::from_name(d.name()), Some(d));
        }
        assert_eq!(super::Detector::from_name("shortcut"), None);
    }

    #[test]
    fn index_is_positive_on_the_suspicious_side() {
        assert_eq!(signed_index(1.0, 2.0, 3.0, true), 3.0);
        assert_eq!(signed_index(3.0, 2.0, 3.0, true), -3.0);
        assert_eq!(signed_index(3.0, 2.0, 3.0, false), 3.0);
        assert_eq!(signed_index(2.0, 2.0, 0.0, false), 0.0);
    }
}
