//! The `export-grad` command: writes the gradient graph of a model (inputs `x`, `y`; outputs
//! `logits`, `features`, `loss`, `grad`) as an ONNX file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use aegis_audit::audit::subcommands::{self as tools, ExportGradOptions};
use aegis_audit::report::EXIT_CLEAN;

use aegis_audit::audit::{FeatureFlags, RuntimeFlags};

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
    pub features: FeatureFlags,
    /// ONNX Runtime settings (used once, to probe static shapes).
    #[command(flatten)]
    pub runtime: RuntimeFlags,
}

/// Runs the command.
pub fn run(args: ExportGradArgs) -> anyhow::Result<ExitCode> {
    let options = ExportGradOptions {
        model: args.model.clone(),
        input: args.input.clone(),
        logits: args.logits.clone(),
        feature: Some(args.features.choice()),
        runtime: args.runtime.settings(),
    };
    let out = args.output.clone().unwrap_or_else(|| default_output(&args.model));
    tools::check_output("-o", &out, &[("the model read", &args.model)])?;
    let export = tools::export_grad(&options)
        .with_context(|| format!("building the gradient graph of {}", args.model.display()))?;
    // Its external-data files are known once it is read; checked before anything is written.
    let external: Vec<(&str, &Path)> =
        export.external_files.iter().map(|f| ("an external-data file of the model", f.as_path())).collect();
    if !external.is_empty() {
        tools::check_output("-o", &out, &external)?;
    }
    tools::write_output(&out, &export.graph).with_context(|| format!("writing {}", out.display()))?;
    let spec = &export.spec;
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
