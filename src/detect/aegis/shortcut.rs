//! AEGIS's cross-class decision: a backdoor's target class is reached by translations that move the
//! images anomalously little (a shortcut). The mean L2 displacement of the translations toward each class
//! is compared across the audited classes with the MAD anomaly index of its logarithm (scale-free:
//! [`AnomalyIndex::on_log_scale`]), once per run; a class is flagged when more than half of the runs
//! flag it.

use super::translate::ClassSamples;
use crate::detect::anomaly::AnomalyIndex;
use crate::detect::DetectError;

/// The shortcut decision over all audited classes.
#[derive(Debug, Clone, PartialEq)]
pub struct ShortcutDecision {
    /// Median of the per-class mean displacements (`exp` of the median log displacement).
    pub median: f64,
    /// Per-class anomaly index on the low side (negative above the median).
    pub indices: Vec<f64>,
    /// Positions (into the input) of the flagged classes.
    pub flagged: Vec<usize>,
}

/// The fewest classes the shortcut decision can compare.
pub const SHORTCUT_MIN_CLASSES: usize = 3;

/// Flags the classes whose mean displacement is a low outlier on the log scale: `(median ln d − ln d) /
/// (1.4826 · MAD ln d) > threshold`. Needs at least three classes to compare.
pub fn shortcut_decision(displacements: &[f64], threshold: f64) -> Result<ShortcutDecision, DetectError> {
    if displacements.len() < SHORTCUT_MIN_CLASSES {
        return Err(DetectError::InvalidParam(format!(
            "the shortcut decision compares classes and needs at least {SHORTCUT_MIN_CLASSES}, got {}; audit more \
             classes or use the cluster decision (--aegis-decision clusters)",
            displacements.len()
        )));
    }
    let a = AnomalyIndex::on_log_scale(displacements).ok_or_else(|| {
        DetectError::NoData(format!("a class has no translated seed of another class: displacements {displacements:?}"))
    })?;
    let indices = displacements.iter().zip(&a.indices).map(|(d, i)| if *d <= a.median { *i } else { -*i }).collect();
    Ok(ShortcutDecision { median: a.median, indices, flagged: a.low_outliers(displacements, threshold) })
}

/// L2 distance between each translated image and its seed, for the seeds whose label is not the
/// class (a seed of the class itself has nowhere to go): `(position among the seeds, distance)`.
pub fn seed_displacements(images: &[f32], labels: &[i64], samples: &ClassSamples, dim: usize) -> Vec<(usize, f64)> {
    samples
        .seed_indices
        .iter()
        .enumerate()
        .filter(|(_, &i)| labels[i] != samples.class as i64)
        .map(|(k, &i)| {
            let x0 = &images[i * dim..(i + 1) * dim];
            let x = &samples.translated_images[k * dim..(k + 1) * dim];
            (k, x0.iter().zip(x).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>().sqrt())
        })
        .collect()
}

/// Mean of [`seed_displacements`]; NaN when every seed is of the class.
pub fn mean_displacement(images: &[f32], labels: &[i64], samples: &ClassSamples, dim: usize) -> f64 {
    let d = seed_displacements(images, labels, samples, dim);
    if d.is_empty() {
        f64::NAN
    } else {
        d.iter().map(|(_, v)| v).sum::<f64>() / d.len() as f64
    }
}

/// One class's shortcut outcome over the runs: means over runs, and how many runs flagged it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShortcutVotes {
    /// Mean over runs of the class's mean displacement.
    pub displacement: f64,
    /// Mean over runs of the median displacement across the audited classes.
    pub median: f64,
    /// Mean over runs of the class's low-side anomaly index.
    pub index: f64,
    /// Runs whose decision flagged the class.
    pub votes: usize,
}

/// The shortcut decision of every run (each compares the audited classes of that run), per class:
/// `displacements[class][run]`. When `required` is false (the cluster rule decides) a comparison that
/// cannot be made (fewer than three classes, a NaN displacement) reports NaN instead of failing.
pub fn shortcut_votes(
    displacements: &[Vec<f64>],
    threshold: f64,
    required: bool,
) -> Result<Vec<ShortcutVotes>, DetectError> {
    let n_runs = displacements.first().map_or(0, Vec::len);
    let mut out = vec![ShortcutVotes { displacement: 0.0, median: 0.0, index: 0.0, votes: 0 }; displacements.len()];
    for r in 0..n_runs {
        let column: Vec<f64> = displacements.iter().map(|c| c[r]).collect();
        let decision = match shortcut_decision(&column, threshold) {
            Ok(d) => d,
            Err(e) if required => return Err(e),
            Err(_) => ShortcutDecision { median: f64::NAN, indices: vec![f64::NAN; column.len()], flagged: Vec::new() },
        };
        for (i, c) in out.iter_mut().enumerate() {
            c.displacement += column[i] / n_runs as f64;
            c.median += decision.median / n_runs as f64;
            c.index += decision.indices[i] / n_runs as f64;
            c.votes += decision.flagged.contains(&i) as usize;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn shortcut_decision_flags_the_low_outlier_with_hand_worked_indices() {
        // On ln d: median ln 6.5; |deviations| 0, ln(6.6/6.5) = 0.015268, ln(6.5/6.4) = 0.015504,
        // ln(6.5/5) = 0.262364, 0 → MAD ln(6.6/6.5), scale 1.4826 · MAD.
        let d = shortcut_decision(&[6.5, 6.6, 6.4, 5.0, 6.5], 2.0).unwrap();
        assert!((d.median - 6.5).abs() < 1e-12);
        let scale = 1.4826 * (6.6f64 / 6.5).ln();
        let want = [0.0, -1.0 / 1.4826, (6.5f64 / 6.4).ln() / scale, (6.5f64 / 5.0).ln() / scale, 0.0];
        for (got, want) in d.indices.iter().zip(want) {
            assert!((got - want).abs() < 1e-9, "{:?}", d.indices);
        }
        assert_eq!(d.flagged, vec![3]);
        // A high outlier (a class that is hard to reach) is not a shortcut.
        assert!(shortcut_decision(&[6.5, 6.6, 6.4, 9.0, 6.5], 2.0).unwrap().flagged.is_empty());
    }

    #[test]
    fn shortcut_decision_needs_three_finite_classes() {
        assert!(shortcut_decision(&[1.0, 2.0], 2.0).unwrap_err().to_string().contains("at least 3"));
        assert!(shortcut_decision(&[1.0, f64::NAN, 2.0], 2.0).is_err());
    }

    #[test]
    fn mean_displacement_skips_seeds_of_the_class() {
        // Three 2-pixel training images; seeds 0 (class 1) and 2 (class 0) translated toward class 1.
        let images = [0.0, 0.0, 1.0, 1.0, 0.5, 0.5];
        let labels = [1, 0, 0];
        let samples = ClassSamples {
            class: 1,
            seed_indices: vec![0, 2],
            translated_images: vec![9.0, 9.0, 0.5 + 3.0, 0.5 + 4.0],
            translated_features: vec![],
            reached: 1.0,
            clean_indices: vec![],
            clean_features: vec![],
            translation_s: 0.0,
            features_s: 0.0,
        };
        assert!((mean_displacement(&images, &labels, &samples, 2) - 5.0).abs() < 1e-9);
    }

    #[test]
    fn votes_average_over_runs_and_count_flags() {
        // Two runs over four classes; class 3 is the low outlier in both runs.
        let d = vec![vec![6.5, 6.4], vec![6.6, 6.5], vec![6.4, 6.6], vec![5.0, 5.1]];
        let v = shortcut_votes(&d, 2.0, true).unwrap();
        assert_eq!(v.iter().map(|c| c.votes).collect::<Vec<_>>(), vec![0, 0, 0, 2]);
        assert!((v[3].displacement - 5.05).abs() < 1e-12);
        // Two classes cannot be compared: an error when the shortcut rule decides, NaN otherwise.
        assert!(shortcut_votes(&d[..2], 2.0, true).is_err());
        let nan = shortcut_votes(&d[..2], 2.0, false).unwrap();
        assert!(nan[0].index.is_nan() && nan[0].votes == 0);
    }
}
