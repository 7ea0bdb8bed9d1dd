//! Runs the reachability detector on every model of `fixtures/zoo/` (or the `.onnx` files given as
//! arguments) over the MNIST test subset in `fixtures/mnist-subset/`, and prints per-class rates,
//! the chosen budget, flagged classes, gradient evaluations and wall time.
//!
//! `cargo run --release --example reach_zoo [-- MODEL.onnx ...]`; `REACH_IMAGES` and
//! `REACH_SWEEP_IMAGES` override the images per class (defaults 50 and 20), `REACH_EPS` the budget
//! sweep (comma-separated), `REACH_LEVEL` the median level, `REACH_THREADS` the ONNX Runtime
//! threads (default 1).

use std::path::{Path, PathBuf};
use std::time::Instant;

use aegis_audit::attack::OnnxGradModel;
use aegis_audit::audit::gradient_graph;
use aegis_audit::data::{load_dataset, ImageShape, Split};
use aegis_audit::detect::reach::{run_reach, ReachParams};
use aegis_audit::detect::sample::HeldOut;
use aegis_audit::grad::GradSpec;
use aegis_audit::onnx::proto::ModelProto;
use aegis_audit::runtime::{self, SessionConfig};
use prost::Message;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Image input (the first graph input that is not an initializer) and logits (the graph output, or
/// the input of a final Softmax/LogSoftmax); features are not needed by reachability.
fn spec_of(model: &ModelProto) -> Option<GradSpec> {
    let g = model.graph.as_ref()?;
    let inits: Vec<&str> = g.initializer.iter().filter_map(|t| t.name.as_deref()).collect();
    let input = g.input.iter().filter_map(|v| v.name.clone()).find(|n| !inits.contains(&n.as_str()))?;
    let mut logits = g.output.first()?.name.clone()?;
    if let Some(n) = g.node.iter().find(|n| n.output.first() == Some(&logits)) {
        if matches!(n.op_type.as_deref(), Some("Softmax" | "LogSoftmax")) {
            logits = n.input[0].clone();
        }
    }
    Some(GradSpec { input, features: logits.clone(), logits })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut models: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    if models.is_empty() {
        for e in std::fs::read_dir(root.join("fixtures/zoo"))? {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "onnx") {
                models.push(p);
            }
        }
        models.sort();
    }
    runtime::init(None)?;
    let config = SessionConfig { intra_threads: env_usize("REACH_THREADS", 1), ..SessionConfig::default() };
    let data = load_dataset(&root.join("fixtures/mnist-subset"), Split::Test, ImageShape::new(1, 28, 28))?;
    let params = ReachParams {
        images_per_class: env_usize("REACH_IMAGES", 50),
        sweep_images_per_class: env_usize("REACH_SWEEP_IMAGES", 20),
        ..ReachParams::default()
    };
    let mut params = params;
    if let Ok(list) = std::env::var("REACH_EPS") {
        params.eps_sweep = list.split(',').map(str::parse).collect::<Result<_, _>>()?;
    }
    if let Some(level) = std::env::var("REACH_LEVEL").ok().and_then(|v| v.parse().ok()) {
        params.median_level = level;
    }
    println!("data: {}", data.describe());
    println!("params: {}", serde_json::to_string(&params)?);
    for path in models {
        let name = path.file_stem().unwrap_or_default().to_string_lossy().to_string();
        let model = ModelProto::decode(std::fs::read(&path)?.as_slice())?;
        let spec = spec_of(&model).ok_or_else(|| format!("{}: no image input or output", path.display()))?;
        let graph = gradient_graph(&model, &spec, &config)?;
        let mut gm = OnnxGradModel::new(&graph.encode_to_vec(), (1, 28, 28), &config)?;
        let start = Instant::now();
        let r = run_reach(&mut gm, &data.pixels, &data.labels, HeldOut::default(), &params, |_| {})?;
        let secs = start.elapsed().as_secs_f64();
        let fmt = |v: &[f64]| v.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>().join(" ");
        println!("\nmodel {name}");
        for p in &r.sweep {
            println!("  sweep eps {:.3}: median {:.2} | rates {}", p.eps, p.median_rate, fmt(&p.rates));
        }
        println!("  chosen eps {:.3} ({:?}), step {:.4}", r.eps, r.budget, r.step);
        println!("  rates   {}", fmt(&r.rates()));
        let idx: Vec<f64> = r.classes.iter().map(|c| c.anomaly_index).collect();
        println!("  indices {}", fmt(&idx));
        println!(
            "  median {:.3}, MAD {:.3}, min rate {:.3}, flagged {:?}",
            r.decision.median_rate,
            r.decision.mad,
            r.decision.min_rate,
            r.flagged()
        );
        println!("  evaluations {}, wall {secs:.1} s", r.evaluations);
    }
    Ok(())
}
