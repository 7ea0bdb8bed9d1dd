//! A [`GradientModel`] backed by ONNX Runtime sessions over a gradient graph (inputs `x`, `y`;
//! outputs `logits`, `features`, `loss`, `grad`) and over its step graph ([`super::step_graph`]),
//! which does a whole PGD step in one run. The step sessions are created on the first PGD of each
//! norm: one per worker, so that batches are stepped in parallel, each worker on one thread; with
//! several workers, batches evaluated outside PGD are split the same way over one single-threaded
//! gradient session per worker.

use super::step_graph::{step_graph, StepNames};
use super::{AttackError, GradOutput, GradientModel, Norm, PgdStepper, StepRequest};
use crate::runtime::{Device, RuntimeError, Session, SessionConfig, TensorData, Values};

/// Output names of a gradient graph, in the order aegis-audit writes them.
pub const GRAD_OUTPUTS: [&str; 4] = ["logits", "features", "loss", "grad"];

/// An ONNX gradient graph evaluated by ONNX Runtime.
#[derive(Debug)]
pub struct OnnxGradModel {
    session: Session,
    config: SessionConfig,
    grad_graph: Vec<u8>,
    /// Step workers, L2 then L∞, created when first needed.
    steppers: [Vec<OnnxStepper>; 2],
    /// Gradient sessions of one thread each, one per worker, created when a batch is first evaluated
    /// in shares (with several workers): each evaluates an even share of the images at the same time.
    eval_workers: Vec<Session>,
    workers: usize,
    fused: bool,
    /// The most images one session run takes; larger batches run in pieces.
    max_batch: usize,
    shape: (usize, usize, usize),
    classes: usize,
    feature_dim: usize,
}

/// The number of step workers for `config`: one per thread on the CPU (`intra_threads`, or every
/// core when it is 0), each running its session on one thread; one on CUDA.
pub fn default_workers(config: &SessionConfig) -> usize {
    match (config.device, config.intra_threads) {
        (Device::Cpu, 0) => std::thread::available_parallelism().map_or(1, |n| n.get()),
        (Device::Cpu, t) => t,
        _ => 1,
    }
}

impl OnnxGradModel {
    /// Creates the session and probes it once (one zero image) to learn the class count and the
    /// feature length. `shape` is the image shape `(c, h, w)`.
    pub fn new(grad_model: &[u8], shape: (usize, usize, usize), config: &SessionConfig) -> Result<Self, RuntimeError> {
        let session = Session::from_bytes(grad_model, config)?;
        for name in GRAD_OUTPUTS {
            if !session.output_names().iter().any(|o| o == name) {
                return Err(RuntimeError::Session(format!("gradient graph has no output '{name}'")));
            }
        }
        let mut model = OnnxGradModel {
            session,
            config: config.clone(),
            grad_graph: grad_model.to_vec(),
            steppers: [Vec::new(), Vec::new()],
            eval_workers: Vec::new(),
            workers: default_workers(config),
            fused: true,
            max_batch: usize::MAX,
            shape,
            classes: 0,
            feature_dim: 0,
        };
        let (c, h, w) = shape;
        let out = model.run(&vec![0.0; c * h * w], 1, &[0])?;
        model.classes = out.logits.len();
        model.feature_dim = out.features.len();
        if model.classes < 2 {
            return Err(RuntimeError::Run(format!("gradient graph gives {} logits per image", model.classes)));
        }
        Ok(model)
    }

    /// The execution provider the session runs on.
    pub fn device(&self) -> Device {
        self.session.device()
    }

    /// Whether PGD steps run inside ONNX Runtime (the step graph, the default) or as a gradient
    /// evaluation followed by the step on the Rust side. Both give the same images up to the order
    /// of a float64 sum; the switch exists to compare them.
    pub fn set_fused_steps(&mut self, fused: bool) {
        self.fused = fused;
    }

    /// How many step workers PGD uses (at least 1; default [`default_workers`]). With one worker
    /// its session runs with the configured intra-op threads; with several, each runs on one thread.
    pub fn set_step_workers(&mut self, workers: usize) {
        let workers = workers.max(1);
        if workers != self.workers {
            self.workers = workers;
            self.steppers = [Vec::new(), Vec::new()];
            self.eval_workers = Vec::new();
        }
    }

    /// How many step workers PGD uses.
    pub fn step_workers(&self) -> usize {
        self.workers
    }

    /// The most images one session run may take (at least 1; default: no limit). A larger batch
    /// is evaluated, and stepped, in pieces of this size: every output is per image, so the results
    /// are the same; only the memory each session's arena grows to is bounded.
    pub fn set_max_batch(&mut self, images: usize) {
        self.max_batch = images.max(1);
        for s in self.steppers.iter_mut().flatten() {
            s.max_batch = self.max_batch;
        }
    }

    /// The ONNX Runtime sessions that hold memory at the same time at most: the gradient session,
    /// and with several workers one gradient session and one step session per worker.
    pub fn sessions(&self) -> usize {
        match self.workers {
            1 => 2,
            w => 1 + 2 * w,
        }
    }

    /// Evaluates `n` images: with several workers and at least [`MIN_SHARE`] images per worker, each
    /// worker's session evaluates an even share at the same time (one thread each, as the step workers
    /// do); otherwise the gradient session does. Either way in pieces of at most `max_batch`. Every
    /// output is per image, so the split changes no value.
    fn run(&mut self, x: &[f32], n: usize, y: &[i64]) -> Result<GradOutput, RuntimeError> {
        let (c, h, w) = self.shape;
        let dim = c * h * w;
        if self.workers < 2 || n < 2 * MIN_SHARE {
            return run_pieces(&mut self.session, self.shape, self.max_batch, x, n, y);
        }
        if self.eval_workers.is_empty() {
            let config = SessionConfig { intra_threads: 1, ..self.config.clone() };
            for _ in 0..self.workers {
                self.eval_workers.push(Session::from_bytes(&self.grad_graph, &config)?);
            }
        }
        let workers = self.workers.min(n / MIN_SHARE);
        let bounds: Vec<usize> = (0..=workers).map(|i| i * n / workers).collect();
        let (shape, max_batch) = (self.shape, self.max_batch);
        let parts: Vec<Result<GradOutput, RuntimeError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .eval_workers
                .iter_mut()
                .take(workers)
                .enumerate()
                .map(|(i, session)| {
                    let (lo, hi) = (bounds[i], bounds[i + 1]);
                    let (xs, ys) = (&x[lo * dim..hi * dim], &y[lo..hi]);
                    scope.spawn(move || run_pieces(session, shape, max_batch, xs, hi - lo, ys))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(RuntimeError::Run("an evaluation worker panicked".into()))))
                .collect()
        });
        let mut out = GradOutput::default();
        for part in parts {
            out.append(part?);
        }
        Ok(out)
    }
}

/// The fewest images a worker's share holds when a batch is evaluated in shares: smaller batches
/// stay on one session, where splitting them would cost more than it gains.
const MIN_SHARE: usize = 8;

/// Runs `session` on `n` images in pieces of at most `max_batch`, concatenating the outputs.
fn run_pieces(
    session: &mut Session,
    shape: (usize, usize, usize),
    max_batch: usize,
    x: &[f32],
    n: usize,
    y: &[i64],
) -> Result<GradOutput, RuntimeError> {
    if n <= max_batch {
        return run_once(session, shape, x, n, y);
    }
    let dim = shape.0 * shape.1 * shape.2;
    let mut out = GradOutput::default();
    for start in (0..n).step_by(max_batch) {
        let end = (start + max_batch).min(n);
        out.append(run_once(session, shape, &x[start * dim..end * dim], end - start, &y[start..end])?);
    }
    Ok(out)
}

/// One session run on `n` images.
fn run_once(
    session: &mut Session,
    shape: (usize, usize, usize),
    x: &[f32],
    n: usize,
    y: &[i64],
) -> Result<GradOutput, RuntimeError> {
    let (c, h, w) = shape;
    let inputs = [
        ("x", TensorData::f32(vec![n as i64, c as i64, h as i64, w as i64], x.to_vec())),
        ("y", TensorData::i64(vec![n as i64], y.to_vec())),
    ];
    let mut out = GradOutput::default();
    for (name, tensor) in session.run(&inputs)? {
        let slot = match name.as_str() {
            "logits" => &mut out.logits,
            "features" => &mut out.features,
            "loss" => &mut out.loss,
            "grad" => &mut out.grad,
            _ => continue,
        };
        *slot = tensor.into_f32().ok_or_else(|| RuntimeError::Run(format!("output '{name}' is not float32")))?;
    }
    Ok(out)
}

/// A session over a step graph: takes PGD steps for one batch at a time.
#[derive(Debug)]
struct OnnxStepper {
    session: Session,
    names: StepNames,
    shape: (usize, usize, usize),
    /// The most images one run takes ([`OnnxGradModel::set_max_batch`]).
    max_batch: usize,
}

impl PgdStepper for OnnxStepper {
    fn step(&mut self, req: StepRequest<'_>) -> Result<Vec<f64>, AttackError> {
        if req.n <= self.max_batch {
            return self.step_once(req);
        }
        let (c, h, w) = self.shape;
        let (n, dim) = (req.n, c * h * w);
        if req.x.len() != n * dim || req.x0.len() != n * dim || req.y.len() != n {
            return self.step_once(req);
        }
        let mut grad_sq = Vec::with_capacity(n);
        for start in (0..n).step_by(self.max_batch) {
            let end = (start + self.max_batch).min(n);
            let part = StepRequest {
                x: &mut req.x[start * dim..end * dim],
                x0: &req.x0[start * dim..end * dim],
                y: &req.y[start..end],
                n: end - start,
                step: req.step,
                eps: req.eps,
            };
            grad_sq.extend(self.step_once(part)?);
        }
        Ok(grad_sq)
    }
}

impl OnnxStepper {
    fn step_once(&mut self, req: StepRequest<'_>) -> Result<Vec<f64>, AttackError> {
        let (c, h, w) = self.shape;
        let n = req.n;
        let dim = c * h * w;
        if req.x.len() != n * dim || req.x0.len() != n * dim || req.y.len() != n {
            return Err(AttackError::Shape(format!(
                "PGD step of {n} images got {} image values, {} start values and {} labels",
                req.x.len(),
                req.x0.len(),
                req.y.len()
            )));
        }
        let shape = vec![n as i64, c as i64, h as i64, w as i64];
        let names = &self.names;
        let inputs = [
            ("x", TensorData::f32(shape.clone(), req.x.to_vec())),
            ("y", TensorData::i64(vec![n as i64], req.y.to_vec())),
            (names.x0.as_str(), TensorData::f32(shape, req.x0.to_vec())),
            (names.step.as_str(), TensorData::f32(vec![1], vec![req.step])),
            (names.eps.as_str(), TensorData::f32(vec![1], vec![req.eps])),
        ];
        let outputs = self.session.run(&inputs).map_err(|e| AttackError::Model(e.to_string()))?;
        let mut grad_sq = None;
        for (name, tensor) in outputs {
            if name == names.x_next {
                let v = tensor.as_f32().ok_or_else(|| AttackError::Model("step output is not float32".into()))?;
                if v.len() != req.x.len() {
                    return Err(AttackError::Model(format!("step graph returned {} values for {n} images", v.len())));
                }
                req.x.copy_from_slice(v);
            } else if name == names.grad_sq {
                grad_sq = match tensor.values {
                    Values::F64(v) if v.len() == n => Some(v),
                    _ => return Err(AttackError::Model("step graph's Σg² output is not float64 [N, 1]".into())),
                };
            }
        }
        grad_sq.ok_or_else(|| AttackError::Model("step graph returned no Σg²".into()))
    }
}

impl GradientModel for OnnxGradModel {
    fn image_shape(&self) -> (usize, usize, usize) {
        self.shape
    }

    fn num_classes(&self) -> usize {
        self.classes
    }

    fn feature_dim(&self) -> usize {
        self.feature_dim
    }

    fn eval(&mut self, x: &[f32], n: usize, y: &[i64]) -> Result<GradOutput, AttackError> {
        let out = self.run(x, n, y).map_err(|e| AttackError::Model(e.to_string()))?;
        let (c, h, w) = self.shape;
        if out.logits.len() != n * self.classes || out.grad.len() != n * c * h * w || out.loss.len() != n {
            return Err(AttackError::Model(format!(
                "gradient graph returned {} logits, {} loss values and {} gradient values for {n} images",
                out.logits.len(),
                out.loss.len(),
                out.grad.len()
            )));
        }
        Ok(out)
    }

    fn steppers(&mut self, norm: Norm) -> Result<Vec<&mut dyn PgdStepper>, AttackError> {
        if !self.fused {
            return Ok(Vec::new());
        }
        let slot = match norm {
            Norm::L2 => 0,
            Norm::Linf => 1,
        };
        if self.steppers[slot].is_empty() {
            let grad = crate::onnx::decode(&self.grad_graph).map_err(|e| AttackError::Model(e.to_string()))?;
            let graph = step_graph(&grad, norm)?;
            let bytes = crate::onnx::encode(&graph.model);
            let config = match self.workers {
                1 => self.config.clone(),
                _ => SessionConfig { intra_threads: 1, ..self.config.clone() },
            };
            for _ in 0..self.workers {
                let session = Session::from_bytes(&bytes, &config)
                    .map_err(|e| AttackError::Model(format!("PGD step graph: {e}")))?;
                self.steppers[slot].push(OnnxStepper {
                    session,
                    names: graph.names.clone(),
                    shape: self.shape,
                    max_batch: self.max_batch,
                });
            }
        }
        Ok(self.steppers[slot].iter_mut().map(|s| s as &mut dyn PgdStepper).collect())
    }
}
