"""Are the classes flagged in clean models natural confusion sinks? (issue 29)

The clean GELU ResNets of the benchmark are flagged at class 8 by every detector, and a clean robust
ConvMixer at classes 1 and 7. If such classes were the ones a clean model confuses other digits with
anyway, a class's natural attraction (its mean softmax probability on test images of other classes, or how
often it is the runner-up) could discount the detectors' indices. This study measures both for every
benchmark model whose report covers all classes (the first 2,000 test images of MNIST or of the RGB
domain, through ONNX Runtime), as a log-scale anomaly index among the model's classes, and prints them for
the flagged clean classes and for every implanted target.

    .venv/bin/python research/natural_attraction.py --bench bench --mnist ../shared/datasets/mnist \
        --rgb DOMAINS/rgb_digits

Result (bench/README.md, "Fusion alternatives on the stored reports"): no separation; the flagged clean
classes are not unusually attractive, and many backdoor targets are.
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
from fusion_alternatives import load


def mnist_test(root: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(root / "t10k-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(root / "t10k-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    return x[:n].astype(np.float32) / 255, y[:n].astype(int)


def cifar_test(root: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    b = np.fromfile(root / "test_batch.bin", np.uint8).reshape(-1, 3073)[:n]
    return b[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255, b[:, 0].astype(int)


def log_index(v: np.ndarray) -> np.ndarray:
    logs = np.log(np.maximum(v, 1e-6))
    m = np.median(logs)
    return (logs - m) / (1.4826 * np.median(np.abs(logs - m)) + 1e-12)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", type=Path, default=Path("bench"))
    ap.add_argument("--mnist", type=Path, required=True)
    ap.add_argument("--rgb", type=Path, required=True)
    ap.add_argument("--images", type=int, default=2000)
    args = ap.parse_args()
    data = {"mnist": mnist_test(args.mnist, args.images), "rgb_digits": cifar_test(args.rgb, args.images)}
    reports = {p.stem: json.loads(p.read_text()) for p in (args.bench / "results" / "reports").glob("*.json")}
    print("model | label | domain | class | attraction index | runner-up index")
    for r in load(args.bench):
        x, y = data[r["domain"]]
        s = ort.InferenceSession(str(args.bench / "models" / f"{r['name']}.onnx"), providers=["CPUExecutionProvider"])
        name = s.get_inputs()[0].name
        logits = np.concatenate([s.run(None, {name: x[i : i + 500]})[0] for i in range(0, len(x), 500)])
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        runner = np.argsort(-logits, 1)[:, 1]
        attraction = log_index(np.array([p[y != c][:, c].mean() for c in range(r["k"])]))
        runner_up = log_index(np.array([(runner[y != c] == c).mean() for c in range(r["k"])]))
        if r["label"] == "backdoored":
            classes = r["targets"]
        else:  # the classes the stored audit flagged
            classes = [c["class"] for c in reports[r["name"]]["classes"] if c["flagged"]]
        for c in classes:
            print(f"{r['name']} | {r['label']} | {r['domain']} | {c} | {attraction[c]:.2f} | {runner_up[c]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
