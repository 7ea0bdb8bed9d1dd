//! The memory budget (`--memory-limit`) through the binary: a limit that admits only a few images per
//! evaluation splits every detector's batches into pieces and changes no number of the audit; the
//! report gives the estimate, the cap and the peak resident memory; a limit below one image, or a size
//! that is not one, is refused with exit 2 before anything is written.

mod cli_support;

use std::path::Path;

use cli_support::{aegis, assert_refused, read_json, stderr};
use serde_json::Value;

/// Every detector in a few seconds, on a robust zoo model.
const REDUCED: &[&str] = &[
    "fixtures/zoo/robust_localised.onnx",
    "--data",
    "fixtures/mnist-subset",
    "--quiet",
    "--threads",
    "2",
    "--seeds-per-class",
    "12",
    "--steps",
    "8",
    "--precondition-images",
    "30",
    "--precondition-steps",
    "5",
    "--nc-images",
    "20",
    "--nc-epochs",
    "2",
    "--reach-images",
    "8",
    "--reach-sweep-images",
    "4",
    "--reach-steps",
    "5",
    "--universal-images",
    "20",
    "--universal-steps",
    "2",
];

fn audit(json: &Path, extra: &[&str]) -> Value {
    let mut args = REDUCED.to_vec();
    args.extend_from_slice(&["--json", json.to_str().unwrap()]);
    args.extend_from_slice(extra);
    let o = aegis(&args);
    let code = o.status.code().unwrap();
    assert!(code == 0 || code == 1, "exit {code}: {}", String::from_utf8_lossy(&o.stderr));
    read_json(json)
}

/// Each detector's per-class anomaly indices, in report order.
fn indices(report: &Value) -> Vec<(String, Vec<f64>)> {
    report["detectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let v = d["classes"].as_array().unwrap().iter().map(|c| c["anomaly_index"].as_f64().unwrap()).collect();
            (d["name"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

#[test]
fn a_small_limit_splits_evaluations_and_changes_no_number() {
    let dir = tempfile::tempdir().unwrap();
    let whole = audit(&dir.path().join("whole.json"), &[]);
    let m = &whole["memory"];
    assert_eq!(m["limit_bytes"], 4u64 << 30, "{m}");
    assert_eq!(whole["parameters"]["memory_limit"], 4u64 << 30);
    let per_image = m["bytes_per_image"].as_u64().unwrap();
    let sessions = m["sessions"].as_u64().unwrap();
    assert_eq!(sessions, 5, "the gradient session, and two evaluation and two step workers (--threads 2)");
    // The zoo CNN's activations: a few thousand values per image, 8 bytes each.
    assert_eq!(per_image, 8 * m["activations_per_image"].as_u64().unwrap());
    assert!((1_000..1_000_000).contains(&per_image), "{m}");
    assert_eq!(m["images_per_evaluation"], 100, "the default batch fits: {m}");
    assert!(m["peak_resident_bytes"].as_u64().unwrap() > 10 << 20, "{m}");

    // Room for 3 images in each session: every batch runs in pieces of at most 3.
    let limit = (per_image * sessions * 3 + per_image / 2).to_string();
    let pieces = audit(&dir.path().join("pieces.json"), &["--memory-limit", &limit]);
    assert_eq!(pieces["memory"]["images_per_evaluation"], 3, "{}", pieces["memory"]);
    assert_eq!(pieces["parameters"]["memory_limit"].as_u64().unwrap().to_string(), limit);
    assert_eq!(pieces["verdict"], whole["verdict"]);
    for ((name, a), (other, b)) in indices(&whole).iter().zip(indices(&pieces)) {
        assert_eq!(name, &other);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-3 * (1.0 + x.abs()), "{name}: {a:?} vs {b:?}");
        }
    }
    let detectors = |r: &Value| -> Vec<u64> {
        r["detectors"].as_array().unwrap().iter().map(|d| d["gradient_evaluations"].as_u64().unwrap()).collect()
    };
    assert_eq!(detectors(&whole), detectors(&pieces), "the same images were evaluated");
}

#[test]
fn a_limit_below_one_image_and_a_bad_size_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let mut args = REDUCED.to_vec();
    args.extend_from_slice(&["--json", json.to_str().unwrap(), "--memory-limit", "1KB"]);
    assert_refused(&aegis(&args), &["--memory-limit 1000 B is too small for this model", "give at least"]);
    assert!(!json.exists(), "no report after a refusal");

    for bad in ["4 parsecs", "0", "-1G"] {
        let flag = format!("--memory-limit={bad}");
        let o = aegis(&["fixtures/zoo/robust_localised.onnx", "--data", "fixtures/mnist-subset", &flag]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{bad}: {err}");
        assert!(err.contains("--memory-limit"), "{bad}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
