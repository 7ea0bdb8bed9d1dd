//! Builds small ONNX models in test code with the prost types, writes them to temporary
//! directories, and runs the `aegis-audit` binary on them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use aegis_audit::onnx::proto::attribute_proto::AttributeType;
use aegis_audit::onnx::proto::tensor_proto::{DataLocation, DataType};
use aegis_audit::onnx::proto::tensor_shape_proto::dimension::Value as DimValue;
use aegis_audit::onnx::proto::tensor_shape_proto::Dimension;
use aegis_audit::onnx::proto::type_proto::{Tensor, Value as TypeValue};
use aegis_audit::onnx::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

/// A declared dimension: a number, or a symbolic name.
pub enum D {
    /// Fixed size.
    N(i64),
    /// Symbolic.
    S(&'static str),
}

pub fn value_info(name: &str, dims: &[D]) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(TypeValue::TensorType(Tensor {
                elem_type: Some(DataType::Float as i32),
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            value: Some(match d {
                                D::N(v) => DimValue::DimValue(*v),
                                D::S(s) => DimValue::DimParam((*s).into()),
                            }),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn attr_i(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}

pub fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: v.to_vec(),
        ..Default::default()
    }
}

pub fn attr_t(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Tensor as i32),
        t: Some(t),
        ..Default::default()
    }
}

/// A float tensor with deterministic small values, stored as raw_data.
pub fn tensor_f32(name: &str, dims: &[i64]) -> TensorProto {
    let n: i64 = dims.iter().product();
    let raw: Vec<u8> = (0..n).flat_map(|i| (((i % 7) as f32 - 3.0) * 0.01).to_le_bytes()).collect();
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(DataType::Float as i32),
        raw_data: Some(raw),
        ..Default::default()
    }
}

pub fn tensor_i64(name: &str, values: &[i64]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: vec![values.len() as i64],
        data_type: Some(DataType::Int64 as i32),
        int64_data: values.to_vec(),
        ..Default::default()
    }
}

/// A float tensor whose data lives in an external file.
pub fn tensor_external(name: &str, dims: &[i64], location: &str, extra: &[(&str, &str)]) -> TensorProto {
    let mut entries = vec![StringStringEntryProto { key: Some("location".into()), value: Some(location.into()) }];
    for (k, v) in extra {
        entries.push(StringStringEntryProto { key: Some((*k).into()), value: Some((*v).into()) });
    }
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(DataType::Float as i32),
        external_data: entries,
        data_location: Some(DataLocation::External as i32),
        ..Default::default()
    }
}

pub fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        name: Some(name.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}

/// A model around `graph` with IR 8 and opset 17.
pub fn model(graph: GraphProto) -> ModelProto {
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(17) }],
        producer_name: Some("aegis-audit tests".into()),
        graph: Some(graph),
        ..Default::default()
    }
}

/// Conv(8, 3x3, pad 1) → Relu → MaxPool(2) → Flatten → Gemm(10), input [N, 1, 8, 8].
pub fn plain_cnn() -> ModelProto {
    plain_cnn_of_side(8)
}

/// [`plain_cnn`] on a `side`×`side` grayscale input (`side` even).
pub fn plain_cnn_of_side(side: i64) -> ModelProto {
    let pooled = side / 2;
    let graph = GraphProto {
        name: Some("plain_cnn".into()),
        node: vec![
            node("Conv", "conv1", &["x", "w1", "b1"], &["c1"], vec![attr_ints("pads", &[1, 1, 1, 1])]),
            node("Relu", "relu1", &["c1"], &["r1"], vec![]),
            node(
                "MaxPool",
                "pool1",
                &["r1"],
                &["p1"],
                vec![attr_ints("kernel_shape", &[2, 2]), attr_ints("strides", &[2, 2])],
            ),
            node("Flatten", "flatten", &["p1"], &["f"], vec![attr_i("axis", 1)]),
            node("Gemm", "fc", &["f", "wf", "bf"], &["logits"], vec![attr_i("transB", 1)]),
        ],
        initializer: vec![
            tensor_f32("w1", &[8, 1, 3, 3]),
            tensor_f32("b1", &[8]),
            tensor_f32("wf", &[10, 8 * pooled * pooled]),
            tensor_f32("bf", &[10]),
        ],
        input: vec![value_info("x", &[D::S("N"), D::N(1), D::N(side), D::N(side)])],
        output: vec![value_info("logits", &[D::S("N"), D::N(10)])],
        ..Default::default()
    };
    model(graph)
}

/// A fresh temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// Writes `m` as `dir/name` and returns the path.
pub fn write_model(dir: &Path, name: &str, m: &ModelProto) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, aegis_audit::onnx::encode(m)).expect("write model");
    path
}

/// Runs `aegis-audit inspect` with `args` after the model path.
pub fn inspect(path: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_aegis-audit"))
        .arg("inspect")
        .arg(path)
        .args(args)
        .output()
        .expect("run aegis-audit")
}

/// Asserts the binary failed with exit code 2, a single-line error containing `needle`, and no
/// panic; returns stderr.
pub fn assert_input_error(out: &Output, needle: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "exit code; stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert!(stderr.starts_with("aegis-audit: error: "), "stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(needle), "expected '{needle}' in: {stderr}");
    stderr
}
