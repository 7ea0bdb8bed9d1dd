"""The 100-class models audited both ways: `--effort full` against the default adaptive effort (issue 33 item 2).

For every full-effort report in bench/results/full-effort/ (`aegis-audit bench/models/NAME.onnx --data
DOMAINS/digit_pairs --effort full --json bench/results/full-effort/NAME.json`) and the same model's default
(adaptive) report in bench/results/reports/, both decided again with `aegis-audit decide` under the
built-in calibration (config/calibration.json): the full audit against its 10-class null with all 100 classes counted, the
adaptive one against the shortlists of clean models' adaptive audits. Prints one row per model.

    PYTHONPATH=plugins/torch:plugins/bench .venv/bin/python research/full_vs_adaptive.py \\
        --bin target/release/aegis-audit
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml
from aegis_bench.evaluate import decide, family_of, status, targets_of

REPO = Path(__file__).resolve().parent.parent
FULL = REPO / "bench" / "results" / "full-effort"
REPORTS = REPO / "bench" / "results" / "reports"
MODELS = REPO / "bench" / "models"
BUILTIN = REPO / "config" / "calibration.json"


def decided(binary: str, report: Path) -> dict:
    """The fused decision of `aegis-audit decide` on one report, under the built-in calibration's file."""
    return decide(binary, BUILTIN, report)["models"][0]


def cell(d: dict, seconds: float) -> str:
    verdict = f"suspected {', '.join(map(str, d['flagged']))}" if d.get("flagged") else d["verdict"]
    return f"{verdict}, {d['fused']['model_p_value']:.2g}, {seconds:.0f} s"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True)
    a = ap.parse_args()
    print("| model | arch | label | full effort: verdict, p, seconds | adaptive: verdict, p, seconds | same verdict |")
    print("| --- | --- | --- | --- | --- | --- |")
    for full in sorted(FULL.glob("*.json")):
        card = yaml.safe_load((MODELS / f"{full.stem}.card.yaml").read_text())
        st = status(card, 0.5)
        label = "clean" if st == "clean" else f"{family_of(card)} → {', '.join(map(str, targets_of(card, 0.0)))}"
        if st == "not-implanted":
            label += " (not implanted)"
        adaptive = REPORTS / f"{full.stem}.json"
        f = decided(a.bin, full)
        d = decided(a.bin, adaptive)
        fs = json.loads(full.read_text())["wall_time_s"]
        ds = json.loads(adaptive.read_text())["wall_time_s"]
        same = "yes" if (f["verdict"], f.get("flagged", [])) == (d["verdict"], d.get("flagged", [])) else "**no**"
        print(f"| {full.stem} | {card['architecture']} | {label} | {cell(f, fs)} | {cell(d, ds)} | {same} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
