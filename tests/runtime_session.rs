//! ONNX Runtime loading and sessions: library discovery errors, running a small committed model,
//! input validation, and `--device cuda` failing clearly where no CUDA provider exists.

use std::path::Path;

use aegis_audit::runtime::{self, Device, RuntimeError, Session, SessionConfig, TensorData};

fn model() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/runtime/scale.onnx")).unwrap()
}

#[test]
fn missing_explicit_library_is_named() {
    let err = runtime::find_library(Some(Path::new("/nonexistent/libonnxruntime.so"))).unwrap_err();
    assert!(matches!(err, RuntimeError::LibraryMissing { .. }));
    assert!(err.to_string().contains("/nonexistent/libonnxruntime.so"), "{err}");
    assert!(err.to_string().contains("--ort-lib"), "{err}");
}

#[test]
fn runs_a_model_and_returns_named_outputs() {
    runtime::init(None).expect("ONNX Runtime (run scripts/setup.sh)");
    let mut session = Session::from_bytes(&model(), &SessionConfig::default()).unwrap();
    assert_eq!(session.input_names(), vec!["x".to_string()]);
    assert_eq!(session.device(), Device::Cpu);
    let x = TensorData::f32(vec![2, 3], vec![1.0, 1.0, 1.0, 0.5, -1.0, 2.0]);
    let out = session.run(&[("x", x)]).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, "y");
    assert_eq!(out[0].1.shape, vec![2, 3]);
    assert_eq!(out[0].1.as_f32().unwrap(), &[1.0, 2.0, 3.0, 0.5, -2.0, 6.0]);
}

#[test]
fn wrong_input_length_is_an_error_not_a_panic() {
    runtime::init(None).expect("ONNX Runtime (run scripts/setup.sh)");
    let mut session = Session::from_bytes(&model(), &SessionConfig::default()).unwrap();
    let err = session.run(&[("x", TensorData::f32(vec![2, 3], vec![1.0; 5]))]).unwrap_err();
    assert!(err.to_string().contains("needs 6 values, got 5"), "{err}");
    let err = session.run(&[("x", TensorData::f32(vec![1, 4], vec![1.0; 4]))]).unwrap_err();
    assert!(matches!(err, RuntimeError::Run(_)), "{err}");
}

#[test]
fn garbage_bytes_are_a_session_error() {
    runtime::init(None).expect("ONNX Runtime (run scripts/setup.sh)");
    let err = Session::from_bytes(b"not an onnx model", &SessionConfig::default()).unwrap_err();
    assert!(matches!(err, RuntimeError::Session(_)), "{err}");
}

#[test]
fn cuda_without_provider_fails_and_auto_falls_back() {
    runtime::init(None).expect("ONNX Runtime (run scripts/setup.sh)");
    // The CPU wheel has no CUDA provider library: `cuda` must fail, `auto` must run on CPU.
    let has_cuda = runtime::find_library(None)
        .ok()
        .and_then(|(p, _)| p.parent().map(|d| d.join("libonnxruntime_providers_cuda.so").exists()))
        .unwrap_or(false);
    if has_cuda {
        eprintln!("CUDA provider library present; this check needs the CPU-only wheel");
        return;
    }
    let cfg = SessionConfig { device: Device::Cuda, intra_threads: 1 };
    let err = Session::from_bytes(&model(), &cfg).unwrap_err();
    assert!(matches!(err, RuntimeError::CudaUnavailable(_)), "{err}");
    let cfg = SessionConfig { device: Device::Auto, intra_threads: 1 };
    let session = Session::from_bytes(&model(), &cfg).unwrap();
    assert_eq!(session.device(), Device::Cpu);
}
