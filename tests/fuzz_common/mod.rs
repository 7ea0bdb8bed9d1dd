//! The fuzz harness: a seeded, structure-aware mutator of ONNX models and the in-process pipeline
//! it drives (loading, analysis, gradient-graph building, the audit's model preparation with ONNX
//! Runtime sessions). A case passes when every stage returns `Ok` or a typed error whose message is
//! one line, without a panic (caught per stage), without the `ort` bindings panicking (reported as
//! `RuntimeError::Internal`) and within [`SLOW_CASE`].
#![allow(dead_code)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aegis_audit::analysis::{analyze, FeatureChoice};
use aegis_audit::audit::PreparedModel;
use aegis_audit::grad::{self, GradSpec};
use aegis_audit::onnx::proto::attribute_proto::AttributeType;
use aegis_audit::onnx::proto::tensor_proto::DataLocation;
use aegis_audit::onnx::proto::tensor_shape_proto::dimension::Value as DimValue;
use aegis_audit::onnx::proto::type_proto::Value as TypeValue;
use aegis_audit::onnx::proto::{AttributeProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto};
use aegis_audit::onnx::{self, load_model, LoadLimits};
use aegis_audit::runtime::{RuntimeError, SessionConfig};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A case taking longer than this counts as a hang.
pub const SLOW_CASE: Duration = Duration::from_secs(20);

/// Where a case stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// `onnx::load_model` refused it (decoding, validation, limits, external data).
    Load,
    /// `analysis::analyze` refused it (image input, head, static shapes...).
    Analysis,
    /// The gradient builder refused it (`grad::static_shapes` / `grad::build`).
    Gradient,
    /// The audit's preparation refused it (probe, session creation, first evaluation).
    Prepare,
    /// Every stage accepted it: a session over its gradient graph ran.
    Prepared,
}

/// A case that broke a rule.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The stage it broke in.
    pub stage: Stage,
    /// What happened.
    pub what: String,
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".into())
}

/// Runs `f` for `stage`: a panic or an error message that is not one plain line is a failure.
fn stage<T, E: std::fmt::Display>(
    stage: Stage,
    f: impl FnOnce() -> Result<T, E>,
) -> Result<Result<T, String>, Failure> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Err(p) => Err(Failure { stage, what: format!("panic: {}", panic_text(p.as_ref())) }),
        Ok(Ok(v)) => Ok(Ok(v)),
        Ok(Err(e)) => {
            let msg = e.to_string();
            if msg.chars().any(|c| c.is_control()) {
                return Err(Failure { stage, what: format!("error message is not one plain line: {msg:?}") });
            }
            Ok(Err(msg))
        }
    }
}

/// Runs one case (the model bytes, written as `dir/model.onnx`) through every stage.
pub fn run_case(bytes: &[u8], dir: &Path, config: &SessionConfig) -> Result<Stage, Failure> {
    let start = Instant::now();
    let path = dir.join("model.onnx");
    std::fs::write(&path, bytes).expect("write case");
    let limits = LoadLimits::default();
    let model = match stage(Stage::Load, || load_model(&path, &limits))? {
        Ok(m) => m,
        Err(_) => return Ok(Stage::Load),
    };
    let mut analysis = None;
    for choice in [FeatureChoice::LastConv, FeatureChoice::Penultimate] {
        if let Ok(a) = stage(Stage::Analysis, || analyze(&model, &choice))? {
            analysis = Some((choice, a));
            break;
        }
    }
    let Some((choice, a)) = analysis else {
        return Ok(Stage::Analysis);
    };
    let spec =
        GradSpec { input: a.image_input.name.clone(), logits: a.logits.name.clone(), features: a.feature.name.clone() };
    let built = stage(Stage::Gradient, || -> Result<bool, grad::GradError> {
        let (shapes, missing) = grad::static_shapes(&model.proto, &spec)?;
        if !missing.is_empty() {
            return Ok(false);
        }
        grad::build(&model.proto, &spec, &shapes)?;
        Ok(true)
    })?;
    // inspect and export-grad must agree on what is differentiable (rule-level refusals of a
    // supported op's attributes aside).
    match (&built, a.differentiable) {
        (Ok(true), false) => {
            return Err(Failure {
                stage: Stage::Gradient,
                what: format!(
                    "analysis says not differentiable ({:?}) but the gradient graph was built",
                    a.unsupported_ops
                ),
            })
        }
        (Err(e), true) if e.contains("no gradient rule") || e.contains("re-export") => {
            return Err(Failure { stage: Stage::Gradient, what: format!("analysis says differentiable but: {e}") })
        }
        _ => {}
    }
    if built.is_err() {
        return Ok(Stage::Gradient);
    }
    let prepared = stage(Stage::Prepare, || PreparedModel::load(&path, &choice, &limits, config))?;
    if let (Err(msg), Ok(_)) = (&prepared, std::env::var("AEGIS_FUZZ_VERBOSE")) {
        eprintln!("fuzz: refused at preparation: {msg}");
    }
    if let Err(msg) = &prepared {
        if msg.contains("internal error in the ONNX Runtime bindings") {
            return Err(Failure { stage: Stage::Prepare, what: msg.clone() });
        }
    }
    let elapsed = start.elapsed();
    if elapsed > SLOW_CASE {
        return Err(Failure { stage: Stage::Prepare, what: format!("took {elapsed:?}") });
    }
    Ok(if prepared.is_ok() { Stage::Prepared } else { Stage::Prepare })
}

/// Whether `e` is the runtime's caught-panic variant (kept for callers matching on types).
pub fn is_internal(e: &RuntimeError) -> bool {
    matches!(e, RuntimeError::Internal(_))
}

/// Integers that break arithmetic: zero, signs, off-by-one, powers of two, extremes.
const INTERESTING: [i64; 18] =
    [0, 1, -1, 2, 3, 4, 7, 28, 50, 100, -100, 1 << 20, 1 << 31, -(1 << 31), 1 << 40, i64::MAX, i64::MIN, 8];

/// Attribute names the ops of the seeds and of [`OPS`] read.
const ATTR_NAMES: [&str; 22] = [
    "kernel_shape",
    "strides",
    "pads",
    "dilations",
    "group",
    "auto_pad",
    "axis",
    "axes",
    "transA",
    "transB",
    "perm",
    "keepdims",
    "ceil_mode",
    "count_include_pad",
    "allowzero",
    "mode",
    "alpha",
    "epsilon",
    "training_mode",
    "storage_order",
    "value",
    "to",
];

/// Op types substituted into graphs.
const OPS: [&str; 40] = [
    "Conv",
    "ConvTranspose",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "BatchNormalization",
    "Relu",
    "LeakyRelu",
    "Sigmoid",
    "Tanh",
    "Clip",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Gemm",
    "MatMul",
    "Flatten",
    "Reshape",
    "Transpose",
    "Concat",
    "Pad",
    "Identity",
    "Dropout",
    "Softmax",
    "LogSoftmax",
    "Squeeze",
    "Unsqueeze",
    "Slice",
    "Gather",
    "Shape",
    "Floor",
    "Round",
    "Sign",
    "ReduceMean",
    "Erf",
    "Split",
    "Range",
    "OneHot",
];

const STRINGS: [&str; 10] =
    ["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID", "bogus", "", "constant", "reflect", "edge", "\u{1b}[31m"];

/// Hostile names: control characters, escape sequences, NUL, bidi overrides, paths.
const NAMES: [&str; 8] =
    ["a\nb", "\u{1b}[2J\u{1b}[H", "nul\0x", "x\u{202e}gpj.exe", "", "../../etc/passwd", "x", "logits"];

/// The seeded mutator over a set of seed models.
pub struct Mutator {
    rng: ChaCha8Rng,
    seeds: Vec<ModelProto>,
}

impl Mutator {
    /// A mutator drawing from `seeds` with the given seed.
    pub fn new(seed: u64, seeds: Vec<ModelProto>) -> Self {
        Mutator { rng: ChaCha8Rng::seed_from_u64(seed), seeds }
    }

    /// The next case: a seed with 0–3 structural mutations, then byte mutations one time in four.
    pub fn case(&mut self) -> Vec<u8> {
        let mut m = self.seeds.choose(&mut self.rng).expect("seeds").clone();
        let n = self.rng.gen_range(0..=3);
        for _ in 0..n {
            self.mutate(&mut m);
        }
        let mut bytes = onnx::encode(&m);
        if self.rng.gen_bool(0.25) {
            self.mutate_bytes(&mut bytes);
        }
        bytes
    }

    fn int(&mut self) -> i64 {
        if self.rng.gen_bool(0.7) {
            *INTERESTING.choose(&mut self.rng).expect("values")
        } else {
            self.rng.gen_range(-8..64)
        }
    }

    fn ints(&mut self) -> Vec<i64> {
        let n = self.rng.gen_range(0..=5);
        (0..n).map(|_| self.int()).collect()
    }

    /// An existing tensor name of the graph (or a hostile one).
    fn tensor_name(&mut self, m: &ModelProto) -> String {
        let g = m.graph.as_ref().expect("graph");
        let mut names: Vec<&String> = g.node.iter().flat_map(|n| n.input.iter().chain(&n.output)).collect();
        names.extend(g.initializer.iter().filter_map(|t| t.name.as_ref()));
        if names.is_empty() || self.rng.gen_bool(0.15) {
            return NAMES.choose(&mut self.rng).expect("names").to_string();
        }
        names.choose(&mut self.rng).map(|s| s.to_string()).unwrap_or_default()
    }

    fn mutate(&mut self, m: &mut ModelProto) {
        let kind = self.rng.gen_range(0..100);
        match kind {
            0..=29 => self.mutate_attribute(m),
            30..=41 => self.mutate_dims(m),
            42..=48 => self.mutate_dtype(m),
            49..=60 => self.mutate_names(m),
            61..=67 => self.mutate_opset(m),
            68..=75 => self.mutate_initializer_size(m),
            76..=87 => {
                let op = OPS.choose(&mut self.rng).expect("ops").to_string();
                if let Some(n) = self.node(m) {
                    n.op_type = Some(op);
                }
            }
            88..=94 => self.mutate_node_list(m),
            _ => self.mutate_external(m),
        }
    }

    fn node<'m>(&mut self, m: &'m mut ModelProto) -> Option<&'m mut NodeProto> {
        let g = m.graph.as_mut()?;
        if g.node.is_empty() {
            return None;
        }
        let i = self.rng.gen_range(0..g.node.len());
        g.node.get_mut(i)
    }

    fn mutate_attribute(&mut self, m: &mut ModelProto) {
        let action = self.rng.gen_range(0..6);
        let ints = self.ints();
        let int = self.int();
        let s = STRINGS.choose(&mut self.rng).expect("strings").as_bytes().to_vec();
        let name = ATTR_NAMES.choose(&mut self.rng).expect("attrs").to_string();
        let ty = self.rng.gen_range(0..15);
        let pick = self.rng.gen::<usize>();
        let Some(node) = self.node(m) else { return };
        if node.attribute.is_empty() || action == 5 {
            let mut a = AttributeProto { name: Some(name), ..Default::default() };
            match pick % 3 {
                0 => {
                    a.r#type = Some(AttributeType::Ints as i32);
                    a.ints = ints;
                }
                1 => {
                    a.r#type = Some(AttributeType::Int as i32);
                    a.i = Some(int);
                }
                _ => {
                    a.r#type = Some(AttributeType::String as i32);
                    a.s = Some(s);
                }
            }
            node.attribute.push(a);
            return;
        }
        let i = pick % node.attribute.len();
        let a = &mut node.attribute[i];
        match action {
            0 => a.ints = ints,
            1 => a.i = Some(int),
            2 => a.s = Some(s),
            3 => a.r#type = Some(ty),
            _ => {
                node.attribute.remove(i);
            }
        }
    }

    fn mutate_dims(&mut self, m: &mut ModelProto) {
        let v = self.int();
        let pick = self.rng.gen::<usize>();
        let on_input = self.rng.gen_bool(0.5);
        let g = m.graph.as_mut().expect("graph");
        if on_input {
            let Some(vi) = g.input.first_mut() else { return };
            let Some(TypeValue::TensorType(tt)) = vi.r#type.as_mut().and_then(|t| t.value.as_mut()) else { return };
            let Some(shape) = tt.shape.as_mut() else { return };
            match pick % 4 {
                0 if !shape.dim.is_empty() => {
                    let j = pick / 4 % shape.dim.len();
                    shape.dim[j].value = Some(DimValue::DimValue(v));
                }
                1 if !shape.dim.is_empty() => {
                    let j = pick / 4 % shape.dim.len();
                    shape.dim[j].value = Some(DimValue::DimParam("H".into()));
                }
                2 => {
                    shape.dim.pop();
                }
                _ => shape.dim.push(Default::default()),
            }
        } else if !g.initializer.is_empty() {
            let j = pick % g.initializer.len();
            let t = &mut g.initializer[j];
            if t.dims.is_empty() || pick % 5 == 0 {
                t.dims.push(v);
            } else {
                let k = pick / 7 % t.dims.len();
                t.dims[k] = v;
            }
        }
    }

    fn mutate_dtype(&mut self, m: &mut ModelProto) {
        let dt = self.rng.gen_range(0..30);
        let pick = self.rng.gen::<usize>();
        let g = m.graph.as_mut().expect("graph");
        if pick % 2 == 0 && !g.initializer.is_empty() {
            let j = pick / 2 % g.initializer.len();
            g.initializer[j].data_type = Some(dt);
        } else if let Some(Some(TypeValue::TensorType(tt))) =
            g.input.first_mut().and_then(|vi| vi.r#type.as_mut()).map(|t| t.value.as_mut())
        {
            tt.elem_type = Some(dt);
        }
    }

    fn mutate_names(&mut self, m: &mut ModelProto) {
        let other = self.tensor_name(m);
        let hostile = NAMES.choose(&mut self.rng).expect("names").to_string();
        let action = self.rng.gen_range(0..4);
        let pick = self.rng.gen::<usize>();
        let Some(node) = self.node(m) else { return };
        match action {
            0 if !node.input.is_empty() => {
                let k = pick % node.input.len();
                node.input[k] = other;
            }
            1 if !node.output.is_empty() => {
                let k = pick % node.output.len();
                node.output[k] = other;
            }
            2 => node.name = Some(hostile),
            _ => node.input.push(other),
        }
    }

    fn mutate_opset(&mut self, m: &mut ModelProto) {
        const VERSIONS: [i64; 16] = [0, 1, 6, 7, 9, 10, 11, 12, 13, 17, 18, 21, 26, 27, 99, -1];
        let v = *VERSIONS.choose(&mut self.rng).expect("versions");
        match self.rng.gen_range(0..4) {
            0 => {
                if let Some(o) = m.opset_import.first_mut() {
                    o.version = Some(v);
                }
            }
            1 => m.opset_import.push(OperatorSetIdProto { domain: Some("ai.onnx".into()), version: Some(v) }),
            2 => m.ir_version = Some(v.clamp(-1, 14)),
            _ => {
                if let Some(o) = m.opset_import.first_mut() {
                    o.domain = Some(NAMES.choose(&mut self.rng).expect("names").to_string());
                }
            }
        }
    }

    fn mutate_initializer_size(&mut self, m: &mut ModelProto) {
        let pick = self.rng.gen::<usize>();
        let g = m.graph.as_mut().expect("graph");
        if g.initializer.is_empty() {
            return;
        }
        let j = pick % g.initializer.len();
        let t = &mut g.initializer[j];
        match (pick / 3) % 3 {
            0 => {
                if let Some(raw) = t.raw_data.as_mut() {
                    let keep = pick % (raw.len() + 1);
                    raw.truncate(keep);
                }
            }
            1 => t.raw_data.get_or_insert_with(Vec::new).extend_from_slice(&[0u8; 4]),
            _ => {
                t.raw_data = None;
                t.float_data = vec![0.5; pick % 7];
            }
        }
    }

    fn mutate_node_list(&mut self, m: &mut ModelProto) {
        let pick = self.rng.gen::<usize>();
        let g = m.graph.as_mut().expect("graph");
        if g.node.is_empty() {
            return;
        }
        let i = pick % g.node.len();
        match (pick / 5) % 3 {
            0 => {
                g.node.remove(i);
            }
            1 => {
                let n = g.node[i].clone();
                g.node.push(n);
            }
            _ => {
                let j = (pick / 11) % g.node.len();
                g.node.swap(i, j);
            }
        }
    }

    fn mutate_external(&mut self, m: &mut ModelProto) {
        let loc = NAMES.choose(&mut self.rng).expect("names").to_string();
        let pick = self.rng.gen::<usize>();
        let g = m.graph.as_mut().expect("graph");
        if g.initializer.is_empty() {
            return;
        }
        let j = pick % g.initializer.len();
        let t = &mut g.initializer[j];
        t.raw_data = None;
        t.data_location = Some(DataLocation::External as i32);
        t.external_data = vec![StringStringEntryProto { key: Some("location".into()), value: Some(loc) }];
    }

    fn mutate_bytes(&mut self, bytes: &mut Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        match self.rng.gen_range(0..4) {
            0 => {
                let cut = self.rng.gen_range(0..bytes.len());
                bytes.truncate(cut);
            }
            1 => {
                for _ in 0..self.rng.gen_range(1..=8) {
                    let i = self.rng.gen_range(0..bytes.len());
                    bytes[i] ^= 1 << self.rng.gen_range(0..8);
                }
            }
            2 => {
                let i = self.rng.gen_range(0..bytes.len());
                let v: u8 = self.rng.gen();
                bytes[i] = v;
            }
            _ => {
                let i = self.rng.gen_range(0..bytes.len());
                let n = self.rng.gen_range(1..16);
                let junk: Vec<u8> = (0..n).map(|_| self.rng.gen()).collect();
                bytes.splice(i..i, junk);
            }
        }
    }
}

/// The committed corpus: every file under `fixtures/fuzz/`, sorted.
pub fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fuzz");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "onnx")).collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}
