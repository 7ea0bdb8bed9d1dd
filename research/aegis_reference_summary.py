"""Summary of an `aegis_reference.py` npz: mean-shift cluster counts at several estimate_bandwidth quantiles
(all points, and translated points only) and the share of translated images carrying the localised trigger
(pixels rows 25-26, cols 25-26).
"""

import sys

import numpy as np
from sklearn.cluster import MeanShift, estimate_bandwidth

d = np.load(sys.argv[1])
rows = slice(25, 27)
cols = slice(25, 27)
for k in sorted(k for k in d.files if k.startswith("emb")):
    y = int(k[3:])
    E = d[k]
    S = len(E) // 2
    img = d[f"img{y}"]
    trig = img[:, rows, cols].mean(axis=(1, 2))
    out = [f"class {y}: extent {np.ptp(E, axis=0).round(1)} std {E.std():.1f}"]
    for q in (0.3, 0.2, 0.1, 0.05):
        bw = estimate_bandwidth(E, quantile=q)
        lab = MeanShift(bandwidth=bw).fit(E).labels_
        sizes = np.bincount(lab)
        out.append(f" q{q}: bw {bw:.1f} n={len(sizes)} sizes={sorted(sizes.tolist(), reverse=True)[:6]}")
    # translated only
    T = E[S:]
    for q in (0.3, 0.2):
        bw = estimate_bandwidth(T, quantile=q)
        lab = MeanShift(bandwidth=bw).fit(T).labels_
        sizes = np.bincount(lab)
        tm = [f"{trig[lab == c].mean():.2f}" for c in range(len(sizes))]
        out.append(f" T q{q}: n={len(sizes)} sizes={sizes.tolist()[:6]} trig={tm[:6]}")
    out.append(f" trigger-region mean: translated {trig.mean():.3f}, frac>0.5 {np.mean(trig > 0.5):.3f}")
    print("\n".join(out))
