//! Outlier scores across classes by the median absolute deviation (MAD), as Neural Cleanse's
//! anomaly index: `|x − median| / (1.4826 · MAD)`, where 1.4826 makes the MAD a consistent estimator
//! of the standard deviation for normal data.

/// The consistency constant that scales the MAD to a standard deviation under normality.
pub const MAD_CONSISTENCY: f64 = 1.4826;

/// The median of `values` (mean of the two middle values for an even count); `None` when empty or
/// when a value is NaN.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() || values.iter().any(|v| v.is_nan()) {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 })
}

/// Per-value anomaly indices and the statistics they came from.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyIndex {
    /// The median of the values.
    pub median: f64,
    /// The median absolute deviation (unscaled).
    pub mad: f64,
    /// `|x − median| / (1.4826 · MAD)` per value; infinite for a value off the median when MAD is 0,
    /// and 0 for a value on it.
    pub indices: Vec<f64>,
}

impl AnomalyIndex {
    /// Computes the indices; `None` for an empty input or one holding NaN.
    pub fn of(values: &[f64]) -> Option<AnomalyIndex> {
        AnomalyIndex::with_min_scale(values, 0.0)
    }

    /// [`AnomalyIndex::of`] with the scale `max(1.4826 · MAD, min_scale)`: for a statistic measured
    /// with a resolution (a rate over n images), deviations finer than it are not measured, and a MAD
    /// of 0 (more than half of the values equal) would otherwise make every other index infinite.
    pub fn with_min_scale(values: &[f64], min_scale: f64) -> Option<AnomalyIndex> {
        let median = median(values)?;
        let deviations: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
        let mad = self::median(&deviations)?;
        let scale = (MAD_CONSISTENCY * mad).max(min_scale);
        let indices = deviations
            .iter()
            .map(|d| {
                if *d == 0.0 {
                    0.0
                } else if scale == 0.0 {
                    f64::INFINITY
                } else {
                    d / scale
                }
            })
            .collect();
        Some(AnomalyIndex { median, mad, indices })
    }

    /// Indices of values above `threshold` on the low side (below the median): Neural Cleanse's rule.
    pub fn low_outliers(&self, values: &[f64], threshold: f64) -> Vec<usize> {
        (0..values.len()).filter(|&i| values[i] < self.median && self.indices[i] > threshold).collect()
    }

    /// Indices of values above `threshold` on the high side (above the median).
    pub fn high_outliers(&self, values: &[f64], threshold: f64) -> Vec<usize> {
        (0..values.len()).filter(|&i| values[i] > self.median && self.indices[i] > threshold).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{median, AnomalyIndex};

    #[test]
    fn a_minimum_scale_keeps_indices_finite() {
        // Six equal rates and one apart: MAD 0; the floor 0.01 gives (0.5 − 0.02) / 0.01 = 48.
        let v = [0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.5];
        assert_eq!(AnomalyIndex::of(&v).unwrap().indices[6], f64::INFINITY);
        let a = AnomalyIndex::with_min_scale(&v, 0.01).unwrap();
        assert!((a.indices[6] - 48.0).abs() < 1e-9 && a.indices[0] == 0.0, "{:?}", a.indices);
        // Above the floor, the MAD's scale.
        let w = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(AnomalyIndex::with_min_scale(&w, 0.01).unwrap(), AnomalyIndex::of(&w).unwrap());
    }

    #[test]
    fn median_odd_even_and_nan() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn hand_worked_example() {
        // values 10, 12, 11, 13, 2: median 11; |dev| = 1, 1, 0, 2, 9 → MAD = 1;
        // index of 2 = 9 / 1.4826 = 6.0704...; of 13 = 2 / 1.4826 = 1.3490...
        let v = [10.0, 12.0, 11.0, 13.0, 2.0];
        let a = AnomalyIndex::of(&v).unwrap();
        assert_eq!(a.median, 11.0);
        assert_eq!(a.mad, 1.0);
        assert!((a.indices[4] - 9.0 / 1.4826).abs() < 1e-12);
        assert!((a.indices[3] - 2.0 / 1.4826).abs() < 1e-12);
        assert_eq!(a.indices[2], 0.0);
        assert_eq!(a.low_outliers(&v, 2.0), vec![4]);
        assert!(a.high_outliers(&v, 2.0).is_empty());
    }

    #[test]
    fn zero_mad_gives_infinite_index_off_median() {
        let v = [0.05, 0.05, 0.05, 0.62, 0.05];
        let a = AnomalyIndex::of(&v).unwrap();
        assert_eq!(a.mad, 0.0);
        assert!(a.indices[3].is_infinite());
        assert_eq!(a.indices[0], 0.0);
        assert_eq!(a.high_outliers(&v, 2.0), vec![3]);
    }
}
