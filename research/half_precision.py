"""A float32 model stored in float16, audited as aegis-audit reads it (widened back to float32).

Converts a model's float32 initializers, Constant values and declared types to float16 (as a deployment
pipeline storing half-precision weights would), prints the largest difference between the two models'
logits in ONNX Runtime on the committed MNIST subset's first 256 test images, and audits both with the
default options: the verdicts and flagged classes are compared (docs/limits.md, "Half-precision models").

    .venv/bin/python research/half_precision.py fixtures/zoo/robust_localised.onnx --out /tmp/half
"""

import argparse
import gzip
import json
import pathlib
import subprocess

import numpy as np
import onnxruntime as ort

import onnx
from onnx import TensorProto, numpy_helper

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "fixtures" / "mnist-subset"


def to_float16(model: onnx.ModelProto) -> onnx.ModelProto:
    g = model.graph
    for i, t in enumerate(g.initializer):
        a = numpy_helper.to_array(t)
        if a.dtype == np.float32:
            g.initializer[i].CopyFrom(numpy_helper.from_array(a.astype(np.float16), t.name))
    for n in g.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type == TensorProto.FLOAT:
                a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float16), a.t.name))
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT:
            vi.type.tensor_type.elem_type = TensorProto.FLOAT16
    onnx.checker.check_model(model)
    return model


def test_images(n: int) -> np.ndarray:
    with gzip.open(DATA / "t10k-images-idx3-ubyte.gz") as f:
        raw = f.read()
    return np.frombuffer(raw, np.uint8, offset=16)[: n * 784].reshape(n, 1, 28, 28).astype(np.float32) / 255


def audit(binary: pathlib.Path, model: pathlib.Path, json_out: pathlib.Path) -> dict:
    cmd = [str(binary), str(model), "--data", str(DATA), "--quiet", "--json", str(json_out)]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True)  # exit 1 is a verdict
    report = json.loads(json_out.read_text())
    flagged = [c["class"] for c in report["classes"] if c["flagged"]]
    return {"exit": done.returncode, "verdict": report["verdict"], "flagged": flagged, "model": report["model"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=pathlib.Path)
    ap.add_argument("--out", type=pathlib.Path, required=True)
    ap.add_argument("--bin", type=pathlib.Path, default=ROOT / "target/release/aegis-audit")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    half = a.out / f"{a.model.stem}.float16.onnx"
    onnx.save(to_float16(onnx.load(a.model)), half)
    x = test_images(256)
    full_s, half_s = ort.InferenceSession(str(a.model)), ort.InferenceSession(str(half))
    full = full_s.run(None, {full_s.get_inputs()[0].name: x})[0]
    low = half_s.run(None, {half_s.get_inputs()[0].name: x.astype(np.float16)})[0].astype(np.float32)
    print(f"largest logit difference, float16 against float32 in ONNX Runtime: {np.abs(full - low).max():.4f}")
    for name, path in (("float32", a.model), ("float16", half)):
        print(name, audit(a.bin, path, a.out / f"{name}.json"))


if __name__ == "__main__":
    main()
