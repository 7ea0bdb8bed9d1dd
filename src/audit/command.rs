//! The whole audit of one or several models: every check that needs no model first (options, presets,
//! output paths), ONNX Runtime once, then per model: load and analyse, the plan for its input shape and
//! class count, the data (read once per input shape, checked against the model), the gradient graph and
//! session, the detection. The reports of all models are rendered and committed together.
//!
//! With one model, any error is the run's error: no report is written. With several, a model that fails
//! gets a SARIF run with `executionSuccessful: false` and an error notification (and an `error` entry in
//! the JSON document) while the other models' results are still written; the exit code is the most
//! severe over the models (2 > 1 > 3 > 0).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;

use super::error::{error_chain, AuditError};
use super::memory::{peak_resident_bytes, MemoryBudget, DEFAULT_MEMORY_LIMIT};
use super::one_model::{audit_model, AuditData, EvidenceTarget};
use super::options::{MethodChoice, Options};
use super::outputs::Outputs;
use super::prepare::AnalysedModel;
use super::preset::PresetFile;
use crate::analysis::OpenDimsFill;
use crate::data::{load_dataset_with_limits, DataLimits, ImageShape, Split};
use crate::decide::Calibration;
use crate::onnx::LoadLimits;
use crate::report::sarif::{self, RunInput, SarifOptions};
use crate::report::{self, most_severe_exit, table, AuditReport, MemoryInfo, Timings, ToolInfo, EXIT_ERROR};
use crate::runtime::{self, SessionConfig};
use crate::Result;

/// One model's part of a run.
#[derive(Debug)]
pub enum ModelRun {
    /// The model was audited.
    Audited(Box<AuditReport>),
    /// The model could not be audited (only when several models are audited).
    Failed {
        /// The model path as given.
        model: PathBuf,
        /// The error with its causes, on one line.
        error: String,
    },
}

impl ModelRun {
    /// The model's exit code: its verdict's, or 2.
    pub fn exit_code(&self) -> u8 {
        match self {
            ModelRun::Audited(r) => r.verdict.exit_code(),
            ModelRun::Failed { .. } => EXIT_ERROR,
        }
    }
}

/// A finished run, its reports not yet written.
#[derive(Debug)]
pub struct AuditRun {
    /// One entry per model, in the order given.
    pub models: Vec<ModelRun>,
    command_line: Vec<String>,
    outputs: Outputs,
}

/// The reports of a run as text, as written (and for stdout).
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedRun {
    /// The SARIF log.
    pub sarif: String,
    /// The JSON report (one model) or document (several).
    pub json: String,
    /// The readable table.
    pub table: String,
}

/// The JSON document of a several-model run.
#[derive(Debug, Serialize)]
struct RunDocument<'a> {
    tool: ToolInfo,
    exit_code: u8,
    models: Vec<ModelEntry<'a>>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Serialize)]
struct ModelEntry<'a> {
    model: String,
    exit_code: u8,
    report: Option<&'a AuditReport>,
    error: Option<&'a str>,
}

impl AuditRun {
    /// The exit code: the verdict's with one model, the most severe over the models otherwise
    /// (2 > 1 > 3 > 0).
    pub fn exit_code(&self) -> u8 {
        most_severe_exit(self.models.iter().map(ModelRun::exit_code))
    }

    /// The audited reports.
    pub fn reports(&self) -> impl Iterator<Item = &AuditReport> {
        self.models.iter().filter_map(|m| match m {
            ModelRun::Audited(r) => Some(r.as_ref()),
            ModelRun::Failed { .. } => None,
        })
    }

    fn single(&self) -> Option<&AuditReport> {
        match self.models.as_slice() {
            [ModelRun::Audited(r)] => Some(r),
            _ => None,
        }
    }

    /// The SARIF log: one run per model.
    pub fn sarif(&self) -> Value {
        let opts = SarifOptions::from_cwd();
        if let Some(r) = self.single() {
            return sarif::to_sarif_with(r, &opts);
        }
        let failed: Vec<(String, &str)> = self
            .models
            .iter()
            .filter_map(|m| match m {
                ModelRun::Failed { model, error } => Some((model.display().to_string(), error.as_str())),
                _ => None,
            })
            .collect();
        let mut failures = failed.iter();
        let inputs: Vec<RunInput<'_>> = self
            .models
            .iter()
            .map(|m| match m {
                ModelRun::Audited(r) => RunInput::Report(r),
                ModelRun::Failed { .. } => {
                    let (model, error) = failures.next().expect("one per failed model");
                    RunInput::Failed { model, error, command_line: &self.command_line }
                }
            })
            .collect();
        sarif::to_sarif_log(&inputs, &opts)
    }

    /// The JSON report with one model; with several, a document `{tool, exit_code, models: [{model,
    /// exit_code, report | error}]}` (docs/report-json.md).
    pub fn json(&self) -> Result<String> {
        if let Some(r) = self.single() {
            return Ok(report::to_json(r)?);
        }
        let models = self
            .models
            .iter()
            .map(|m| match m {
                ModelRun::Audited(r) => ModelEntry {
                    model: r.model.path.clone(),
                    exit_code: r.verdict.exit_code(),
                    report: Some(r),
                    error: None,
                },
                ModelRun::Failed { model, error } => ModelEntry {
                    model: model.display().to_string(),
                    exit_code: EXIT_ERROR,
                    report: None,
                    error: Some(error),
                },
            })
            .collect();
        let doc = RunDocument { tool: ToolInfo::default(), exit_code: self.exit_code(), models };
        let mut text = serde_json::to_string_pretty(&doc).map_err(report::ReportError::from)?;
        text.push('\n');
        Ok(text)
    }

    /// The readable table: one per model, then the run's exit code when there are several.
    pub fn table(&self) -> String {
        if let Some(r) = self.single() {
            return table::render(r);
        }
        let mut out = String::new();
        for m in &self.models {
            match m {
                ModelRun::Audited(r) => out.push_str(&table::render(r)),
                ModelRun::Failed { model, error } => out.push_str(&format!(
                    "{}\nmodel    {}\nerror    {}\n\nverdict  ERROR, exit code {EXIT_ERROR}\n",
                    ToolInfo::default().name,
                    table::clean(&model.display().to_string()),
                    table::clean(error)
                )),
            }
            out.push('\n');
        }
        out.push_str(&format!("{} models, exit code {}\n", self.models.len(), self.exit_code()));
        out
    }

    /// Each model's phase timings, one line per phase, and each class's cost, for `--verbose`.
    pub fn timings_text(&self) -> String {
        let mut out = String::new();
        for r in self.reports() {
            out.push_str(&format!("timings of {} (seconds):\n", table::clean(&r.model.path)));
            for (phase, s) in r.timings.phases() {
                out.push_str(&format!("  {phase:<13} {s:>9.3}\n"));
            }
            if let Some(e) = &r.effort {
                out.push_str(&format!("cost per class ({} effort; seconds, gradient evaluations):\n", e.mode));
                for c in &e.per_class {
                    let full = if c.full_effort { "full" } else { "screened" };
                    out.push_str(&format!(
                        "  class {:<6} {full:<9} {:>9.3} {:>10}\n",
                        c.class, c.seconds, c.gradient_evaluations
                    ));
                }
            }
        }
        out
    }

    /// Renders every report and writes them with the evidence, all together: nothing is written when
    /// rendering or staging fails.
    pub fn write(self) -> Result<RenderedRun> {
        let rendered = RenderedRun {
            sarif: serde_json::to_string_pretty(&self.sarif()).map_err(report::ReportError::from)?,
            json: self.json()?,
            table: self.table(),
        };
        let mut files = BTreeMap::new();
        if let Some(p) = &self.outputs.sarif {
            files.insert(p.clone(), rendered.sarif.clone().into_bytes());
        }
        if let Some(p) = &self.outputs.json {
            files.insert(p.clone(), rendered.json.clone().into_bytes());
        }
        self.outputs.commit(files)?;
        Ok(rendered)
    }
}

/// The checks on the command's inputs that need nothing loaded: at least one model, each a file and
/// given once; the data path exists.
fn check_inputs(options: &Options) -> Result<(), AuditError> {
    if options.models.is_empty() {
        return Err(AuditError::Usage("no model given".into()));
    }
    let mut seen: HashMap<PathBuf, &Path> = HashMap::new();
    for model in &options.models {
        let canonical = model.canonicalize().map_err(|e| {
            AuditError::Usage(format!(
                "model {}: {}",
                model.display(),
                e.to_string().split(" (os error").next().unwrap_or("")
            ))
        })?;
        let meta = std::fs::metadata(&canonical)
            .map_err(|e| AuditError::Usage(format!("model {}: {}", model.display(), crate::fsio::io_text(&e))))?;
        if !meta.is_file() {
            let kind = crate::fsio::kind_of(&meta.file_type());
            return Err(AuditError::Usage(format!("model {}: is {kind}, not a regular file", model.display())));
        }
        if let Some(first) = seen.insert(canonical, model) {
            return Err(AuditError::Usage(format!(
                "model {} is given twice (also as {})",
                model.display(),
                first.display()
            )));
        }
    }
    crate::data::check_dataset_path(&options.data).map_err(|e| AuditError::Usage(format!("--data {e}")))?;
    Ok(())
}

/// The evidence sub-folder name of each model when several are audited: the file stem, `-2`, `-3`, …
/// appended to repeated stems.
fn evidence_slots(models: &[PathBuf]) -> Vec<String> {
    let mut used = std::collections::HashSet::new();
    models
        .iter()
        .map(|m| {
            let stem = m.file_stem().map_or_else(|| "model".to_string(), |s| s.to_string_lossy().into_owned());
            let name = (1..)
                .map(|n| if n == 1 { stem.clone() } else { format!("{stem}-{n}") })
                .find(|name| !used.contains(name))
                .expect("an unused name");
            used.insert(name.clone());
            name
        })
        .collect()
}

/// Runs the audit `options` describe. Every check that needs no model runs first; an error there, or
/// any error with one model, is returned and nothing is written.
pub fn run(options: &Options) -> Result<AuditRun> {
    check_inputs(options)?;
    let presets = match &options.config {
        Some(path) => PresetFile::load(path)?,
        None => PresetFile::builtin(),
    };
    presets.check()?;
    // The fused decision's calibration, read and checked once, before any model.
    // Without --preset, the options are checked against every preset a model may select by its input
    // shape; one that fails under some presets only is refused for the models that select those (each
    // model's plan is checked again once its preset is known), so that an MNIST model's error never
    // names the CIFAR-10 preset. Options that fail under every candidate are refused here.
    let mut calibration = None;
    let mut first_error = None;
    let candidates = presets.candidates(options.preset.as_deref())?;
    let mut passed = 0;
    for (name, preset) in &candidates {
        let mut plan = preset.apply(name, &presets.origin, options);
        let checked = plan.check().and_then(|()| {
            if plan.method == MethodChoice::Auto {
                if calibration.is_none() {
                    calibration = Some(plan.load_calibration()?);
                }
                plan.calibration = calibration.clone();
                plan.check()?;
            }
            Ok(())
        });
        match checked {
            Ok(()) => passed += 1,
            Err(e) if first_error.is_none() => first_error = Some(e),
            Err(_) => {}
        }
    }
    if let (0, Some(e)) = (passed, first_error) {
        // Every preset fails: the error names them all (an MNIST model's error must not name only
        // the CIFAR-10 preset), when the first preset's check fails the same way under that name.
        if let [(_, first), _, ..] = candidates.as_slice() {
            let names: Vec<&str> = candidates.iter().map(|(n, _)| n.as_str()).collect();
            let mut plan = first.apply(&names.join(", "), &presets.origin, options);
            plan.calibration = calibration.clone();
            if let Err(every) = plan.check() {
                return Err(every.into());
            }
        }
        return Err(e.into());
    }
    let mut inputs: Vec<(&str, &Path)> =
        options.models.iter().map(|m| ("a model being audited", m.as_path())).collect();
    inputs.push(("the --data path", options.data.as_path()));
    let companions = crate::data::companion_files(&options.data);
    inputs.extend(companions.iter().map(|c| ("a file read beside the --data file", c.as_path())));
    if let Some(c) = &options.calibration {
        inputs.push(("the --calibration file", c.as_path()));
    }
    let outputs =
        Outputs::check(options.sarif.as_deref(), options.json.as_deref(), options.evidence.as_deref(), &inputs)?;
    let runtime_settings = options.runtime.settings();
    runtime::init(runtime_settings.ort_lib.as_deref())?;
    let config = SessionConfig { device: runtime_settings.device, intra_threads: runtime_settings.threads };
    let several = options.models.len() > 1;
    let slots = evidence_slots(&options.models);
    let limits = DataLimits { resize: options.resize, ..DataLimits::default() };
    let mut data = DataCache { limits, ..DataCache::default() };
    let mut models = Vec::with_capacity(options.models.len());
    for (model, slot) in options.models.iter().zip(&slots) {
        let target = outputs.evidence.as_ref().map(|dir| EvidenceTarget {
            stage: outputs.evidence_stage(several.then_some(slot.as_str())).expect("staged with --evidence"),
            dir: if several { dir.join(slot) } else { dir.clone() },
        });
        let destination = Destination { outputs: &outputs, evidence: target.as_ref() };
        match audit_one(options, &presets, calibration.as_ref(), &config, model, &mut data, &destination) {
            Ok(report) => models.push(ModelRun::Audited(Box::new(report))),
            // An output over a model's external data ends the run: the reports would replace it.
            Err(e) if !several || matches!(e, crate::Error::Audit(AuditError::Output { .. })) => return Err(e),
            Err(e) => {
                models.push(ModelRun::Failed { model: model.clone(), error: error_chain(&e) });
                if let Some(t) = &target {
                    let _ = std::fs::remove_dir_all(&t.stage);
                }
            }
        }
    }
    Ok(AuditRun { models, command_line: options.command_line.clone(), outputs })
}

/// Where one model's outputs go: the run's checked report paths, and this model's evidence.
struct Destination<'a> {
    /// The run's outputs (checked again against the model's external-data files once it is read).
    outputs: &'a Outputs,
    /// Where its evidence is staged and will be moved (`None` without `--evidence`).
    evidence: Option<&'a EvidenceTarget>,
}

/// The data read so far, by input shape (read once per shape; a failure is kept too).
#[derive(Debug, Default)]
struct DataCache {
    sets: HashMap<ImageShape, std::result::Result<Rc<AuditData>, String>>,
    /// The bounds every split is read within, with `--resize`'s mode.
    limits: DataLimits,
}

impl DataCache {
    /// The data for `shape`, and the seconds it took to read (0 when it was already read).
    fn get(&mut self, path: &Path, shape: ImageShape) -> Result<(Rc<AuditData>, f64)> {
        if let Some(entry) = self.sets.get(&shape) {
            return entry.clone().map(|d| (d, 0.0)).map_err(|e| AuditError::Usage(e).into());
        }
        let started = Instant::now();
        let read = |split: Split| {
            load_dataset_with_limits(path, split, shape, &self.limits).map_err(|source| AuditError::DataRead {
                path: path.to_path_buf(),
                split: split.name(),
                source,
            })
        };
        match read(Split::Train).and_then(|train| Ok((train, read(Split::Test)?))) {
            Ok((train, test)) => {
                let set = Rc::new(AuditData { path: path.to_path_buf(), train, test });
                self.sets.insert(shape, Ok(set.clone()));
                Ok((set, started.elapsed().as_secs_f64()))
            }
            Err(e) => {
                self.sets.insert(shape, Err(error_chain(&e)));
                Err(e.into())
            }
        }
    }
}

/// Audits one model.
fn audit_one(
    options: &Options,
    presets: &PresetFile,
    calibration: Option<&Arc<Calibration>>,
    config: &SessionConfig,
    path: &Path,
    data: &mut DataCache,
    destination: &Destination,
) -> Result<AuditReport> {
    let total = Instant::now();
    let in_model =
        |e: crate::Error| crate::Error::from(AuditError::Model { path: path.to_path_buf(), source: Box::new(e) });
    let feature = options.feature.choice();
    // A model that leaves its input size open is audited at the data's size (read only then).
    let fill = || {
        let size = crate::data::native_size(&options.data, &data.limits).ok()?;
        let channels = size.channels.map(|c| c as i64);
        Some(OpenDimsFill { channels, height: size.height as i64, width: size.width as i64 })
    };
    let analysed = AnalysedModel::load_filling(path, &feature, &LoadLimits::default(), fill).map_err(in_model)?;
    let external: Vec<(&str, &Path)> = (analysed.model.external_files.iter())
        .map(|f| ("an external-data file of a model being audited", f.as_path()))
        .collect();
    destination.outputs.refuse_inputs(&external)?;
    let shape = analysed.image_shape();
    let (preset_name, preset) = presets.select(options.preset.as_deref(), shape)?;
    let mut plan = preset.apply(&preset_name, &presets.origin, options);
    plan.calibration = calibration.cloned();
    plan.check()?;
    let k = analysed.num_classes();
    plan.check_classes(k)?;
    let (data, data_s) = data.get(&options.data, shape)?;
    plan.check_data(&data.path, "train", &data.train, k)?;
    plan.check_data(&data.path, "test", &data.test, k)?;
    if let Some(n) = &plan.input_normalisation {
        n.per_channel(shape.c).map_err(AuditError::Usage)?;
    }
    let mut prepared = analysed.prepare(config, plan.input_normalisation.as_ref()).map_err(in_model)?;
    let budget = MemoryBudget::new(
        options.memory_limit.unwrap_or(DEFAULT_MEMORY_LIMIT),
        prepared.activations_per_image,
        prepared.model.sessions(),
        plan.largest_batch(),
    )?;
    prepared.model.set_max_batch(budget.images_per_evaluation);
    let k_session = crate::attack::GradientModel::num_classes(&prepared.model);
    if k_session != k {
        plan.check_classes(k_session)?;
        plan.check_data(&data.path, "train", &data.train, k_session)?;
        plan.check_data(&data.path, "test", &data.test, k_session)?;
    }
    let p = prepared.timings;
    let timings = Timings {
        load: p.load,
        analysis: p.analysis,
        graph_build: p.graph_build,
        session: p.session,
        data: data_s,
        ..Timings::default()
    };
    let mut report = audit_model(
        &plan,
        &mut prepared,
        &data,
        destination.evidence,
        options.progress,
        &options.command_line,
        timings,
    )?;
    report.timings.total = total.elapsed().as_secs_f64();
    report.memory = Some(MemoryInfo {
        limit_bytes: budget.limit_bytes,
        activations_per_image: budget.activations_per_image,
        bytes_per_image: budget.bytes_per_image,
        sessions: budget.sessions,
        images_per_evaluation: budget.images_per_evaluation,
        peak_resident_bytes: peak_resident_bytes(),
    });
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::evidence_slots;

    #[test]
    fn evidence_slots_are_distinct() {
        let models: Vec<PathBuf> =
            ["a/m.onnx", "b/m.onnx", "m-2.onnx", "c.onnx", "d/m.onnx"].iter().map(PathBuf::from).collect();
        assert_eq!(evidence_slots(&models), vec!["m", "m-2", "m-2-2", "c", "m-3"]);
    }
}
