//! Seeded, structure-aware fuzzing of everything a model file reaches in-process: loading,
//! analysis (`inspect`), gradient-graph building (`export-grad`) and the audit's preparation
//! (ONNX Runtime sessions included). Every case must end in `Ok` or a typed one-line error, with no
//! panic, no caught panic inside the `ort` bindings and no hang (see `fuzz_common`).
//!
//! The bounded pass runs `AEGIS_FUZZ_CASES` cases (default 2,000) from seed `AEGIS_FUZZ_SEED`
//! (default 20_251_129); a longer run is
//! `AEGIS_FUZZ_CASES=100000 AEGIS_FUZZ_SEED=7 cargo test --release --test fuzz_models -- --nocapture`.
//! A failing case is written to `target/fuzz-findings/` so it can be added to `fixtures/fuzz/`,
//! whose every file is replayed by `corpus_replays_without_panics`.

mod fuzz_common;
mod onnx_common;

use std::collections::BTreeMap;
use std::path::Path;

use aegis_audit::onnx::proto::ModelProto;
use aegis_audit::runtime::{self, SessionConfig};
use fuzz_common::{corpus, run_case, Failure, Mutator, Stage};
use onnx_common::{attr_i, attr_ints, attr_t, model, node, plain_cnn, tensor_f32, tensor_i64, value_info, D};
use prost::Message;

fn config() -> SessionConfig {
    SessionConfig { intra_threads: 1, ..SessionConfig::default() }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

/// Conv → BN → Relu → [Conv] + skip → GlobalAveragePool → Flatten → MatMul + Add.
fn residual() -> ModelProto {
    let graph = aegis_audit::onnx::proto::GraphProto {
        name: Some("residual".into()),
        node: vec![
            node("Conv", "stem", &["x", "w0", "b0"], &["s"], vec![attr_ints("pads", &[1, 1, 1, 1])]),
            node("BatchNormalization", "bn", &["s", "g", "b", "m", "v"], &["s_bn"], vec![]),
            node("Relu", "relu", &["s_bn"], &["s_r"], vec![]),
            node("Conv", "conv_a", &["s_r", "wa"], &["a"], vec![attr_ints("pads", &[1, 1, 1, 1])]),
            node("Add", "skip", &["a", "s_r"], &["sum"], vec![]),
            node("GlobalAveragePool", "gap", &["sum"], &["pooled"], vec![]),
            node("Flatten", "flat", &["pooled"], &["flat"], vec![attr_i("axis", 1)]),
            node("MatMul", "fc", &["flat", "wf"], &["mm"], vec![]),
            node("Add", "fc_bias", &["mm", "bf"], &["logits"], vec![]),
        ],
        initializer: vec![
            tensor_f32("w0", &[4, 3, 3, 3]),
            tensor_f32("b0", &[4]),
            tensor_f32("g", &[4]),
            tensor_f32("b", &[4]),
            tensor_f32("m", &[4]),
            tensor_f32("v", &[4]),
            tensor_f32("wa", &[4, 4, 3, 3]),
            tensor_f32("wf", &[4, 5]),
            tensor_f32("bf", &[5]),
        ],
        input: vec![value_info("x", &[D::S("N"), D::N(3), D::N(12), D::N(12)])],
        output: vec![value_info("logits", &[D::S("N"), D::N(5)])],
        ..Default::default()
    };
    model(graph)
}

/// Conv → AveragePool, concatenated with a padded MaxPool branch → torch-style Reshape → Gemm →
/// Softmax.
fn branches() -> ModelProto {
    let graph = aegis_audit::onnx::proto::GraphProto {
        name: Some("branches".into()),
        node: vec![
            node("Conv", "conv", &["x", "w"], &["c"], vec![attr_ints("strides", &[1, 1])]),
            node("Tanh", "act", &["c"], &["t"], vec![]),
            node(
                "AveragePool",
                "avg",
                &["t"],
                &["a"],
                vec![attr_ints("kernel_shape", &[2, 2]), attr_ints("strides", &[2, 2])],
            ),
            node(
                "MaxPool",
                "max",
                &["t"],
                &["mx"],
                vec![
                    attr_ints("kernel_shape", &[3, 3]),
                    attr_ints("strides", &[2, 2]),
                    attr_ints("pads", &[0, 0, 1, 1]),
                ],
            ),
            node("Concat", "cat", &["a", "mx"], &["cat"], vec![attr_i("axis", 1)]),
            node("Pad", "pad", &["cat", "pads"], &["p"], vec![]),
            node("Shape", "shape", &["p"], &["sh"], vec![]),
            node("Gather", "gather", &["sh", "zero"], &["n"], vec![attr_i("axis", 0)]),
            node("Concat", "newshape", &["n", "minus_one"], &["ns"], vec![attr_i("axis", 0)]),
            node("Reshape", "reshape", &["p", "ns"], &["f"], vec![]),
            node("Gemm", "fc", &["f", "wf", "bf"], &["logits"], vec![attr_i("transB", 1)]),
            node("Softmax", "sm", &["logits"], &["probs"], vec![attr_i("axis", 1)]),
        ],
        initializer: vec![
            tensor_f32("w", &[3, 1, 3, 3]),
            tensor_i64("pads", &[0, 0, 1, 1, 0, 0, 1, 1]),
            tensor_i64("zero", &[0]),
            tensor_i64("minus_one", &[-1]),
            tensor_f32("wf", &[4, 6 * 6 * 6]),
            tensor_f32("bf", &[4]),
        ],
        input: vec![value_info("x", &[D::S("N"), D::N(1), D::N(10), D::N(10)])],
        output: vec![value_info("probs", &[D::S("N"), D::N(4)])],
        ..Default::default()
    };
    let _ = attr_t;
    model(graph)
}

/// The seeds: three models built here and the committed PyTorch exports of `fixtures/grad/`.
fn seeds() -> Vec<ModelProto> {
    let mut seeds = vec![plain_cnn(), residual(), branches()];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/grad");
    for name in ["bn_first.onnx", "concat_pad.onnx", "resnet_block.onnx"] {
        let bytes = std::fs::read(dir.join(name)).expect("fixture");
        seeds.push(ModelProto::decode(bytes.as_slice()).expect("fixture decodes"));
    }
    seeds
}

/// Every seed passes every stage unmutated (so mutations start from models that reach ONNX Runtime).
#[test]
fn seeds_pass_every_stage() {
    runtime::init(None).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    for (i, m) in seeds().iter().enumerate() {
        let bytes = aegis_audit::onnx::encode(m);
        assert_eq!(run_case(&bytes, dir.path(), &config()).unwrap(), Stage::Prepared, "seed {i}");
    }
}

#[test]
fn bounded_seeded_pass() {
    runtime::init(None).unwrap_or_else(|e| panic!("{e}"));
    let cases = env_u64("AEGIS_FUZZ_CASES", 2_000);
    let seed = env_u64("AEGIS_FUZZ_SEED", 20_251_129);
    let dir = tempfile::tempdir().unwrap();
    let findings = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-findings");
    let mut mutator = Mutator::new(seed, seeds());
    let mut outcomes: BTreeMap<Stage, usize> = BTreeMap::new();
    let mut failures: Vec<(u64, Failure)> = Vec::new();
    let start = std::time::Instant::now();
    for i in 0..cases {
        let bytes = mutator.case();
        match run_case(&bytes, dir.path(), &config()) {
            Ok(stage) => *outcomes.entry(stage).or_insert(0) += 1,
            Err(f) => {
                std::fs::create_dir_all(&findings).unwrap();
                std::fs::write(findings.join(format!("seed{seed}-case{i}.onnx")), &bytes).unwrap();
                failures.push((i, f));
            }
        }
    }
    eprintln!(
        "fuzz: {cases} cases from seed {seed} in {:.1} s; ended at {outcomes:?}; failures {}",
        start.elapsed().as_secs_f64(),
        failures.len()
    );
    assert!(failures.is_empty(), "{} failing cases (written to {}): {failures:#?}", failures.len(), findings.display());
    assert_eq!(outcomes.values().sum::<usize>() as u64, cases);
}

#[test]
fn corpus_replays_without_panics() {
    runtime::init(None).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let files = corpus();
    assert!(files.len() >= 14, "the committed corpus is missing: {files:?}");
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        let stage = run_case(&bytes, dir.path(), &config()).unwrap_or_else(|f| panic!("{}: {f:?}", file.display()));
        // The crashes of issue 14 are refused while loading or analysing: they never reach ONNX
        // Runtime, so the boundary's last line of defence is not what stops them.
        assert!(matches!(stage, Stage::Load | Stage::Analysis), "{}: reached {stage:?}", file.display());
    }
}
