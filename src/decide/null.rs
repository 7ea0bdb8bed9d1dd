//! An empirical null distribution with an exponential upper tail: the upper-tail p-value of a
//! statistic against samples drawn under the null hypothesis (here: the classes of known-clean models).
//!
//! Inside the samples the p-value is the usual `(1 + #{x ≥ a}) / (N + 1)`, which is valid for any
//! null. Beyond the tail threshold `u` (the sample at the `1 − tail_fraction` quantile) it continues as
//! `p(u) · exp(−(a − u) / β)`, with β the mean excess of the samples above `u` (the maximum-likelihood
//! exponential fit of a peaks-over-threshold model with shape 0), so that statistics stronger than any
//! null sample still get distinct, ever smaller p-values instead of all sharing `1 / (N + 1)`.

use serde::{Deserialize, Serialize};

use super::DecideError;

/// The fewest null samples accepted.
pub const MIN_SAMPLES: usize = 20;
/// The fewest samples the exponential tail is fitted on.
pub const MIN_TAIL: usize = 5;

/// A fitted null distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmpiricalNull {
    /// The samples, ascending.
    samples: Vec<f64>,
    /// The tail threshold `u`.
    tail_start: f64,
    /// `p(u)`.
    tail_p: f64,
    /// The mean excess β above `u`.
    tail_scale: f64,
}

impl EmpiricalNull {
    /// Fits the null to `samples` (any order; every value finite), with the exponential tail over the
    /// top `tail_fraction` of them (at least `MIN_TAIL` = 5 samples).
    pub fn fit(samples: &[f64], tail_fraction: f64) -> Result<EmpiricalNull, DecideError> {
        if samples.len() < MIN_SAMPLES {
            return Err(DecideError::Null(format!(
                "a null distribution needs at least {MIN_SAMPLES} samples, got {}",
                samples.len()
            )));
        }
        if let Some(bad) = samples.iter().find(|v| !v.is_finite()) {
            return Err(DecideError::Null(format!("null sample {bad} is not finite")));
        }
        if !(tail_fraction > 0.0 && tail_fraction < 1.0) {
            return Err(DecideError::Null(format!("tail fraction {tail_fraction} must be in (0, 1)")));
        }
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let in_tail = ((n as f64 * tail_fraction).round() as usize).clamp(MIN_TAIL, n - 1);
        let tail_start = s[n - in_tail - 1];
        let excess: Vec<f64> = s.iter().filter(|&&v| v > tail_start).map(|v| v - tail_start).collect();
        // All tail samples equal to the threshold: no spread to fit; a tiny scale keeps p falling.
        let mean_excess = if excess.is_empty() { 0.0 } else { excess.iter().sum::<f64>() / excess.len() as f64 };
        let spread = (s[n - 1] - s[0]).abs().max(1e-12);
        let tail_scale = mean_excess.max(1e-6 * spread);
        let tail_p = count_at_least(&s, tail_start) as f64 + 1.0;
        let tail_p = tail_p / (n as f64 + 1.0);
        Ok(EmpiricalNull { samples: s, tail_start, tail_p, tail_scale })
    }

    /// The upper-tail p-value of `a`: the probability, under the null, of a statistic at least as
    /// large. `+∞` gives 0, `−∞` and NaN give 1.
    pub fn p_value(&self, a: f64) -> f64 {
        if a.is_nan() || a == f64::NEG_INFINITY {
            return 1.0;
        }
        if a > self.tail_start {
            return self.tail_p * (-(a - self.tail_start) / self.tail_scale).exp();
        }
        (count_at_least(&self.samples, a) as f64 + 1.0) / (self.samples.len() as f64 + 1.0)
    }

    /// The smallest statistic whose p-value is at most `p` (for `p` in (0, 1)).
    pub fn quantile_for(&self, p: f64) -> f64 {
        if p <= self.tail_p {
            return self.tail_start + self.tail_scale * (self.tail_p / p).ln();
        }
        // Inside the samples: the smallest sample a with (1 + #{x ≥ a}) / (N + 1) ≤ p.
        let n = self.samples.len() as f64;
        let allowed = (p * (n + 1.0) - 1.0).floor().max(0.0) as usize; // #{x ≥ a} ≤ allowed
        let idx = self.samples.len().saturating_sub(allowed);
        // a just above the (allowed + 1)-th largest sample.
        let below = self.samples[idx.saturating_sub(1)];
        next_up(below)
    }

    /// The samples, ascending.
    pub fn samples(&self) -> &[f64] {
        &self.samples
    }

    /// The tail threshold, its p-value and the exponential scale.
    pub fn tail(&self) -> (f64, f64, f64) {
        (self.tail_start, self.tail_p, self.tail_scale)
    }
}

/// `#{x ∈ sorted : x ≥ a}`.
fn count_at_least(sorted: &[f64], a: f64) -> usize {
    sorted.len() - sorted.partition_point(|&x| x < a)
}

/// The next representable float above `x` (finite inputs).
fn next_up(x: f64) -> f64 {
    if x == 0.0 {
        return f64::from_bits(1);
    }
    let bits = x.to_bits();
    f64::from_bits(if x > 0.0 { bits + 1 } else { bits - 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn null_1_to_20() -> EmpiricalNull {
        let s: Vec<f64> = (1..=20).rev().map(f64::from).collect();
        EmpiricalNull::fit(&s, 0.25).unwrap()
    }

    #[test]
    fn empirical_part_is_the_plus_one_estimate() {
        let n = null_1_to_20();
        // 20 samples 1..20; tail over the top 5 (16..20), threshold u = 15.
        assert_eq!(n.tail().0, 15.0);
        // p(u) = (1 + #{x ≥ 15}) / 21 = 7 / 21.
        assert!((n.tail().1 - 7.0 / 21.0).abs() < 1e-12, "{:?}", n.tail());
        assert!((n.p_value(1.0) - 21.0 / 21.0).abs() < 1e-12);
        assert!((n.p_value(10.0) - 12.0 / 21.0).abs() < 1e-12);
        assert!((n.p_value(10.5) - 11.0 / 21.0).abs() < 1e-12);
        assert_eq!(n.p_value(-5.0), 1.0);
        assert_eq!(n.p_value(f64::NAN), 1.0);
    }

    #[test]
    fn tail_is_exponential_with_the_mean_excess() {
        let n = null_1_to_20();
        // Excesses over 15: 1..5, mean 3.
        assert_eq!(n.tail().2, 3.0);
        let p_u = 7.0 / 21.0;
        assert!((n.p_value(18.0) - p_u * (-1.0f64).exp()).abs() < 1e-12);
        assert!((n.p_value(30.0) - p_u * (-5.0f64).exp()).abs() < 1e-12);
        assert_eq!(n.p_value(f64::INFINITY), 0.0);
        // Monotone non-increasing across the threshold.
        let mut last = 1.0;
        for i in 0..400 {
            let p = n.p_value(i as f64 * 0.1);
            assert!(p <= last + 1e-15, "not monotone at {}", i as f64 * 0.1);
            last = p;
        }
    }

    #[test]
    fn quantile_inverts_the_p_value() {
        let n = null_1_to_20();
        for p in [0.2, 0.05, 0.01, 1e-4] {
            let t = n.quantile_for(p);
            assert!(n.p_value(t) <= p + 1e-12, "p({t}) = {} > {p}", n.p_value(t));
            assert!(n.p_value(t - 1e-6) > p, "t = {t} is not the smallest");
        }
        // Inside the samples: p ≤ 0.5 needs #{x ≥ a} ≤ 9.5 → 9: a just above 11.
        let t = n.quantile_for(0.5);
        assert!(t > 11.0 && t < 11.0 + 1e-9, "{t}");
    }

    #[test]
    fn fit_refuses_small_or_non_finite_samples() {
        assert!(EmpiricalNull::fit(&[1.0; 5], 0.1).unwrap_err().to_string().contains("at least 20"));
        let mut s = vec![1.0; 30];
        s[3] = f64::INFINITY;
        assert!(EmpiricalNull::fit(&s, 0.1).unwrap_err().to_string().contains("not finite"));
        assert!(EmpiricalNull::fit(&[1.0; 30], 1.5).is_err());
        // A constant null still gives a usable, falling tail.
        let c = EmpiricalNull::fit(&[2.0; 30], 0.1).unwrap();
        assert!(c.p_value(2.0) > 0.9 && c.p_value(2.5) < 1e-10);
    }
}
