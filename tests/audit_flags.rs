//! Audit flags rejected before any attack runs: a bad `--reach-eps-sweep` list (not a number, not
//! strictly increasing, not positive) exits 2 with a message naming the flag; a parameter flag that
//! breaks its method's rules exits 2 naming the parameter. No report is written.

use std::path::PathBuf;
use std::process::Command;

fn audit_with(extra: &[&str], sarif: &std::path::Path) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_aegis-audit"))
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .args(["fixtures/zoo/robust_clean_s0.onnx", "--data", "fixtures/mnist-subset", "--method", "reach"])
        .arg("--sarif")
        .arg(sarif)
        .args(extra)
        .output()
        .unwrap();
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stderr).into())
}

#[test]
fn bad_reach_eps_sweep_exits_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let sarif = dir.path().join("report.sarif");
    for (value, why) in [
        ("1,0.5", "strictly increasing"),
        ("0.5,0.5", "strictly increasing"),
        ("abc", "'abc' is not a number"),
        ("0.25,,1", "'' is not a number"),
        ("0,1", "not finite and > 0"),
    ] {
        let (code, stderr) = audit_with(&["--reach-eps-sweep", value], &sarif);
        assert_eq!(code, 2, "{value}: {stderr}");
        assert!(stderr.contains("--reach-eps-sweep"), "{value}: flag not named: {stderr}");
        assert!(stderr.contains(why), "{value}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!sarif.exists(), "{value}: a report was written");
    }
}

#[test]
fn bad_parameter_flags_exit_2_naming_the_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let sarif = dir.path().join("report.sarif");
    for (flags, why) in [
        (&["--precondition-steps", "0"][..], "precondition.steps = 0"),
        (&["--reach-images", "5", "--reach-sweep-images", "8"][..], "reach.sweep_images_per_class = 8"),
        (&["--reach-step-factor", "0"][..], "reach.step_factor = 0"),
        (&["--nc-beta1", "1.5"][..], "neural-cleanse beta1 = 1.5"),
        (&["--nc-cost-down", "1"][..], "neural-cleanse cost_down = 1"),
    ] {
        let (code, stderr) = audit_with(flags, &sarif);
        assert_eq!(code, 2, "{flags:?}: {stderr}");
        assert!(stderr.contains(why), "{flags:?}: {stderr}");
        assert!(!sarif.exists(), "{flags:?}: a report was written");
    }
}
