"""AEGIS translation in PyTorch for studying decision rules: for every class, 500 seeded training images
(any label) translated toward it (targeted L2 PGD, step 0.25, 50 steps; the ε = 100 ball never binds), and
500 clean images of the class; saves last-conv and penultimate features, translated images, seed labels and
predictions to an npz read by `scripts/aegis_decision_study.py`.

usage: .venv/bin/python scripts/aegis_features.py fixtures/zoo/robust_localised.pt --data ../shared/datasets/mnist --out loc.npz
"""
import argparse, gzip, sys, time, pathlib
import numpy as np, torch
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "plugins/torch"))
from aegis_torch import checkpoint
def idx(path):
    with gzip.open(path) as f: data = f.read()
    nd = data[3]; dims = [int.from_bytes(data[4+4*i:8+4*i], "big") for i in range(nd)]
    return np.frombuffer(data, np.uint8, offset=4+4*nd).reshape(dims)
ap = argparse.ArgumentParser()
ap.add_argument("ckpt"); ap.add_argument("--data", required=True)
ap.add_argument("--seeds", type=int, default=500); ap.add_argument("--steps", type=int, default=50)
ap.add_argument("--out", required=True); ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()
torch.set_num_threads(a.threads)
model, meta = checkpoint.load(a.ckpt)
X = idx(f"{a.data}/train-images-idx3-ubyte.gz").astype(np.float32)[:, None] / 255.0
Y = idx(f"{a.data}/train-labels-idx1-ubyte.gz").astype(np.int64)
mods = list(model.net)
fl = [i for i, m in enumerate(mods) if isinstance(m, torch.nn.Flatten)][0]
hook_idx = fl - 1 if isinstance(mods[fl-1], (torch.nn.MaxPool2d, torch.nn.AvgPool2d, torch.nn.AdaptiveAvgPool2d)) else fl
feat = {}
mods[hook_idx].register_forward_hook(lambda m, i, o: feat.__setitem__("conv", i[0].flatten(1).detach()))
lin = [m for m in mods if isinstance(m, torch.nn.Linear)][-1]
lin.register_forward_hook(lambda m, i, o: feat.__setitem__("pen", i[0].flatten(1).detach()))
rng = np.random.default_rng(a.seed)
out = {}
for y in range(10):
    t0 = time.time()
    seeds = rng.choice(len(Y), a.seeds, replace=False)
    x0 = torch.tensor(X[seeds]); x = x0.clone()
    tgt = torch.full((a.seeds,), y, dtype=torch.long)
    for _ in range(a.steps):
        x.requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(model(x), tgt, reduction="sum")
        g, = torch.autograd.grad(loss, x)
        with torch.no_grad():
            n = g.flatten(1).norm(dim=1).view(-1, 1, 1, 1) + 1e-10
            x = (x - 0.25 * g / n).clamp(0, 1)
    with torch.no_grad():
        pred = model(x).argmax(1).numpy()
        out[f"tconv{y}"] = feat["conv"].numpy().astype(np.float32); out[f"tpen{y}"] = feat["pen"].numpy().astype(np.float32)
        cl = rng.choice(np.where(Y == y)[0], a.seeds, replace=False)
        model(torch.tensor(X[cl]))
        out[f"cconv{y}"] = feat["conv"].numpy().astype(np.float32); out[f"cpen{y}"] = feat["pen"].numpy().astype(np.float32)
    out[f"img{y}"] = (x.detach().numpy()[:, 0] * 255).round().astype(np.uint8)
    out[f"seedlab{y}"] = Y[seeds]; out[f"pred{y}"] = pred
    print(f"class {y}: reached {np.mean(pred == y):.3f} time {time.time()-t0:.1f}s", flush=True)
np.savez_compressed(a.out, **out)
