//! Neural Cleanse on the zoo models (`fixtures/zoo/NAME.onnx`) with images from
//! `fixtures/mnist-subset/` (test split): prints per-class mask norms, anomaly indices, attack
//! success, the flagged classes and the wall time. Ignored by default (about 20 s of CPU per model
//! with the default parameters); run with
//! `cargo test --test detect_neural_cleanse_zoo -- --ignored --nocapture`, choosing models with
//! `NC_MODELS=a,b` (default `standard_clean,standard_localised`) and overriding parameters with
//! `NC_EPOCHS`, `NC_IMAGES`, `NC_BATCH`, `NC_SEED`, `NC_THREADS`.
//! Asserts the claims: `standard_localised` gets its trigger's target class 7 flagged and
//! `standard_clean` gets nothing flagged.

use std::path::Path;
use std::time::Instant;

use aegis_audit::analysis::FeatureChoice;
use aegis_audit::audit::PreparedModel;
use aegis_audit::data::{load_dataset, ImageShape, Split};
use aegis_audit::detect::neural_cleanse::{run_neural_cleanse, NeuralCleanseParams};
use aegis_audit::onnx::LoadLimits;
use aegis_audit::runtime::{Device, SessionConfig};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
#[ignore = "minutes of CPU: run on demand with --ignored"]
fn neural_cleanse_on_zoo_models() {
    let mut params = NeuralCleanseParams::default();
    params.epochs = env_or("NC_EPOCHS", params.epochs);
    params.images = env_or("NC_IMAGES", params.images);
    params.batch_size = env_or("NC_BATCH", params.batch_size);
    params.seed = env_or("NC_SEED", 0) as u64;
    let models = std::env::var("NC_MODELS").unwrap_or_else(|_| "standard_clean,standard_localised".into());
    let config = SessionConfig { device: Device::Cpu, intra_threads: env_or("NC_THREADS", 1) };
    let data = load_dataset(Path::new("fixtures/mnist-subset"), Split::Test, ImageShape::new(1, 28, 28)).unwrap();
    println!("params: {}", serde_json::to_string(&params).unwrap());
    for name in models.split(',') {
        let path = format!("fixtures/zoo/{name}.onnx");
        let mut prepared =
            PreparedModel::load(Path::new(&path), &FeatureChoice::default(), &LoadLimits::default(), &config).unwrap();
        let start = Instant::now();
        let r = run_neural_cleanse(&mut prepared.model, &data.pixels, &data.labels, &params, |_, _| {}).unwrap();
        let secs = start.elapsed().as_secs_f64();
        println!("== {name}: {} images, {} gradient evaluations, {secs:.1} s", r.images_used, r.gradient_evaluations);
        println!("class  |m|_1    anomaly  success  reached  epochs  final_cost");
        for t in &r.classes {
            println!(
                "{:>5}  {:>7.2}  {:>7.3}  {:>7.3}  {:>7}  {:>6}  {:.2e}",
                t.class, t.mask_l1, t.anomaly_index, t.success_rate, t.reached_target, t.epochs_run, t.final_cost
            );
        }
        println!("median {:.2}, MAD {:.2}, flagged {:?}", r.median_l1, r.mad_l1, r.flagged);
        assert_eq!(r.classes.len(), 10);
        if name == "standard_localised" {
            assert!(r.flagged.contains(&7), "class 7 not flagged: {:?}", r.flagged);
        }
    }
}
