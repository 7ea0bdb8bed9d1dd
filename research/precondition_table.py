"""Adversarial accuracy of zoo checkpoints under untargeted L2 PGD (20 steps of 2.5eps/20) at several budgets,
on 500 seeded test images of the committed MNIST subset: the calibration of the robustness precondition.

usage: .venv/bin/python research/precondition_table.py MODEL [MODEL ...]
"""

import gzip
import pathlib
import sys

import numpy as np
import torch

root = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(root / "plugins/torch"))
from aegis_torch import checkpoint

torch.set_num_threads(1)


def idx(path):
    with gzip.open(path) as f:
        data = f.read()
    nd = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * nd).reshape(dims)


X = torch.tensor(
    idx(str(root / "fixtures/mnist-subset") + "/t10k-images-idx3-ubyte.gz").astype(np.float32)[:, None] / 255
)
Y = torch.tensor(idx(str(root / "fixtures/mnist-subset") + "/t10k-labels-idx1-ubyte.gz").astype(np.int64))
g = torch.Generator().manual_seed(0)
sel = torch.randperm(len(Y), generator=g)[:500]
X, Y = X[sel], Y[sel]
for name in sys.argv[1:]:
    m, _ = checkpoint.load(root / "fixtures/zoo" / f"{name}.pt")
    res = []
    for eps in (0.5, 1.0, 1.5, 2.0):
        x = X.clone()
        step = 2.5 * eps / 20
        for _ in range(20):
            x.requires_grad_(True)
            l = torch.nn.functional.cross_entropy(m(x), Y, reduction="sum")
            (gr,) = torch.autograd.grad(l, x)
            with torch.no_grad():
                x = x + step * gr / (gr.flatten(1).norm(dim=1).view(-1, 1, 1, 1) + 1e-10)
                d = x - X
                dn = d.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
                x = (X + d * torch.clamp(eps / (dn + 1e-12), max=1)).clamp(0, 1)
        with torch.no_grad():
            ok = (m(X).argmax(1) == Y) & (m(x).argmax(1) == Y)
        res.append(f"eps{eps}:{ok.float().mean():.3f}")
    with torch.no_grad():
        clean = (m(X).argmax(1) == Y).float().mean()
    print(name, f"clean {clean:.3f}", " ".join(res), flush=True)
