//! PGD throughput benchmark (not a test): untargeted L2 PGD (ε = 1.5, step 2.5·ε/steps, no random
//! start) on the first N test images of a dataset through aegis-audit's engine on ONNX Runtime.
//! `research/bench_pgd.py` runs it side by side with PyTorch doing the identical PGD on the same
//! weights and prints the ratios.
//!
//! usage: bench_pgd MODEL DATA N STEPS BATCH THREADS [cpu|cuda] [--engine fused|eval] [--workers W]
//!        [--warmup-only]
//!
//! `--engine eval` runs the steps as gradient evaluations with the step on the Rust side (the engine
//! before the step graph), to compare the two. `--workers` sets the step workers (default: one per
//! thread, each session on one thread; `--workers 1`: one session with THREADS intra-op threads).
//! The sessions are created and warmed up (two steps on the first batch) before the timed run;
//! `--warmup-only` stops there. Prints one JSON line.

use std::path::PathBuf;
use std::time::Instant;

use aegis_audit::analysis::FeatureChoice;
use aegis_audit::attack::{default_workers, Goal, Norm, PgdParams};
use aegis_audit::audit::PreparedModel;
use aegis_audit::data::{load_dataset, ImageShape, Split};
use aegis_audit::onnx::LoadLimits;
use aegis_audit::runtime::{self, Device, SessionConfig};

const USAGE: &str = "usage: bench_pgd MODEL DATA N STEPS BATCH THREADS [cpu|cuda] [--engine fused|eval] \
                     [--workers W] [--warmup-only]";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let all: Vec<String> = std::env::args().skip(1).collect();
    let mut positional = Vec::new();
    let (mut fused, mut warmup_only, mut workers) = (true, false, None);
    let mut it = all.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--engine" => match it.next().map(String::as_str) {
                Some("fused") => fused = true,
                Some("eval") => fused = false,
                _ => return Err(USAGE.into()),
            },
            "--warmup-only" => warmup_only = true,
            "--workers" => workers = Some(it.next().ok_or(USAGE)?.parse::<usize>()?),
            _ => positional.push(arg.clone()),
        }
    }
    if positional.len() < 6 {
        return Err(USAGE.into());
    }
    let a = &positional;
    let (n, steps, batch, threads): (usize, usize, usize, usize) =
        (a[2].parse()?, a[3].parse()?, a[4].parse()?, a[5].parse()?);
    let device = if a.get(6).map(String::as_str) == Some("cuda") { Device::Cuda } else { Device::Cpu };
    runtime::init(None)?;
    let config = SessionConfig { device, intra_threads: threads };
    let mut prepared =
        PreparedModel::load(&PathBuf::from(&a[0]), &FeatureChoice::LastConv, &LoadLimits::default(), &config)?;
    prepared.model.set_fused_steps(fused);
    let workers = workers.unwrap_or_else(|| default_workers(&config));
    prepared.model.set_step_workers(workers);
    let (c, h, w) = prepared.image_shape();
    let dim = c * h * w;
    let test = load_dataset(&PathBuf::from(&a[1]), Split::Test, ImageShape::new(c, h, w))?;
    let n = n.min(test.n);
    let x = test.pixels[..n * dim].to_vec();
    let y = test.labels[..n].to_vec();
    let eps = 1.5f32;
    let params = |steps| PgdParams {
        norm: Norm::L2,
        eps,
        step: 2.5 * eps / steps as f32,
        steps,
        goal: Goal::Untargeted,
        batch_size: batch,
    };
    let warm = batch.min(n);
    params(2).check()?.run(&mut prepared.model, &x[..warm * dim], &y[..warm], |_| {})?;
    if warmup_only {
        println!("{{\"impl\": \"aegis-audit\", \"warmup_only\": true}}");
        return Ok(());
    }
    let pgd = params(steps).check()?;
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let r = pgd.run(&mut prepared.model, &x, &y, |_| {})?;
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds().zip(cpu0).map_or(f64::NAN, |(b, a)| b - a);
    let not_fooled = r.success.iter().filter(|s| !**s).count() as f64 / n as f64;
    let mean_l2 = (0..n)
        .map(|i| {
            let (a, b) = (&r.images[i * dim..(i + 1) * dim], &x[i * dim..(i + 1) * dim]);
            a.iter().zip(b).map(|(p, q)| ((p - q) as f64).powi(2)).sum::<f64>().sqrt()
        })
        .sum::<f64>()
        / n as f64;
    println!(
        "{{\"impl\": \"aegis-audit\", \"engine\": \"{}\", \"workers\": {workers}, \"images\": {n}, \"steps\": {steps}, \"seconds\": {secs:.4}, \"cpu_seconds\": {cpu:.2}, \
         \"step_images_per_s\": {:.1}, \"not_fooled\": {not_fooled:.4}, \"mean_l2\": {mean_l2:.4}}}",
        if fused { "fused" } else { "eval" },
        (n * steps) as f64 / secs
    );
    Ok(())
}

/// User + system CPU time of the whole process (all threads) so far, from `/proc/self/stat` (Linux;
/// `None` elsewhere): a measure that waiting for a loaded machine's cores does not inflate.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15 (1-based).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}
