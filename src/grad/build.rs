//! The gradient-graph driver: prunes the forward graph to what logits and features need, renames the
//! image input to `x`, appends the per-example cross-entropy and its seed, then walks the
//! input→logits path ([`DiffPath`]) in reverse topological order applying each op's backward rule.
//! Also the static shapes the rules need ([`static_shapes`]), computed by `onnx::infer`.

use std::collections::{HashMap, HashSet};

use crate::grad::path::{self, DiffPath};
use crate::grad::rules::{Consts, Ctx};
use crate::grad::shapes::{ShapeMap, TensorShape};
use crate::grad::GradError;
use crate::onnx::builder::{attr_int, Dim, GraphBuilder};
use crate::onnx::graph::{node_label, Graph};
use crate::onnx::proto::tensor_proto::DataType;
use crate::onnx::proto::{ModelProto, NodeProto};
use crate::onnx::shape::{declared_elem_type, declared_shape};
use crate::onnx::tensor::elem_type_name;
use crate::onnx::validate::{is_standard_domain, standard_opset};

/// Names of the tensors that define the gradient graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GradSpec {
    /// The image input (a graph input, float32 [N, C, H, W]).
    pub input: String,
    /// The logits tensor ([N, K]); nodes after it (such as a final Softmax) are dropped.
    pub logits: String,
    /// The feature tensor, exported as the `features` output.
    pub features: String,
}

/// Names of the exported graph's inputs and outputs.
const FIXED_NAMES: [&str; 6] = ["x", "y", "logits", "features", "loss", "grad"];

/// Builds the gradient graph of `model`: inputs `x` (the image input, renamed) and `y` (int64 `[N]`
/// labels); outputs `logits`, `features`, `loss` (per-example cross-entropy, `[N]`) and `grad`
/// (dloss/dx, shaped like `x`). `shapes` must hold the shapes of the tensors on the input→logits
/// path and of their inputs ([`static_shapes`], completed by a probe where static inference
/// cannot tell). Building runs nothing.
///
/// Opsets: a model importing opset 13 or later has its import raised to at least
/// [`MIN_OUTPUT_OPSET`](crate::grad::MIN_OUTPUT_OPSET) (every op the rules emit and every supported op keeps its meaning between
/// 13 and 17); opset 11–12 is raised too (Squeeze, Unsqueeze, ReduceSum and Split rewritten to
/// their opset-13 input form) unless a kept node is one of the ops whose meaning changed at 13
/// (Softmax, LogSoftmax, Hardmax); older opsets are rejected.
pub fn build(model: &ModelProto, spec: &GradSpec, shapes: &ShapeMap) -> Result<ModelProto, GradError> {
    let (mut renamed, spec, shapes) = rename_fixed(model, spec, shapes)?;
    if standard_opset(&renamed).is_some_and(|v| v < 13) {
        crate::grad::opset::attributes_to_inputs(&mut renamed);
    }
    let model = &renamed;
    let spec = &spec;
    let shapes = &shapes;
    let graph = model.graph.as_ref().ok_or_else(|| GradError::BadModel("the model has no graph".into()))?;
    let g = Graph::new(graph);
    let plan = Plan::new(&g, spec)?;
    let opset = standard_opset(model)
        .ok_or_else(|| GradError::Opset("the model imports no default-domain ONNX opset".into()))?;
    let opset =
        path::output_opset(opset, (0..graph.node.len()).filter(|&i| plan.kept[i]).map(|i| (i, &graph.node[i])))?;

    let mut b = GraphBuilder::new();
    for n in &FIXED_NAMES {
        b.reserve(n);
    }
    for n in &graph.node {
        for t in n.input.iter().chain(&n.output) {
            b.reserve(t);
        }
    }
    for t in &graph.initializer {
        b.reserve(t.name.as_deref().unwrap_or(""));
    }
    for v in &graph.input {
        b.reserve(v.name.as_deref().unwrap_or(""));
    }

    // Forward nodes, in topological order; MaxPool nodes on the path also output their Indices.
    let mut forward: Vec<NodeProto> = Vec::new();
    for &i in &plan.path.order {
        if !plan.kept[i] {
            continue;
        }
        let mut n = graph.node[i].clone();
        if plan.path.on_path[i] && n.op_type.as_deref() == Some("MaxPool") {
            if n.output.len() < 2 {
                n.output.resize(2, String::new());
            }
            if n.output[1].is_empty() {
                n.output[1] = b.fresh("maxpool_indices");
            }
        }
        forward.push(n);
    }

    let consts = Consts {
        tensors: graph
            .initializer
            .iter()
            .map(|t| (t.name.as_deref().unwrap_or(""), t))
            .chain(forward.iter().filter_map(|n| {
                (n.op_type.as_deref() == Some("Constant"))
                    .then(|| {
                        n.attribute
                            .iter()
                            .find(|a| a.name.as_deref() == Some("value"))
                            .and_then(|a| a.t.as_ref())
                            .map(|t| (n.output[0].as_str(), t))
                    })
                    .flatten()
            }))
            .collect(),
    };

    for n in &forward {
        b.push_node(n.clone());
    }

    // Loss and seed: ls = LogSoftmax(logits); g = ls[y]; loss = −g;
    // seed = Softmax(logits) − OneHot(y) = ScatterElements(Exp(ls), y, Exp(g) − 1).
    let logits = spec.logits.as_str();
    let y_col_shape = b.const_i64("y_col", &[2], &[-1, 1]);
    let y_col = b.op("Reshape", &["y", &y_col_shape], vec![]);
    let ls = b.op("LogSoftmax", &[logits], vec![attr_int("axis", 1)]);
    let g = b.op("GatherElements", &[&ls, &y_col], vec![attr_int("axis", 1)]);
    let flat = b.const_i64("flat", &[1], &[-1]);
    let g_flat = b.op("Reshape", &[&g, &flat], vec![]);
    b.op_named("Neg", &[&g_flat], &["loss"], vec![]);
    let p = b.op("Exp", &[&ls], vec![]);
    let pg = b.op("Exp", &[&g], vec![]);
    let one = b.const_f32("one", &[], &[1.0]);
    let upd = b.op("Sub", &[&pg, &one], vec![]);
    let seed = b.op("ScatterElements", &[&p, &y_col, &upd], vec![attr_int("axis", 1)]);

    // Backward pass.
    let mut grads: HashMap<String, Vec<String>> = HashMap::new();
    grads.insert(spec.logits.clone(), vec![seed]);
    let fwd_by_index: HashMap<usize, &NodeProto> =
        plan.path.order.iter().filter(|&&i| plan.kept[i]).zip(&forward).map(|(&i, n)| (i, n)).collect();
    for &i in plan.path.order.iter().rev() {
        if !plan.path.on_path[i] {
            continue;
        }
        let node = fwd_by_index[&i];
        let mut dy = Vec::with_capacity(node.output.len());
        for o in &node.output {
            dy.push(grads.remove(o).map(|list| sum(&mut b, list)));
        }
        if dy.iter().all(Option::is_none) {
            continue;
        }
        let op = node.op_type.clone().unwrap_or_default();
        let rule = path::rule(op.as_str())
            .ok_or_else(|| GradError::UnsupportedOp { node: node_label(node, i), op: op.clone() })?;
        let needs = node.input.iter().map(|t| !t.is_empty() && plan.path.from_x.contains(t.as_str())).collect();
        let mut ctx = Ctx { node, index: i, dy, needs, shapes, consts: &consts, b: &mut b };
        let dx = rule(&mut ctx)?;
        for (t, g) in node.input.iter().zip(dx) {
            if let Some(g) = g {
                if plan.path.from_x.contains(t.as_str()) {
                    grads.entry(t.clone()).or_default().push(g);
                }
            }
        }
    }
    let gx = grads.remove(&spec.input).ok_or_else(|| {
        GradError::BadModel(format!("the logits '{}' do not depend on the input '{}'", spec.logits, spec.input))
    })?;
    let gx = sum(&mut b, gx);
    b.op_named("Identity", &[&gx], &["grad"], vec![]);
    b.op_named("Identity", &[logits], &["logits"], vec![]);
    b.op_named("Identity", &[&spec.features], &["features"], vec![]);

    // Inputs, outputs, initializers of the kept nodes; the image input becomes `x`.
    let used: HashSet<&str> = b.graph.node.iter().flat_map(crate::onnx::graph::node_inputs).collect();
    let initializers: Vec<_> =
        graph.initializer.iter().filter(|t| used.contains(t.name.as_deref().unwrap_or(""))).cloned().collect();
    for t in initializers {
        b.initializer(t);
    }
    b.input("x", DataType::Float, &plan.x_dims);
    b.input("y", DataType::Int64, &[Dim::Param("N".into())]);
    let out_dims = |t: &str| {
        shapes.get(t).map(|s| {
            s.dims
                .iter()
                .zip(&s.batch)
                .map(|(&d, &b)| if b { Dim::Param("N".into()) } else { Dim::Fixed(d) })
                .collect::<Vec<_>>()
        })
    };
    b.output("logits", DataType::Float, out_dims(&spec.logits).as_deref());
    b.output("features", DataType::Float, out_dims(&spec.features).as_deref());
    b.output("loss", DataType::Float, Some(&[Dim::Param("N".into())]));
    b.output("grad", DataType::Float, Some(&plan.x_dims));

    let ir = model.ir_version.unwrap_or(8).max(8);
    let mut out = b.into_model("aegis_grad", opset, ir);
    // Keep the model's other domain imports (nodes outside the path may use them).
    out.opset_import
        .extend(model.opset_import.iter().filter(|o| !is_standard_domain(o.domain.as_deref().unwrap_or(""))).cloned());
    Ok(out)
}

/// The sum of gradient contributions (one `Sum` node when there are several).
fn sum(b: &mut GraphBuilder, mut list: Vec<String>) -> String {
    if list.len() == 1 {
        return list.remove(0);
    }
    let refs: Vec<&str> = list.iter().map(String::as_str).collect();
    b.op("Sum", &refs, vec![])
}

/// The tensors whose shapes [`build`] needs: inputs and outputs of every node on the input→logits
/// path, and the logits and features, minus initializers (whose shapes are read from the model).
pub fn shape_tensors(model: &ModelProto, spec: &GradSpec) -> Result<Vec<String>, GradError> {
    let graph = model.graph.as_ref().ok_or_else(|| GradError::BadModel("the model has no graph".into()))?;
    let g = Graph::new(graph);
    let plan = Plan::new(&g, spec)?;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let named = plan.path.nodes().flat_map(|i| graph.node[i].input.iter().chain(&graph.node[i].output));
    for t in named.chain([&spec.logits, &spec.features]) {
        if !t.is_empty() && g.initializer(t).is_none() && seen.insert(t.as_str()) {
            out.push(t.clone());
        }
    }
    Ok(out)
}

/// The static shapes [`build`] needs, inferred from the model alone (`onnx::infer`, at batch sizes
/// 1 and 2), with the initializers' shapes; and the names of the needed tensors whose shapes static
/// inference could not determine (a caller probes those with ONNX Runtime and adds them). A node
/// whose attributes or inputs give an impossible shape is refused here, naming it.
pub fn static_shapes(model: &ModelProto, spec: &GradSpec) -> Result<(ShapeMap, Vec<String>), GradError> {
    let needed = shape_tensors(model, spec)?;
    let graph = model.graph.as_ref().ok_or_else(|| GradError::BadModel("the model has no graph".into()))?;
    let opset = standard_opset(model)
        .ok_or_else(|| GradError::Opset("the model imports no default-domain ONNX opset".into()))?;
    let inferred = crate::onnx::static_shapes(graph, opset, &spec.input, Some(&spec.logits))?;
    let mut shapes = ShapeMap::new();
    let mut missing = Vec::new();
    for t in needed {
        match inferred.get(&t) {
            Some((s1, s2)) if s1.len() == s2.len() => {
                let batch = s1.iter().zip(s2).map(|(a, b)| a != b).collect();
                shapes.insert(&t, TensorShape { dims: s2.to_vec(), batch });
            }
            _ => missing.push(t),
        }
    }
    add_initializer_shapes(model, &mut shapes);
    Ok((shapes, missing))
}

/// Adds the initializers' shapes (fixed) to a probed map.
pub fn add_initializer_shapes(model: &ModelProto, shapes: &mut ShapeMap) {
    if let Some(g) = &model.graph {
        for t in &g.initializer {
            if let Some(n) = &t.name {
                shapes.insert(n, crate::grad::shapes::TensorShape::fixed(&t.dims));
            }
        }
    }
}

/// Which nodes are kept, which are on the input→logits path, and in what order.
struct Plan<'a> {
    path: DiffPath<'a>,
    kept: Vec<bool>,
    x_dims: Vec<Dim>,
}

impl<'a> Plan<'a> {
    fn new(g: &Graph<'a>, spec: &GradSpec) -> Result<Plan<'a>, GradError> {
        let graph = g.proto;
        let xin = graph
            .input
            .iter()
            .find(|v| v.name.as_deref() == Some(spec.input.as_str()))
            .ok_or_else(|| GradError::MissingTensor { name: spec.input.clone(), role: "image input" })?;
        let input: &'a str = xin.name.as_deref().unwrap_or("");
        let elem = declared_elem_type(xin)
            .ok_or_else(|| GradError::BadModel(format!("input '{}' is not a tensor", spec.input)))?;
        if elem != DataType::Float as i32 {
            return Err(GradError::BadModel(format!(
                "input '{}' has element type {}; float32 is required",
                spec.input,
                elem_type_name(elem)
            )));
        }
        // The batch (first) dimension becomes `N`; others keep their declared size or name.
        let x_dims: Vec<Dim> = declared_shape(xin)
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, d)| match (i, d) {
                (0, _) => Dim::Param("N".into()),
                (_, Dim::Unknown) => Dim::Param(format!("d{i}")),
                (_, d) => d,
            })
            .collect();
        for (name, role) in [(&spec.logits, "logits"), (&spec.features, "features")] {
            if g.producer(name).is_none() {
                return Err(GradError::MissingTensor { name: name.clone(), role });
            }
        }
        let path = DiffPath::new(g, input, &spec.logits)?;
        let to_features = path::ancestors(g, &spec.features);
        let kept: Vec<bool> = path.to_logits.iter().zip(&to_features).map(|(&a, &b)| a || b).collect();
        for i in path.nodes() {
            let n = g.node(i);
            if !path::is_default_domain(n) {
                return Err(GradError::UnsupportedOp {
                    node: node_label(n, i),
                    op: format!("{}:{}", n.domain.as_deref().unwrap_or(""), n.op_type.as_deref().unwrap_or("")),
                });
            }
        }
        Ok(Plan { path, kept, x_dims })
    }
}

/// A copy of the model, spec and shapes where the image input is named `x` and no other tensor
/// carries one of the exported graph's fixed names.
fn rename_fixed(
    model: &ModelProto,
    spec: &GradSpec,
    shapes: &ShapeMap,
) -> Result<(ModelProto, GradSpec, ShapeMap), GradError> {
    let graph = model.graph.as_ref().ok_or_else(|| GradError::BadModel("the model has no graph".into()))?;
    let mut names: HashSet<String> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().chain(&n.output).cloned())
        .chain(graph.initializer.iter().filter_map(|t| t.name.clone()))
        .chain(graph.input.iter().filter_map(|v| v.name.clone()))
        .chain(graph.output.iter().filter_map(|v| v.name.clone()))
        .collect();
    let mut map: HashMap<String, String> = HashMap::new();
    for fixed in FIXED_NAMES {
        if names.contains(fixed) && spec.input != fixed {
            let mut k = 0;
            let fresh = loop {
                let c = format!("{fixed}__orig{k}");
                if !names.contains(&c) {
                    break c;
                }
                k += 1;
            };
            names.insert(fresh.clone());
            map.insert(fixed.to_string(), fresh);
        }
    }
    if spec.input != "x" {
        map.insert(spec.input.clone(), "x".to_string());
    }
    let rn = |t: &str| map.get(t).cloned().unwrap_or_else(|| t.to_string());
    let mut m = model.clone();
    let g = m.graph.as_mut().expect("checked above");
    for n in &mut g.node {
        for t in n.input.iter_mut().chain(n.output.iter_mut()) {
            *t = rn(t);
        }
    }
    for t in &mut g.initializer {
        t.name = t.name.as_deref().map(rn);
    }
    for v in g.input.iter_mut().chain(g.output.iter_mut()).chain(g.value_info.iter_mut()) {
        v.name = v.name.as_deref().map(rn);
    }
    let spec2 = GradSpec { input: rn(&spec.input), logits: rn(&spec.logits), features: rn(&spec.features) };
    let mut shapes2 = shapes.clone();
    for (from, to) in &map {
        if let Some(s) = shapes.get(from) {
            shapes2.insert(to, s.clone());
        }
    }
    Ok((m, spec2, shapes2))
}
