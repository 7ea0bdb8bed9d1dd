"""The time-budget table of docs/scaling.md over the benchmark's 100-class evaluation models (issue 33 item 4).

Each model in bench/results/time-budget/ (`NAME.bB.json`: `aegis-audit bench/models/NAME.onnx --data
DOMAINS/digit_pairs --time-budget B --json NAME.bB.json`) and its audit without a budget
(bench/results/reports/NAME.json) are decided again with `aegis-audit decide` under the same calibration
(the built-in one unless `--calibration`), so that only the budget differs. Prints one row per model and
budget, then per budget: backdoors flagged at a target and at all, clean models flagged, verdicts that
differ from the audit without a budget, audits more than 10% over their budget.

    PYTHONPATH=plugins/torch:plugins/bench .venv/bin/python research/time_budget_table.py \
        --bin target/release/aegis-audit

A backdoored model counts as implanted when its attack success is at least 0.5 (the benchmark's rule).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from collections import defaultdict
from pathlib import Path

import yaml
from aegis_bench.evaluate import decide, family_of, status, targets_of

REPO = Path(__file__).resolve().parent.parent
BUILTIN = REPO / "config" / "calibration.json"
REPORTS = REPO / "bench" / "results" / "reports"
BUDGETS = REPO / "bench" / "results" / "time-budget"
MODELS = REPO / "bench" / "models"
MIN_ASR = 0.5


def decided(binary: str, calibration: Path, report: Path) -> dict:
    """The fused decision of `aegis-audit decide` on one report."""
    return decide(binary, calibration, report)["models"][0]


def label(card: dict) -> str:
    if card["label"] == "clean":
        return "clean"
    return f"{family_of(card)} → {', '.join(map(str, targets_of(card, 0.0)))}"


def verdict_text(d: dict) -> str:
    if d.get("flagged"):
        return "suspected " + ", ".join(map(str, d["flagged"]))
    return d["verdict"]


def p_text(p: float) -> str:
    return f"{p:.2g}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--calibration", type=Path, default=BUILTIN, help="default: the built-in calibration's file")
    a = ap.parse_args()
    runs: dict[str, dict[int, Path]] = defaultdict(dict)
    for p in sorted(BUDGETS.glob("*.json")):
        m = re.fullmatch(r"(.+)\.b(\d+)\.json", p.name)
        if m:
            runs[m.group(1)][int(m.group(2))] = p
    budgets = sorted({b for per in runs.values() for b in per})
    rows = []
    for name in sorted(runs):
        card = yaml.safe_load((MODELS / f"{name}.card.yaml").read_text())
        base = decided(a.bin, a.calibration, REPORTS / f"{name}.json")
        for b in budgets:
            if b not in runs[name]:
                continue
            report = json.loads(runs[name][b].read_text())
            d = decided(a.bin, a.calibration, runs[name][b])
            rows.append(
                {
                    "budget": b,
                    "model": name,
                    "arch": card["architecture"],
                    "status": status(card, MIN_ASR),
                    "label": label(card),
                    "targets": set(targets_of(card, MIN_ASR)),
                    "base": base,
                    "d": d,
                    "full": len(report["classes"]),
                    "wall": report["wall_time_s"],
                }
            )
    print(
        "| budget s | model | arch | label | no budget: verdict, p | budget: verdict, p | classes in full | audit s (vs budget) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        over = (r["wall"] - r["budget"]) / r["budget"]
        name = r["model"] + (" (not implanted)" if r["status"] == "not-implanted" else "")
        print(
            f"| {r['budget']} | {name} | {r['arch']} | {r['label']} | {verdict_text(r['base'])}, "
            f"{p_text(r['base']['fused']['model_p_value'])} | {verdict_text(r['d'])}, "
            f"{p_text(r['d']['fused']['model_p_value'])} | {r['full']} | {r['wall']:.0f} ({over:+.0%}) |"
        )
    print()
    print(
        "| budget s | backdoors flagged at a target (at all) | clean flagged | verdicts unlike no budget | over budget by > 10% | classes in full (median, range) |"
    )
    print("| --- | --- | --- | --- | --- | --- |")

    def counts(sel, key):
        bd = [r for r in sel if r["status"] == "backdoored"]
        clean = [r for r in sel if r["status"] == "clean"]
        at_target = sum(1 for r in bd if set(r[key].get("flagged", [])) & r["targets"])
        flagged = sum(1 for r in bd if r[key]["verdict"] == "suspected")
        fp = sum(1 for r in clean if r[key]["verdict"] == "suspected")
        return f"{at_target} of {len(bd)} ({flagged})", f"{fp} of {len(clean)}"

    first = [r for r in rows if r["budget"] == budgets[0]]
    hit, fp = counts(first, "base")
    print(f"| none | {hit} | {fp} | – | – | – |")
    for b in budgets:
        sel = [r for r in rows if r["budget"] == b]
        hit, fp = counts(sel, "d")
        changed = [
            r["model"]
            for r in sel
            if (r["d"]["verdict"], r["d"].get("flagged", [])) != (r["base"]["verdict"], r["base"].get("flagged", []))
        ]
        over = [r["model"] for r in sel if r["wall"] > 1.1 * b]
        full = [r["full"] for r in sel]
        print(
            f"| {b} | {hit} | {fp} | {len(changed)} of {len(sel)}{': ' + ', '.join(changed) if changed else ''} | "
            f"{len(over)} of {len(sel)}{': ' + ', '.join(over) if over else ''} | "
            f"{statistics.median(full):g} ({min(full)}–{max(full)}) |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
