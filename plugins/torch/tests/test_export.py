"""ONNX export: opset, IR version, dynamic batch, allowed ops, ONNX Runtime parity within 1e-4, user modules."""

import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
import torch
from aegis_torch import export, models
from aegis_torch.cli import main
from conftest import PLUGIN

import onnx


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("arch, shape", [("small_cnn", (1, 28, 28)), ("resnet18", (3, 16, 16))])
def test_export_parity_and_format(tmp_path, arch, shape):
    torch.manual_seed(0)
    m = models.build(arch, shape, 10, [0.5] * shape[0], [0.25] * shape[0]).eval()
    path = tmp_path / "m.onnx"
    proto = export.export_onnx(m, shape, path)
    assert proto.opset_import[0].version == 17 and proto.ir_version <= 10
    assert set(export.graph_ops(proto)) <= export.ALLOWED_OPS
    assert "Sub" in export.graph_ops(proto) and "Div" in export.graph_ops(proto)
    assert proto.graph.input[0].name == "input" and proto.graph.output[0].name == "logits"
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    sess = _session(path)
    for n in (1, 3, 7):
        x = np.random.default_rng(n).random((n, *shape), dtype=np.float32)
        got = sess.run(["logits"], {"input": x})[0]
        with torch.no_grad():
            want = m(torch.from_numpy(x)).numpy()
        assert got.shape == (n, 10)
        assert np.abs(got - want).max() <= 1e-4


def test_committed_zoo_parity(fixtures):
    from aegis_torch import checkpoint, data

    te = data.load("mnist", fixtures / "mnist-subset", "test")
    x = te.float_images()[:200]
    found = sorted((fixtures / "zoo").glob("*.onnx"))
    if not found:
        pytest.skip("no zoo models yet")
    for onnx_path in found:
        model, _ = checkpoint.load(onnx_path.with_suffix(".pt"))
        assert export.parity(model, onnx_path, x) <= 1e-4, onnx_path.name
        proto = onnx.load(onnx_path)
        assert proto.ir_version <= 10 and set(export.graph_ops(proto)) <= export.ALLOWED_OPS
        assert onnx_path.stat().st_size < 1_000_000


def test_export_user_module_cli(tmp_path):
    sys.path.insert(0, str(PLUGIN / "tests"))
    import user_model

    weights = tmp_path / "w.pt"
    net = user_model.build()
    with torch.no_grad():
        net.features[1].running_mean.fill_(0.1)
    torch.save(net.state_dict(), weights)
    out = tmp_path / "user.onnx"
    rc = main(
        [
            "export",
            "--module",
            "user_model:build",
            "--weights",
            str(weights),
            "--input-shape",
            "3,8,8",
            "--mean",
            "0.4,0.5,0.6",
            "--std",
            "0.2,0.2,0.2",
            "--out",
            str(out),
            "--card",
        ]
    )
    assert rc == 0 and out.exists() and (tmp_path / "user.card.yaml").exists()
    x = np.random.default_rng(0).random((2, 3, 8, 8), dtype=np.float32)
    ref = models.Normalized(net.eval(), [0.4, 0.5, 0.6], [0.2, 0.2, 0.2]).eval()
    with torch.no_grad():
        want = ref(torch.from_numpy(x)).numpy()
    assert np.abs(_session(out).run(["logits"], {"input": x})[0] - want).max() <= 1e-4


def test_export_errors_are_clear(tmp_path):
    rc = main(["export", "--module", "no_such_mod:build", "--input-shape", "1,28,28", "--out", str(tmp_path / "x")])
    assert rc == 2
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "aegis_torch",
            "export",
            "--module",
            "user_model",
            "--input-shape",
            "3,8,8",
            "--out",
            str(tmp_path / "y.onnx"),
        ],
        check=False,
        cwd=PLUGIN,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": f"{PLUGIN}:{PLUGIN / 'tests'}", "PATH": ""},
    )
    assert r.returncode == 2 and "pkg.module:factory" in r.stderr
    with pytest.raises(ValueError, match="std values must be positive"):
        models.Normalize([0.0], [0.0])
