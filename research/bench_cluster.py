#!/usr/bin/env python3
"""Inputs for, and scikit-learn's side of, research/bench_cluster.sh.

bench_cluster.py gen DIR      write the seeded inputs (NPY) into DIR
bench_cluster.py sklearn DIR  time scikit-learn on them, one JSON line per case
bench_cluster.py report DIR   print the side-by-side table from DIR/{rust,sklearn}.jsonl
"""  # noqa: EXE001

import json
import os
import sys
import time

import numpy as np


def gen(d):
    rng = np.random.default_rng(0)
    for n in (1000, 5000):
        centres = rng.normal(0, 10, size=(10, 150))
        x = centres[np.arange(n) % 10] + rng.normal(0, 3, size=(n, 150))
        np.save(os.path.join(d, f"tsne_{n}x150.npy"), x.astype(np.float32))
    centres = rng.uniform(-20, 20, size=(6, 2))
    x = centres[np.arange(1000) % 6] + rng.normal(0, 2.0, size=(1000, 2))
    np.save(os.path.join(d, "meanshift_1000x2.npy"), x)


def sklearn_side(d):
    from sklearn.cluster import MeanShift
    from sklearn.manifold import TSNE

    for name in ("tsne_1000x150", "tsne_5000x150"):
        x = np.load(os.path.join(d, name + ".npy")).astype(np.float64)
        t = time.perf_counter()
        emb = TSNE(n_components=2, perplexity=30.0, random_state=0).fit(x)
        s = time.perf_counter() - t
        print(
            json.dumps({"case": name, "seconds": round(s, 4), "kl_divergence": float(emb.kl_divergence_)}), flush=True
        )
    x = np.load(os.path.join(d, "meanshift_1000x2.npy"))
    t = time.perf_counter()
    ms = MeanShift().fit(x)
    s = time.perf_counter() - t
    print(json.dumps({"case": "meanshift_1000x2", "seconds": round(s, 4), "n_clusters": len(ms.cluster_centers_)}))


def report(d):
    def load(f):
        with open(os.path.join(d, f)) as fh:
            return {r["case"]: r for r in map(json.loads, filter(str.strip, fh))}

    rust, sk = load("rust.jsonl"), load("sklearn.jsonl")
    print("| case | aegis-audit (s) | scikit-learn (s) | speed-up | KL / clusters (ours vs sklearn) |")
    print("| --- | ---: | ---: | ---: | --- |")
    for case in rust:
        r, s = rust[case], sk[case]
        extra = (
            f"KL {r['kl_divergence']:.3f} vs {s['kl_divergence']:.3f}"
            if "kl_divergence" in r
            else f"{r['n_clusters']} vs {s['n_clusters']} clusters"
        )
        print(f"| {case} | {r['seconds']:.2f} | {s['seconds']:.2f} | {s['seconds'] / r['seconds']:.1f}x | {extra} |")


if __name__ == "__main__":
    {"gen": gen, "sklearn": sklearn_side, "report": report}[sys.argv[1]](sys.argv[2])
