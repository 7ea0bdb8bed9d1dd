"""What if an adaptive audit compared every class with its reference classes alone? (issue 29, 33)

An adaptive audit (above 16 classes) measures a shortlist: the screen's candidates and a seeded random
reference. Each detector's anomaly index compares a class with the median and spread of all shortlisted
classes, candidates included. This study re-indexes the stored 100-class reports against the reference
classes alone (each detector's transform and sign recovered exactly from its stored values and indices)
and re-applies the fused decision with `aegis-audit decide`; it prints the verdicts both ways.

    python3 research/adaptive_reference_only.py --bin target/release/aegis-audit --out /tmp/refonly
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def transform(values: list[float], indices: list[float]):
    """The (transform, sign) that reproduces the stored indices from the values over the same classes."""
    for g in (lambda x: x, math.log):
        try:
            gv = [g(x) for x in values]
        except ValueError:
            continue
        m = statistics.median(gv)
        scale = 1.4826 * statistics.median([abs(x - m) for x in gv])
        if scale == 0:
            continue
        for sign in (1, -1):
            if all(abs(sign * (x - m) / scale - i) < 1e-6 for x, i in zip(gv, indices)):
                return g, sign
    return None


def reindex(report: dict) -> dict:
    m = report["models"][0] if "models" in report else report
    reference = set(m["effort"]["screen"]["reference"])
    for d in m["detectors"]:
        classes = d["classes"]
        found = transform([c["value"] for c in classes], [c["anomaly_index"] for c in classes])
        if found is None:
            raise SystemExit(f"{m['model']['path']}: {d['name']}: no exact transform")
        g, sign = found
        ref = [g(c["value"]) for c in classes if c["class"] in reference]
        med = statistics.median(ref)
        scale = max(1.4826 * statistics.median([abs(x - med) for x in ref]), 1e-12)
        for c in classes:
            c["anomaly_index"] = sign * (g(c["value"]) - med) / scale
    return report


def decide(binary: str, report: Path, out: Path) -> tuple[str, float, list[int]]:
    subprocess.run([binary, "decide", str(report), "--json", str(out)], capture_output=True, check=False)
    d = json.loads(out.read_text())
    m = d["models"][0] if "models" in d else d
    return m["verdict"], m["fused"]["model_p_value"], m["flagged"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    with open(REPO / "bench/models.csv") as f:
        meta = {r["name"]: r for r in csv.DictReader(f)}
    print("| model | label | stored: verdict, p, flagged | reference only: verdict, p, flagged |")
    print("| --- | --- | --- | --- |")
    for path in sorted((REPO / "bench/results/reports").glob("v2-*.json")):
        name = path.stem
        if meta.get(name, {}).get("domain") != "digit_pairs":
            continue
        copy = a.out / f"{name}.json"
        copy.write_text(json.dumps(reindex(json.loads(path.read_text()))))
        before = decide(a.bin, path, a.out / f"{name}.stored.decision.json")
        after = decide(a.bin, copy, a.out / f"{name}.reference.decision.json")
        label = (
            meta[name]["label"]
            if meta[name]["label"] == "clean"
            else f"{meta[name]['family']} → {meta[name]['targets'] or meta[name]['target']}"
        )
        fmt = lambda v: f"{v[0]}, {v[1]:.2g}, {v[2]}"
        print(f"| {name} | {label} | {fmt(before)} | {fmt(after)} |")


if __name__ == "__main__":
    main()
