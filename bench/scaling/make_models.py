"""Models for the audit's cost curve over the class count (issue 33, item 1).

One domain, `digits3`: each image is three random MNIST digits side by side (1x28x84, uint8), drawn
with a fixed numpy seed (train digits for the train split, test digits for the test split). Three
labelings of the same images differ only in the class count:

    last1  the last digit                       10 classes
    last2  the last two digits                  100 classes
    all3   all three digits (100*d1+10*d2+d3)   1000 classes

Each labeling is written as an IDX folder the audit reads (labels as unsigned bytes up to 256
classes, else big-endian int32, IDX type 0x0C), and one small CNN of the same architecture is trained
on each (seeded, one torch thread) and exported to ONNX (opset 17, input "image" float32
[N,1,28,84] in [0,1], output "logits" [N,K], no normalisation). Each model gets a markdown card.

Resumable: a data folder whose four files and README exist is reused; a model whose .onnx and card
exist is skipped.

    python bench/scaling/make_models.py --mnist ../shared/datasets/mnist \
        --data-out /work/scaling-data --models-out bench/scaling/models

`--seeds S...` trains more models of a labeling, one per seed (torch seed 33100 + S), named
`digits3-LABELING-sS-hH` with `--hidden H` units in the first linear layer (default 128): the clean
many-class models of a second generator whose adaptive audits give shortlist classes (docs/scaling.md).

    python bench/scaling/make_models.py --mnist ../shared/datasets/mnist --data-out /work/scaling-data \
        --models-out bench/scaling/models --only last2 --seeds 1 2 3 --hidden 64
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import struct
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np
import torch
from torch import nn

import onnx

DATA_SEED = 33_001  # numpy default_rng seed of the digit draws (train and test)
TRAIN_SEED = 33_100  # torch.manual_seed of each model's initialisation and batch order
N_TRAIN = 40_000
N_TEST = 10_000
EPOCHS = 3
BATCH = 128
LR = 1e-3
MAX_TRAIN_SECONDS = 180.0  # stop training (at the end of a batch) past this
HEIGHT, WIDTH = 28, 84

LABELINGS = {"last1": 10, "last2": 100, "all3": 1000}
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- IDX


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    zero, kind, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or kind != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def write_idx(path: Path, array: np.ndarray) -> None:
    """uint8 arrays as type 0x08, integer arrays as big-endian int32 (0x0C); gzip without a timestamp."""
    if array.dtype == np.uint8:
        kind, data = 0x08, array.tobytes()
    else:
        kind, data = 0x0C, array.astype(">i4").tobytes()
    header = struct.pack(">HBB", 0, kind, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
        f.write(header + data)
    tmp.replace(path)


# ---------------------------------------------------------------- data


def draw_split(mnist_images: np.ndarray, mnist_labels: np.ndarray, n: int, rng: np.random.Generator):
    """n images of three random digits side by side, and the three digits of each."""
    pick = rng.integers(0, len(mnist_labels), size=(n, 3))
    images = np.concatenate([mnist_images[pick[:, k]] for k in range(3)], axis=2)
    return np.ascontiguousarray(images, dtype=np.uint8), mnist_labels[pick].astype(np.int64)


def labels_for(digits: np.ndarray, labeling: str) -> np.ndarray:
    if labeling == "last1":
        return digits[:, 2]
    if labeling == "last2":
        return 10 * digits[:, 1] + digits[:, 2]
    return 100 * digits[:, 0] + 10 * digits[:, 1] + digits[:, 2]


def as_idx_labels(labels: np.ndarray, classes: int) -> np.ndarray:
    return labels.astype(np.uint8) if classes <= 256 else labels.astype(np.int32)


def make_data(mnist: Path, out: Path) -> dict:
    """Draw the digits3 images once and write one IDX folder per labeling (skips complete folders)."""
    rng = np.random.default_rng(DATA_SEED)
    splits = {}
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        img_name, lab_name = MNIST_FILES[split]
        images = read_idx(mnist / img_name)
        labels = read_idx(mnist / lab_name)
        splits[split] = draw_split(images, labels, n, rng)
        log(f"drew {split}: {n} images of 3 {split} digits")
    for labeling, classes in LABELINGS.items():
        folder = out / labeling
        done = all((folder / f).exists() for pair in FILES.values() for f in pair) and (folder / "README.txt").exists()
        if done:
            log(f"data {folder}: present, kept")
            continue
        folder.mkdir(parents=True, exist_ok=True)
        for split, (images, digits) in splits.items():
            img_name, lab_name = FILES[split]
            write_idx(folder / img_name, images)
            write_idx(folder / lab_name, as_idx_labels(labels_for(digits, labeling), classes))
        write_readme(folder, labeling, classes, splits)
        log(f"data {folder}: written")
    return splits


def write_readme(folder: Path, labeling: str, classes: int, splits: dict) -> None:
    label_type = "0x08 (unsigned byte)" if classes <= 256 else "0x0C (big-endian int32)"
    rule = {
        "last1": "the last (rightmost) digit d3",
        "last2": "the last two digits, 10*d2 + d3",
        "all3": "all three digits, 100*d1 + 10*d2 + d3",
    }[labeling]
    sha = {split: hashlib.sha256(images.tobytes()).hexdigest()[:16] for split, (images, _) in splits.items()}
    text = f"""digits3/{labeling}: {classes} classes, made by bench/scaling/make_models.py (aegis-audit repository).

Each image is three MNIST digits (d1 d2 d3, left to right) concatenated horizontally: 28x84 uint8,
IDX type 0x08, dims [n, 28, 84]. The digits are drawn uniformly with replacement, with
numpy.random.default_rng({DATA_SEED}): first the train split ({N_TRAIN} images, from the 60,000 MNIST
train digits), then the test split ({N_TEST} images, from the 10,000 MNIST test digits).
The images are the same in the last1, last2 and all3 folders; only the labels differ.

Label: {rule}; labels file IDX type {label_type}, dims [n].
sha256 of the raw image bytes (first 16 hex): train {sha["train"]}, test {sha["test"]}.
Files are gzip-compressed without a timestamp.
"""
    (folder / "README.txt").write_text(text)


# ---------------------------------------------------------------- model


class Digits3Net(nn.Module):
    """Conv(1->16,3)-ReLU-MaxPool2 -> Conv(16->32,3)-ReLU-MaxPool2 -> Linear(32*7*21->H)-ReLU -> Linear(H->K)."""

    def __init__(self, classes: int, hidden: int = 128):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Linear(32 * 7 * 21, hidden), nn.ReLU(), nn.Linear(hidden, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).float().div_(255.0).unsqueeze(1)


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(labels), 1000):
        correct += (model(images[i : i + 1000]).argmax(1) == labels[i : i + 1000]).sum().item()
    return correct / len(labels)


def train(
    classes: int, train_x: torch.Tensor, train_y: torch.Tensor, seed: int = TRAIN_SEED, hidden: int = 128
) -> tuple[nn.Module, dict]:
    torch.manual_seed(seed)
    model = Digits3Net(classes, hidden)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    gen = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    start = time.process_time()
    wall = time.perf_counter()
    steps, epochs_done, stopped = 0, 0.0, False
    n = len(train_y)
    batches = (n + BATCH - 1) // BATCH
    for epoch in range(EPOCHS):
        model.train()
        order = torch.randperm(n, generator=gen)
        total = 0.0
        for b in range(batches):
            idx = order[b * BATCH : (b + 1) * BATCH]
            opt.zero_grad()
            loss = loss_fn(model(train_x[idx]), train_y[idx])
            loss.backward()
            opt.step()
            total += loss.item()
            steps += 1
            if time.process_time() - start > MAX_TRAIN_SECONDS:
                stopped = True
                break
        epochs_done = epoch + (b + 1) / batches
        log(f"  K={classes} epoch {epoch + 1}: mean loss {total / (b + 1):.4f}, {time.perf_counter() - wall:.0f} s")
        if stopped:
            log(f"  K={classes}: stopped at the {MAX_TRAIN_SECONDS:.0f} s CPU limit")
            break
    info = {
        "epochs": round(epochs_done, 3),
        "steps": steps,
        "cpu_seconds": round(time.process_time() - start, 1),
        "wall_seconds": round(time.perf_counter() - wall, 1),
        "stopped_by_time": stopped,
    }
    return model, info


def export(model: nn.Module, path: Path) -> None:
    model.eval()
    tmp = path.with_suffix(".tmp.onnx")
    torch.onnx.export(
        model,
        (torch.zeros(1, 1, HEIGHT, WIDTH),),
        str(tmp),
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    proto = onnx.load(str(tmp))
    proto.ir_version = min(proto.ir_version, 10)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    tmp.unlink()


def write_card(
    path: Path,
    name: str,
    labeling: str,
    classes: int,
    info: dict,
    acc: float,
    onnx_path: Path,
    seed: int = TRAIN_SEED,
    hidden: int = 128,
) -> None:
    params = sum(p.numel() for p in Digits3Net(classes, hidden).parameters())
    sha = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    text = f"""# {name}

Cost-curve model of issue 33: digits3 domain, labeling `{labeling}`, **{classes} classes**.
Made by `bench/scaling/make_models.py`.

| | |
| --- | --- |
| input | `image` float32 [N, 1, 28, 84] in [0, 1] (pixel / 255), no normalisation |
| output | `logits` float32 [N, {classes}] |
| architecture | Conv(1→16, 3, pad 1)-ReLU-MaxPool2 → Conv(16→32, 3, pad 1)-ReLU-MaxPool2 → Flatten → Linear(4704→{hidden})-ReLU → Linear({hidden}→{classes}) |
| parameters | {params:,} |
| data | digits3/{labeling}: {N_TRAIN:,} train images (MNIST train digits), {N_TEST:,} test images (MNIST test digits), data seed {DATA_SEED} |
| training | Adam lr {LR}, batch {BATCH}, {info["epochs"]} epochs ({info["steps"]} steps; at most {EPOCHS}, or {MAX_TRAIN_SECONDS:.0f} s CPU){" — stopped by the time limit" if info["stopped_by_time"] else ""}, torch.manual_seed({seed}), 1 thread |
| training time | {info["cpu_seconds"]} s CPU, {info["wall_seconds"]} s wall (shared 2-core machine) |
| clean test accuracy | **{acc:.4f}** ({N_TEST:,} images) |
| export | torch {torch.__version__}, opset 17, IR version {onnx.load(str(onnx_path)).ir_version}, dynamic batch |
| size | {onnx_path.stat().st_size:,} bytes, sha256 {sha} |
| backdoor | none (clean) |
"""
    path.write_text(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mnist", type=Path, required=True, help="folder of the four MNIST IDX gz files")
    ap.add_argument("--data-out", type=Path, required=True, help="where the digits3 IDX folders go (one per labeling)")
    ap.add_argument("--models-out", type=Path, required=True, help="where the .onnx models and cards go")
    ap.add_argument("--only", nargs="*", choices=list(LABELINGS), help="make only these labelings")
    ap.add_argument("--seeds", nargs="*", type=int, help="more models per labeling, one per seed (see above)")
    ap.add_argument("--hidden", type=int, default=128, help="units of the first linear layer (with --seeds)")
    args = ap.parse_args()
    torch.set_num_threads(1)

    splits = make_data(args.mnist, args.data_out)
    args.models_out.mkdir(parents=True, exist_ok=True)
    train_x, test_x = to_tensor(splits["train"][0]), to_tensor(splits["test"][0])
    for labeling, classes in LABELINGS.items():
        if args.only and labeling not in args.only:
            continue
        variants = (
            [(f"digits3-{labeling}-s{s}-h{args.hidden}", TRAIN_SEED + s, args.hidden) for s in args.seeds]
            if args.seeds
            else [(f"digits3-{labeling}", TRAIN_SEED, 128)]
        )
        for name, seed, hidden in variants:
            onnx_path = args.models_out / f"{name}.onnx"
            card = args.models_out / f"{name}.md"
            if onnx_path.exists() and card.exists():
                log(f"{name}: present, skipped")
                continue
            log(f"{name}: training ({classes} classes)")
            train_y = torch.from_numpy(labels_for(splits["train"][1], labeling))
            test_y = torch.from_numpy(labels_for(splits["test"][1], labeling))
            model, info = train(classes, train_x, train_y, seed, hidden)
            acc = accuracy(model, test_x, test_y)
            export(model, onnx_path)
            write_card(card, name, labeling, classes, info, acc, onnx_path, seed, hidden)
            log(f"{name}: test accuracy {acc:.4f}, {info['cpu_seconds']} s CPU, {onnx_path.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
