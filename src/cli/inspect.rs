//! The `inspect` command: loads a model safely and prints what aegis-audit sees in it (image
//! input, logits, feature tensor, class count, op histogram, differentiability), as an aligned
//! report or, with `--json`, as JSON with stable keys.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use aegis_audit::audit::subcommands::{self as tools, shape_string, Analysis};

use aegis_audit::audit::FeatureFlags;

/// Show what aegis-audit sees in MODEL.
#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// The ONNX model file.
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,
    /// Print JSON instead of the aligned report.
    #[arg(long)]
    pub json: bool,
    /// Which tensor is the feature representation.
    #[command(flatten)]
    pub features: FeatureFlags,
}

/// Runs the command.
pub fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let path = args.model.display().to_string();
    let analysis = tools::inspect(&args.model, &args.features.choice()).with_context(|| format!("'{path}'"))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&analysis)?);
    } else {
        print!("{}", report(&analysis.escaped()));
    }
    Ok(ExitCode::SUCCESS)
}

/// The human-readable report.
fn report(a: &Analysis) -> String {
    let mut s = String::new();
    let mut line = |key: &str, value: String| {
        let _ = writeln!(s, "{key:<16} {value}");
    };
    line("model", a.model.path.clone());
    line(
        "format",
        format!(
            "ONNX IR {}, opset {}{}",
            a.model.ir_version,
            a.model.opset,
            if a.model.producer.is_empty() { String::new() } else { format!(", producer {}", a.model.producer) }
        ) + &a.model.widened_from.as_ref().map_or(String::new(), |w| format!("; stored in {w}, read as float32")),
    );
    line(
        "size",
        format!("{} nodes, {} initializers ({} bytes)", a.model.nodes, a.model.initializers, a.model.initializer_bytes),
    );
    let i = &a.image_input;
    line("image input", format!("{} {} {} {}", i.name, i.layout, shape_string(&i.shape), i.dtype));
    let softmax = match &a.logits.softmax {
        Some(op) => format!(", input of {op} output '{}'", a.logits.graph_output),
        None => String::new(),
    };
    line(
        "logits",
        format!("{} [N, {}] from {} '{}'{softmax}", a.logits.name, a.num_classes, a.logits.head_op, a.logits.head_node),
    );
    line("classes", a.num_classes.to_string());
    let f = &a.feature;
    line(
        "feature",
        format!(
            "{} ({}{}{})",
            f.name,
            f.choice,
            f.producer_op.as_ref().map_or(String::new(), |op| format!(", output of {op}")),
            f.shape.as_ref().map_or(String::new(), |sh| format!(", shape {}", shape_string(sh)))
        ),
    );
    line("feature reason", f.reason.clone());
    let hist: Vec<String> = a.op_histogram.iter().map(|(op, n)| format!("{op}×{n}")).collect();
    line("ops", hist.join(" "));
    line("differentiable", a.differentiability());
    s
}
