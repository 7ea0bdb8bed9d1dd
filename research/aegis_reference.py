"""Reference AEGIS in PyTorch + scikit-learn (the paper's pipeline with scikit-learn's current t-SNE), to study
the cluster structure on zoo checkpoints independently of the Rust pipeline. Saves each class's 2-D embedding
(clean points first, then translated) and translated images to an npz; `research/aegis_reference_summary.py`
prints mean-shift cluster counts and how many translated images carry the localised trigger.

usage: .venv/bin/python research/aegis_reference.py fixtures/zoo/robust_localised.pt --data ../shared/datasets/mnist \\
           --classes 7,0,3 [--feat conv|pen] --out loc.npz
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
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

ap = argparse.ArgumentParser()
ap.add_argument("ckpt")
ap.add_argument("--data", required=True)
ap.add_argument("--seeds", type=int, default=500)
ap.add_argument("--steps", type=int, default=50)
ap.add_argument("--eps", type=float, default=100.0)
ap.add_argument("--step", type=float, default=0.25)
ap.add_argument("--out", required=True)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--classes", default="0,1,2,3,4,5,6,7,8,9")
ap.add_argument("--feat", default="conv")
a = ap.parse_args()
torch.set_num_threads(2)
model, meta = checkpoint.load(a.ckpt)
X = read_idx(f"{a.data}/train-images-idx3-ubyte.gz").astype(np.float32)[:, None] / 255.0
Y = read_idx(f"{a.data}/train-labels-idx1-ubyte.gz").astype(np.int64)
net = model.net
feat = {}
# features: input of the last pooling layer before Flatten
mods = list(net)
fl = [i for i, m in enumerate(mods) if isinstance(m, torch.nn.Flatten)][0]  # noqa: RUF015
hook_idx = (
    fl - 1 if isinstance(mods[fl - 1], (torch.nn.MaxPool2d, torch.nn.AvgPool2d, torch.nn.AdaptiveAvgPool2d)) else fl
)
if a.feat == "conv":
    mods[hook_idx].register_forward_hook(lambda m, i, o: feat.__setitem__("f", i[0].flatten(1).detach()))
else:
    lin = [m for m in mods if isinstance(m, torch.nn.Linear)][-1]
    lin.register_forward_hook(lambda m, i, o: feat.__setitem__("f", i[0].flatten(1).detach()))
rng = np.random.default_rng(a.seed)
out = {}
for y in [int(c) for c in a.classes.split(",")]:
    t0 = time.time()
    seeds = rng.choice(len(Y), a.seeds, replace=False)
    tgt = torch.full((a.seeds,), y, dtype=torch.long)
    x = translate_l2(model, torch.tensor(X[seeds]), tgt, eps=a.eps, step=a.step, steps=a.steps)
    with torch.no_grad():
        pred = model(x).argmax(1)
        ft = feat["f"].numpy()
        cl = np.where(Y == y)[0]
        cl = rng.choice(cl, a.seeds, replace=False)
        model(torch.tensor(X[cl]))
        fc = feat["f"].numpy()
    F = np.concatenate([fc, ft]).astype(np.float64)
    P = PCA(min(150, F.shape[0], F.shape[1]), random_state=0).fit_transform(F)
    E = TSNE(2, perplexity=30, random_state=a.seed).fit_transform(P)
    out[f"emb{y}"] = E
    out[f"img{y}"] = x.detach().numpy()[:, 0]
    out[f"seedlab{y}"] = Y[seeds]
    print(f"class {y}: reached {float((pred == y).float().mean()):.3f} time {time.time() - t0:.1f}s", flush=True)
np.savez_compressed(a.out, **out)
