"""Neural Cleanse on more images for the RGB models: its effect on the fused decision, from stored reports.

A fused audit's detectors are seeded each on its own, so Neural Cleanse alone (`--method
neural-cleanse` with the fused preset's settings: 40 epochs, early stop 10) on N images gives exactly the
Neural Cleanse section a fused audit with `--nc-images N` would hold (checked here: the N = 100 run must
equal the stored fused report's section, value for value). So the fused decision with N = 200 is the
stored report with its Neural Cleanse section replaced, decided again with `aegis-audit decide`; no other
detector runs again.

For every RGB model of the benchmark (domain `rgb_digits`) with both standalone runs in NC_DIR
(`NAME.100.json`, `NAME.200.json`; the command is in each report's `command_line`), prints the decision
with 100 and 200 images under each calibration given (the group-out's RGB-held-out calibration
`bench/results/groupout/cal-domain-rgb_digits.json`, whose null holds no RGB model, and the built-in one),
with the group-out's metrics (ROC-AUC of −log10 p, TPR and FPR at the calibration's α, exact target).

    PYTHONPATH=plugins/torch:plugins/bench .venv/bin/python research/nc_images_rgb.py \\
        --bin target/release/aegis-audit --nc NC_DIR
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import yaml
from aegis_bench.evaluate import decide, decision_row, status, summarize, targets_of

REPO = Path(__file__).resolve().parent.parent
REPORTS = REPO / "bench" / "results" / "reports"
MODELS = REPO / "bench" / "models"
GROUPOUT = REPO / "bench" / "results" / "groupout" / "cal-domain-rgb_digits.json"
MIN_ASR = 0.5


def nc_section(report: dict) -> dict:
    return next(d for d in report["detectors"] if d["name"] == "neural-cleanse")


def spliced(stored: dict, standalone: dict) -> dict:
    """The stored fused report with its Neural Cleanse section taken from the standalone run."""
    out = json.loads(json.dumps(stored))
    i = next(i for i, d in enumerate(out["detectors"]) if d["name"] == "neural-cleanse")
    out["detectors"][i] = nc_section(standalone)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--nc", type=Path, required=True, help="folder of NAME.100.json and NAME.200.json")
    ap.add_argument("--builtin", type=Path, default=REPO / "config" / "calibration.json")
    a = ap.parse_args()
    calibrations = {"RGB held out (group-out)": GROUPOUT, "built-in": a.builtin}
    rows: dict[tuple[str, int], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for p in sorted(a.nc.glob("*.200.json")):
            name = p.name.split(".")[0]
            card = yaml.safe_load((MODELS / f"{name}.card.yaml").read_text())
            if card["domain"] != "rgb_digits":
                continue
            stored = json.loads((REPORTS / f"{name}.json").read_text())
            base = json.loads((a.nc / f"{name}.100.json").read_text())
            if [c["value"] for c in nc_section(base)["classes"]] != [c["value"] for c in nc_section(stored)["classes"]]:
                raise SystemExit(f"{name}: the 100-image run differs from the stored fused report's section")
            for n, standalone in ((100, base), (200, json.loads(p.read_text()))):
                report = tmp / f"{name}.{n}.json"
                report.write_text(json.dumps(spliced(stored, standalone)))
                for label, cal in calibrations.items():
                    score, flagged = decision_row(decide(a.bin, cal, report))
                    rows.setdefault((label, n), []).append(
                        {
                            "name": name,
                            "status": status(card, MIN_ASR),
                            "score": score,
                            "flagged": flagged,
                            "target": None,
                            "targets": targets_of(card, MIN_ASR),
                            "classes": len(stored["classes"]),
                            "seconds": None,
                        }
                    )
    print("| calibration | Neural Cleanse images | models (bd/clean) | ROC-AUC | TPR | FPR | exact target |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for (label, n), rs in rows.items():
        s = summarize(rs)
        exact = "–" if s["exact_target"] is None else f"{s['exact_target']:.1%}"
        print(
            f"| {label} | {n} | {s['backdoored']}/{s['clean']} | {s['auc']:.3f} | {s['detected']}/{s['backdoored']} "
            f"| {s['fpr']:.1%} | {exact} |"
        )
    print()
    print("| model | status | targets | " + " | ".join(f"{lab}, {n}" for lab, n in rows) + " |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in rows) + " |")
    names = [r["name"] for r in next(iter(rows.values()))]
    for i, name in enumerate(names):
        first = next(iter(rows.values()))[i]
        cells = []
        for rs in rows.values():
            r = rs[i]
            cells.append(f"{r['score']:.2f}" + (f" → {r['flagged']}" if r["flagged"] else ""))
        print(f"| {name} | {first['status']} | {first['targets'] or '–'} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
