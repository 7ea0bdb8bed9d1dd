//! The rules a detector's parameters are checked by, and their one message: `{section}{name} = {value}:
//! {rule}` (`reach.steps = 0: must be >= 1`).

use std::fmt::Display;

use super::DetectError;

/// The checks of one parameter section, whose messages start with its prefix (`reach.`).
pub(crate) struct Rules(pub &'static str);

impl Rules {
    /// `Ok` when `ok`, else the message for `name` = `value` and the rule it breaks.
    pub fn require(&self, ok: bool, name: &str, value: impl Display, rule: &str) -> Result<(), DetectError> {
        if ok {
            Ok(())
        } else {
            Err(DetectError::InvalidParam(format!("{}{name} = {value}: {rule}", self.0)))
        }
    }

    /// A count of at least one.
    pub fn count(&self, name: &str, value: usize) -> Result<(), DetectError> {
        self.require(value >= 1, name, value, "must be >= 1")
    }

    /// A number that is finite and above 0.
    pub fn positive<T: Copy + Into<f64> + Display>(&self, name: &str, value: T) -> Result<(), DetectError> {
        let v: f64 = value.into();
        self.require(v.is_finite() && v > 0.0, name, value, "must be finite and > 0")
    }

    /// A finite number of at least `min`.
    pub fn at_least(&self, name: &str, value: f64, min: f64, rule: &str) -> Result<(), DetectError> {
        self.require(value.is_finite() && value >= min, name, value, rule)
    }

    /// A ladder of L2 budgets: at least one, each finite and above 0, strictly increasing.
    pub fn ladder(&self, name: &str, values: &[f32]) -> Result<(), DetectError> {
        self.require(!values.is_empty(), name, "[]", "must hold at least one budget")?;
        if let Some(e) = values.iter().find(|e| !(e.is_finite() && **e > 0.0)) {
            return self.require(false, name, format!("{values:?}"), &format!("budget {e} is not finite and > 0"));
        }
        self.require(values.windows(2).all(|w| w[1] > w[0]), name, format!("{values:?}"), "must be strictly increasing")
    }
}
