//! The `export-grad` command: writes the gradient graph of a model (inputs `x`, `y`; outputs
//! `logits`, `features`, `loss`, `grad`) as an ONNX file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use prost::Message;

use aegis_audit::grad::{self, GradSpec, RuntimeProbe};
use aegis_audit::onnx::proto::ModelProto;
use aegis_audit::runtime::{self, Device, SessionConfig};

use crate::cli::common::{DeviceArg, FeatureArgs, FeatureLayerArg, RuntimeArgs};
use crate::cli::EXIT_CLEAN;

/// Export the gradient graph of MODEL (inputs x, y; outputs logits, features, loss, grad).
#[derive(Debug, Clone, Args)]
pub struct ExportGradArgs {
    /// The classifier (ONNX).
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,
    /// Where to write the gradient graph (default: MODEL with the extension .grad.onnx).
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Name of the image input (default: the model's only non-initializer input).
    #[arg(long, value_name = "NAME")]
    pub input: Option<String>,
    /// Name of the logits tensor (default: the graph output, or the input of a final
    /// Softmax/LogSoftmax).
    #[arg(long, value_name = "NAME")]
    pub logits: Option<String>,
    /// Which tensor is exported as `features`.
    #[command(flatten)]
    pub features: FeatureArgs,
    /// ONNX Runtime settings (used once, to probe static shapes).
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Runs the command.
pub fn run(args: ExportGradArgs) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(&args.model)
        .with_context(|| format!("reading model {}", args.model.display()))?;
    let model = ModelProto::decode(bytes.as_slice())
        .with_context(|| format!("{} is not an ONNX model", args.model.display()))?;
    let spec = spec(&model, &args)?;
    runtime::init(args.runtime.ort_lib.as_deref())?;
    let config = SessionConfig {
        device: match args.runtime.device {
            DeviceArg::Cpu => Device::Cpu,
            DeviceArg::Cuda => Device::Cuda,
            DeviceArg::Auto => Device::Auto,
        },
        intra_threads: args.runtime.threads,
    };
    let g = grad::build_probed(&model, &spec, &mut RuntimeProbe { config })
        .with_context(|| format!("building the gradient graph of {}", args.model.display()))?;
    let out = args.output.clone().unwrap_or_else(|| default_output(&args.model));
    std::fs::write(&out, g.encode_to_vec())
        .with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "wrote {} (x = '{}', logits = '{}', features = '{}')",
        out.display(),
        spec.input,
        spec.logits,
        spec.features
    );
    Ok(ExitCode::from(EXIT_CLEAN))
}

fn default_output(model: &Path) -> PathBuf {
    model.with_extension("grad.onnx")
}

/// The tensor names from the flags, falling back to a minimal reading of the graph.
// TODO(lead): replace the fallbacks with `onnx::analyze` once the `onnx` branch lands.
fn spec(model: &ModelProto, args: &ExportGradArgs) -> anyhow::Result<GradSpec> {
    let g = model
        .graph
        .as_ref()
        .context("the model has no graph")?;
    let inits: Vec<&str> = g
        .initializer
        .iter()
        .filter_map(|t| t.name.as_deref())
        .collect();
    let input = match &args.input {
        Some(i) => i.clone(),
        None => {
            let cands: Vec<&str> = g
                .input
                .iter()
                .filter_map(|v| v.name.as_deref())
                .filter(|n| !inits.contains(n))
                .collect();
            match cands.as_slice() {
                [one] => one.to_string(),
                _ => anyhow::bail!("the model has inputs {cands:?}: name the image input with --input"),
            }
        }
    };
    let producer = |t: &str| g.node.iter().find(|n| n.output.iter().any(|o| o == t));
    let logits = match &args.logits {
        Some(l) => l.clone(),
        None => {
            let out = g
                .output
                .first()
                .and_then(|o| o.name.clone())
                .context("the model has no output: name the logits with --logits")?;
            match producer(&out) {
                Some(n) if matches!(n.op_type.as_deref(), Some("Softmax" | "LogSoftmax")) => {
                    n.input[0].clone()
                }
                _ => out,
            }
        }
    };
    let features = match &args.features.feature_tensor {
        Some(f) => f.clone(),
        None => {
            // Penultimate: the input of the final Gemm/MatMul; last-conv: walk back from there
            // through pooling and reshaping ops.
            let head = producer(&logits)
                .filter(|n| matches!(n.op_type.as_deref(), Some("Gemm" | "MatMul")))
                .with_context(|| {
                    format!("logits '{logits}' do not come from a Gemm/MatMul: name the features with --feature-tensor")
                })?;
            let mut t = head.input[0].clone();
            if args.features.feature_layer == FeatureLayerArg::LastConv {
                while let Some(n) = producer(&t).filter(|n| {
                    matches!(
                        n.op_type.as_deref(),
                        Some(
                            "Flatten"
                                | "Reshape"
                                | "GlobalAveragePool"
                                | "AveragePool"
                                | "MaxPool"
                                | "GlobalMaxPool"
                                | "Identity"
                                | "Dropout"
                        )
                    )
                }) {
                    t = n.input[0].clone();
                }
            }
            t
        }
    };
    Ok(GradSpec {
        input,
        logits,
        features,
    })
}
