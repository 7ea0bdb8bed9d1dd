//! The ONNX protobuf messages, generated at build time from the vendored `proto/onnx.proto`
//! (onnx 1.19.1) by prost and protox.
#![allow(missing_docs, clippy::all)]

include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
