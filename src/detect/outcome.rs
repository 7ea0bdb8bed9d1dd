//! The one shape every detector's per-class result takes: per audited class a statistic, its anomaly
//! index across classes, the detector's own flag and a short reason. Generic: this file names no
//! detector (each detector's file builds its [`DetectorOutcome`] from its own result, and the audit's
//! detector registry pairs it with the detector's measurements, evidence and cost).

/// The version of the per-class anomaly indices the detectors compute, written in every report's
/// detector sections and checked in calibration files: 1, the first; 2 since Neural Cleanse and AEGIS
/// compare their statistics on the log scale ([`super::anomaly::AnomalyIndex::on_log_scale`]). Reach and universal
/// reach compute the same indices in both.
pub const INDEX_VERSION: u32 = 2;

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

/// A detector's result over the audited classes.
#[derive(Debug, Clone)]
pub struct DetectorOutcome {
    /// What [`ClassStatistic::value`] measures.
    pub statistic: &'static str,
    /// One statistic per audited class, in the audited order.
    pub classes: Vec<ClassStatistic>,
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
    fn index_is_positive_on_the_suspicious_side() {
        assert_eq!(signed_index(1.0, 2.0, 3.0, true), 3.0);
        assert_eq!(signed_index(3.0, 2.0, 3.0, true), -3.0);
        assert_eq!(signed_index(3.0, 2.0, 3.0, false), 3.0);
        assert_eq!(signed_index(2.0, 2.0, 0.0, false), 0.0);
    }
}
