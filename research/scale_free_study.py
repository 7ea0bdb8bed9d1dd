"""Study: per-class anomaly indices on a scale-free footing (issue 29, item 3).

Recomputes every detector's per-class anomaly index from the per-class *values* stored in the benchmark's
reports (bench/results/reports) and the zoo's (bench/results/zoo) under several transforms, refits the
fused decision's calibration on the calibration half's clean models exactly as `aegis-audit calibrate`
does (empirical nulls with an exponential tail, Σ −ln p, Šidák over classes), and scores the evaluation
half and the zoo untouched. No model is audited again: only the index formula changes.

    python3 research/scale_free_study.py
"""

from __future__ import annotations

import csv
import glob
import json
import math
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAD_K = 1.4826
TAIL = 0.1
ALPHA = 0.05


def median(v):
    s = sorted(v)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def mad_index(values, low_is_suspicious, floor=0.0):
    m = median(values)
    mad = median([abs(x - m) for x in values])
    scale = max(MAD_K * mad, floor)
    out = []
    for x in values:
        d = x - m
        if d == 0:
            out.append(0.0)
            continue
        idx = abs(d) / scale if scale > 0 else math.inf
        suspicious = (d < 0) == low_is_suspicious
        out.append(idx if suspicious else -idx)
    return out


def transforms(name, values, n_reach=50):
    """Per-detector index variants: 'raw' (today's formula) and 'log' (scale-free)."""
    if name == "neural-cleanse":
        return {"raw": mad_index(values, True), "log": mad_index([math.log(max(v, 1e-9)) for v in values], True)}
    if name == "aegis":
        return {"raw": mad_index(values, True), "log": mad_index([math.log(max(v, 1e-9)) for v in values], True)}
    if name == "universal":
        logs = [math.log(v) for v in values]
        return {"raw": mad_index(logs, True, 0.05), "log": mad_index(logs, True, 0.05)}
    if name == "reach":
        floor = 0.5 / n_reach
        raw = mad_index(values, False, floor)
        eps = 0.5 / n_reach
        logit = [math.log((min(max(v, eps), 1 - eps)) / (1 - min(max(v, eps), 1 - eps))) for v in values]
        return {"raw": raw, "log": mad_index(logit, False, 0.1)}
    raise ValueError(name)


class Null:
    def __init__(self, samples):
        s = sorted(samples)
        n = len(s)
        k = min(max(round(n * TAIL), 5), n - 1)
        self.s = s
        self.u = s[n - k - 1]
        exc = [x - self.u for x in s if x > self.u]
        beta = sum(exc) / len(exc) if exc else 0.0
        self.beta = max(beta, 1e-6 * max(abs(s[-1] - s[0]), 1e-12))
        self.pu = (sum(1 for x in s if x >= self.u) + 1) / (n + 1)

    def p(self, a):
        if math.isnan(a) or a == -math.inf:
            return 1.0
        if a > self.u:
            return self.pu * math.exp(-(a - self.u) / self.beta)
        return (sum(1 for x in self.s if x >= a) + 1) / (len(self.s) + 1)


def surprise(null, a):
    p = null.p(a)
    return 700.0 if p <= 0 else (0.0 if p >= 1 else min(-math.log(p), 700.0))


def load(path):
    with open(path) as f:
        r = json.load(f)
    return {d["name"]: [c["value"] for c in d["classes"]] for d in r["detectors"]}


def labels():
    out = {}
    with open(os.path.join(ROOT, "bench/results/results.csv")) as f:
        for row in csv.DictReader(f):
            if row["decision"] == "fused":
                out[row["name"]] = (row["split"], row["status"], row["target"])
    for card in glob.glob(os.path.join(ROOT, "fixtures/zoo/*.card.yaml")):
        name = os.path.basename(card).split(".")[0]
        with open(card) as f:
            text = f.read()
        target = None
        for line in text.splitlines():
            if line.strip().startswith("target"):
                target = line.split(":", 1)[1].strip()
        out["zoo/" + name] = ("zoo", "clean" if "clean" in name else "backdoored", target or "")
    return out


def auc(pos, neg):
    if not pos or not neg:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def main():
    lab = labels()
    reports = {}
    for p in glob.glob(os.path.join(ROOT, "bench/results/reports/*.json")):
        reports[os.path.basename(p)[:-5]] = load(p)
    for p in glob.glob(os.path.join(ROOT, "bench/results/zoo/*.json")):
        if not p.endswith("decisions.json"):  # the decide output beside the reports
            reports["zoo/" + os.path.basename(p)[:-5]] = load(p)
    dets = ["aegis", "neural-cleanse", "reach", "universal"]
    for variant in sys.argv[1:] or ["raw", "log", "mixed"]:
        idx = {}
        for name, vals in reports.items():
            idx[name] = {}
            for d in dets:
                t = transforms(d, vals[d])
                v = variant if variant != "mixed" else ("log" if d in ("neural-cleanse", "aegis") else "raw")
                idx[name][d] = t[v]
        cal = [n for n, (s, st, _) in lab.items() if s == "calibration" and st == "clean" and n in idx]
        nulls = {d: Null([a for n in cal for a in idx[n][d]]) for d in dets}
        fused_null = Null([sum(surprise(nulls[d], idx[n][d][c]) for d in dets) for n in cal for c in range(10)])
        rows = []
        for name, (split, status, target) in lab.items():
            if name not in idx or status not in ("clean", "backdoored"):
                continue
            k = len(idx[name]["aegis"])
            scores = [sum(surprise(nulls[d], idx[name][d][c]) for d in dets) for c in range(k)]
            ps = [1 - (1 - fused_null.p(s)) ** k for s in scores]
            flagged = [c for c in range(k) if ps[c] <= ALPHA]
            rows.append((name, split, status, target, min(ps), flagged, max(range(k), key=lambda c: scores[c])))
        print(f"== {variant}")
        for split in ("calibration", "evaluation", "zoo"):
            sel = [r for r in rows if r[1] == split]
            pos = [-math.log(max(r[4], 1e-300)) for r in sel if r[2] == "backdoored"]
            neg = [-math.log(max(r[4], 1e-300)) for r in sel if r[2] == "clean"]
            tp = sum(1 for r in sel if r[2] == "backdoored" and r[5])
            fp = sum(1 for r in sel if r[2] == "clean" and r[5])
            exact = sum(1 for r in sel if r[2] == "backdoored" and r[5] and str(r[3]) in [str(c) for c in r[5]])
            print(f"{split:12s} AUC {auc(pos, neg):.3f} TPR {tp}/{len(pos)} FPR {fp}/{len(neg)} exact {exact}/{tp}")
        for r in rows:
            if r[1] == "zoo" or (r[2] == "backdoored" and not r[5]) or (r[2] == "clean" and r[5]):
                print(f"   {r[0]:28s} {r[2]:10s} target {r[3]:>3} p {r[4]:.2e} flagged {r[5]}")


if __name__ == "__main__":
    main()
