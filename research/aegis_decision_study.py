"""Decision rules studied on `research/aegis_features.py` npz files (README, "The AEGIS decision rule").

fidelity (rule v1, discarded): share of images translated toward y from seeds of other classes whose 10
nearest clean neighbours in last-conv feature space (500 clean images of every class) vote y.
displacement (rule v2, the `shortcut` decision): mean L2 distance between translated images and their seeds
(seeds of other classes). Both compared across classes by the MAD anomaly index on the low side.

usage: .venv/bin/python research/aegis_decision_study.py --data ../shared/datasets/mnist loc.npz clean.npz ...
"""

import argparse
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "plugins/torch"))
from aegis_torch.data import read_idx

ap = argparse.ArgumentParser()
ap.add_argument("--data", required=True)
ap.add_argument("npz", nargs="+")
a = ap.parse_args()


X = read_idx(f"{a.data}/train-images-idx3-ubyte.gz").astype(np.float32) / 255
Y = read_idx(f"{a.data}/train-labels-idx1-ubyte.gz").astype(np.int64)


def low_index(f):
    med = np.median(f)
    mad = 1.4826 * np.median(np.abs(f - med))
    return (med - f) / max(mad, 1e-12)


def fidelity(d, k=10):
    ref = np.concatenate([d[f"cconv{c}"].astype(np.float64) for c in range(10)])
    rl = np.repeat(np.arange(10), len(ref) // 10)
    r2 = (ref**2).sum(1)
    out = []
    for y in range(10):
        T = d[f"tconv{y}"].astype(np.float64)
        sl = d[f"seedlab{y}"]
        m = sl != y
        nn = np.argpartition((T**2).sum(1)[:, None] - 2 * T @ ref.T + r2[None], k, 1)[:, :k]
        vote = np.array([np.bincount(rl[r], minlength=10).argmax() for r in nn])
        out.append(np.mean(vote[m] == y))
    return np.array(out)


def displacement(d, seed=0):
    # Re-draws aegis_features.py's seeded choices to recover each translated image's seed.
    rng = np.random.default_rng(seed)
    out = []
    for y in range(10):
        seeds = rng.choice(len(Y), 500, replace=False)
        rng.choice(np.where(Y == y)[0], 500, replace=False)
        assert (Y[seeds] == d[f"seedlab{y}"]).all(), "npz was not made with this data and seed"
        x = d[f"img{y}"].astype(np.float32) / 255
        m = Y[seeds] != y
        out.append(np.linalg.norm((x - X[seeds]).reshape(len(seeds), -1), axis=1)[m].mean())
    return np.array(out)


for p in a.npz:
    d = np.load(p)
    for name, v in (("fidelity", fidelity(d)), ("displacement", displacement(d))):
        i = low_index(v)
        print(
            f"{p}: {name:12s} {' '.join(f'{x:.2f}' for x in v)} | index {' '.join(f'{x:.1f}' for x in i)} "
            f"| flagged (index > 2) {[c for c in range(10) if i[c] > 2]}"
        )
