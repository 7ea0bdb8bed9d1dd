//! Fusing the detectors' per-class anomaly indices into one calibrated, model-level decision.

use serde::{Deserialize, Serialize};

use super::calibration::{Calibration, Neighbourhood};
use super::null::EmpiricalNull;
use super::DecideError;

/// The largest `−ln p` one detector contributes (p = e^−700 is already far below any threshold; the
/// cap keeps scores finite when an index is infinite).
pub const MAX_SURPRISE: f64 = 700.0;

/// What one detector measured: a signed anomaly index per audited class (larger is more suspicious).
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorIndices {
    /// Detector name, as in the calibration.
    pub name: String,
    /// One index per audited class, in the order of the classes given to [`fuse`].
    pub indices: Vec<f64>,
}

/// One detector's part in a class's fused score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    /// Detector name.
    pub detector: String,
    /// Its anomaly index for the class.
    pub index: f64,
    /// The index's p-value against the detector's clean calibration classes.
    pub p_value: f64,
    /// The detector's weight.
    pub weight: f64,
    /// `weight · −ln p` (capped at `weight · MAX_SURPRISE`).
    pub score: f64,
}

/// One class's fused outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassScore {
    /// The class.
    pub class: usize,
    /// The fused score `Σ weight · −ln p`.
    pub score: f64,
    /// The fused score's p-value against the calibration classes' fused scores.
    pub class_p_value: f64,
    /// `1 − (1 − class_p_value)^K`: how often a clean model with this many classes has some class
    /// scoring at least this high.
    pub model_p_value: f64,
    /// Whether `model_p_value ≤ target_fpr`.
    pub flagged: bool,
    /// Each weighted detector's part, largest score first.
    pub contributions: Vec<Contribution>,
}

/// The fused decision for one model.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FusedDecision {
    /// The detectors that entered the score.
    pub detectors: Vec<String>,
    /// Per class, in the order given.
    pub classes: Vec<ClassScore>,
    /// The highest fused class score.
    pub model_score: f64,
    /// The smallest model-level p-value over classes: the calibrated probability that a clean model
    /// scores this high somewhere.
    pub model_p_value: f64,
    /// The target false-positive rate α (a model is flagged when `model_p_value ≤ α`).
    pub target_fpr: f64,
    /// The fused class score a class must reach to be flagged with this many classes.
    pub threshold: f64,
    /// Calibration classes the fused null was fitted on.
    pub null_classes: usize,
    /// The classes the decision chose among: the classes decided on, or more when an adaptive audit's
    /// screen chose them among more ([`fuse_among`]). The model-level p-value counts them all, unless
    /// `shortlist_null` is set.
    pub classes_tested: usize,
    /// Whether an adaptive audit's shortlist was judged against the shortlists of clean models' adaptive
    /// audits ([`Calibration::shortlists`]): the shortlists were chosen alike, so the model-level
    /// p-value counts the classes decided on, not every class the screen looked at.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shortlist_null: bool,
    /// When the calibration matches robustness: the calibration models the model was judged against.
    pub neighbourhood: Option<Neighbourhood>,
}

impl FusedDecision {
    /// Flagged classes, in the order given.
    pub fn flagged(&self) -> Vec<usize> {
        self.classes.iter().filter(|c| c.flagged).map(|c| c.class).collect()
    }
}

/// Fuses `measured` (the detectors that ran; those without weight in `calibration` are ignored) for
/// the audited `classes` of a model whose robustness check measured adversarial accuracy `robustness`
/// (`None`: not measured). A calibration that matches robustness judges the model against its nearest
/// calibration models only ([`Calibration::near`]); otherwise against all of them.
pub fn fuse(
    calibration: &Calibration,
    measured: &[DetectorIndices],
    classes: &[usize],
    robustness: Option<f64>,
) -> Result<FusedDecision, DecideError> {
    fuse_among(calibration, measured, classes, classes.len(), robustness)
}

/// [`fuse`] for `classes` chosen among `tested` classes (an adaptive audit measures a shortlist of
/// the classes a screen looked at). When the calibration has shortlists of clean models' adaptive
/// audits ([`Calibration::shortlists`]), the classes are judged against those, which were chosen the
/// same way, and the model-level p-value is `1 − (1 − p)^k` over the `k` classes decided on; otherwise
/// against the calibration's classes of full audits, with `1 − (1 − p)^tested`, so that choosing the
/// classes does not lower the false-positive rate's bar. `tested` is at least `classes.len()`.
pub fn fuse_among(
    calibration: &Calibration,
    measured: &[DetectorIndices],
    classes: &[usize],
    tested: usize,
    robustness: Option<f64>,
) -> Result<FusedDecision, DecideError> {
    if tested > classes.len() {
        if let Some(shortlists) = &calibration.shortlists {
            // Robustness matching picks among calibration models of full audits; not applied here.
            let decision = fuse_among(shortlists, measured, classes, classes.len(), None)?;
            return Ok(FusedDecision { classes_tested: tested, shortlist_null: true, ..decision });
        }
    }
    let near = calibration.near(robustness)?;
    let (calibration, neighbourhood) = match near {
        Some((c, n)) => (std::borrow::Cow::Owned(c), Some(n)),
        None => (std::borrow::Cow::Borrowed(calibration), None),
    };
    let calibration: &Calibration = &calibration;
    let k = classes.len();
    if k == 0 {
        return Err(DecideError::Fuse("no classes to decide on".into()));
    }
    if tested < k {
        return Err(DecideError::Fuse(format!("{k} classes to decide on, chosen among {tested}: fewer than them")));
    }
    let used: Vec<(&DetectorIndices, f64, &EmpiricalNull)> = measured
        .iter()
        .filter_map(|m| {
            let w = calibration.weight(&m.name);
            let null = calibration.nulls.get(&m.name)?;
            (w > 0.0).then_some((m, w, null))
        })
        .collect();
    if used.is_empty() {
        return Err(DecideError::Fuse(format!(
            "none of the detectors that ran ({}) is calibrated in {} (calibrated: {})",
            measured.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", "),
            calibration.origin,
            calibration.nulls.keys().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    if let Some((m, _, _)) = used.iter().find(|(m, _, _)| m.indices.len() != k) {
        return Err(DecideError::Fuse(format!(
            "detector '{}' gave {} indices for {k} classes",
            m.name,
            m.indices.len()
        )));
    }
    // The fused score of every calibration class that has all the used detectors.
    let null_scores: Vec<f64> = calibration
        .file
        .null_classes
        .iter()
        .filter_map(|c| {
            used.iter().map(|(m, w, null)| c.indices.get(&m.name).map(|&a| w * surprise(null, a))).sum::<Option<f64>>()
        })
        .collect();
    let fused_null = EmpiricalNull::fit(&null_scores, calibration.file.tail_fraction)
        .map_err(|e| DecideError::Fuse(format!("fused score over {}: {e}", names(&used))))?;
    let alpha = calibration.file.target_fpr;
    // Per-class p-value at which a model of `tested` classes reaches α: 1 − (1 − p)^tested = α.
    let class_alpha = 1.0 - (1.0 - alpha).powf(1.0 / tested as f64);
    let threshold = fused_null.quantile_for(class_alpha);
    let mut out = Vec::with_capacity(k);
    for (i, &class) in classes.iter().enumerate() {
        let mut contributions: Vec<Contribution> = used
            .iter()
            .map(|(m, w, null)| {
                let index = m.indices[i];
                Contribution {
                    detector: m.name.clone(),
                    index,
                    p_value: null.p_value(index),
                    weight: *w,
                    score: w * surprise(null, index),
                }
            })
            .collect();
        let score: f64 = contributions.iter().map(|c| c.score).sum();
        contributions.sort_by(|a, b| b.score.total_cmp(&a.score));
        let class_p_value = fused_null.p_value(score);
        let model_p_value = model_p(class_p_value, tested);
        out.push(ClassScore {
            class,
            score,
            class_p_value,
            model_p_value,
            flagged: model_p_value <= alpha,
            contributions,
        });
    }
    let model_score = out.iter().map(|c| c.score).fold(f64::NEG_INFINITY, f64::max);
    let model_p_value = out.iter().map(|c| c.model_p_value).fold(1.0, f64::min);
    Ok(FusedDecision {
        detectors: used.iter().map(|(m, _, _)| m.name.clone()).collect(),
        classes: out,
        model_score,
        model_p_value,
        target_fpr: alpha,
        threshold,
        null_classes: null_scores.len(),
        classes_tested: tested,
        shortlist_null: false,
        neighbourhood,
    })
}

/// `−ln p` of index `a`, capped at [`MAX_SURPRISE`].
fn surprise(null: &EmpiricalNull, a: f64) -> f64 {
    let p = null.p_value(a);
    if p <= 0.0 {
        MAX_SURPRISE
    } else if p >= 1.0 {
        0.0 // not −0.0
    } else {
        (-p.ln()).min(MAX_SURPRISE)
    }
}

/// `1 − (1 − p)^k`, computed without cancellation for small p.
fn model_p(p: f64, k: usize) -> f64 {
    if p >= 1.0 {
        return 1.0;
    }
    -((k as f64) * (-p).ln_1p()).exp_m1()
}

fn names(used: &[(&DetectorIndices, f64, &EmpiricalNull)]) -> String {
    used.iter().map(|(m, _, _)| m.name.as_str()).collect::<Vec<_>>().join(" + ")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::calibration::{Calibration, CalibrationFile, DetectorWeight, NullClass};
    use super::*;

    /// 25 clean classes: detector `a` gives 0.0, 0.1, …, 2.4; detector `b` gives 0.2·(i mod 5).
    fn calibration(weights: &[(&str, f64)]) -> Calibration {
        let null_classes = (0..25)
            .map(|i| NullClass {
                model: format!("m{}", i / 5),
                class: i % 5,
                indices: BTreeMap::from([("a".to_string(), i as f64 * 0.1), ("b".to_string(), 0.2 * (i % 5) as f64)]),
                adversarial_accuracy: None,
            })
            .collect();
        let detectors = weights.iter().map(|(n, w)| DetectorWeight { name: n.to_string(), weight: *w }).collect();
        Calibration::new(test_file(detectors, None, null_classes), "test").unwrap()
    }

    /// The tests' calibration file: α 0.05, tail fraction 0.2.
    fn test_file(
        detectors: Vec<DetectorWeight>,
        robustness_neighbours: Option<usize>,
        null_classes: Vec<NullClass>,
    ) -> CalibrationFile {
        CalibrationFile {
            version: super::super::calibration::CALIBRATION_VERSION,
            description: "test".into(),
            target_fpr: 0.05,
            tail_fraction: 0.2,
            detectors,
            robustness_neighbours,
            presets: Vec::new(),
            null_classes,
            shortlist_classes: Vec::new(),
            shortlist_presets: Vec::new(),
        }
    }

    #[test]
    fn model_p_value_is_one_minus_the_product() {
        assert!((model_p(0.01, 10) - (1.0 - 0.99f64.powi(10))).abs() < 1e-15);
        assert!((model_p(1e-12, 10) - 1e-11).abs() < 1e-20);
        assert_eq!(model_p(1.0, 3), 1.0);
        assert_eq!(model_p(0.0, 3), 0.0);
    }

    #[test]
    fn single_detector_hand_worked() {
        let cal = calibration(&[("a", 1.0)]);
        // Null of a: 0.0 … 2.4 (25 samples); tail over the top 5 (2.0 … 2.4), u = 1.9, β = mean
        // excess 0.3, p(u) = (1 + 6) / 26.
        let (u, pu, beta) = cal.nulls["a"].tail();
        assert!((u - 1.9).abs() < 1e-12 && (pu - 7.0 / 26.0).abs() < 1e-12 && (beta - 0.3).abs() < 1e-12);
        let m = [DetectorIndices { name: "a".into(), indices: vec![0.55, 4.0, -1.0] }];
        let d = fuse(&cal, &m, &[0, 1, 2], None).unwrap();
        // Class 0: p_a = (1 + #{x ≥ 0.55} = 19) / 26 = 20/26; score −ln(20/26).
        let s0 = -(20.0f64 / 26.0).ln();
        assert!((d.classes[0].score - s0).abs() < 1e-12);
        // Class 1: p_a = 7/26 · e^(−(4 − 1.9)/0.3) = 7/26 · e^−7.
        let s1 = -(7.0f64 / 26.0).ln() + 7.0;
        assert!((d.classes[1].score - s1).abs() < 1e-9, "{} vs {s1}", d.classes[1].score);
        assert_eq!(d.classes[1].contributions[0].detector, "a");
        assert!((d.classes[1].contributions[0].p_value - 7.0 / 26.0 * (-7.0f64).exp()).abs() < 1e-15);
        // Class 2 is below every null sample: p = 1, score 0.
        assert_eq!(d.classes[2].score, 0.0);
        // The fused null is the null scores of the 25 calibration classes; with one detector the
        // fused p-value of a class is again about its own tail p-value.
        assert_eq!(d.null_classes, 25);
        assert!(d.classes[1].flagged && !d.classes[0].flagged && !d.classes[2].flagged);
        assert_eq!(d.flagged(), vec![1]);
        // K = 3: class-level α' = 1 − 0.95^(1/3); the threshold is the fused null's quantile there.
        assert!((model_p(d.classes[1].class_p_value, 3) - d.classes[1].model_p_value).abs() < 1e-15);
        assert!(d.model_p_value == d.classes[1].model_p_value && d.model_score == d.classes[1].score);
        assert!(d.classes[1].score >= d.threshold && d.classes[0].score < d.threshold);
    }

    /// 25 shortlisted classes of 5 clean models, detector "a"'s index `from`, `from` + 0.1, …, `from` + 2.4.
    fn shortlist_classes(from: f64) -> Vec<NullClass> {
        (0..25)
            .map(|i| NullClass {
                model: format!("s{}", i / 5),
                class: i,
                indices: BTreeMap::from([("a".to_string(), from + i as f64 * 0.1)]),
                adversarial_accuracy: None,
            })
            .collect()
    }

    #[test]
    fn an_adaptive_shortlist_is_judged_against_clean_shortlists_counting_the_classes_decided_on() {
        // Full audits' null: a = 0.0 … 2.4. Shortlists of clean adaptive audits: a = 1.0, 1.1, …, 3.4
        // (their classes were chosen among the most unusual, so they run higher).
        let full = calibration(&[("a", 1.0)]);
        let file = CalibrationFile { shortlist_classes: shortlist_classes(1.0), ..full.file.clone() };
        let cal = Calibration::new(file, "test").unwrap();
        assert!(full.shortlists.is_none() && cal.shortlists.is_some());
        let m = [DetectorIndices { name: "a".into(), indices: vec![3.0, 0.5] }];
        // Not adaptive (tested = classes): the full audits' null, as before.
        let plain = fuse_among(&cal, &m, &[7, 9], 2, None).unwrap();
        assert_eq!(plain, fuse_among(&full, &m, &[7, 9], 2, None).unwrap());
        assert!(!plain.shortlist_null);
        // Adaptive, 2 classes chosen among 100: against the shortlists, the model p-value over 2 classes.
        let d = fuse_among(&cal, &m, &[7, 9], 100, None).unwrap();
        assert!(d.shortlist_null && d.classes_tested == 100);
        // Class 7 against 1.0 … 3.4: the tail is the top 5 (3.0 … 3.4) above u = 2.9, p(u) = (1 + 6) / 26,
        // β = mean excess 0.3; 3.0 > u, so p_a = 7/26 · e^(−0.1/0.3).
        let p7 = 7.0 / 26.0 * (-0.1f64 / 0.3).exp();
        assert!(
            (d.classes[0].contributions[0].p_value - p7).abs() < 1e-12,
            "{}",
            d.classes[0].contributions[0].p_value
        );
        assert!((d.classes[0].model_p_value - model_p(d.classes[0].class_p_value, 2)).abs() < 1e-15);
        // Against the full audits' null, with all 100 classes counted, the same index is far rarer per
        // class but the count is 50 times larger.
        let against_full = fuse_among(&full, &m, &[7, 9], 100, None).unwrap();
        assert!(!against_full.shortlist_null);
        assert!(
            (against_full.classes[0].model_p_value - model_p(against_full.classes[0].class_p_value, 100)).abs() < 1e-15
        );
        assert!(d.classes[0].class_p_value > against_full.classes[0].class_p_value);
    }

    #[test]
    fn the_presets_that_judged_a_decision_are_the_shortlists_when_they_judged_it() {
        let full = calibration(&[("a", 1.0)]);
        let shortlist_classes = shortlist_classes(0.0);
        let mnist = vec!["mnist".to_string()];
        let pairs = vec!["derived-1x28x56".to_string()];
        let with = |shortlist_presets: Vec<String>| {
            let file = CalibrationFile {
                presets: mnist.clone(),
                shortlist_classes: shortlist_classes.clone(),
                shortlist_presets,
                ..full.file.clone()
            };
            Calibration::new(file, "test").unwrap()
        };
        let cal = with(pairs.clone());
        assert_eq!(cal.judged_presets(false), &mnist[..]);
        assert_eq!(cal.judged_presets(true), &pairs[..]);
        // A file that does not name the shortlists' presets: the file's stand for both.
        let unnamed = with(Vec::new());
        assert_eq!(unnamed.judged_presets(true), &mnist[..]);
        // Without shortlists nothing is judged against them.
        assert_eq!(full.judged_presets(true), full.file.presets.as_slice());
        // Presets of shortlists the file does not hold are refused.
        let file = CalibrationFile { shortlist_presets: pairs, ..full.file.clone() };
        let e = Calibration::new(file, "test").unwrap_err().to_string();
        assert!(e.contains("shortlist_presets names presets but there are no shortlist_classes"), "{e}");
    }

    #[test]
    fn weights_and_missing_detectors() {
        let cal = calibration(&[("a", 1.0), ("b", 0.5), ("c", 0.0)]);
        // Only `b` ran (plus an uncalibrated one, ignored): the fused score is b alone, weighted 0.5.
        let m = [
            DetectorIndices { name: "b".into(), indices: vec![0.8, 0.0] },
            DetectorIndices { name: "zzz".into(), indices: vec![9.0, 9.0] },
        ];
        let d = fuse(&cal, &m, &[4, 7], None).unwrap();
        assert_eq!(d.detectors, vec!["b".to_string()]);
        // b's null: 0, .2, .4, .6, .8 five times each; the tail over the top 5 starts at u = 0.6 with
        // p(u) = (1 + 10) / 26 and mean excess 0.2, so p(0.8) = 11/26 · e^−1.
        let p = 11.0f64 / 26.0 * (-1.0f64).exp();
        assert!((d.classes[0].score - 0.5 * -p.ln()).abs() < 1e-12);
        assert_eq!((d.classes[0].class, d.classes[1].class), (4, 7));
        // Both detectors: the scores add.
        let m2 = [
            DetectorIndices { name: "a".into(), indices: vec![0.55, 0.0] },
            DetectorIndices { name: "b".into(), indices: vec![0.8, 0.0] },
        ];
        let d2 = fuse(&cal, &m2, &[4, 7], None).unwrap();
        let want = -(20.0f64 / 26.0).ln() + 0.5 * -p.ln();
        assert!((d2.classes[0].score - want).abs() < 1e-12);
        assert_eq!(d2.classes[0].contributions.len(), 2);
        assert!(d2.classes[0].contributions[0].score >= d2.classes[0].contributions[1].score);
    }

    /// Six models of five classes: model j has adversarial accuracy 0.2·j and detector `a` gives it
    /// j + 0.1·class, so the nearest models in robustness have the nearest null.
    fn robustness_calibration(neighbours: Option<usize>) -> Result<Calibration, DecideError> {
        let null_classes = (0..30)
            .map(|i| NullClass {
                model: format!("m{}", i / 5),
                class: i % 5,
                indices: BTreeMap::from([("a".to_string(), (i / 5) as f64 + 0.1 * (i % 5) as f64)]),
                adversarial_accuracy: Some(0.2 * (i / 5) as f64),
            })
            .collect();
        let detectors = vec![DetectorWeight { name: "a".into(), weight: 1.0 }];
        Calibration::new(test_file(detectors, neighbours, null_classes), "test")
    }

    #[test]
    fn robustness_picks_the_nearest_calibration_models() {
        let cal = robustness_calibration(Some(4)).unwrap();
        let m = [DetectorIndices { name: "a".into(), indices: vec![3.45] }];
        // Robust model (0.95): models 5, 4, 3, 2 (accuracy 1.0 … 0.4); 10 of their 20 indices are ≥ 3.45,
        // below the tail (the top 5 samples, from u = 4.4), so p = 11/21.
        let robust = fuse(&cal, &m, &[0], Some(0.95)).unwrap();
        assert!((robust.classes[0].contributions[0].p_value - 11.0 / 21.0).abs() < 1e-12);
        let n = robust.neighbourhood.clone().unwrap();
        assert_eq!((n.models, n.adversarial_accuracy), (4, 0.95));
        assert!((n.range[0] - 0.4).abs() < 1e-12 && (n.range[1] - 1.0).abs() < 1e-12);
        assert_eq!(robust.null_classes, 20);
        // Standard model (0.0): models 0 … 3, indices 0.0 … 3.4; the tail starts at u = 2.4 with
        // p(u) = 7/21 and mean excess 0.8 (3.0 … 3.4 above it), so p = 7/21 · e^(−1.05/0.8).
        let standard = fuse(&cal, &m, &[0], Some(0.0)).unwrap();
        let want = 7.0 / 21.0 * (-1.05f64 / 0.8).exp();
        assert!((standard.classes[0].contributions[0].p_value - want).abs() < 1e-12);
        assert!((standard.neighbourhood.unwrap().range[1] - 0.6).abs() < 1e-12);
        // Robustness not measured, or a calibration without neighbours: every model (30 classes).
        let all = fuse(&cal, &m, &[0], None).unwrap();
        assert!(all.neighbourhood.is_none() && all.null_classes == 30);
        let pooled = robustness_calibration(None).unwrap();
        assert_eq!(fuse(&pooled, &m, &[0], Some(0.95)).unwrap().null_classes, 30);
        // The count is checked against the models whose accuracy is recorded.
        for bad in [1, 7] {
            let err = robustness_calibration(Some(bad)).unwrap_err().to_string();
            assert!(err.contains(&format!("robustness_neighbours {bad} must be between 2 and the 6")), "{err}");
        }
    }

    #[test]
    fn errors_name_the_problem() {
        let cal = calibration(&[("a", 1.0)]);
        let none = fuse(&cal, &[DetectorIndices { name: "x".into(), indices: vec![1.0] }], &[0], None).unwrap_err();
        assert!(none.to_string().contains("none of the detectors that ran (x) is calibrated"), "{none}");
        let short = fuse(&cal, &[DetectorIndices { name: "a".into(), indices: vec![1.0] }], &[0, 1], None).unwrap_err();
        assert!(short.to_string().contains("gave 1 indices for 2 classes"), "{short}");
        assert!(fuse(&cal, &[], &[], None).is_err());
        // An infinite index is capped, not NaN.
        let inf = fuse(
            &cal,
            &[DetectorIndices { name: "a".into(), indices: vec![f64::INFINITY, 0.0, 0.0] }],
            &[0, 1, 2],
            None,
        )
        .unwrap();
        assert_eq!(inf.classes[0].score, MAX_SURPRISE);
        assert!(inf.classes[0].flagged);
    }

    #[test]
    fn calibration_file_rules() {
        let ok = calibration(&[("a", 1.0)]).file;
        let text = serde_json::to_string(&ok).unwrap();
        assert_eq!(CalibrationFile::parse(&text, "x").unwrap(), ok);
        let bad = |f: CalibrationFile, want: &str| {
            let err = Calibration::new(f, "x.json").unwrap_err().to_string();
            assert!(err.contains(want), "{err} lacks {want}");
        };
        bad(CalibrationFile { version: 3, ..ok.clone() }, "version 3 (aegis-audit reads version 2)");
        // A file of the first version holds raw-scale Neural Cleanse and AEGIS indices: refused, saying
        // what to do.
        bad(CalibrationFile { version: 1, ..ok.clone() }, "make it again with `aegis-audit calibrate`");
        bad(CalibrationFile { target_fpr: 0.0, ..ok.clone() }, "target_fpr 0");
        bad(CalibrationFile { tail_fraction: 1.0, ..ok.clone() }, "tail_fraction 1");
        bad(CalibrationFile { detectors: vec![], ..ok.clone() }, "no detectors");
        let twice = vec![DetectorWeight { name: "a".into(), weight: 1.0 }; 2];
        bad(CalibrationFile { detectors: twice, ..ok.clone() }, "listed twice");
        let zero = vec![DetectorWeight { name: "a".into(), weight: 0.0 }];
        bad(CalibrationFile { detectors: zero, ..ok.clone() }, "every detector has weight 0");
        let missing = vec![DetectorWeight { name: "q".into(), weight: 1.0 }];
        bad(CalibrationFile { detectors: missing, ..ok.clone() }, "detector 'q': a null distribution needs");
        assert!(CalibrationFile::parse("{", "x.json").unwrap_err().to_string().contains("x.json"));
    }
}
