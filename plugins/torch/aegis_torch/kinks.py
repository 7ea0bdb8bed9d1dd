"""Float64 reference gradients that take the same linear piece as a float32 ONNX Runtime run.

A network built from ReLU, max pooling, ReLU6/clamp, hardswish and hardsigmoid is piecewise smooth:
its input gradient jumps where a pre-activation crosses a kink (0 for ReLU) or where two values of a
max-pooling window swap order. A float32 forward pass computes every pre-activation with a rounding
error of about 1e-7 relative to the activations' scale (1e-5 absolute deep in a ResNet-50 at 224x224);
a unit whose float64 pre-activation is smaller than that may land on the other side of its kink in
float32. The float32 gradient is then the exact gradient of the neighbouring piece: an equally valid
one-sided derivative of the same function, but far (1e-3 to 1e-2 relative) from the float64 gradient.
PyTorch's own float32 gradient does the same on other inputs, since its rounding differs.

``PieceMatched`` runs a PyTorch model in float64 while forcing each kinked op onto the piece that the
ONNX Runtime float32 run chose: ReLU/LeakyReLU masks and clamp regions from the float32
pre-activations, max-pooling argmax from ONNX Runtime's MaxPool ``Indices``. Each kinked call is
matched to the ONNX tensor of the same shape whose values are closest to its float64 input. The
result is the float64 gradient of the piece the float32 run is on; comparing with it separates
rounding error (about 1e-6) from a choice of piece (see docs/coverage.md).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

import onnx

# ONNX ops whose input decides a piece, and the torch functions that compute them.
KINK_OPS = ("Relu", "LeakyRelu", "Clip", "HardSigmoid", "HardSwish", "MaxPool")


def kink_tensors(graph: onnx.GraphProto) -> list[tuple[str, str, str | None]]:
    """``(op, input tensor, MaxPool Indices tensor or None)`` for every kinked node of ``graph``."""
    out = []
    for n in graph.node:
        if n.op_type in KINK_OPS and n.input and n.input[0]:
            idx = n.output[1] if n.op_type == "MaxPool" and len(n.output) > 1 and n.output[1] else None
            out.append((n.op_type, n.input[0], idx))
    return out


def with_outputs(model: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    """A copy of ``model`` that also outputs the tensors ``names`` (types left to inference)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    for name in dict.fromkeys(names):
        if name not in have:
            m.graph.output.append(onnx.ValueInfoProto(name=name))
    return m


class OrtPieces:
    """The float32 kink inputs of one ONNX Runtime run, grouped by op kind."""

    def __init__(self, graph: onnx.GraphProto, values: dict[str, np.ndarray]):
        self.by_kind: dict[str, list[tuple[np.ndarray, np.ndarray | None]]] = {}
        for op, inp, idx in kink_tensors(graph):
            kind = "pool" if op == "MaxPool" else "elementwise"
            if inp in values:
                self.by_kind.setdefault(kind, []).append((values[inp], values.get(idx) if idx else None))

    def match(self, kind: str, v: np.ndarray) -> tuple[np.ndarray, np.ndarray | None] | None:
        """The float32 tensor of ``kind`` closest to ``v`` (same shape, within 1e-3 of its scale)."""
        best, best_d = None, np.inf
        scale = float(np.abs(v).max()) + 1e-12
        for a, idx in self.by_kind.get(kind, []):
            if a.shape != v.shape:
                continue
            d = float(np.abs(a.astype(np.float64) - v).max())
            if d < best_d:
                best, best_d = (a, idx), d
        return best if best is not None and best_d <= 1e-3 * scale + 1e-6 else None


class PieceMatched(TorchFunctionMode):
    """Inside this mode, float64 kinked ops follow the pieces of ``pieces`` (see the module doc).

    ``flips`` counts the units whose piece differs from float64's own choice; ``unmatched`` the kinked
    calls with no matching ONNX tensor (they keep float64's choice).
    """

    def __init__(self, pieces: OrtPieces):
        super().__init__()
        self.pieces = pieces
        self.flips = 0
        self.unmatched = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        name = getattr(func, "__name__", "")
        if name in ("relu", "relu_") and args:
            return self._elementwise(args[0], lambda v: v > 0, lambda x, m: torch.where(m, x, 0.0), func, args, kwargs)
        if name in ("leaky_relu", "leaky_relu_") and args:
            slope = kwargs.get("negative_slope", args[1] if len(args) > 1 else 0.01)
            return self._elementwise(
                args[0], lambda v: v > 0, lambda x, m: torch.where(m, x, x * slope), func, args, kwargs
            )
        if name in ("hardtanh", "hardtanh_", "relu6", "clamp", "clip", "clamp_", "clip_") and args:
            lo, hi = _bounds(name, args, kwargs)

            def inside(v):
                return (v >= lo) & (v <= hi)

            return self._elementwise(
                args[0], inside, lambda x, m: torch.where(m, x, x.detach().clamp(lo, hi)), func, args, kwargs
            )
        if name == "hardswish" and args:
            return self._piecewise3(args[0], func, args, kwargs, lambda x: x * (x + 3) / 6, lambda x: x)
        if name == "hardsigmoid" and args:
            return self._piecewise3(args[0], func, args, kwargs, lambda x: x / 6 + 0.5, lambda x: torch.ones_like(x))
        if name in ("max_pool2d", "_max_pool2d", "max_pool2d_with_indices") and args:
            return self._max_pool(func, args, kwargs)
        return func(*args, **kwargs)

    def _decide(self, kind: str, x: torch.Tensor):
        if not isinstance(x, torch.Tensor) or x.dtype != torch.float64:
            return None
        return self.pieces.match(kind, x.detach().numpy())

    def _elementwise(self, x, piece, apply, func, args, kwargs):
        m = self._decide("elementwise", x)
        if m is None:
            self.unmatched += 1
            return func(*args, **kwargs)
        mask = torch.from_numpy(np.asarray(piece(m[0].astype(np.float64))))
        self.flips += int((mask != piece(x.detach())).sum())
        return apply(x, mask)

    def _piecewise3(self, x, func, args, kwargs, mid, high):
        m = self._decide("elementwise", x)
        if m is None:
            self.unmatched += 1
            return func(*args, **kwargs)
        v32 = torch.from_numpy(m[0].astype(np.float64))
        lo32, hi32 = v32 < -3, v32 > 3
        v = x.detach()
        self.flips += int(((v < -3) != lo32).sum() + ((v > 3) != hi32).sum())
        return torch.where(lo32, torch.zeros_like(x), torch.where(hi32, high(x), mid(x)))

    def _max_pool(self, func, args, kwargs):
        x = args[0]
        m = self._decide("pool", x)
        kw = {k: v for k, v in kwargs.items() if k != "return_indices"}
        want_indices = kwargs.get("return_indices", False) or func.__name__ == "max_pool2d_with_indices"
        if m is None or m[1] is None:
            self.unmatched += 1
            return func(*args, **kwargs)
        out, idx = F.max_pool2d(*args[:6], **kw, return_indices=True)
        plane = x.shape[-2] * x.shape[-1]
        ort_idx = torch.from_numpy(m[1].astype(np.int64) % plane).view(idx.shape)
        self.flips += int((ort_idx != idx).sum())
        picked = x.flatten(-2).gather(-1, ort_idx.flatten(-2)).view_as(out)
        return (picked, ort_idx) if want_indices else picked


def _bounds(name: str, args, kwargs) -> tuple[float, float]:
    if name == "relu6":
        return 0.0, 6.0
    if name.startswith("hardtanh"):
        lo = kwargs.get("min_val", args[1] if len(args) > 1 else -1.0)
        hi = kwargs.get("max_val", args[2] if len(args) > 2 else 1.0)
        return float(lo), float(hi)
    lo = kwargs.get("min", args[1] if len(args) > 1 else None)
    hi = kwargs.get("max", args[2] if len(args) > 2 else None)
    return (-np.inf if lo is None else float(lo)), (np.inf if hi is None else float(hi))


def input_grad(
    model: torch.nn.Module, x: np.ndarray, y: np.ndarray, dtype: torch.dtype, mode: TorchFunctionMode | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Logits and d(sum of per-example cross-entropy)/dx of ``model`` (already in ``dtype``)."""
    xt = torch.from_numpy(np.asarray(x)).to(dtype).requires_grad_(True)
    with mode if mode is not None else _nullmode():
        logits = model(xt)
    loss = F.cross_entropy(logits, torch.from_numpy(np.asarray(y, dtype=np.int64)), reduction="sum")
    (g,) = torch.autograd.grad(loss, xt)
    return logits.detach().double().numpy(), g.double().numpy()


class _nullmode:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
