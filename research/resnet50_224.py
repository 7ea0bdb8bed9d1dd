"""The 224x224 model and data of docs/memory.md: an ImageFolder (train/, test/; 12 images per class each) of
coloured MNIST digits upscaled to 224x224, and a torchvision ResNet-50 (10 classes) whose random backbone has
measured BatchNorm statistics and whose linear head is fitted on the train split by ridge regression, so that it
classifies some images (every detector needs correctly classified images). Exported with the TorchScript
exporter (opset 17). Seeded.

    PYTHONPATH=plugins/torch python research/resnet50_224.py MNIST_DIR OUT_DIR
    aegis-audit OUT_DIR/resnet50-224-fit.onnx --data OUT_DIR/folder224 ...
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np
import torch
import torchvision
from aegis_torch import tvarch
from PIL import Image


def idx(path: Path) -> np.ndarray:
    with gzip.open(path) as f:
        data = f.read()
    return np.frombuffer(data, np.uint8, offset=16 if data[3] == 3 else 8)


def write_folder(mnist: Path, root: Path, per_class: int = 12) -> None:
    x = idx(mnist / "t10k-images-idx3-ubyte.gz").reshape(-1, 28, 28)
    y = idx(mnist / "t10k-labels-idx1-ubyte.gz")
    rng = np.random.default_rng(0)
    for split, skip in (("train", 0), ("test", 100)):
        for c in range(10):
            d = root / split / str(c)
            d.mkdir(parents=True, exist_ok=True)
            for i in np.flatnonzero(y == c)[skip : skip + per_class]:
                fg, bg = rng.integers(128, 256, 3), rng.integers(0, 100, 3)
                a = x[i].astype(np.float32)[..., None] / 255
                img = (a * fg + (1 - a) * bg).astype(np.uint8)
                Image.fromarray(img).resize((224, 224), Image.BILINEAR).save(d / f"{i}.png")


def load(root: Path, split: str) -> tuple[torch.Tensor, np.ndarray]:
    xs, ys = [], []
    for c in range(10):
        for p in sorted((root / split / str(c)).glob("*.png")):
            xs.append(np.asarray(Image.open(p).convert("RGB"), np.float32).transpose(2, 0, 1) / 255)
            ys.append(c)
    return torch.tensor(np.stack(xs)), np.array(ys)


def main(mnist: Path, out: Path) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    folder = out / "folder224"
    write_folder(mnist, folder)
    model = tvarch.randomize(torchvision.models.resnet50(num_classes=10).float(), 1, 224).eval()
    body = torch.nn.Sequential(*list(model.children())[:-1])

    def features(x: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return torch.cat([body(x[i : i + 20]).flatten(1) for i in range(0, len(x), 20)]).numpy()

    (xtr, ytr), (xte, yte) = load(folder, "train"), load(folder, "test")
    ftr = features(xtr)
    mu, sd = ftr.mean(0), ftr.std(0) + 1e-6
    a = (ftr - mu) / sd
    w = np.linalg.solve(a.T @ a + 10.0 * np.eye(a.shape[1]), a.T @ (np.eye(10)[ytr] * 2 - 1))
    with torch.no_grad():
        model.fc.weight.copy_(torch.tensor((w / sd[:, None]).T * 4, dtype=torch.float32))
        model.fc.bias.copy_(torch.tensor(-(mu / sd) @ w * 4, dtype=torch.float32))

        def accuracy(x: torch.Tensor, y: np.ndarray) -> float:
            logits = torch.cat([model(x[i : i + 20]) for i in range(0, len(x), 20)])
            return float((logits.argmax(1).numpy() == y).mean())

        print(f"train accuracy {accuracy(xtr, ytr):.3f}, test accuracy {accuracy(xte, yte):.3f}")
    tvarch.export(model, 224, out / "resnet50-224-fit.onnx", "torchscript")
    print(f"wrote {out / 'resnet50-224-fit.onnx'} and {folder}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
