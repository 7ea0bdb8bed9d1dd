//! The one decision step: the detectors' outcomes (today exactly one, the detector the method choice
//! picked) become the flagged classes and the verdict under [`Verdict::of`]. A fused decision over
//! several detectors replaces [`decide`]'s body, nothing else.

use crate::detect::DetectorOutcome;
use crate::report::Verdict;

/// The audit's decision over every detector that ran.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Flagged classes, in the audited order.
    pub flagged: Vec<usize>,
    /// The verdict.
    pub verdict: Verdict,
}

/// Decides from the detectors' outcomes; `applicable` is false when the chosen method does not apply
/// (then no detector ran and the verdict is not applicable).
pub fn decide(outcomes: &[DetectorOutcome], applicable: bool) -> Decision {
    let mut flagged: Vec<usize> = Vec::new();
    for class in outcomes.iter().flat_map(DetectorOutcome::flagged) {
        if !flagged.contains(&class) {
            flagged.push(class);
        }
    }
    Decision { verdict: Verdict::of(applicable, !flagged.is_empty()), flagged }
}
