//! The one decision step: the detectors' outcomes become the flagged classes and the verdict under
//! [`Verdict::of`]. With one detector (an explicit `--method`) its own flags decide. With the fused
//! decision (`--method auto`) every detector's per-class anomaly index is turned into a p-value against
//! the calibration's clean classes and combined ([`crate::decide::fuse`]); a class is flagged when the
//! calibrated probability that a clean model scores as high is at most the target false-positive rate;
//! the model's measured robustness picks the calibration models it is compared with, where the
//! calibration asks for it.
//! `aegis-audit decide` applies the same step to the indices stored in reports ([`fused`]).

use super::detectors::DetectorRun;
use crate::decide::{fuse_among, Calibration, DecideError, DetectorIndices, FusedDecision};
use crate::report::Verdict;

/// The audit's decision over every detector that ran.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Flagged classes, in the audited order.
    pub flagged: Vec<usize>,
    /// The verdict.
    pub verdict: Verdict,
    /// The fused decision's numbers, when it decided.
    pub fused: Option<FusedDecision>,
}

/// How the outcomes are decided.
#[derive(Debug, Clone, Copy)]
pub enum Rule<'a> {
    /// Each detector's own flags (one detector: an explicit `--method`).
    OwnFlags,
    /// The fused decision against this calibration.
    Fused(&'a Calibration),
}

/// Decides from the detectors' runs over the `audited` classes (chosen among `tested` classes: see
/// [`crate::decide::fuse_among`]); `applicable` is false when the
/// chosen method does not apply (then no detector ran and the verdict is not applicable). `robustness`
/// is the model's adversarial accuracy in the robustness check (`None`: skipped): the fused decision
/// judges the model against the calibration models of most similar robustness when its calibration
/// asks for it.
pub fn decide(
    runs: &[DetectorRun],
    applicable: bool,
    rule: Rule<'_>,
    audited: &[usize],
    tested: usize,
    robustness: Option<f64>,
) -> Result<Decision, DecideError> {
    match rule {
        Rule::OwnFlags => {
            let mut flagged: Vec<usize> = Vec::new();
            for class in runs.iter().flat_map(|r| r.outcome.flagged()) {
                if !flagged.contains(&class) {
                    flagged.push(class);
                }
            }
            Ok(Decision { verdict: Verdict::of(applicable, !flagged.is_empty()), flagged, fused: None })
        }
        // The fused decision does not apply (a linear model of the image): no detector ran.
        Rule::Fused(_) if !applicable => {
            Ok(Decision { verdict: Verdict::of(false, false), flagged: Vec::new(), fused: None })
        }
        Rule::Fused(calibration) => {
            let indices: Vec<DetectorIndices> = runs.iter().map(|r| indices_of(r, audited)).collect();
            fused(calibration, &indices, audited, tested, robustness)
        }
    }
}

/// The fused decision over per-detector indices (one per class of `classes`, in that order, chosen
/// among `tested` classes), where it applies: the verdict is suspected when a class is flagged, clean
/// otherwise.
pub fn fused(
    calibration: &Calibration,
    indices: &[DetectorIndices],
    classes: &[usize],
    tested: usize,
    robustness: Option<f64>,
) -> Result<Decision, DecideError> {
    let f = fuse_among(calibration, indices, classes, tested, robustness)?;
    let flagged = f.flagged();
    Ok(Decision { verdict: Verdict::of(true, !flagged.is_empty()), flagged, fused: Some(f) })
}

/// One detector's anomaly index of each audited class, in the audited order (NaN for a class the
/// detector did not report).
fn indices_of(run: &DetectorRun, audited: &[usize]) -> DetectorIndices {
    let indices = audited
        .iter()
        .map(|&c| run.outcome.classes.iter().find(|s| s.class == c).map_or(f64::NAN, |s| s.anomaly_index))
        .collect();
    DetectorIndices { name: run.detector.name().to_string(), indices }
}
