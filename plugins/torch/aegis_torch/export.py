"""ONNX export (opset 17, dynamic batch, float32 NCHW in [0, 1] -> logits) and ONNX Runtime parity check."""

from __future__ import annotations

import importlib
import io
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

import onnx

OPSET = 17
MAX_IR_VERSION = 10
ALLOWED_OPS = {
    "Conv",
    "Relu",
    "MaxPool",
    "AveragePool",
    "Gemm",
    "MatMul",
    "Flatten",
    "Reshape",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "BatchNormalization",
    "Concat",
    "Pad",
    "Identity",
    "Constant",
}


class ExportError(ValueError):
    """Export failed or the exported model does not match PyTorch; the message says which check."""


def export_onnx(model: nn.Module, shape: Sequence[int], path: str | Path) -> onnx.ModelProto:
    """Export ``model`` (taking [0, 1] float32 NCHW input of per-image ``shape``) to ``path``.

    Input ``input`` [N, C, H, W], output ``logits`` [N, classes], batch axis dynamic, opset 17,
    IR version capped at 10 so ONNX Runtime 1.31 loads it. Checked with ``onnx.checker``.
    """
    model = model.cpu().float().eval()
    dummy = torch.zeros(1, *shape, dtype=torch.float32)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is the one we want
        torch.onnx.export(
            model,
            (dummy,),
            buf,
            dynamo=False,
            opset_version=OPSET,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
            do_constant_folding=True,
        )
    proto = onnx.load_from_string(buf.getvalue())
    proto.ir_version = min(proto.ir_version, MAX_IR_VERSION)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as e:
        raise ExportError(f"exported model fails onnx.checker: {e}") from e
    Path(path).write_bytes(proto.SerializeToString())
    return proto


def graph_ops(proto: onnx.ModelProto) -> list[str]:
    """Sorted distinct op types of the graph."""
    return sorted({n.op_type for n in proto.graph.node})


def parity(model: nn.Module, path: str | Path, x: np.ndarray) -> float:
    """Max absolute difference between ONNX Runtime and PyTorch logits on float32 ``x``."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    got = sess.run(["logits"], {"input": np.ascontiguousarray(x, dtype=np.float32)})[0]
    with torch.no_grad():
        want = model.cpu().float().eval()(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()
    if got.shape != want.shape:
        raise ExportError(f"ONNX output shape {got.shape} differs from PyTorch {want.shape}")
    return float(np.abs(got - want).max())


def load_user_module(spec: str, weights: str | None = None) -> nn.Module:
    """Build a user classifier from ``pkg.mod:factory`` (a class or function returning an ``nn.Module``).

    ``weights`` is an optional ``state_dict`` file (``torch.save``), or a full pickled module when ``spec``
    is empty.
    """
    if not spec:
        if weights is None:
            raise ExportError("need --module or --weights holding a whole pickled nn.Module")
        obj = torch.load(weights, map_location="cpu", weights_only=False)
        if not isinstance(obj, nn.Module):
            raise ExportError(f"{weights}: holds a {type(obj).__name__}, not an nn.Module; pass --module too")
        return obj
    mod_name, sep, attr = spec.partition(":")
    if not sep or not attr:
        raise ExportError(f"module spec {spec!r} must look like pkg.module:factory")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as e:
        raise ExportError(f"cannot import {mod_name!r}: {e}") from e
    factory = getattr(mod, attr, None)
    if factory is None:
        raise ExportError(f"module {mod_name!r} has no attribute {attr!r}")
    model = factory()
    if not isinstance(model, nn.Module):
        raise ExportError(f"{spec} returned a {type(model).__name__}, not an nn.Module")
    if weights:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        try:
            model.load_state_dict(state)
        except (RuntimeError, TypeError) as e:
            raise ExportError(f"{weights}: state_dict does not fit {spec}: {e}") from e
    return model
