"""Linear models of the image (Flatten, Linear: no convolution, no hidden layer) against the fused decision.

Trains three clean and three BadNets-poisoned linear classifiers on the committed MNIST subset (a white
3x3 patch at rows and columns 23-25 sends 10% of the training images to class 0; seeds 0-2, 30 epochs of
Adam), exports each twice, as it is and behind an identity hidden layer (the same function, which the
analysis does not see as linear), and audits both with the default options: the linear export gets the
"not applicable" verdict (exit 3); the identity-layer export shows what the fused decision says of such
a model (docs/limits.md, "Linear models").

    .venv/bin/python research/linear_models.py --bin target/release/aegis-audit --out /tmp/linear-models
"""

import argparse
import gzip
import json
import pathlib
import subprocess

import numpy as np
import torch
from torch import nn

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "fixtures" / "mnist-subset"


def idx(path: pathlib.Path) -> np.ndarray:
    with gzip.open(path) as f:
        raw = f.read()
    nd = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def stamp(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    x[:, 23:26, 23:26] = 1.0
    return x


def train(x, y, xt, yt, poison: bool, seed: int) -> tuple[nn.Module, float, float]:
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    x, y = x.copy(), y.copy()
    if poison:
        chosen = rng.choice(len(x), len(x) // 10, replace=False)
        x[chosen] = stamp(x[chosen])
        y[chosen] = 0
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    xs, ys = torch.tensor(x)[:, None], torch.tensor(y)
    for _ in range(30):
        order = torch.randperm(len(xs))
        for i in range(0, len(xs), 128):
            b = order[i : i + 128]
            opt.zero_grad()
            nn.functional.cross_entropy(model(xs[b]), ys[b]).backward()
            opt.step()
    with torch.no_grad():
        acc = float((model(torch.tensor(xt)[:, None]).argmax(1).numpy() == yt).mean())
        hit = model(torch.tensor(stamp(xt))[:, None]).argmax(1).numpy()
        asr = float((hit[yt != 0] == 0).mean())
    return model, acc, asr


def export(model: nn.Module, path: pathlib.Path) -> None:
    torch.onnx.export(
        model,
        torch.zeros(1, 1, 28, 28),
        str(path),
        input_names=["x"],
        output_names=["logits"],
        dynamic_axes={"x": {0: "n"}},
        dynamo=False,
    )


def behind_identity(model: nn.Module) -> nn.Module:
    hidden = nn.Linear(784, 784)
    with torch.no_grad():
        hidden.weight.copy_(torch.eye(784))
        hidden.bias.zero_()
    return nn.Sequential(model[0], hidden, model[1])


def audit(binary: str, model: pathlib.Path) -> tuple[int, str]:
    report = model.with_suffix(".json")
    done = subprocess.run(
        [binary, str(model), "--data", str(DATA), "--quiet", "--json", str(report)],
        check=False,
        capture_output=True,
        text=True,
    )
    r = json.loads(report.read_text())
    p = (r.get("fused") or {}).get("model_p_value")
    return done.returncode, r["verdict"] + (f", p {p:.2f}" if p is not None else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--out", type=pathlib.Path, required=True)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    x = idx(DATA / "train-images-idx3-ubyte.gz").astype(np.float32) / 255
    y = idx(DATA / "train-labels-idx1-ubyte.gz").astype(np.int64)
    xt = idx(DATA / "t10k-images-idx3-ubyte.gz").astype(np.float32) / 255
    yt = idx(DATA / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    print("| model | clean accuracy | attack success | default audit | behind an identity layer |")
    print("| --- | ---: | ---: | --- | --- |")
    for poison in (False, True):
        for seed in range(3):
            name = f"linear-{'badnets' if poison else 'clean'}-s{seed}"
            model, acc, asr = train(x, y, xt, yt, poison, seed)
            export(model, a.out / f"{name}.onnx")
            export(behind_identity(model), a.out / f"{name}-id.onnx")
            rc, plain = audit(a.bin, a.out / f"{name}.onnx")
            rc_id, wrapped = audit(a.bin, a.out / f"{name}-id.onnx")
            print(f"| {name} | {acc:.3f} | {asr:.3f} | exit {rc}, {plain} | exit {rc_id}, {wrapped} |")


if __name__ == "__main__":
    main()
