//! A session over one model: execution provider choice, thread count, and running it on plain
//! `Vec` + shape tensors (the boundary keeps `ort`'s types out of the rest of the crate).

use std::borrow::Cow;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

use ort::ep;
use ort::logging::LogLevel;
use ort::session::{builder::GraphOptimizationLevel, Session as OrtSession, SessionInputValue};
use ort::value::{DynValue, TensorElementType, TensorRef, ValueType};

use super::error_text::clean;
use super::{library, RuntimeError};

/// Runs `f` (a call into `ort`), turning a panic inside the bindings into
/// [`RuntimeError::Internal`] instead of unwinding through the caller. `what` names the call.
fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, RuntimeError>) -> Result<T, RuntimeError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            // `ort` panics with "infallible: Error { code: .., message: \"..\", ptr: .. }": keep the message.
            let msg = match msg.split_once("message: \"").and_then(|(_, m)| m.split_once('"')) {
                Some((m, _)) => m.to_string(),
                None => msg,
            };
            Err(RuntimeError::Internal(format!("{what}: {}", clean(&msg))))
        }
    }
}

/// Silences ONNX Runtime's own logging (its coloured warning and error lines on stderr): the
/// environment logs fatal errors only, and so does every session (see `Session::build`). Errors
/// still reach aegis-audit as return values and are reported as its own one-line messages.
fn silence_logging(env: &ort::environment::Environment) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| env.set_log_level(LogLevel::Fatal));
}

/// Which execution provider runs the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Device {
    /// The CPU execution provider.
    #[default]
    Cpu,
    /// The CUDA execution provider; session creation fails if it cannot be registered.
    Cuda,
    /// CUDA when it can be registered, otherwise CPU (the session says which in [`Session::device`]).
    Auto,
}

/// How sessions are created.
#[derive(Debug, Clone, Default)]
pub struct SessionConfig {
    /// Execution provider.
    pub device: Device,
    /// Intra-op threads; 0 lets ONNX Runtime choose (one per core).
    pub intra_threads: usize,
}

/// Tensor values of the element types aegis-audit exchanges with ONNX Runtime.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// float32.
    F32(Vec<f32>),
    /// float64.
    F64(Vec<f64>),
    /// int64.
    I64(Vec<i64>),
}

impl Values {
    fn len(&self) -> usize {
        match self {
            Values::F32(v) => v.len(),
            Values::F64(v) => v.len(),
            Values::I64(v) => v.len(),
        }
    }
}

/// A dense tensor: row-major values and their shape.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorData {
    /// Dimensions.
    pub shape: Vec<i64>,
    /// Values, `shape.iter().product()` of them.
    pub values: Values,
}

impl TensorData {
    /// A float32 tensor.
    pub fn f32(shape: Vec<i64>, values: Vec<f32>) -> Self {
        TensorData { shape, values: Values::F32(values) }
    }

    /// An int64 tensor.
    pub fn i64(shape: Vec<i64>, values: Vec<i64>) -> Self {
        TensorData { shape, values: Values::I64(values) }
    }

    /// The float32 values, or `None` for another element type.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.values {
            Values::F32(v) => Some(v),
            _ => None,
        }
    }

    /// Consumes the tensor, returning its float32 values, or `None` for another element type.
    pub fn into_f32(self) -> Option<Vec<f32>> {
        match self.values {
            Values::F32(v) => Some(v),
            _ => None,
        }
    }
}

/// An ONNX Runtime session over one in-memory model.
pub struct Session {
    inner: OrtSession,
    device: Device,
    output_names: Vec<String>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("device", &self.device).field("outputs", &self.output_names).finish()
    }
}

impl Session {
    /// Creates a session from serialized ONNX bytes. `Device::Auto` falls back to CPU when CUDA cannot
    /// be registered; `Device::Cuda` fails instead. ONNX Runtime must have been initialised with
    /// [`super::init`] (or it is initialised here with the default search).
    pub fn from_bytes(model: &[u8], config: &SessionConfig) -> Result<Session, RuntimeError> {
        let env = library::environment()?;
        silence_logging(env);
        match config.device {
            Device::Cpu => Self::build(env, model, config, false),
            Device::Cuda => Self::build(env, model, config, true).map_err(|e| match e {
                RuntimeError::Session(msg) => RuntimeError::CudaUnavailable(msg),
                other => other,
            }),
            Device::Auto => Self::build(env, model, config, true).or_else(|err| {
                if let RuntimeError::Internal(_) = err {
                    return Err(err);
                }
                eprintln!("aegis-audit: notice: CUDA execution provider unavailable ({err}); running on CPU");
                Self::build(env, model, config, false)
            }),
        }
    }

    fn build(
        env: &ort::environment::Environment,
        model: &[u8],
        config: &SessionConfig,
        cuda: bool,
    ) -> Result<Session, RuntimeError> {
        guarded("creating an ONNX Runtime session", || {
            let err = |e: ort::Error<_>| RuntimeError::Session(clean(&e.to_string()));
            let mut builder = OrtSession::builder(env)
                .map_err(|e| RuntimeError::Session(clean(&e.to_string())))?
                .with_log_level(LogLevel::Fatal)
                .map_err(err)?
                .with_optimization_level(GraphOptimizationLevel::Level3)
                .map_err(err)?;
            if config.intra_threads > 0 {
                builder = builder.with_intra_threads(config.intra_threads).map_err(err)?;
            }
            if cuda {
                builder =
                    builder.with_execution_providers([ep::CUDA::default().build().error_on_failure()]).map_err(err)?;
            }
            let inner = builder.commit_from_memory(model).map_err(|e| RuntimeError::Session(clean(&e.to_string())))?;
            let output_names = inner.outputs().iter().map(|o| o.name().to_string()).collect();
            Ok(Session { inner, device: if cuda { Device::Cuda } else { Device::Cpu }, output_names })
        })
    }

    /// The execution provider in use (`Cpu` or `Cuda`, never `Auto`).
    pub fn device(&self) -> Device {
        self.device
    }

    /// Names of the graph inputs, in order.
    pub fn input_names(&self) -> Vec<String> {
        self.inner.inputs().iter().map(|o| o.name().to_string()).collect()
    }

    /// Names of the graph outputs, in order.
    pub fn output_names(&self) -> &[String] {
        &self.output_names
    }

    /// Runs the model on named inputs and returns every graph output, in graph order.
    pub fn run(&mut self, inputs: &[(&str, TensorData)]) -> Result<Vec<(String, TensorData)>, RuntimeError> {
        guarded("running an ONNX Runtime session", || self.run_unguarded(inputs))
    }

    fn run_unguarded(&mut self, inputs: &[(&str, TensorData)]) -> Result<Vec<(String, TensorData)>, RuntimeError> {
        let mut feed: Vec<(Cow<'_, str>, SessionInputValue<'_>)> = Vec::with_capacity(inputs.len());
        for (name, tensor) in inputs {
            let expected: usize = tensor.shape.iter().map(|&d| d.max(0) as usize).product();
            if expected != tensor.values.len() {
                return Err(RuntimeError::InputShape {
                    name: name.to_string(),
                    shape: tensor.shape.clone(),
                    expected,
                    got: tensor.values.len(),
                });
            }
            let shape = tensor.shape.clone();
            let run = |e: ort::Error| RuntimeError::Run(format!("input '{name}': {}", clean(&e.to_string())));
            let value: SessionInputValue<'_> = match &tensor.values {
                Values::F32(v) => TensorRef::from_array_view((shape, v.as_slice())).map_err(run)?.into(),
                Values::F64(v) => TensorRef::from_array_view((shape, v.as_slice())).map_err(run)?.into(),
                Values::I64(v) => TensorRef::from_array_view((shape, v.as_slice())).map_err(run)?.into(),
            };
            feed.push((Cow::Borrowed(*name), value));
        }
        let outputs = self.inner.run(feed).map_err(|e| RuntimeError::Run(clean(&e.to_string())))?;
        let mut result = Vec::with_capacity(outputs.len());
        for (name, value) in outputs.iter() {
            result.push((name.to_string(), extract(name, &value)?));
        }
        Ok(result)
    }
}

fn extract(name: &str, value: &DynValue) -> Result<TensorData, RuntimeError> {
    let unexpected = || RuntimeError::Run(format!("output '{name}' has unsupported type {:?}", value.dtype()));
    let ValueType::Tensor { ty, .. } = value.dtype() else {
        return Err(unexpected());
    };
    let run = |e: ort::Error| RuntimeError::Run(format!("output '{name}': {}", clean(&e.to_string())));
    Ok(match ty {
        TensorElementType::Float32 => {
            let (shape, data) = value.try_extract_tensor::<f32>().map_err(run)?;
            TensorData::f32(shape.to_vec(), data.to_vec())
        }
        TensorElementType::Float64 => {
            let (shape, data) = value.try_extract_tensor::<f64>().map_err(run)?;
            TensorData { shape: shape.to_vec(), values: Values::F64(data.to_vec()) }
        }
        TensorElementType::Int64 => {
            let (shape, data) = value.try_extract_tensor::<i64>().map_err(run)?;
            TensorData::i64(shape.to_vec(), data.to_vec())
        }
        _ => return Err(unexpected()),
    })
}
