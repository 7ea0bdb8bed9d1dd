//! Outlier scores across classes by the median absolute deviation (MAD), as Neural Cleanse's
//! anomaly index: `|x − median| / (1.4826 · MAD)`, where 1.4826 makes the MAD a consistent estimator
//! of the standard deviation for normal data.
//!
//! A positive statistic whose clean classes spread over a range of ratios (a reversed trigger's norm,
//! a translation's length) is compared on the log scale ([`AnomalyIndex::on_log_scale`]): the index
//! then measures how many robust standard deviations of `ln x` a class lies from the others, so that
//! a norm of 6.5 among clean norms of 23 to 160 is an outlier whatever the spread of the clean norms
//! in their own units, and a statistic and any multiple of it give the same indices.

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

    /// [`AnomalyIndex::of`] on `ln x` (values at or below 1e-12 count as 1e-12, for a statistic that
    /// can round to 0): `median` is reported on the values' own scale (`exp` of the median log, the
    /// geometric mean of the two middle values for an even count) and `mad` on the log scale. The
    /// order of the values is unchanged, so [`AnomalyIndex::low_outliers`] and
    /// [`AnomalyIndex::high_outliers`] take the values themselves. `None` for an empty input or one
    /// holding NaN.
    pub fn on_log_scale(values: &[f64]) -> Option<AnomalyIndex> {
        if values.iter().any(|v| v.is_nan()) {
            return None;
        }
        let logs: Vec<f64> = values.iter().map(|v| v.max(1e-12).ln()).collect();
        let a = AnomalyIndex::of(&logs)?;
        Some(AnomalyIndex { median: a.median.exp(), ..a })
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
    fn the_log_scale_makes_a_small_norm_among_widely_spread_ones_an_outlier() {
        // The Neural Cleanse example: the target's reversed mask 6.5, nine clean classes from
        // 23 to 160. On the raw norms: median 76, MAD 38, index (76 − 6.5) / (1.4826 · 38) = 1.23, below
        // the rule's 2. On ln: median (ln 68 + ln 84) / 2 = 4.3252, |deviations| of the clean classes
        // 0.106 .. 1.190 and of 6.5 2.4534; MAD 0.4767 (the mean of 0.4110 and 0.5424), index
        // 2.4534 / (1.4826 · 0.4767) = 3.47.
        let norms = [23.0, 38.0, 53.0, 68.0, 84.0, 99.0, 114.0, 130.0, 160.0, 6.5];
        let raw = AnomalyIndex::of(&norms).unwrap();
        assert_eq!(raw.median, 76.0);
        assert_eq!(raw.mad, 38.0);
        assert!((raw.indices[9] - 69.5 / (1.4826 * 38.0)).abs() < 1e-12);
        assert!(raw.low_outliers(&norms, 2.0).is_empty());
        let log = AnomalyIndex::on_log_scale(&norms).unwrap();
        let median_log = (68f64.ln() + 84f64.ln()) / 2.0;
        assert!((log.median - median_log.exp()).abs() < 1e-9, "{}", log.median);
        let mut dev: Vec<f64> = norms.iter().map(|v: &f64| (v.ln() - median_log).abs()).collect();
        let target_dev = dev[9];
        dev.sort_by(f64::total_cmp);
        let mad = (dev[4] + dev[5]) / 2.0;
        assert!((log.mad - mad).abs() < 1e-12 && (mad - 0.4767).abs() < 1e-4, "{mad}");
        let want = target_dev / (1.4826 * mad);
        assert!((log.indices[9] - want).abs() < 1e-12 && (want - 3.4713).abs() < 1e-4, "{want}");
        assert_eq!(log.low_outliers(&norms, 2.0), vec![9]);
        // Scale-free: the same norms in other units give the same indices.
        let scaled: Vec<f64> = norms.iter().map(|v| v * 37.5).collect();
        let s = AnomalyIndex::on_log_scale(&scaled).unwrap();
        for (a, b) in s.indices.iter().zip(&log.indices) {
            assert!((a - b).abs() < 1e-9);
        }
        assert_eq!(AnomalyIndex::on_log_scale(&[1.0, f64::NAN]), None);
        assert_eq!(AnomalyIndex::on_log_scale(&[]), None);
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
