//! Runs the universal-reach detector on every model of `fixtures/zoo/` and `fixtures/validation/` (or
//! the `.onnx` files given as arguments) over the test split of `fixtures/mnist-subset/` (or
//! `UNIV_DATA`), and prints per-class budgets, anomaly indices, flagged classes, gradient evaluations
//! and wall time, one JSON line per model.
//!
//! `cargo run --release --example universal_zoo [-- MODEL.onnx ...]`; `UNIV_IMAGES`, `UNIV_STEPS`
//! (steps per level) and `UNIV_THREADS` (ONNX Runtime threads, default 1) override the defaults.

use std::path::{Path, PathBuf};
use std::time::Instant;

use aegis_audit::analysis::FeatureChoice;
use aegis_audit::audit::PreparedModel;
use aegis_audit::data::{load_dataset, ImageShape, Split};
use aegis_audit::detect::sample::HeldOut;
use aegis_audit::detect::universal::{run_universal, UniversalParams};
use aegis_audit::onnx::LoadLimits;
use aegis_audit::runtime::SessionConfig;
use serde_json::json;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut models: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    if models.is_empty() {
        for dir in ["fixtures/zoo", "fixtures/validation"] {
            for e in std::fs::read_dir(root.join(dir))? {
                let p = e?.path();
                if p.extension().is_some_and(|x| x == "onnx") {
                    models.push(p);
                }
            }
        }
        models.sort();
    }
    let config = SessionConfig { intra_threads: env_usize("UNIV_THREADS", 1), ..SessionConfig::default() };
    let data_dir = std::env::var("UNIV_DATA").map(PathBuf::from).unwrap_or(root.join("fixtures/mnist-subset"));
    let data = load_dataset(&data_dir, Split::Test, ImageShape::new(1, 28, 28))?;
    let params = UniversalParams {
        images: env_usize("UNIV_IMAGES", 100),
        steps_per_level: env_usize("UNIV_STEPS", 8),
        ..UniversalParams::default()
    };
    for path in models {
        let name = path.file_stem().unwrap_or_default().to_string_lossy().to_string();
        let mut prepared = PreparedModel::load(&path, &FeatureChoice::default(), &LoadLimits::default(), &config)?;
        let start = Instant::now();
        let r = run_universal(&mut prepared.model, &data.pixels, &data.labels, HeldOut::default(), &params, |_| {})?;
        let secs = start.elapsed().as_secs_f64();
        let budgets: Vec<f64> = r.classes.iter().map(|c| (c.budget * 1000.0).round() / 1000.0).collect();
        let indices: Vec<f64> = r.classes.iter().map(|c| (c.anomaly_index * 100.0).round() / 100.0).collect();
        println!(
            "{}",
            json!({"model": name, "budgets": budgets, "indices": indices, "flagged": r.flagged,
                   "evaluations": r.evaluations, "seconds": (secs * 10.0).round() / 10.0})
        );
    }
    Ok(())
}
