//! `--time-budget` (issue 33 item 4) on a small model in a reduced configuration: a budget that pays
//! for every class changes nothing; a model of ten classes is not shortened below its ten (the
//! calibration's class count), and says so; bad budgets are refused. The shortlist a budget buys on a
//! model of many classes: tests/audit_derived_preset.rs; how near the budget audits end:
//! docs/scaling.md.

mod cli_support;

use cli_support::{aegis, assert_refused, stderr};
use serde_json::Value;

const MODEL: &str = "fixtures/zoo/robust_clean_s0.onnx";

/// The fused audit with fewer seeds, steps and epochs than the preset (seconds, not minutes).
const REDUCED: &[&str] = &[
    "--data",
    "fixtures/mnist-subset",
    "--seeds-per-class",
    "20",
    "--steps",
    "5",
    "--precondition-images",
    "50",
    "--precondition-steps",
    "5",
    "--nc-images",
    "50",
    "--nc-epochs",
    "5",
    "--threads",
    "1",
];

/// The JSON report and stderr of the reduced audit with `--time-budget seconds`.
fn audit(seconds: f64) -> (Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let budget = format!("{seconds}");
    let mut args = vec![MODEL, "--json", json.to_str().unwrap(), "--time-budget", &budget];
    args.extend_from_slice(REDUCED);
    let o = aegis(&args);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    (serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap(), stderr(&o))
}

#[test]
fn a_budget_is_planned_for_on_a_model_of_ten_classes() {
    // A budget far above the audit's cost: every class gets the full effort, as without a budget.
    let (full, err) = audit(3600.0);
    assert_eq!(full["effort"]["mode"], "full", "{}", full["effort"]);
    assert_eq!(full["classes"].as_array().unwrap().len(), 10);
    assert_eq!(full["parameters"]["time_budget"], 3600.0);
    // Progress on stderr: the phase, the classes open and the time left.
    assert!(err.contains("universal: 10 classes open") && err.contains("of the 3600 s budget left"), "{err}");
    assert!(!full["notifications"].to_string().contains("time budget"), "{}", full["notifications"]);

    // A budget below the full audit's cost: 10 classes are the fewest a shortlist holds (the
    // calibration's class count), so every class still gets the full effort and the report says the
    // budget cannot be met, then that it was overrun.
    let (short, _) = audit(0.5);
    assert_eq!(short["effort"]["mode"], "full", "{}", short["effort"]);
    assert_eq!(short["classes"].as_array().unwrap().len(), 10);
    let notes = short["notifications"].to_string();
    assert!(notes.contains("no more than the 10 a shortlist holds"), "{notes}");
    assert!(notes.contains("time budget 0.5 s: the full audit is estimated at"), "{notes}");
    assert!(notes.contains("over its time budget of 0.5 s"), "{notes}");
    // The overrun is the one the plan announced, not a short estimate.
    assert!(notes.contains("as planned above") && !notes.contains("was short"), "{notes}");
}

#[test]
fn bad_budgets_and_conflicting_flags_are_refused() {
    for (budget, needle) in [
        ("0", "--time-budget 0: must be a number of seconds above 0"),
        ("-5", "--time-budget -5: must be"),
        ("NaN", "--time-budget NaN: must be"),
        ("1e9", "at most 604800"),
    ] {
        let flag = format!("--time-budget={budget}");
        let o = aegis(&[MODEL, "--data", "fixtures/mnist-subset", &flag]);
        assert_refused(&o, &[needle]);
    }
    let o = aegis(&[MODEL, "--data", "fixtures/mnist-subset", "--time-budget", "60", "--effort", "full"]);
    assert_refused(&o, &["--time-budget with --effort full"]);
    let o = aegis(&[MODEL, "--data", "fixtures/mnist-subset", "--time-budget", "60", "--method", "aegis"]);
    assert_refused(&o, &["--time-budget plans the fused decision", "not --method aegis"]);
}
