#!/usr/bin/env python3
"""Generate the scikit-learn parity fixtures for aegis-audit's embed/cluster modules.

Run from the repository root:  .venv/bin/python scripts/gen_cluster_fixtures.py
Writes fixtures/cluster/*.npy (inputs) and fixtures/cluster/expected.json (scikit-learn's outputs,
with the scikit-learn and numpy versions; for HDBSCAN also `labels_any_order`, the distinct partitions
scikit-learn gives over many row orders of the same input). Every random draw is seeded. scikit-learn is pinned in
plugins/torch/requirements.txt (1.7.2).
"""  # noqa: EXE001

import json
import os

import numpy as np
import sklearn
from sklearn.cluster import HDBSCAN, AffinityPropagation, MeanShift, estimate_bandwidth
from sklearn.datasets import make_blobs, make_moons
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "cluster")
# Seeded random row orders HDBSCAN is re-run on, besides the identity and every rotation. On the
# two-moons fixture with min_cluster_size 15 about 1 order in 120 gives scikit-learn's other
# partition, so a few random orders would miss it.
HDB_RANDOM_ORDERS = 1000


def save(name, x, dtype=np.float64):
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(x, dtype=dtype))
    return name + ".npy"


def grouped(n, d, groups, spread, seed):
    """n points in d dims around `groups` random centres (for t-SNE inputs)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, size=(groups, d))
    y = np.arange(n) % groups
    return centres[y] + rng.normal(0, spread, size=(n, d)), y


def canonical(labels):
    """Labels renamed by first occurrence (noise, -1, kept): equal partitions give equal lists."""
    names = {}
    return [-1 if l == -1 else names.setdefault(l, len(names)) for l in labels]


def row_orders(n, k=HDB_RANDOM_ORDERS):
    """The row orders HDBSCAN is re-run on: the identity, every rotation (each row in turn first:
    Prim's tree starts at row 0) and `k` seeded random permutations."""
    yield np.arange(n)
    for i in range(1, n):
        yield np.roll(np.arange(n), -i)
    for seed in range(k):
        yield np.random.default_rng(seed).permutation(n)


def hdbscan_partitions(x, mcs):
    """The distinct partitions scikit-learn's HDBSCAN gives on `x` over `row_orders`, each mapped
    back to the original row order and canonicalised, in order of first appearance (the identity
    order's first), with how many row orders gave each. More than one means the result depends on
    row order: tied mutual-reachability edges, which scikit-learn sorts with numpy's unstable argsort."""
    seen, counts = [], []
    for p in row_orders(len(x)):
        lab = np.empty(len(x), dtype=np.int64)
        lab[p] = HDBSCAN(min_cluster_size=mcs).fit(x[p]).labels_
        c = canonical(lab.tolist())
        if c in seen:
            counts[seen.index(c)] += 1
        else:
            seen.append(c)
            counts.append(1)
    return seen, counts


def main():
    os.makedirs(OUT, exist_ok=True)
    exp = {"sklearn_version": sklearn.__version__, "numpy_version": np.__version__}

    # --- t-SNE: KL divergence and the cluster count of mean shift on its output.
    tsne_x, tsne_y = grouped(400, 30, 4, 1.5, seed=3)  # noqa: RUF059
    tsne_x = tsne_x.astype(np.float32)
    emb = TSNE(n_components=2, perplexity=30.0, random_state=0, method="barnes_hut")
    pts = emb.fit_transform(tsne_x.astype(np.float64))
    # The groups are far apart: the estimated bandwidth (quantile 0.3) would span several, so the
    # count is taken at a fixed bandwidth, as AEGIS does.
    ms = MeanShift(bandwidth=5.0).fit(pts)
    assert len(ms.cluster_centers_) == 4, "scikit-learn's pipeline should find the 4 groups"
    exp["tsne"] = {
        "input": save("tsne_x", tsne_x, np.float32),
        "groups": 4,
        "perplexity": 30.0,
        "kl_divergence": float(emb.kl_divergence_),
        "n_iter": int(emb.n_iter_),
        "learning_rate": float(emb.learning_rate_),
        "meanshift_bandwidth": 5.0,
        "meanshift_n_clusters": len(ms.cluster_centers_),
    }
    tsne_like = pts

    # --- Mean shift and estimate_bandwidth on several 2-D datasets.
    blobs, _ = make_blobs(n_samples=300, centers=4, cluster_std=0.6, random_state=0)
    overlap, _ = make_blobs(n_samples=300, centers=3, cluster_std=2.2, random_state=1)
    ms_cases = {}
    for name, x, bw in [
        ("blobs", blobs, None),
        ("overlap", overlap, None),
        ("overlap_bw2", overlap, 2.0),
        ("tsne_like", tsne_like, None),
        ("tsne_like_bw5", tsne_like, 5.0),
    ]:
        fname = save("ms_" + name.split("_bw")[0], x)
        m = MeanShift(bandwidth=bw).fit(x)
        used = bw if bw is not None else estimate_bandwidth(x)
        ms_cases[name] = {
            "input": fname,
            "bandwidth_given": bw,
            "bandwidth": float(used),
            "labels": m.labels_.tolist(),
            "centers": m.cluster_centers_.tolist(),
        }
    exp["meanshift"] = ms_cases
    exp["estimate_bandwidth"] = [
        {"input": f, "quantile": q, "bandwidth": float(estimate_bandwidth(np.load(os.path.join(OUT, f)), quantile=q))}
        for f in ["ms_blobs.npy", "ms_overlap.npy", "ms_tsne_like.npy"]
        for q in [0.1, 0.3, 0.5]
    ]

    # --- HDBSCAN.
    hb, _ = make_blobs(n_samples=250, centers=[[0, 0], [6, 6], [-6, 5]], cluster_std=[0.8, 1.2, 0.5], random_state=7)
    rng = np.random.default_rng(11)
    hb = np.vstack([hb, rng.uniform(-10, 10, size=(30, 2))])
    moons, _ = make_moons(n_samples=200, noise=0.06, random_state=2)
    exp["hdbscan"] = []
    for name, x in [("hdb_blobs", hb), ("hdb_moons", moons)]:
        f = save(name, x)
        for mcs in [5, 15]:
            lab = HDBSCAN(min_cluster_size=mcs).fit(x).labels_
            any_order, counts = hdbscan_partitions(x, mcs)
            exp["hdbscan"].append(
                {
                    "input": f,
                    "min_cluster_size": mcs,
                    "labels": lab.tolist(),
                    "labels_any_order": any_order,
                    "labels_any_order_counts": counts,
                }
            )

    # --- Affinity propagation: datasets whose labels do not depend on the tie-breaking noise.
    exp["affinity"] = []
    for name, x in [
        ("ap_blobs", make_blobs(n_samples=60, centers=3, cluster_std=0.5, random_state=4)[0]),
        ("ap_overlap", make_blobs(n_samples=80, centers=4, cluster_std=1.5, random_state=5)[0]),
    ]:
        labs = [AffinityPropagation(random_state=s).fit(x).labels_ for s in range(5)]
        assert all((l == labs[0]).all() for l in labs), f"{name}: labels depend on the noise"
        ap = AffinityPropagation(random_state=0).fit(x)
        exp["affinity"].append(
            {"input": save(name, x), "labels": ap.labels_.tolist(), "centers": ap.cluster_centers_indices_.tolist()}
        )

    # --- PCA explained variance (full solver: exact, as aegis-audit computes it).
    rng = np.random.default_rng(5)
    tall = rng.normal(size=(200, 30)) * np.geomspace(10, 0.1, 30)
    wide = rng.normal(size=(40, 100)) * np.geomspace(5, 0.5, 100)
    exp["pca"] = []
    for name, x, k in [("pca_tall", tall, 10), ("pca_wide", wide, 150)]:
        p = PCA(n_components=min(k, *x.shape), svd_solver="full").fit(x)
        exp["pca"].append(
            {
                "input": save(name, x),
                "n_components": k,
                "explained_variance": p.explained_variance_.tolist(),
                "explained_variance_ratio": p.explained_variance_ratio_.tolist(),
                "transform_first_rows": np.abs(p.transform(x[:3])).tolist(),
            }
        )

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(exp, f, indent=1)
    print("wrote", OUT, "sklearn", sklearn.__version__)


if __name__ == "__main__":
    main()
