//! Models importing opset 11 or 12 have their import raised to at least 17 in the gradient graph.
//! Squeeze, Unsqueeze and ReduceSum took their axes, and Split its sizes, as attributes before opset
//! 13 and as a second input from 13 on, with the same meaning: [`attributes_to_inputs`] moves them.

use std::collections::HashSet;

use crate::grad::path::is_default_domain;
use crate::onnx::builder::tensor_i64;
use crate::onnx::proto::{GraphProto, ModelProto};

/// Ops whose list attribute became their second input at opset 13, with that attribute's name.
const MOVED_AT_13: &[(&str, &str)] =
    &[("Squeeze", "axes"), ("Unsqueeze", "axes"), ("ReduceSum", "axes"), ("Split", "split")];

/// Rewrites, in place, the default-domain nodes of `model`'s graph and of its subgraphs (Loop and
/// If bodies import the same opset) that use the pre-13 attribute form of [`MOVED_AT_13`] into the
/// input form: the attribute's values become a new int64 initializer of the graph holding the node.
pub(crate) fn attributes_to_inputs(model: &mut ModelProto) {
    let Some(g) = model.graph.as_mut() else { return };
    let mut taken = HashSet::new();
    collect_names(g, &mut taken);
    rewrite(g, &mut taken);
}

/// Every tensor name used anywhere in `g` and its subgraphs, so new names shadow nothing.
pub(super) fn collect_names(g: &GraphProto, taken: &mut HashSet<String>) {
    for n in &g.node {
        taken.extend(n.input.iter().chain(&n.output).cloned());
        for sub in n.attribute.iter().flat_map(|a| a.g.iter().chain(&a.graphs)) {
            collect_names(sub, taken);
        }
    }
    taken.extend(g.initializer.iter().filter_map(|t| t.name.clone()));
    taken.extend(g.input.iter().chain(&g.output).filter_map(|v| v.name.clone()));
}

fn rewrite(g: &mut GraphProto, taken: &mut HashSet<String>) {
    let mut added = Vec::new();
    for n in g.node.iter_mut() {
        for sub in n.attribute.iter_mut().flat_map(|a| a.g.iter_mut().chain(a.graphs.iter_mut())) {
            rewrite(sub, taken);
        }
        if !is_default_domain(n) {
            continue;
        }
        let Some(&(_, attr)) = MOVED_AT_13.iter().find(|(op, _)| n.op_type.as_deref() == Some(op)) else {
            continue;
        };
        let Some(pos) = n.attribute.iter().position(|a| a.name.as_deref() == Some(attr)) else {
            continue;
        };
        let values = n.attribute.remove(pos).ints;
        let name = (0..)
            .map(|k| format!("{attr}__opset13_{k}"))
            .find(|c| !taken.contains(c))
            .expect("an unused name among infinitely many");
        taken.insert(name.clone());
        added.push(tensor_i64(&name, &[values.len() as i64], &values));
        n.input.truncate(1);
        n.input.push(name);
    }
    g.initializer.extend(added);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::builder::attr_ints;
    use crate::onnx::proto::{AttributeProto, NodeProto};

    fn node(op: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
        NodeProto {
            op_type: Some(op.into()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            attribute,
            ..Default::default()
        }
    }

    #[test]
    fn attributes_move_to_fresh_initializers_in_the_graph_and_its_subgraphs() {
        let body = GraphProto {
            node: vec![node("Unsqueeze", &["a"], "b", vec![attr_ints("axes", &[0])])],
            ..Default::default()
        };
        let branch = AttributeProto { name: Some("then_branch".into()), g: Some(body), ..Default::default() };
        let graph = GraphProto {
            node: vec![
                // The name the rewrite would pick first is taken already.
                node("Squeeze", &["x"], "axes__opset13_0", vec![attr_ints("axes", &[1, 2])]),
                node("If", &["c"], "d", vec![branch]),
                node("Squeeze", &["x"], "e", vec![]),
                node("Relu", &["x"], "f", vec![attr_ints("axes", &[3])]),
            ],
            ..Default::default()
        };
        let mut m = ModelProto { graph: Some(graph), ..Default::default() };
        attributes_to_inputs(&mut m);
        let g = m.graph.unwrap();
        assert_eq!(g.node[0].input, ["x", "axes__opset13_1"]);
        assert!(g.node[0].attribute.is_empty());
        assert_eq!(g.initializer.len(), 1);
        assert_eq!(g.initializer[0].name.as_deref(), Some("axes__opset13_1"));
        assert_eq!(g.initializer[0].dims, [2]);
        assert_eq!(g.initializer[0].int64_data, [1, 2]);
        let body = g.node[1].attribute[0].g.as_ref().unwrap();
        assert_eq!(body.node[0].input, ["a", "axes__opset13_2"]);
        assert_eq!(body.initializer[0].int64_data, [0]);
        // No attribute: squeeze every unit axis, in both forms. Other ops keep their attributes.
        assert_eq!(g.node[2].input, ["x"]);
        assert_eq!(g.node[3].attribute.len(), 1);
    }
}
