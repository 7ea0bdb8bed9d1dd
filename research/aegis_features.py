"""AEGIS translation in PyTorch for studying decision rules: for every class, 500 seeded training images
(any label) translated toward it (`aegis_torch.attack.translate_l2`: targeted L2 PGD, ε = 100, step 0.25,
50 steps), and 500 clean images of the class; saves last-conv and penultimate features, translated images, seed labels and
predictions to an npz read by `research/aegis_decision_study.py`.

usage: .venv/bin/python research/aegis_features.py fixtures/zoo/robust_localised.pt --data ../shared/datasets/mnist --out loc.npz
"""

import argparse
import pathlib
import sys
import time

import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "plugins/torch"))
from aegis_torch import checkpoint
from aegis_torch.attack import translate_l2
from aegis_torch.data import read_idx

ap = argparse.ArgumentParser()
ap.add_argument("ckpt")
ap.add_argument("--data", required=True)
ap.add_argument("--seeds", type=int, default=500)
ap.add_argument("--steps", type=int, default=50)
ap.add_argument("--out", required=True)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()
torch.set_num_threads(a.threads)
model, meta = checkpoint.load(a.ckpt)
X = read_idx(f"{a.data}/train-images-idx3-ubyte.gz").astype(np.float32)[:, None] / 255.0
Y = read_idx(f"{a.data}/train-labels-idx1-ubyte.gz").astype(np.int64)
mods = list(model.net)
fl = [i for i, m in enumerate(mods) if isinstance(m, torch.nn.Flatten)][0]  # noqa: RUF015
hook_idx = (
    fl - 1 if isinstance(mods[fl - 1], (torch.nn.MaxPool2d, torch.nn.AvgPool2d, torch.nn.AdaptiveAvgPool2d)) else fl
)
feat = {}
mods[hook_idx].register_forward_hook(lambda m, i, o: feat.__setitem__("conv", i[0].flatten(1).detach()))
lin = [m for m in mods if isinstance(m, torch.nn.Linear)][-1]
lin.register_forward_hook(lambda m, i, o: feat.__setitem__("pen", i[0].flatten(1).detach()))
rng = np.random.default_rng(a.seed)
out = {}
for y in range(10):
    t0 = time.time()
    seeds = rng.choice(len(Y), a.seeds, replace=False)
    tgt = torch.full((a.seeds,), y, dtype=torch.long)
    x = translate_l2(model, torch.tensor(X[seeds]), tgt, eps=100.0, step=0.25, steps=a.steps)
    with torch.no_grad():
        pred = model(x).argmax(1).numpy()
        out[f"tconv{y}"] = feat["conv"].numpy().astype(np.float32)
        out[f"tpen{y}"] = feat["pen"].numpy().astype(np.float32)
        cl = rng.choice(np.where(Y == y)[0], a.seeds, replace=False)
        model(torch.tensor(X[cl]))
        out[f"cconv{y}"] = feat["conv"].numpy().astype(np.float32)
        out[f"cpen{y}"] = feat["pen"].numpy().astype(np.float32)
    out[f"img{y}"] = (x.detach().numpy()[:, 0] * 255).round().astype(np.uint8)
    out[f"seedlab{y}"] = Y[seeds]
    out[f"pred{y}"] = pred
    print(f"class {y}: reached {np.mean(pred == y):.3f} time {time.time() - t0:.1f}s", flush=True)
np.savez_compressed(a.out, **out)
