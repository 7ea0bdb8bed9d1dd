"""RGB models for the audit's cost curve over the input size (issue 33, item 1).

Three 10-class models of the same small CNN that differ only in the input size: 3x32x32, 3x64x64 and
3x224x224. The data (`rgbdigits`) is MNIST digits drawn as coloured digits on a coloured background:
each image takes one MNIST digit, upscales it to a random square between 50% and 90% of the canvas
side, places it at a random position and paints it in a random light colour (each channel in [146, 255])
over a random plain dark background colour (each channel in [0, 109]); the two colours are redrawn
until they are at least 120 apart (Euclidean RGB), so the digit stays visible. (With fully random
colours, either polarity, this small network stayed at chance.) The random
choices are drawn once with a fixed numpy seed, as fractions of the canvas, and rendered at each size,
so the three datasets show the same scenes at three resolutions. 3000 train images (300 per class,
MNIST train digits) and 600 test images (60 per class, MNIST test digits); uint8 RGB.

Each size is written as an ImageFolder the audit reads, `<data-out>/rgb<S>/{train,test}/<class>/<index>.png`
(class folders 0..9), and the model is trained (seeded, one torch thread) on the same pixels and
exported to ONNX (opset 17, input "image" float32 [N,3,S,S] in [0,1], output "logits" [N,10], no
normalisation, dynamic batch). Each model gets a markdown card.

Resumable: a data folder with its README.txt is reused; a model whose .onnx and card exist is skipped.

    python bench/scaling/make_rgb_models.py --mnist ../shared/datasets/mnist \
        --data-out /work/scaling-data --models-out bench/scaling/models
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np
import torch
from make_models import log, read_idx  # the MNIST reader and the log line of the digits3 models
from PIL import Image
from torch import nn

import onnx

DATA_SEED = 33_201  # numpy default_rng seed of the scene draws (train and test)
TRAIN_SEED = 33_300  # torch.manual_seed of each model's initialisation and batch order
PER_CLASS = {"train": 300, "test": 60}
CLASSES = 10
EPOCHS = 10  # 2 epochs left every size at chance (0.09 at 32x32); 10 fit the CPU limit below except at 224
BATCH = 64
LR = 1e-3
MAX_TRAIN_SECONDS = 180.0  # stop training (at the end of a batch) past this much CPU time
DARK, LIGHT = 110, 146  # background channels are drawn in [0, DARK), digit channels in [LIGHT, 256)
MIN_CONTRAST = 120.0  # least Euclidean RGB distance between digit and background colour
SIZES = {"rgb32": 32, "rgb64": 64, "rgb224": 224}
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
ARCH = (
    "Conv(3→16, 3, stride 2, pad 1)-ReLU → Conv(16→32, 3, stride 2, pad 1)-ReLU → "
    "Conv(32→32, 3, stride 2, pad 1)-ReLU → GlobalAveragePool → Flatten → Linear(32→64)-ReLU → Linear(64→10)"
)


# ---------------------------------------------------------------- data


def draw_scenes(mnist: Path) -> dict:
    """Per split: the digits (28x28), labels and scene parameters (size/position fractions, colours)."""
    rng = np.random.default_rng(DATA_SEED)
    scenes = {}
    for split, (img_name, lab_name) in MNIST_FILES.items():
        images, labels = read_idx(mnist / img_name), read_idx(mnist / lab_name)
        per = PER_CLASS[split]
        pick = np.concatenate([rng.choice(np.flatnonzero(labels == c), per, replace=False) for c in range(CLASSES)])
        pick = pick[rng.permutation(len(pick))]
        n = len(pick)
        scale = rng.uniform(0.5, 0.9, n)  # digit side / canvas side
        pos = rng.uniform(0.0, 1.0, (n, 2))  # fraction of the free room (x, y)
        fg = np.empty((n, 3))
        bg = np.empty((n, 3))
        for i in range(n):
            while True:
                a, b = rng.integers(LIGHT, 256, 3), rng.integers(0, DARK, 3)
                if np.linalg.norm(a - b) >= MIN_CONTRAST:
                    break
            fg[i], bg[i] = a, b
        scenes[split] = {
            "digits": images[pick],
            "labels": labels[pick].astype(np.int64),
            "scale": scale,
            "pos": pos,
            "fg": fg,
            "bg": bg,
        }
        log(f"drew {split}: {n} scenes ({per} per class)")
    return scenes


def render(scenes: dict, size: int) -> np.ndarray:
    """uint8 [n, size, size, 3]: each digit resized (bilinear) to its square and alpha-blended."""
    n = len(scenes["labels"])
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        side = max(1, round(scenes["scale"][i] * size))
        alpha = (
            np.asarray(Image.fromarray(scenes["digits"][i]).resize((side, side), Image.BILINEAR), dtype=np.float64)
            / 255.0
        )
        x0 = int(scenes["pos"][i, 0] * (size - side) + 0.5)
        y0 = int(scenes["pos"][i, 1] * (size - side) + 0.5)
        canvas = np.broadcast_to(scenes["bg"][i], (size, size, 3)).copy()
        patch = canvas[y0 : y0 + side, x0 : x0 + side]
        canvas[y0 : y0 + side, x0 : x0 + side] = patch * (1 - alpha[..., None]) + scenes["fg"][i] * alpha[..., None]
        out[i] = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    return out


def write_folder(folder: Path, size: int, images: dict, scenes: dict) -> None:
    """ImageFolder <folder>/<split>/<class>/<index>.png and a README.txt (written last: marks completion)."""
    for split, imgs in images.items():
        labels = scenes[split]["labels"]
        for c in range(CLASSES):
            (folder / split / str(c)).mkdir(parents=True, exist_ok=True)
        for i, (img, label) in enumerate(zip(imgs, labels)):
            Image.fromarray(img).save(folder / split / str(label) / f"{i:05d}.png")
    sha = {split: hashlib.sha256(imgs.tobytes()).hexdigest()[:16] for split, imgs in images.items()}
    text = f"""{folder.name}: 10 classes, RGB {size}x{size}, made by bench/scaling/make_rgb_models.py (aegis-audit repository).

ImageFolder: <split>/<class>/<index>.png, classes 0..9 (the MNIST digit), uint8 RGB PNG.
train: {PER_CLASS["train"] * CLASSES} images ({PER_CLASS["train"]} per class, MNIST train digits);
test: {PER_CLASS["test"] * CLASSES} images ({PER_CLASS["test"]} per class, MNIST test digits).
Scene: plain background of a random dark colour (channels in [0, {DARK})); the digit, upscaled
(bilinear) to a random square of 50-90% of the canvas side at a random position, alpha-blended in a
random light colour (channels in [{LIGHT}, 255]) at least {MIN_CONTRAST:.0f} (Euclidean RGB) from the background. Draws with numpy.random.default_rng({DATA_SEED}),
shared by the rgb32, rgb64 and rgb224 folders (same scenes, different resolution).
sha256 of the raw image bytes [n, {size}, {size}, 3] in index order (first 16 hex): train {sha["train"]}, test {sha["test"]}.
"""
    (folder / "README.txt").write_text(text)


def load_folder(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    files = sorted((folder / split).glob("*/*.png"), key=lambda p: int(p.stem))
    images = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in files])
    return images, np.array([int(p.parent.name) for p in files], dtype=np.int64)


# ---------------------------------------------------------------- model


class RgbNet(nn.Module):
    """Three stride-2 convolutions, global average pooling and a two-layer head; any input size."""

    def __init__(self, classes: int = CLASSES):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 [n, H, W, 3] -> float32 [n, 3, H, W] in [0, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)


@torch.no_grad()
def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(labels), 100):
        pred = model(to_tensor(images[i : i + 100])).argmax(1).numpy()
        correct += int((pred == labels[i : i + 100]).sum())
    return correct / len(labels)


def train(images: np.ndarray, labels: np.ndarray) -> tuple[nn.Module, dict]:
    torch.manual_seed(TRAIN_SEED)
    model = RgbNet()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    gen = torch.Generator().manual_seed(TRAIN_SEED)
    loss_fn = nn.CrossEntropyLoss()
    y = torch.from_numpy(labels)
    start, wall = time.process_time(), time.perf_counter()
    steps, epochs_done, stopped = 0, 0.0, False
    n = len(labels)
    batches = (n + BATCH - 1) // BATCH
    for epoch in range(EPOCHS):
        model.train()
        order = torch.randperm(n, generator=gen)
        total = 0.0
        for b in range(batches):
            idx = order[b * BATCH : (b + 1) * BATCH]
            opt.zero_grad()
            loss = loss_fn(model(to_tensor(images[idx.numpy()])), y[idx])
            loss.backward()
            opt.step()
            total += loss.item()
            steps += 1
            if time.process_time() - start > MAX_TRAIN_SECONDS:
                stopped = True
                break
        epochs_done = epoch + (b + 1) / batches
        log(f"  epoch {epoch + 1}: mean loss {total / (b + 1):.4f}, {time.perf_counter() - wall:.0f} s")
        if stopped:
            log(f"  stopped at the {MAX_TRAIN_SECONDS:.0f} s CPU limit")
            break
    info = {
        "epochs": round(epochs_done, 3),
        "steps": steps,
        "cpu_seconds": round(time.process_time() - start, 1),
        "wall_seconds": round(time.perf_counter() - wall, 1),
        "stopped_by_time": stopped,
    }
    return model, info


def export(model: nn.Module, size: int, path: Path) -> None:
    model.eval()
    tmp = path.with_suffix(".tmp.onnx")
    torch.onnx.export(
        model,
        (torch.zeros(1, 3, size, size),),
        str(tmp),
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    proto = onnx.load(str(tmp))
    proto.ir_version = min(proto.ir_version, 8)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    tmp.unlink()


def write_card(path: Path, name: str, size: int, info: dict, acc: float, onnx_path: Path) -> None:
    params = sum(p.numel() for p in RgbNet().parameters())
    sha = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    n_train, n_test = PER_CLASS["train"] * CLASSES, PER_CLASS["test"] * CLASSES
    limit = " — stopped by the time limit" if info["stopped_by_time"] else ""
    text = f"""# {name}

Cost-curve model of issue 33 (input size): rgbdigits domain, **3×{size}×{size}**, 10 classes.
Made by `bench/scaling/make_rgb_models.py`; the rgb32, rgb64 and rgb224 models differ only in the input size.

| | |
| --- | --- |
| input | `image` float32 [N, 3, {size}, {size}] in [0, 1] (pixel / 255), no normalisation |
| output | `logits` float32 [N, 10] |
| architecture | {ARCH} |
| parameters | {params:,} |
| data | {name}: {n_train:,} train images ({PER_CLASS["train"]}/class, MNIST train digits), {n_test:,} test images ({PER_CLASS["test"]}/class, MNIST test digits); light coloured digit (50–90% of the side, random position) on a dark coloured background, data seed {DATA_SEED} |
| training | Adam lr {LR}, batch {BATCH}, {info["epochs"]} epochs ({info["steps"]} steps; at most {EPOCHS}, or {MAX_TRAIN_SECONDS:.0f} s CPU){limit}, torch.manual_seed({TRAIN_SEED}), 1 thread |
| training time | {info["cpu_seconds"]} s CPU, {info["wall_seconds"]} s wall (shared 2-core machine) |
| clean test accuracy | **{acc:.4f}** ({n_test} images; chance 0.1) |
| export | torch {torch.__version__}, opset 17, IR version {onnx.load(str(onnx_path)).ir_version}, dynamic batch |
| size | {onnx_path.stat().st_size:,} bytes, sha256 {sha} |
| backdoor | none (clean) |
"""
    path.write_text(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mnist", type=Path, required=True, help="folder of the four MNIST IDX gz files")
    ap.add_argument("--data-out", type=Path, required=True, help="where the rgb<S> ImageFolders go")
    ap.add_argument("--models-out", type=Path, required=True, help="where the .onnx models and cards go")
    ap.add_argument("--only", nargs="*", choices=list(SIZES), help="make only these sizes")
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.models_out.mkdir(parents=True, exist_ok=True)

    scenes = None
    for name, size in SIZES.items():
        if args.only and name not in args.only:
            continue
        onnx_path, card = args.models_out / f"{name}.onnx", args.models_out / f"{name}.md"
        folder = args.data_out / name
        model_done = onnx_path.exists() and card.exists()
        if (folder / "README.txt").exists():
            log(f"data {folder}: present, kept")
            if model_done:
                log(f"{name}: present, skipped")
                continue
            images = {split: load_folder(folder, split) for split in PER_CLASS}
        else:
            if scenes is None:
                scenes = draw_scenes(args.mnist)
            rendered = {split: render(scenes[split], size) for split in PER_CLASS}
            write_folder(folder, size, rendered, scenes)
            log(f"data {folder}: written")
            images = {split: (rendered[split], scenes[split]["labels"]) for split in PER_CLASS}
            if model_done:
                log(f"{name}: present, skipped")
                continue
        log(f"{name}: training")
        model, info = train(*images["train"])
        acc = accuracy(model, *images["test"])
        export(model, size, onnx_path)
        write_card(card, name, size, info, acc, onnx_path)
        log(f"{name}: test accuracy {acc:.4f}, {info['cpu_seconds']} s CPU, {onnx_path.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
