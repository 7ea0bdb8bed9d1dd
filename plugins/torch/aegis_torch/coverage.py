"""Architecture coverage: export a torchvision classifier, run ``aegis-audit inspect`` and ``export-grad``
on it, and compare the gradient graph's input gradient (ONNX Runtime, float32) with float64 autograd.

The bound for each example is ``max(1e-4, 10 x PyTorch's own float32 error)`` (relative L2 against
float64 autograd on the same weights and input). Where our float32 gradient exceeds it, the float64
reference is recomputed on the linear piece ONNX Runtime's float32 forward pass took
(``kinks.PieceMatched``): a kink resolved the other way by float32 rounding explains the difference
only if pieces flipped and the piece-matched error is within the bound. Used by the test suite
(reduced configurations, ``tvarch.CI``) and by ``research/coverage_table.py`` (``tvarch.FULL``).
"""

from __future__ import annotations

import copy
import json
import resource
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

import onnx
from aegis_torch import kinks, tvarch

BOUND_FLOOR = 1e-4
BOUND_FACTOR = 10.0


def rel(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / ||b||."""
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


@dataclass
class Result:
    """What one architecture x exporter check found."""

    arch: str
    family: str
    exporter: str
    size: int
    opset: int = 0
    inspect: str = ""  # "ok" or the error line
    feature: str = ""
    feature_reason: str = ""
    layout: str = ""
    export_grad: str = ""  # "ok" or the error line
    grad_norm: list[float] = field(default_factory=list)  # ||float64 gradient||, per example
    err: list[float] = field(default_factory=list)  # ours vs float64, per example
    err_torch32: list[float] = field(default_factory=list)  # PyTorch float32 vs float64
    bound: list[float] = field(default_factory=list)
    err_matched: list[float] = field(default_factory=list)  # ours vs piece-matched float64 (when needed)
    flips: int = 0
    unmatched: int = 0
    logits_err: float = 0.0
    seconds: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Inspect and export-grad succeeded and every example is within its bound, directly or on the
        piece ONNX Runtime took (with flipped kinks to explain it)."""
        if self.inspect != "ok" or self.export_grad != "ok" or not self.err:
            return False
        for i, (e, b) in enumerate(zip(self.err, self.bound)):
            if e <= b:
                continue
            if not self.err_matched or self.flips == 0 or self.err_matched[i] > b:
                return False
        return self.logits_err <= 1e-4

    def as_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


def _run(cmd: list[str]) -> tuple[int, str, str]:
    r = subprocess.run(cmd, check=False, capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def _last_line(s: str) -> str:
    lines = [ln for ln in s.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "(no message)"


def check(
    arch: tvarch.Arch,
    exporter: str,
    workdir: Path,
    binary: Path,
    inputs: int = 2,
    seed: int = 0,
    model: torch.nn.Module | None = None,
) -> Result:
    """Export ``arch`` with ``exporter`` into ``workdir`` and check it end to end (see the module doc)."""
    res = Result(arch.name, arch.family, exporter, arch.size)
    t0 = time.process_time()
    model = model if model is not None else tvarch.build(arch, seed)
    path = workdir / f"{arch.name}_{exporter}.onnx"
    tvarch.export(model, arch.size, path, exporter)
    res.seconds["export_cpu"] = round(time.process_time() - t0, 2)
    res.opset = next(
        o.version for o in onnx.load(path, load_external_data=False).opset_import if o.domain in ("", "ai.onnx")
    )

    rc, out, err = _run([str(binary), "inspect", "--json", str(path)])
    if rc != 0:
        res.inspect = _last_line(err)
    else:
        a = json.loads(out)
        res.feature = a["feature"]["name"]
        res.feature_reason = a["feature"].get("reason", "")
        res.layout = a["image_input"]["layout"]
        why = ", ".join(a["unsupported_ops"]) or a.get("gradient_blocker") or "unknown reason"
        res.inspect = "ok" if a["differentiable"] else "not differentiable: " + why
    gpath = workdir / f"{arch.name}_{exporter}.grad.onnx"
    t1 = time.time()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    rc, _, err = _run([str(binary), "export-grad", str(path), "-o", str(gpath)])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    res.seconds["export_grad_wall"] = round(time.time() - t1, 2)
    res.seconds["export_grad_cpu"] = round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2)
    res.export_grad = "ok" if rc == 0 else _last_line(err)
    if rc != 0:
        return res

    t2 = time.process_time()
    rng = np.random.default_rng(seed)
    x = rng.random((inputs, 3, arch.size, arch.size), dtype=np.float32)
    y = rng.integers(0, tvarch.NUM_CLASSES, inputs)
    graph = onnx.load(gpath)
    names = [t for _, inp, idx in kinks.kink_tensors(graph.graph) for t in (inp, idx) if t]
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(
        kinks.with_outputs(graph, names).SerializeToString(), opts, providers=["CPUExecutionProvider"]
    )
    outs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"x": x, "y": y})))
    ours, ours_logits = outs["grad"].astype(np.float64), outs["logits"].astype(np.float64)

    m64 = copy.deepcopy(model).double().eval()
    logits64, g64 = kinks.input_grad(m64, x, y, torch.float64)
    _, g32 = kinks.input_grad(model, x, y, torch.float32)
    res.logits_err = rel(ours_logits, logits64)
    res.grad_norm = [float(np.linalg.norm(g64[i])) for i in range(inputs)]
    res.err = [rel(ours[i], g64[i]) for i in range(inputs)]
    res.err_torch32 = [rel(g32[i], g64[i]) for i in range(inputs)]
    res.bound = [max(BOUND_FLOOR, BOUND_FACTOR * e) for e in res.err_torch32]
    if any(e > b for e, b in zip(res.err, res.bound)):
        mode = kinks.PieceMatched(kinks.OrtPieces(graph.graph, outs))
        _, gm = kinks.input_grad(m64, x, y, torch.float64, mode)
        res.err_matched = [rel(ours[i], gm[i]) for i in range(inputs)]
        res.flips, res.unmatched = mode.flips, mode.unmatched
    res.seconds["check_cpu"] = round(time.process_time() - t2, 2)
    return res
