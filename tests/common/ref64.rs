//! An independent float64 evaluator of the forward ops the gradient builder supports (ONNX
//! Runtime's CPU kernels lack double Conv, ConvTranspose and AveragePool), used as the reference
//! for central finite differences. 2-D spatial ops only; integer tensors (shapes, indices) are
//! carried as float64 values; written for clarity, not speed.

use std::collections::HashMap;

use aegis_audit::onnx::proto::tensor_proto::DataType;
use aegis_audit::onnx::proto::{ModelProto, NodeProto, TensorProto};
use ndarray::{concatenate, ArrayD, Axis, IxDyn};

type T = ArrayD<f64>;

/// Float64 values of a tensor (float32, float64 or int64 data; raw or typed fields).
pub fn tensor_values(t: &TensorProto) -> T {
    let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
    let raw = t.raw_data.as_deref().unwrap_or_default();
    let v: Vec<f64> = match DataType::try_from(t.data_type.unwrap_or(0)).unwrap() {
        DataType::Float if !raw.is_empty() => {
            raw.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64).collect()
        }
        DataType::Float => t.float_data.iter().map(|&v| v as f64).collect(),
        DataType::Double if !raw.is_empty() => {
            raw.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect()
        }
        DataType::Double => t.double_data.clone(),
        DataType::Int64 if !raw.is_empty() => {
            raw.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64).collect()
        }
        DataType::Int64 => t.int64_data.iter().map(|&v| v as f64).collect(),
        other => panic!("ref64: tensor type {other:?}"),
    };
    ArrayD::from_shape_vec(IxDyn(&dims), v).unwrap()
}

fn attr_i(n: &NodeProto, name: &str, d: i64) -> i64 {
    n.attribute.iter().find(|a| a.name.as_deref() == Some(name)).and_then(|a| a.i).unwrap_or(d)
}
fn attr_f(n: &NodeProto, name: &str, d: f64) -> f64 {
    n.attribute.iter().find(|a| a.name.as_deref() == Some(name)).and_then(|a| a.f).map(|v| v as f64).unwrap_or(d)
}
fn attr_is(n: &NodeProto, name: &str) -> Option<Vec<i64>> {
    n.attribute.iter().find(|a| a.name.as_deref() == Some(name)).map(|a| a.ints.clone())
}

/// Evaluates `model` on `x` (its first graph input) and returns the tensor `output`.
pub fn eval(model: &ModelProto, x: &T, output: &str) -> T {
    let g = model.graph.as_ref().unwrap();
    let mut env: HashMap<String, T> = HashMap::new();
    for t in &g.initializer {
        env.insert(t.name.clone().unwrap(), tensor_values(t));
    }
    env.insert(g.input[0].name.clone().unwrap(), x.clone());
    for n in &g.node {
        let ins: Vec<Option<T>> =
            n.input.iter().map(|i| if i.is_empty() { None } else { Some(env[i].clone()) }).collect();
        if n.op_type.as_deref() == Some("Split") {
            for (o, y) in n.output.iter().zip(split(n, &ins)) {
                env.insert(o.clone(), y);
            }
            continue;
        }
        let y = op(n, &ins);
        env.insert(n.output[0].clone(), y);
    }
    env.remove(output).unwrap_or_else(|| panic!("ref64: no tensor {output}"))
}

fn pads2(n: &NodeProto) -> [usize; 4] {
    let p = attr_is(n, "pads").unwrap_or(vec![0; 4]);
    [p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize]
}

fn op(n: &NodeProto, ins: &[Option<T>]) -> T {
    let a = || ins[0].clone().unwrap();
    let b = || ins[1].clone().unwrap();
    match n.op_type.as_deref().unwrap() {
        "Identity" | "Dropout" => a(),
        "Constant" => tensor_values(n.attribute[0].t.as_ref().unwrap()),
        "Relu" => a().mapv(|v| v.max(0.0)),
        "LeakyRelu" => {
            let al = attr_f(n, "alpha", 0.01);
            a().mapv(|v| if v > 0.0 { v } else { al * v })
        }
        "Sigmoid" => a().mapv(|v| 1.0 / (1.0 + (-v).exp())),
        "Tanh" => a().mapv(f64::tanh),
        "Clip" => {
            let lo = ins.get(1).cloned().flatten().map(|t| t.iter().next().copied().unwrap()).unwrap_or(f64::MIN);
            let hi = ins.get(2).cloned().flatten().map(|t| t.iter().next().copied().unwrap()).unwrap_or(f64::MAX);
            a().mapv(|v| v.clamp(lo, hi))
        }
        "Add" => &a() + &b(),
        "Sub" => &a() - &b(),
        "Mul" => &a() * &b(),
        "Div" => &a() / &b(),
        "Flatten" => {
            let x = a();
            let ax = attr_i(n, "axis", 1) as usize;
            let d0: usize = x.shape()[..ax].iter().product();
            let d1: usize = x.shape()[ax..].iter().product();
            x.as_standard_layout().to_owned().into_shape_with_order(IxDyn(&[d0, d1])).unwrap()
        }
        "Reshape" => {
            let x = a();
            let s: Vec<i64> = b().iter().map(|&v| v as i64).collect();
            let mut dims: Vec<usize> =
                s.iter().enumerate().map(|(i, &d)| if d == 0 { x.shape()[i] } else { d.max(1) as usize }).collect();
            if let Some(k) = s.iter().position(|&d| d == -1) {
                let rest: usize = dims.iter().enumerate().filter(|(i, _)| *i != k).map(|(_, d)| d).product();
                dims[k] = x.len() / rest;
            }
            x.as_standard_layout().to_owned().into_shape_with_order(IxDyn(&dims)).unwrap()
        }
        "Transpose" => {
            let x = a();
            let perm: Vec<usize> = attr_is(n, "perm")
                .map(|p| p.iter().map(|&v| v as usize).collect())
                .unwrap_or_else(|| (0..x.ndim()).rev().collect());
            x.permuted_axes(IxDyn(&perm)).as_standard_layout().to_owned()
        }
        "Concat" => {
            let xs: Vec<T> = ins.iter().map(|t| t.clone().unwrap()).collect();
            let r = xs[0].ndim() as i64;
            let ax = attr_i(n, "axis", 1);
            let ax = if ax < 0 { ax + r } else { ax } as usize;
            let views: Vec<_> = xs.iter().map(|t| t.view()).collect();
            concatenate(Axis(ax), &views).unwrap()
        }
        "Pad" => {
            let x = a();
            let p: Vec<usize> = b().iter().map(|&v| v as usize).collect();
            let val = ins.get(2).cloned().flatten().map(|t| t.iter().next().copied().unwrap()).unwrap_or(0.0);
            let r = x.ndim();
            let dims: Vec<usize> = (0..r).map(|i| x.shape()[i] + p[i] + p[i + r]).collect();
            let mut out = ArrayD::from_elem(IxDyn(&dims), val);
            for (idx, v) in x.indexed_iter() {
                let j: Vec<usize> = (0..r).map(|i| idx[i] + p[i]).collect();
                out[IxDyn(&j)] = *v;
            }
            out
        }
        "Gemm" => {
            let mut a2 = a().into_dimensionality::<ndarray::Ix2>().unwrap();
            let mut b2 = b().into_dimensionality::<ndarray::Ix2>().unwrap();
            if attr_i(n, "transA", 0) != 0 {
                a2 = a2.reversed_axes();
            }
            if attr_i(n, "transB", 0) != 0 {
                b2 = b2.reversed_axes();
            }
            let mut y = a2.dot(&b2).into_dyn() * attr_f(n, "alpha", 1.0);
            if let Some(Some(c)) = ins.get(2) {
                y = &y + &(c * attr_f(n, "beta", 1.0));
            }
            y
        }
        "MatMul" => matmul(&a(), &b()),
        "Softmax" | "LogSoftmax" => {
            let x = a();
            let r = x.ndim() as i64;
            let ax = attr_i(n, "axis", -1);
            let ax = Axis(if ax < 0 { ax + r } else { ax } as usize);
            let m = x.map_axis(ax, |l| l.fold(f64::MIN, |a, &b| a.max(b))).insert_axis(ax);
            let e = (&x - &m).mapv(f64::exp);
            let s = e.sum_axis(ax).insert_axis(ax);
            if n.op_type.as_deref() == Some("Softmax") {
                &e / &s
            } else {
                &(&x - &m) - &s.mapv(f64::ln)
            }
        }
        "BatchNormalization" => {
            let x = a();
            let [s, bb, m, v] = [1, 2, 3, 4].map(|i| ins[i].clone().unwrap());
            let eps = attr_f(n, "epsilon", 1e-5);
            let mut y = x.clone();
            for (idx, o) in y.indexed_iter_mut() {
                let c = idx[1];
                *o = (x[&idx] - m[c]) / (v[c] + eps).sqrt() * s[c] + bb[c];
            }
            y
        }
        "GlobalAveragePool" => {
            let x = a();
            let (nn, c) = (x.shape()[0], x.shape()[1]);
            let hw = (x.shape()[2] * x.shape()[3]) as f64;
            let mut y = ArrayD::zeros(IxDyn(&[nn, c, 1, 1]));
            for (idx, v) in x.indexed_iter() {
                y[IxDyn(&[idx[0], idx[1], 0, 0])] += v / hw;
            }
            y
        }
        "Conv" => conv(n, &a(), &b(), ins.get(2).cloned().flatten()),
        "Neg" => a().mapv(|v| -v),
        "Exp" => a().mapv(f64::exp),
        "Log" => a().mapv(f64::ln),
        "Sqrt" => a().mapv(f64::sqrt),
        "Reciprocal" => a().mapv(|v| 1.0 / v),
        "Erf" => a().mapv(erf),
        "Pow" => {
            let (x, e) = (a(), b());
            let shape = broadcast_shape(x.shape(), e.shape());
            let x = x.broadcast(IxDyn(&shape)).unwrap().to_owned();
            let e = e.broadcast(IxDyn(&shape)).unwrap().to_owned();
            ndarray::Zip::from(&x).and(&e).map_collect(|&a, &b| a.powf(b))
        }
        "HardSigmoid" => {
            let (al, be) = (attr_f(n, "alpha", 0.2), attr_f(n, "beta", 0.5));
            a().mapv(|v| (al * v + be).clamp(0.0, 1.0))
        }
        "HardSwish" => a().mapv(|v| v * (v / 6.0 + 0.5).clamp(0.0, 1.0)),
        "Gelu" => {
            let tanh = n
                .attribute
                .iter()
                .any(|a| a.name.as_deref() == Some("approximate") && a.s.as_deref() == Some(b"tanh".as_slice()));
            a().mapv(|v| {
                if tanh {
                    let k = (2.0 / std::f64::consts::PI).sqrt();
                    0.5 * v * (1.0 + (k * (v + 0.044715 * v * v * v)).tanh())
                } else {
                    0.5 * v * (1.0 + erf(v / std::f64::consts::SQRT_2))
                }
            })
        }
        "Shape" => {
            let x = a();
            ArrayD::from_shape_vec(IxDyn(&[x.ndim()]), x.shape().iter().map(|&d| d as f64).collect()).unwrap()
        }
        "Size" => ArrayD::from_elem(IxDyn(&[]), a().len() as f64),
        "Cast" => a(),
        "Range" => {
            let (s0, l, d) = (
                a().iter().next().copied().unwrap(),
                b().iter().next().copied().unwrap(),
                ins[2].clone().unwrap().iter().next().copied().unwrap(),
            );
            let count = ((l - s0) / d).ceil().max(0.0) as usize;
            ArrayD::from_shape_vec(IxDyn(&[count]), (0..count).map(|i| s0 + d * i as f64).collect()).unwrap()
        }
        "Squeeze" | "Unsqueeze" => {
            let x = a();
            let r = x.ndim() as i64;
            let axes: Vec<i64> = ins
                .get(1)
                .cloned()
                .flatten()
                .map(|t| t.iter().map(|&v| v as i64).collect())
                .or_else(|| attr_is(n, "axes"))
                .unwrap_or_default();
            let mut dims: Vec<usize> = x.shape().to_vec();
            if n.op_type.as_deref() == Some("Squeeze") {
                let mut ax: Vec<usize> = axes.iter().map(|&v| (if v < 0 { v + r } else { v }) as usize).collect();
                if ax.is_empty() {
                    ax = (0..dims.len()).filter(|&i| dims[i] == 1).collect();
                }
                dims = dims.iter().enumerate().filter(|(i, _)| !ax.contains(i)).map(|(_, &d)| d).collect();
            } else {
                let out_r = r + axes.len() as i64;
                let mut ax: Vec<usize> = axes.iter().map(|&v| (if v < 0 { v + out_r } else { v }) as usize).collect();
                ax.sort_unstable();
                for a in ax {
                    dims.insert(a, 1);
                }
            }
            x.as_standard_layout().to_owned().into_shape_with_order(IxDyn(&dims)).unwrap()
        }
        "Expand" => {
            let x = a();
            let target: Vec<usize> = b().iter().map(|&v| v as usize).collect();
            let shape = broadcast_shape(x.shape(), &target);
            x.broadcast(IxDyn(&shape)).unwrap().to_owned()
        }
        "ReduceMean" | "ReduceSum" | "ReduceSumSquare" | "ReduceL2" => {
            let op_name = n.op_type.as_deref().unwrap();
            let x = if matches!(op_name, "ReduceSumSquare" | "ReduceL2") { a().mapv(|v| v * v) } else { a() };
            let r = x.ndim() as i64;
            let axes: Option<Vec<i64>> = match ins.get(1).cloned().flatten() {
                Some(t) => Some(t.iter().map(|&v| v as i64).collect()),
                None => attr_is(n, "axes"),
            };
            let axes = axes.unwrap_or_default();
            if axes.is_empty() && attr_i(n, "noop_with_empty_axes", 0) != 0 {
                return x;
            }
            let mut ax: Vec<usize> = if axes.is_empty() {
                (0..x.ndim()).collect()
            } else {
                axes.iter().map(|&v| (if v < 0 { v + r } else { v }) as usize).collect()
            };
            ax.sort_unstable();
            ax.dedup();
            let mean = n.op_type.as_deref() == Some("ReduceMean");
            let mut y = x;
            for &a in ax.iter().rev() {
                let len = y.shape()[a] as f64;
                y = y.sum_axis(Axis(a));
                if mean {
                    y /= len;
                }
            }
            if attr_i(n, "keepdims", 1) != 0 {
                for &a in &ax {
                    y = y.insert_axis(Axis(a));
                }
            }
            if op_name == "ReduceL2" {
                y = y.mapv(f64::sqrt);
            }
            y
        }
        "Slice" => slice(n, ins),
        "Einsum" => {
            let eq = n
                .attribute
                .iter()
                .find(|a| a.name.as_deref() == Some("equation"))
                .and_then(|a| a.s.clone())
                .map(|s| String::from_utf8(s).unwrap())
                .unwrap();
            let xs: Vec<T> = ins.iter().map(|t| t.clone().unwrap()).collect();
            einsum(&eq, &xs)
        }
        "Gather" => {
            let (x, idx) = (a(), b());
            let r = x.ndim() as i64;
            let ax = attr_i(n, "axis", 0);
            let ax = (if ax < 0 { ax + r } else { ax }) as usize;
            let dim = x.shape()[ax] as i64;
            let picks: Vec<T> = idx
                .iter()
                .map(|&i| {
                    let i = i as i64;
                    x.index_axis(Axis(ax), (if i < 0 { i + dim } else { i }) as usize).to_owned()
                })
                .collect();
            let views: Vec<_> = picks.iter().map(|t| t.view().insert_axis(Axis(ax))).collect();
            let flat = concatenate(Axis(ax), &views).unwrap();
            let mut dims: Vec<usize> = x.shape()[..ax].to_vec();
            dims.extend_from_slice(idx.shape());
            dims.extend_from_slice(&x.shape()[ax + 1..]);
            flat.as_standard_layout().to_owned().into_shape_with_order(IxDyn(&dims)).unwrap()
        }
        "GatherElements" => {
            let (x, idx) = (a(), b());
            let r = x.ndim() as i64;
            let ax = attr_i(n, "axis", 0);
            let ax = (if ax < 0 { ax + r } else { ax }) as usize;
            let dim = x.shape()[ax] as i64;
            let mut y = ArrayD::zeros(idx.raw_dim());
            for (pos, &i) in idx.indexed_iter() {
                let mut p: Vec<usize> = ndarray::Dimension::slice(&pos).to_vec();
                let i = i as i64;
                p[ax] = (if i < 0 { i + dim } else { i }) as usize;
                y[&pos] = x[IxDyn(&p)];
            }
            y
        }
        "GatherND" => {
            let (x, idx) = (a(), b());
            let depth = *idx.shape().last().unwrap();
            let lead: Vec<usize> = idx.shape()[..idx.ndim() - 1].to_vec();
            let rest: Vec<usize> = x.shape()[depth..].to_vec();
            let count: usize = lead.iter().product();
            let idx2 = idx.as_standard_layout().to_owned().into_shape_with_order(IxDyn(&[count, depth])).unwrap();
            let mut parts = Vec::new();
            for k in 0..count {
                let mut v = x.view();
                for d in 0..depth {
                    let i = idx2[IxDyn(&[k, d])] as i64;
                    let dim = x.shape()[d] as i64;
                    v = v.index_axis_move(Axis(0), (if i < 0 { i + dim } else { i }) as usize);
                }
                parts.push(v.to_owned().insert_axis(Axis(0)));
            }
            let views: Vec<_> = parts.iter().map(|t| t.view()).collect();
            let flat = concatenate(Axis(0), &views).unwrap();
            let mut dims = lead;
            dims.extend(rest);
            flat.as_standard_layout().to_owned().into_shape_with_order(IxDyn(&dims)).unwrap()
        }
        "LayerNormalization" => {
            let x = a();
            let r = x.ndim() as i64;
            let ax = attr_i(n, "axis", -1);
            let ax = (if ax < 0 { ax + r } else { ax }) as usize;
            let eps = attr_f(n, "epsilon", 1e-5);
            let lead: usize = x.shape()[..ax].iter().product();
            let inner: usize = x.shape()[ax..].iter().product();
            let x2 = x.as_standard_layout().to_owned().into_shape_with_order(IxDyn(&[lead, inner])).unwrap();
            let mut y2 = x2.clone();
            for i in 0..lead {
                let row = x2.index_axis(Axis(0), i);
                let mu = row.sum() / inner as f64;
                let var = row.iter().map(|v| (v - mu).powi(2)).sum::<f64>() / inner as f64;
                let inv = 1.0 / (var + eps).sqrt();
                for j in 0..inner {
                    y2[IxDyn(&[i, j])] = (x2[IxDyn(&[i, j])] - mu) * inv;
                }
            }
            let mut y = y2.into_shape_with_order(IxDyn(x.shape())).unwrap();
            y = &y * &b();
            if let Some(Some(bias)) = ins.get(2) {
                y = &y + bias;
            }
            y
        }
        "MaxPool" | "AveragePool" => pool(n, &a()),
        other => panic!("ref64: op {other}"),
    }
}

fn conv(n: &NodeProto, x: &T, w: &T, bias: Option<T>) -> T {
    let s = attr_is(n, "strides").unwrap_or(vec![1, 1]);
    let d = attr_is(n, "dilations").unwrap_or(vec![1, 1]);
    let mut p = pads2(n);
    let g = attr_i(n, "group", 1) as usize;
    let (nb, c, h, wd) = (x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]);
    let (m, cg, kh, kw) = (w.shape()[0], w.shape()[1], w.shape()[2], w.shape()[3]);
    let auto = n.attribute.iter().find(|a| a.name.as_deref() == Some("auto_pad"));
    if let Some(mode) = auto.and_then(|a| a.s.clone()) {
        if mode.starts_with(b"SAME") {
            // Output = ceil(in / stride); the odd pad goes at the end (UPPER) or the begin (LOWER).
            for (ax, (inp, k)) in [(h, kh), (wd, kw)].into_iter().enumerate() {
                let (st, di) = (s[ax] as usize, d[ax] as usize);
                let out = inp.div_ceil(st);
                let total = ((out - 1) * st + di * (k - 1) + 1).saturating_sub(inp);
                let small = total / 2;
                let (b, e) = if mode == b"SAME_UPPER" { (small, total - small) } else { (total - small, small) };
                p[ax] = b;
                p[ax + 2] = e;
            }
        }
    }
    let ho = (h + p[0] + p[2] - (d[0] as usize * (kh - 1) + 1)) / s[0] as usize + 1;
    let wo = (wd + p[1] + p[3] - (d[1] as usize * (kw - 1) + 1)) / s[1] as usize + 1;
    assert_eq!(c, cg * g);
    let mg = m / g;
    let mut y = ArrayD::zeros(IxDyn(&[nb, m, ho, wo]));
    for (idx, o) in y.indexed_iter_mut() {
        let (b, oc, i, j) = (idx[0], idx[1], idx[2], idx[3]);
        let grp = oc / mg;
        let mut acc = bias.as_ref().map(|bb| bb[oc]).unwrap_or(0.0);
        for ic in 0..cg {
            for u in 0..kh {
                for v in 0..kw {
                    let yy = (i * s[0] as usize + u * d[0] as usize) as i64 - p[0] as i64;
                    let xx = (j * s[1] as usize + v * d[1] as usize) as i64 - p[1] as i64;
                    if yy >= 0 && xx >= 0 && (yy as usize) < h && (xx as usize) < wd {
                        acc += x[IxDyn(&[b, grp * cg + ic, yy as usize, xx as usize])] * w[IxDyn(&[oc, ic, u, v])];
                    }
                }
            }
        }
        *o = acc;
    }
    y
}

/// Output size of a pooling axis, with ONNX's ceil_mode rule (the last window must start inside
/// the input or its begin pad).
fn pool_out(inp: usize, k: usize, s: usize, pb: usize, pe: usize, dil: usize, ceil: bool) -> usize {
    let span = inp + pb + pe - (dil * (k - 1) + 1);
    if ceil {
        let mut o = span.div_ceil(s) + 1;
        if (o - 1) * s >= inp + pb {
            o -= 1;
        }
        o
    } else {
        span / s + 1
    }
}

fn pool(n: &NodeProto, x: &T) -> T {
    let is_max = n.op_type.as_deref() == Some("MaxPool");
    let k = attr_is(n, "kernel_shape").unwrap();
    let s = attr_is(n, "strides").unwrap_or(vec![1, 1]);
    let d = attr_is(n, "dilations").unwrap_or(vec![1, 1]);
    let p = pads2(n);
    let ceil = attr_i(n, "ceil_mode", 0) != 0;
    let incl = attr_i(n, "count_include_pad", 0) != 0;
    let (nb, c, h, w) = (x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]);
    let (kh, kw, sh, sw) = (k[0] as usize, k[1] as usize, s[0] as usize, s[1] as usize);
    let ho = pool_out(h, kh, sh, p[0], p[2], d[0] as usize, ceil);
    let wo = pool_out(w, kw, sw, p[1], p[3], d[1] as usize, ceil);
    let mut y = ArrayD::zeros(IxDyn(&[nb, c, ho, wo]));
    for (idx, o) in y.indexed_iter_mut() {
        let (b, ch, i, j) = (idx[0], idx[1], idx[2], idx[3]);
        let (mut best, mut sum, mut cnt) = (f64::MIN, 0.0, 0usize);
        let y0 = (i * sh) as i64 - p[0] as i64;
        let x0 = (j * sw) as i64 - p[1] as i64;
        for u in 0..kh {
            for v in 0..kw {
                let yy = y0 + (u * d[0] as usize) as i64;
                let xx = x0 + (v * d[1] as usize) as i64;
                if yy >= 0 && xx >= 0 && (yy as usize) < h && (xx as usize) < w {
                    let val = x[IxDyn(&[b, ch, yy as usize, xx as usize])];
                    best = best.max(val);
                    sum += val;
                    cnt += 1;
                }
            }
        }
        *o = if is_max {
            best
        } else if incl {
            let ye = (y0 + kh as i64).min((h + p[2]) as i64);
            let xe = (x0 + kw as i64).min((w + p[3]) as i64);
            sum / ((ye - y0) * (xe - x0)) as f64
        } else {
            sum / cnt as f64
        };
    }
    y
}

/// numpy broadcasting of two shapes.
fn broadcast_shape(a: &[usize], b: &[usize]) -> Vec<usize> {
    let r = a.len().max(b.len());
    (0..r)
        .map(|i| {
            let da = if i + a.len() >= r { a[i + a.len() - r] } else { 1 };
            let db = if i + b.len() >= r { b[i + b.len() - r] } else { 1 };
            if da == 1 {
                db
            } else {
                da
            }
        })
        .collect()
}

/// numpy matmul of operands of rank ≥ 2 (batch dims broadcast).
fn matmul(a: &T, b: &T) -> T {
    let (ra, rb) = (a.ndim(), b.ndim());
    let (m, k, nn) = (a.shape()[ra - 2], a.shape()[ra - 1], b.shape()[rb - 1]);
    let batch = broadcast_shape(&a.shape()[..ra - 2], &b.shape()[..rb - 2]);
    let mut sa = batch.clone();
    sa.extend([m, k]);
    let mut sb = batch.clone();
    sb.extend([k, nn]);
    let a = a.broadcast(IxDyn(&sa)).unwrap().to_owned();
    let b = b.broadcast(IxDyn(&sb)).unwrap().to_owned();
    let count: usize = batch.iter().product();
    let a3 = a.into_shape_with_order(IxDyn(&[count, m, k])).unwrap();
    let b3 = b.into_shape_with_order(IxDyn(&[count, k, nn])).unwrap();
    let mut out = Vec::with_capacity(count * m * nn);
    for i in 0..count {
        let x = a3.index_axis(Axis(0), i).into_dimensionality::<ndarray::Ix2>().unwrap().to_owned();
        let y = b3.index_axis(Axis(0), i).into_dimensionality::<ndarray::Ix2>().unwrap().to_owned();
        out.extend(x.dot(&y).iter().copied());
    }
    let mut dims = batch;
    dims.extend([m, nn]);
    ArrayD::from_shape_vec(IxDyn(&dims), out).unwrap()
}

/// erf to about 1e-9 (Taylor series below 3, the asymptotic series of erfc above).
fn erf(x: f64) -> f64 {
    let a = x.abs();
    let v = if a < 3.0 {
        let (mut term, mut sum, x2) = (a, a, a * a);
        for n in 1..200 {
            term *= -x2 / n as f64;
            let t = term / (2 * n + 1) as f64;
            sum += t;
            if t.abs() < 1e-17 {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        let x2 = a * a;
        let series = 1.0 - 1.0 / (2.0 * x2) + 3.0 / (4.0 * x2 * x2) - 15.0 / (8.0 * x2 * x2 * x2);
        1.0 - (-x2).exp() / (a * std::f64::consts::PI.sqrt()) * series
    };
    v.copysign(x)
}

/// ONNX Slice (opset ≥ 10 inputs, or the attributes before).
fn slice(n: &NodeProto, ins: &[Option<T>]) -> T {
    let x = ins[0].clone().unwrap();
    let vals = |i: usize, attr: &str| -> Option<Vec<i64>> {
        match ins.get(i).cloned().flatten() {
            Some(t) => Some(
                t.iter()
                    .map(|&v| {
                        if v >= 9.2e18 {
                            i64::MAX
                        } else if v <= -9.2e18 {
                            i64::MIN
                        } else {
                            v as i64
                        }
                    })
                    .collect(),
            ),
            None => attr_is(n, attr),
        }
    };
    let starts = vals(1, "starts").unwrap();
    let ends = vals(2, "ends").unwrap();
    let axes = vals(3, "axes").unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = vals(4, "steps").unwrap_or_else(|| vec![1; starts.len()]);
    let r = x.ndim() as i64;
    let mut y = x;
    for i in 0..starts.len() {
        let ax = (if axes[i] < 0 { axes[i] + r } else { axes[i] }) as usize;
        let dim = y.shape()[ax] as i64;
        let step = steps[i];
        let norm = |v: i64| if v < 0 { v.saturating_add(dim) } else { v };
        let (s, e) = (norm(starts[i]), norm(ends[i]));
        let (s, e) =
            if step > 0 { (s.clamp(0, dim), e.clamp(0, dim)) } else { (s.clamp(0, dim - 1), e.clamp(-1, dim - 1)) };
        let mut picks = Vec::new();
        let mut p = s;
        while (step > 0 && p < e) || (step < 0 && p > e) {
            picks.push(y.index_axis(Axis(ax), p as usize).to_owned().insert_axis(Axis(ax)));
            p += step;
        }
        let views: Vec<_> = picks.iter().map(|t| t.view()).collect();
        y = concatenate(Axis(ax), &views).unwrap();
    }
    y
}

/// ONNX Split: sizes from the second input or the `split` attribute, else equal parts.
fn split(n: &NodeProto, ins: &[Option<T>]) -> Vec<T> {
    let x = ins[0].clone().unwrap();
    let r = x.ndim() as i64;
    let ax = attr_i(n, "axis", 0);
    let ax = (if ax < 0 { ax + r } else { ax }) as usize;
    let parts = n.output.len();
    let sizes: Vec<usize> = match ins.get(1).cloned().flatten() {
        Some(t) => t.iter().map(|&v| v as usize).collect(),
        None => attr_is(n, "split")
            .map(|v| v.iter().map(|&d| d as usize).collect())
            .unwrap_or_else(|| vec![x.shape()[ax] / parts; parts]),
    };
    let mut out = Vec::new();
    let mut start = 0;
    for s in sizes {
        out.push(x.slice_axis(Axis(ax), ndarray::Slice::from(start..start + s)).to_owned());
        start += s;
    }
    out
}

/// A direct einsum: explicit output (`->`), letters and at most one ellipsis per term standing for
/// the same leading dims in every operand; sums over every assignment of the indices.
fn einsum(eq: &str, xs: &[T]) -> T {
    let eq: String = eq.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, rhs) = eq.split_once("->").expect("explicit einsum output");
    let ell_rank = lhs
        .split(',')
        .zip(xs)
        .map(|(t, x)| if t.contains("...") { x.ndim() - t.replace("...", "").len() } else { 0 })
        .max()
        .unwrap();
    let ell: Vec<char> = ('A'..='Z').filter(|c| !eq.contains(*c)).take(ell_rank).collect();
    let expand = |t: &str, rank: usize| -> Vec<char> {
        match t.split_once("...") {
            Some((b, a)) => {
                let k = rank - b.len() - a.len();
                b.chars().chain(ell[ell_rank - k..].iter().copied()).chain(a.chars()).collect()
            }
            None => t.chars().collect(),
        }
    };
    let terms: Vec<Vec<char>> = lhs.split(',').zip(xs).map(|(t, x)| expand(t, x.ndim())).collect();
    let out = expand(rhs, rhs.replace("...", "").len() + ell_rank);
    let mut dims: HashMap<char, usize> = HashMap::new();
    for (t, x) in terms.iter().zip(xs) {
        for (ch, &d) in t.iter().zip(x.shape()) {
            dims.insert(*ch, d);
        }
    }
    let letters: Vec<char> = {
        let mut v: Vec<char> = dims.keys().copied().collect();
        v.sort_unstable();
        v
    };
    let out_dims: Vec<usize> = out.iter().map(|c| dims[c]).collect();
    let mut y = ArrayD::zeros(IxDyn(&out_dims));
    let total: usize = letters.iter().map(|c| dims[c]).product();
    let mut val: HashMap<char, usize> = HashMap::new();
    for mut k in 0..total {
        for ch in &letters {
            val.insert(*ch, k % dims[ch]);
            k /= dims[ch];
        }
        let mut p = 1.0;
        for (t, x) in terms.iter().zip(xs) {
            let idx: Vec<usize> = t.iter().map(|c| val[c]).collect();
            p *= x[IxDyn(&idx)];
        }
        let oi: Vec<usize> = out.iter().map(|c| val[c]).collect();
        y[IxDyn(&oi)] += p;
    }
    y
}
