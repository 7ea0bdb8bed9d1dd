//! Scaling benchmark of the model-side work on long chains: a Relu followed by `n` Identity nodes
//! before a Flatten → Gemm head, for several `n`. Times loading (decode + validation), analysis
//! (`inspect`: image input, head, differentiable path, static shapes), the gradient builder's
//! static shapes and graph building (`export-grad` without writing), each stage separately; nothing
//! runs ONNX Runtime. Linear work shows as a constant time per node across sizes.
//!
//! `cargo run --release --example bench_chain [SIZES...]` (default sizes 25000 50000 100000 200000).

use std::time::Instant;

use aegis_audit::analysis::{analyze, FeatureChoice};
use aegis_audit::grad::{self, GradSpec};
use aegis_audit::onnx::builder::{attr_int, Dim, GraphBuilder};
use aegis_audit::onnx::proto::tensor_proto::DataType;
use aegis_audit::onnx::proto::ModelProto;
use aegis_audit::onnx::{encode, load_model, LoadLimits};

/// x [N, 1, 8, 8] → Relu → Identity × n → Flatten → Gemm (10 classes).
fn chain(n: usize) -> ModelProto {
    let mut b = GraphBuilder::new();
    b.input("x", DataType::Float, &[Dim::Param("N".into()), Dim::Fixed(1), Dim::Fixed(8), Dim::Fixed(8)]);
    let mut t = b.op("Relu", &["x"], vec![]);
    for _ in 0..n {
        t = b.op("Identity", &[&t], vec![]);
    }
    let f = b.op("Flatten", &[&t], vec![attr_int("axis", 1)]);
    let w = b.const_f32("w", &[64, 10], &[0.01; 640]);
    let logits = b.op("Gemm", &[&f, &w], vec![]);
    b.output(&logits, DataType::Float, Some(&[Dim::Param("N".into()), Dim::Fixed(10)]));
    b.into_model("chain", 17, 8)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sizes: Vec<usize> = match std::env::args().skip(1).map(|a| a.parse()).collect::<Result<Vec<_>, _>>()? {
        s if s.is_empty() => vec![25_000, 50_000, 100_000, 200_000],
        s => s,
    };
    let dir = tempfile::tempdir()?;
    println!(
        "{:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12}",
        "nodes", "load s", "analyse s", "shapes s", "build s", "total s", "µs per node"
    );
    for n in sizes {
        let path = dir.path().join(format!("chain{n}.onnx"));
        std::fs::write(&path, encode(&chain(n)))?;
        let t0 = Instant::now();
        let model = load_model(&path, &LoadLimits::default())?;
        let t1 = Instant::now();
        let a = analyze(&model, &FeatureChoice::Penultimate)?;
        let t2 = Instant::now();
        let spec = GradSpec {
            input: a.image_input.name.clone(),
            logits: a.logits.name.clone(),
            features: a.feature.name.clone(),
        };
        let (shapes, missing) = grad::static_shapes(&model.proto, &spec)?;
        assert!(missing.is_empty(), "static inference left {} shapes unknown", missing.len());
        let t3 = Instant::now();
        let g = grad::build(&model.proto, &spec, &shapes)?;
        let bytes = encode(&g);
        let t4 = Instant::now();
        let total = (t4 - t0).as_secs_f64();
        println!(
            "{:>8} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>12.2}",
            model.graph().node.len(),
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64(),
            (t3 - t2).as_secs_f64(),
            (t4 - t3).as_secs_f64(),
            total,
            total * 1e6 / model.graph().node.len() as f64,
        );
        assert!(a.differentiable && !bytes.is_empty());
    }
    Ok(())
}
