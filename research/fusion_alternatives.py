"""Would another way of fusing the detectors' indices transfer across domains? (issue 29, item 3)

Re-computes the fused decision from the stored benchmark reports (every report covering all of its
model's classes, i.e. the 10-class MNIST and RGB models) with a Python replica of `decide::fuse` (the
empirical null with its exponential tail, Fisher's sum of −ln p, the model p-value over K classes), and
with variants of it, each evaluated by leaving groups out (domain, architecture, attack family: the null is
fitted on the clean calibration models outside the group, the group is scored untouched):

- `fisher`: today's fused score, Σ −ln p over the four detectors;
- `min-p`: the strongest detector alone, −ln min p (no agreement needed);
- `top-2`: the two strongest detectors' −ln p;
- `empirical`: Fisher's sum with each detector's p-value floored at the null's resolution 1/(N+1) (no
  exponential tail, so that no single detector's extreme index decides alone);
- `gap`: the model's highest Fisher score minus its second highest (a lone outlier), thresholded at the 95%
  quantile of the same gap on the null's clean models;
- `pooled`: Fisher's sum with the null pooled over every domain's clean calibration models, scored on the
  evaluation half (the one built-in calibration of item 3) beside the first benchmark's 15 MNIST models.

    .venv/bin/python research/fusion_alternatives.py --bench bench

Results are in bench/README.md ("Fusion alternatives on the stored reports").
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import yaml

DETECTORS = ["aegis", "neural-cleanse", "reach", "universal"]


def load(bench: Path) -> list[dict]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins" / "bench"))
    from aegis_bench.evaluate import domain_of, family_of, status, targets_of

    rows = []
    for p in sorted((bench / "results" / "reports").glob("*.json")):
        card_path = bench / "models" / f"{p.stem}.card.yaml"
        if not card_path.exists():
            continue
        card = yaml.safe_load(card_path.read_text())
        label = status(card, 0.5)
        if label == "not-implanted":
            continue
        r = json.loads(p.read_text())
        k = r["dataset"]["classes"]
        dets = {d["name"]: {c["class"]: c["anomaly_index"] for c in d["classes"]} for d in r["detectors"]}
        if set(dets) != set(DETECTORS) or any(len(v) != k for v in dets.values()):
            continue  # adaptive audits measure a shortlist: not comparable class by class
        rows.append(
            {
                "name": p.stem,
                "split": card["split"],
                "label": label,
                "targets": targets_of(card, 0.5) if label == "backdoored" else [],
                "domain": domain_of(card),
                "arch": card["architecture"],
                "family": family_of(card),
                "k": k,
                "idx": dets,
            }
        )
    return rows


class Null:
    """`decide::EmpiricalNull`: empirical upper tail, exponential beyond the top 10%."""

    def __init__(self, samples, tail_fraction=0.1, tail=True):
        self.x = sorted(samples)
        n = len(self.x)
        k = min(max(round(n * tail_fraction), 5), n - 1)
        self.u = self.x[n - k - 1]
        ex = [v - self.u for v in self.x if v > self.u]
        self.beta = max(sum(ex) / len(ex) if ex else 0.0, 1e-6 * max(abs(self.x[-1] - self.x[0]), 1e-12))
        self.pu = (sum(v >= self.u for v in self.x) + 1) / (n + 1)
        self.tail = tail

    def p(self, a):
        if self.tail and a > self.u:
            return self.pu * math.exp(-(a - self.u) / self.beta)
        return (sum(v >= a for v in self.x) + 1) / (len(self.x) + 1)


def surprise(p):
    return -math.log(max(p, 1e-300))


COMBINE = {
    "fisher": lambda ps: sum(surprise(p) for p in ps),
    "min-p": lambda ps: surprise(min(ps)),
    "top-2": lambda ps: sum(sorted(surprise(p) for p in ps)[-2:]),
}


def fit(null_rows, combine, tail=True):
    nulls = {d: Null([r["idx"][d][c] for r in null_rows for c in range(r["k"])], tail=tail) for d in DETECTORS}

    def score(r, c):
        return combine([nulls[d].p(r["idx"][d][c]) for d in DETECTORS])

    fused = Null([score(r, c) for r in null_rows for c in range(r["k"])])
    return fused, score


def decide(model, fitted, alpha=0.05):
    fused, score = fitted
    k = model["k"]
    ps = [1 - (1 - fused.p(score(model, c))) ** k for c in range(k)]
    return min(ps), [c for c in range(k) if ps[c] <= alpha]


def auc(scores, labels):
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return float("nan")
    return sum((a > b) + 0.5 * (a == b) for a in pos for b in neg) / (len(pos) * len(neg))


def rates(models, fitted):
    out = [decide(r, fitted) for r in models]
    y = [r["label"] == "backdoored" for r in models]
    flagged = [bool(o[1]) for o in out]
    tpr = sum(f for f, yy in zip(flagged, y) if yy) / max(sum(y), 1)
    fpr = sum(f for f, yy in zip(flagged, y) if not yy) / max(len(y) - sum(y), 1)
    return auc([-math.log(max(o[0], 1e-300)) for o in out], y), tpr, fpr, sum(y), len(y) - sum(y)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", type=Path, default=Path("bench"))
    args = ap.parse_args()
    rows = load(args.bench)
    variants = [(n, c, True) for n, c in COMBINE.items()] + [("empirical", COMBINE["fisher"], False)]
    print(f"{len(rows)} reports covering every class")
    print("variant | held out | group | bd/clean | ROC-AUC | TPR | FPR")
    for name, combine, tail in variants:
        for key in ("domain", "arch"):
            for g in sorted({r[key] for r in rows}):
                null = [r for r in rows if r[key] != g and r["label"] == "clean" and r["split"] == "calibration"]
                scored = [r for r in rows if r[key] == g]
                a, t, f, nb, nc = rates(scored, fit(null, combine, tail))
                print(f"{name} | {key} | {g} | {nb}/{nc} | {a:.3f} | {t:.0%} | {f:.0%}")
    for key in ("domain", "arch"):
        for g in sorted({r[key] for r in rows}):
            null = [r for r in rows if r[key] != g and r["label"] == "clean" and r["split"] == "calibration"]
            _, score = fit(null, COMBINE["fisher"])

            def gap(r, score=score):
                top = sorted((score(r, c) for c in range(r["k"])), reverse=True)
                return top[0] - top[1]

            ref = sorted(gap(r) for r in null)
            bar = ref[min(int(0.95 * len(ref)), len(ref) - 1)]
            scored = [r for r in rows if r[key] == g]
            y = [r["label"] == "backdoored" for r in scored]
            gaps = [gap(r) for r in scored]
            tpr = sum(x > bar for x, yy in zip(gaps, y) if yy) / max(sum(y), 1)
            fpr = sum(x > bar for x, yy in zip(gaps, y) if not yy) / max(len(y) - sum(y), 1)
            print(f"gap | {key} | {g} | {sum(y)}/{len(y) - sum(y)} | {auc(gaps, y):.3f} | {tpr:.0%} | {fpr:.0%}")
    evaluation = [r for r in rows if r["split"] == "evaluation"]
    calibration = [r for r in rows if r["split"] == "calibration" and r["label"] == "clean"]
    for name, null in (
        ("first benchmark's MNIST null", [r for r in calibration if r["name"].startswith("cal-")]),
        ("pooled over domains", calibration),
    ):
        fitted = fit(null, COMBINE["fisher"])
        for dom in sorted({r["domain"] for r in evaluation}):
            a, t, f, nb, nc = rates([r for r in evaluation if r["domain"] == dom], fitted)
            print(f"pooled: {name} ({len(null)} clean) | evaluation {dom} | {nb}/{nc} | {a:.3f} | {t:.0%} | {f:.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
