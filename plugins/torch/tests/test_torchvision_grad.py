"""Every torchvision classification architecture through aegis-audit: exported with the TorchScript
exporter (opset 17) and with PyTorch's default dynamo exporter (opset 18+), ``inspect`` finds the
image input, logits and feature tensor and reports the path differentiable, ``export-grad`` builds the
gradient graph, and its input gradient (ONNX Runtime, float32) matches float64 autograd on the same
weights and inputs within max(1e-4, 10 x PyTorch's own float32 error), directly or, where float32
rounding put a kink on the other side, on the linear piece ONNX Runtime took (see aegis_torch.kinks).

The architectures are reduced configurations of the torchvision classes (``tvarch.CI``: the same
blocks and heads, fewer and narrower) so the whole file runs in a few minutes on 2 cores; the named
models are checked by ``research/coverage_table.py`` (docs/coverage.md).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from aegis_torch import coverage, kinks, tvarch
from conftest import ROOT
from torch import nn

import onnx

# What the feature tensor must be, by architecture (default: the last block's output before pooling).
FEATURE = {
    "squeezenet1_0": "convolutional classifier",
    "squeezenet1_1": "convolutional classifier",
    "vit_b_16": "class token",
}


@pytest.fixture(scope="module")
def aegis_bin() -> Path:
    """The aegis-audit binary: $AEGIS_AUDIT, else the newest of target/{debug,release}/aegis-audit."""
    if os.environ.get("AEGIS_AUDIT"):
        return Path(os.environ["AEGIS_AUDIT"])
    found = [p for p in (ROOT / "target/debug/aegis-audit", ROOT / "target/release/aegis-audit") if p.exists()]
    if not found:
        pytest.fail("aegis-audit is not built: run `cargo build` (scripts/test.sh runs `cargo test` first)")
    return max(found, key=lambda p: p.stat().st_mtime)


@pytest.mark.parametrize("name", [a.name for a in tvarch.CI])
def test_architecture_both_exporters(name, aegis_bin, tmp_path):
    arch = tvarch.find(name)
    model = tvarch.build(arch)
    for exporter in tvarch.EXPORTERS:
        r = coverage.check(arch, exporter, tmp_path, aegis_bin, model=model)
        where = f"{name} ({exporter}, opset {r.opset})"
        assert r.inspect == "ok", f"{where}: inspect: {r.inspect}"
        assert r.export_grad == "ok", f"{where}: export-grad: {r.export_grad}"
        assert (r.opset == 17) == (exporter == "torchscript") and r.opset >= 17, where
        assert r.layout == "NCHW", where
        assert FEATURE.get(name, "last block's output") in r.feature_reason, f"{where}: {r.feature_reason}"
        assert r.logits_err <= 1e-4, f"{where}: logits differ from float64 by {r.logits_err:.2e}"
        assert min(r.grad_norm) > 1e-6, f"{where}: a vanishing float64 gradient checks nothing: {r.grad_norm}"
        assert r.passed, (
            f"{where}: gradient error {r.err} (PyTorch float32 {r.err_torch32}, bound {r.bound}; "
            f"on ONNX Runtime's piece {r.err_matched}, {r.flips} kinks flipped)"
        )


class _Kink(nn.Module):
    """x * (1/3) - 1 -> ReLU -> Linear: at x = 3 the pre-activation is 2.98e-8 in float64 and 0 in
    float32 (the product rounds to 1.0), so float32 and float64 are on different linear pieces."""

    def __init__(self):
        super().__init__()
        self.register_buffer("a", torch.tensor([1 / 3, 0.5, -0.7, 0.9]).view(1, 1, 1, 4))
        self.register_buffer("b", torch.tensor([-1.0, 0.1, 0.2, -0.3]).view(1, 1, 1, 4))
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(torch.relu(x * self.a + self.b).flatten(1))


def test_piece_matched_reference_explains_a_relu_that_float32_rounds_to_zero(aegis_bin, tmp_path):
    torch.manual_seed(0)
    model = _Kink().eval()
    path, gpath = tmp_path / "kink.onnx", tmp_path / "kink.grad.onnx"
    torch.onnx.export(
        model,
        (torch.zeros(1, 1, 1, 4),),
        str(path),
        dynamo=False,
        opset_version=17,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "N"}},
    )
    assert subprocess.run([str(aegis_bin), "export-grad", str(path), "-o", str(gpath)], check=False).returncode == 0
    x = np.array([[[[3.0, 0.4, -0.6, 0.8]]]], dtype=np.float32)
    y = np.array([1])
    graph = onnx.load(gpath)
    names = [t for _, i, idx in kinks.kink_tensors(graph.graph) for t in (i, idx) if t]
    sess = ort.InferenceSession(
        kinks.with_outputs(graph, names).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    outs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"x": x, "y": y})))
    m64 = model.double()
    _, g64 = kinks.input_grad(m64, x, y, torch.float64)
    mode = kinks.PieceMatched(kinks.OrtPieces(graph.graph, outs))
    _, gm = kinks.input_grad(m64, x, y, torch.float64, mode)
    ours = outs["grad"].astype(np.float64)
    assert ours[0, 0, 0, 0] == 0.0 and abs(g64[0, 0, 0, 0]) > 1e-2  # the jump
    assert coverage.rel(ours, g64) > 0.05
    assert mode.flips == 1 and mode.unmatched == 0
    assert coverage.rel(ours, gm) < 1e-6  # exactly the gradient of the piece ONNX Runtime is on


class _PoolTies(nn.Module):
    """Conv -> ReLU -> overlapping MaxPool -> MaxPool -> Linear: flat image regions make exact ties
    (equal positive values and all-zero windows), which PyTorch and ONNX Runtime both break
    towards the first element of the window."""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        h = nn.functional.max_pool2d(torch.relu(self.c(x)), 3, stride=2, padding=1)
        return self.fc(nn.functional.max_pool2d(h, 2).flatten(1))


def test_maxpool_exact_ties_are_broken_as_pytorch_does(aegis_bin, tmp_path):
    torch.manual_seed(0)
    model = _PoolTies().eval()
    path, gpath = tmp_path / "ties.onnx", tmp_path / "ties.grad.onnx"
    torch.onnx.export(
        model,
        (torch.zeros(1, 1, 16, 16),),
        str(path),
        dynamo=False,
        opset_version=17,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "N"}},
    )
    assert subprocess.run([str(aegis_bin), "export-grad", str(path), "-o", str(gpath)], check=False).returncode == 0
    x = np.zeros((2, 1, 16, 16), np.float32)
    x[:, :, 4:12, 3:13] = 0.7
    x[1, :, 6:9, 5:7] = 0.2
    y = np.array([0, 2])
    # The ties are real: some pooling windows hold two or more equal maxima.
    with torch.no_grad():
        h = torch.relu(model.c(torch.from_numpy(x)))
        win = nn.functional.unfold(h.reshape(-1, 1, 16, 16), 3, padding=1, stride=2)
        top2 = win.topk(2, dim=1).values
    assert int(((top2[:, 0] == top2[:, 1]) & (top2[:, 0] > 0)).sum()) > 10
    ours = ort.InferenceSession(str(gpath), providers=["CPUExecutionProvider"]).run(["grad"], {"x": x, "y": y})[0]
    _, g64 = kinks.input_grad(model.double(), x, y, torch.float64)
    assert coverage.rel(ours.astype(np.float64), g64) < 1e-6
