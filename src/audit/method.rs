//! Choosing the method from the request and the robustness precondition's result, with the reason in
//! words, and whether the chosen method applies to the model. `auto` is the fused decision, which
//! applies to every model with a hidden layer: the precondition is reported beside it, not a switch.

use super::options::MethodChoice;
use crate::detect::precondition::PreconditionResult;
use crate::report::Method;

/// The detector that runs, why, and whether it applies.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodDecision {
    /// The detector.
    pub method: Method,
    /// Why it was chosen (with the precondition's numbers where it decided).
    pub reason: String,
    /// False when the method needs a robust model and the precondition found the model not robust, or
    /// when the fused decision meets a linear model of the image: the detector does not run and the
    /// verdict is "not applicable".
    pub applicable: bool,
}

/// Chooses the method: `auto` is the fused decision over every detector of the fused set, whatever the
/// precondition measured, except on a `linear` model of the image (no convolution, no hidden layer),
/// where it does not apply: its detectors compare how easily images are pushed toward each class, a
/// linear model lets them be pushed toward every class alike, and backdoored linear models were passed
/// as clean (docs/limits.md); an explicit AEGIS or reach on a model that failed the precondition does
/// not apply; Neural Cleanse and universal reach need no precondition.
pub fn choose(requested: MethodChoice, precondition: Option<&PreconditionResult>, linear: bool) -> MethodDecision {
    let describe = |p: &PreconditionResult, verb: &str| {
        format!(
            "adversarial accuracy {:.3} {verb} {:.3} at L2 ε = {}",
            p.adv_accuracy, p.params.min_adv_accuracy, p.params.eps
        )
    };
    let (method, reason) = match (requested, precondition) {
        (MethodChoice::NeuralCleanse, _) => (Method::NeuralCleanse, "--method neural-cleanse".to_string()),
        (MethodChoice::Aegis, Some(p)) if !p.passed => (
            Method::Aegis,
            format!("--method aegis, but {}: the model is not robust, so AEGIS does not apply", describe(p, "<")),
        ),
        (MethodChoice::Aegis, _) => (Method::Aegis, "--method aegis".to_string()),
        (MethodChoice::Reach, Some(p)) if !p.passed => (
            Method::Reach,
            format!("--method reach, but {}: the model is not robust, so reach does not apply", describe(p, "<")),
        ),
        (MethodChoice::Reach, _) => (Method::Reach, "--method reach".to_string()),
        (MethodChoice::Universal, _) => (Method::Universal, "--method universal".to_string()),
        (MethodChoice::Auto, Some(p)) => (
            Method::Fused,
            format!(
                "--method auto: the fused, calibrated decision over every detector; the robustness check ({}) \
                 is reported, not a switch",
                describe(p, if p.passed { "≥" } else { "<" })
            ),
        ),
        (MethodChoice::Auto, None) => (
            Method::Fused,
            "--method auto: the fused, calibrated decision over every detector (robustness check skipped)".to_string(),
        ),
    };
    let reason = if linear && method == Method::Fused {
        "--method auto, but the model is linear in the image (no convolution, no hidden layer), where the fused \
         decision is not validated (backdoored linear models were passed as clean: docs/limits.md), so it does \
         not apply"
            .to_string()
    } else {
        reason
    };
    let robust = precondition.is_none_or(|p| p.passed);
    MethodDecision { method, reason, applicable: method.applies(robust, linear) }
}

#[cfg(test)]
mod tests {
    use super::{choose, MethodChoice};
    use crate::detect::precondition::{PreconditionParams, PreconditionResult};
    use crate::report::Method;

    fn result(passed: bool) -> PreconditionResult {
        let params = PreconditionParams { eps: 1.5, steps: 20, step: None, images: 100, min_adv_accuracy: 0.5 };
        let adv_accuracy = if passed { 0.7 } else { 0.2 };
        PreconditionResult { params, step: 0.1875, images: 100, clean_accuracy: 0.99, adv_accuracy, passed }
    }

    #[test]
    fn auto_is_fused_whatever_the_precondition_and_explicit_methods_may_not_apply() {
        let d = choose(MethodChoice::Auto, Some(&result(true)), false);
        assert_eq!((d.method, d.applicable), (Method::Fused, true));
        assert!(d.reason.contains("0.700 ≥ 0.500") && d.reason.contains("not a switch"), "{}", d.reason);
        let d = choose(MethodChoice::Auto, Some(&result(false)), false);
        assert_eq!((d.method, d.applicable), (Method::Fused, true));
        assert!(d.reason.contains("0.200 < 0.500"), "{}", d.reason);
        assert_eq!(choose(MethodChoice::Auto, None, false).method, Method::Fused);
        let d = choose(MethodChoice::Aegis, Some(&result(false)), false);
        assert_eq!((d.method, d.applicable), (Method::Aegis, false));
        let d = choose(MethodChoice::Reach, Some(&result(false)), false);
        assert_eq!((d.method, d.applicable), (Method::Reach, false));
        assert!(choose(MethodChoice::Aegis, None, false).applicable);
        assert_eq!(choose(MethodChoice::NeuralCleanse, None, false).method, Method::NeuralCleanse);
        let d = choose(MethodChoice::Universal, Some(&result(false)), false);
        assert_eq!((d.method, d.applicable), (Method::Universal, true));
    }

    #[test]
    fn the_fused_decision_does_not_apply_to_a_linear_model_an_explicit_method_runs() {
        let d = choose(MethodChoice::Auto, Some(&result(true)), true);
        assert_eq!((d.method, d.applicable), (Method::Fused, false));
        assert!(d.reason.contains("linear in the image") && d.reason.contains("does not apply"), "{}", d.reason);
        assert!(!choose(MethodChoice::Auto, None, true).applicable);
        let d = choose(MethodChoice::NeuralCleanse, None, true);
        assert_eq!((d.method, d.applicable), (Method::NeuralCleanse, true));
    }
}
