//! The `export-grad` command: writes the gradient graph of a model (inputs `x`, `y`; outputs
//! `logits`, `features`, `loss`, `grad`) as an ONNX file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use aegis_audit::audit;
use aegis_audit::grad::GradSpec;
use aegis_audit::onnx::{self, LoadLimits};
use aegis_audit::report;

use crate::cli::common::{FeatureArgs, RuntimeArgs};
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
    let model = onnx::load_model(&args.model, &LoadLimits::default())?;
    let spec = spec(&model, &args)?;
    let config = args.runtime.session_config()?;
    let g = audit::gradient_graph(&model.proto, &spec, &config)
        .with_context(|| format!("building the gradient graph of {}", args.model.display()))?;
    let out = args.output.clone().unwrap_or_else(|| default_output(&args.model));
    report::write_atomic(&out, &onnx::encode(&g)).with_context(|| format!("writing {}", out.display()))?;
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

/// The tensor names: `onnx::analyze`'s choice, with `--input`, `--logits` and `--feature-tensor`
/// taking precedence (when all three are given the analysis is skipped).
fn spec(model: &onnx::Model, args: &ExportGradArgs) -> anyhow::Result<GradSpec> {
    if let (Some(input), Some(logits), Some(features)) = (&args.input, &args.logits, &args.features.feature_tensor) {
        return Ok(GradSpec { input: input.clone(), logits: logits.clone(), features: features.clone() });
    }
    let analysis = onnx::analyze(model, &args.features.choice())?;
    Ok(GradSpec {
        input: args.input.clone().unwrap_or(analysis.image_input.name),
        logits: args.logits.clone().unwrap_or(analysis.logits.name),
        features: analysis.feature.name,
    })
}
