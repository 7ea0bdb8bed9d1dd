//! PGD throughput benchmark (not a test): untargeted L2 PGD on the first N test images of a dataset
//! through aegis-audit's gradient graph on ONNX Runtime. `scripts/bench_pgd.py` runs it side by side
//! with PyTorch eager doing the identical PGD on the same weights and prints the ratio.
//!
//! usage: bench_pgd MODEL DATA N STEPS BATCH THREADS [cpu|cuda]

use std::path::PathBuf;
use std::time::Instant;

use aegis_audit::attack::{Goal, Norm, PgdParams};
use aegis_audit::audit::PreparedModel;
use aegis_audit::data::{load_dataset, ImageShape, Split};
use aegis_audit::onnx::{FeatureChoice, LoadLimits};
use aegis_audit::runtime::{self, Device, SessionConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 7 {
        return Err("usage: bench_pgd MODEL DATA N STEPS BATCH THREADS [cpu|cuda]".into());
    }
    let (n, steps, batch, threads): (usize, usize, usize, usize) =
        (a[3].parse()?, a[4].parse()?, a[5].parse()?, a[6].parse()?);
    let device = if a.get(7).map(String::as_str) == Some("cuda") { Device::Cuda } else { Device::Cpu };
    runtime::init(None)?;
    let config = SessionConfig { device, intra_threads: threads };
    let mut prepared =
        PreparedModel::load(&PathBuf::from(&a[1]), &FeatureChoice::LastConv, &LoadLimits::default(), &config)?;
    let (c, h, w) = prepared.image_shape();
    let test = load_dataset(&PathBuf::from(&a[2]), Split::Test, ImageShape::new(c, h, w))?;
    let n = n.min(test.n);
    let x = test.pixels[..n * c * h * w].to_vec();
    let y = test.labels[..n].to_vec();
    let eps = 1.5f32;
    let pgd = PgdParams {
        norm: Norm::L2,
        eps,
        step: 2.5 * eps / steps as f32,
        steps,
        goal: Goal::Untargeted,
        batch_size: batch,
    }
    .check()?;
    let t0 = Instant::now();
    let r = pgd.run(&mut prepared.model, &x, &y, |_| {})?;
    let secs = t0.elapsed().as_secs_f64();
    let robust = r.success.iter().filter(|s| !**s).count() as f64 / n as f64;
    println!(
        "{{\"impl\": \"aegis-audit\", \"images\": {n}, \"steps\": {steps}, \"seconds\": {secs:.4}, \"step_images_per_s\": {:.1}, \"not_fooled\": {robust:.4}}}",
        (n * steps) as f64 / secs
    );
    Ok(())
}
