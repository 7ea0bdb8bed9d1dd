"""PGD benchmark, side by side in one run: aegis-audit (gradient graph on ONNX Runtime, via
`examples/bench_pgd.rs`) against PyTorch eager doing the identical untargeted L2 PGD on the same
weights (the zoo checkpoint the ONNX file was exported from) and the same images.

usage: .venv/bin/python scripts/bench_pgd.py [--model robust_localised] [--n 500] [--steps 20]
       [--batch 100] [--threads 2] [--profile release]
"""
import argparse, json, pathlib, subprocess, sys, time

import numpy as np
import torch

root = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(root / "plugins/torch"))
from aegis_torch import checkpoint, data  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--model", default="robust_localised")
ap.add_argument("--data", default=str(root / "fixtures/mnist-subset"))
ap.add_argument("--n", type=int, default=500)
ap.add_argument("--steps", type=int, default=20)
ap.add_argument("--batch", type=int, default=100)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--profile", default="release")
ap.add_argument("--repeats", type=int, default=3)
a = ap.parse_args()

flag = ["--release"] if a.profile == "release" else ["--profile", a.profile]
subprocess.run(["cargo", "build", "-q", "--example", "bench_pgd", *flag], cwd=root, check=True)
exe = root / "target" / ("release" if a.profile == "release" else "debug") / "examples" / "bench_pgd"

def rust():
    out = subprocess.run([str(exe), str(root / "fixtures/zoo" / f"{a.model}.onnx"), a.data, str(a.n), str(a.steps),
                          str(a.batch), str(a.threads)], check=True, capture_output=True, text=True).stdout
    return json.loads(out)

def torch_pgd():
    torch.set_num_threads(a.threads)
    model, _ = checkpoint.load(root / "fixtures/zoo" / f"{a.model}.pt")
    ds = data.load("mnist", a.data, "test")
    x0 = torch.as_tensor(ds.images[: a.n].astype(np.float32) / 255.0)
    y = torch.as_tensor(ds.labels[: a.n].astype(np.int64))
    eps = 1.5
    step = 2.5 * eps / a.steps
    t0 = time.perf_counter()
    fooled = []
    for s in range(0, a.n, a.batch):
        xb0, yb = x0[s:s + a.batch], y[s:s + a.batch]
        x = xb0.clone()
        for _ in range(a.steps):
            x.requires_grad_(True)
            loss = torch.nn.functional.cross_entropy(model(x), yb, reduction="sum")
            g, = torch.autograd.grad(loss, x)
            with torch.no_grad():
                x = x + step * g / (g.flatten(1).norm(dim=1).view(-1, 1, 1, 1) + 1e-10)
                d = x - xb0
                dn = d.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
                x = (xb0 + d * torch.clamp(eps / (dn + 1e-12), max=1.0)).clamp(0, 1)
        with torch.no_grad():
            fooled.append(model(x).argmax(1) != yb)
    secs = time.perf_counter() - t0
    nf = 1 - torch.cat(fooled).float().mean().item()
    return {"impl": "pytorch-eager", "images": a.n, "steps": a.steps, "seconds": round(secs, 4),
            "step_images_per_s": round(a.n * a.steps / secs, 1), "not_fooled": round(nf, 4)}

best = {}
for _ in range(a.repeats):
    for r in (rust(), torch_pgd()):
        if r["impl"] not in best or r["seconds"] < best[r["impl"]]["seconds"]:
            best[r["impl"]] = r
for r in best.values():
    print(json.dumps(r))
ratio = best["aegis-audit"]["step_images_per_s"] / best["pytorch-eager"]["step_images_per_s"]
print(f"ratio aegis-audit / pytorch = {ratio:.2f}x (best of {a.repeats}, {a.threads} threads, {a.n} images x {a.steps} steps, batch {a.batch})")
