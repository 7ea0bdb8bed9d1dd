"""The 100-class reports decided with the shortlist null, each clean calibration model left out (issue 29, 33).

Every stored `digit_pairs` report (bench/results/reports) is decided again with `aegis-audit decide`: a
clean calibration-split model against a calibration whose shortlists come from the other clean
calibration-split models (made like the built-in one, `research/builtin_shortlists.py`, from the
calibration before the shortlists were added, `--base`), every other model against the built-in
calibration. Prints the table of docs/scaling.md ("A verdict the adaptive effort changes") and the counts.

    python3 research/shortlist_null_table.py --bin target/release/aegis-audit --base BASE_CALIBRATION.json

BASE_CALIBRATION.json: config/calibration.json without `shortlist_classes` (for example
`git show 759c0ff:config/calibration.json`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
REPORTS = REPO / "bench" / "results" / "reports"


def decide(binary: str, report: Path, out: Path, calibration: Path | None = None) -> dict:
    cmd = [binary, "decide", str(report), "--json", str(out)]
    if calibration is not None:
        cmd += ["--calibration", str(calibration)]
    subprocess.run(cmd, capture_output=True, check=False)
    return json.loads(out.read_text())["models"][0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--base", type=Path, required=True, help="the calibration without shortlists")
    ap.add_argument("--builtin", type=Path, help="decide the other models with this file (default: the built-in)")
    ap.add_argument(
        "--extra",
        nargs="*",
        default=[],
        help="more clean adaptive reports whose shortlists the built-in holds (bench/scaling's digits3 models)",
    )
    a = ap.parse_args()
    cards = {}
    for p in sorted(REPORTS.glob("v2-*.json")):
        card = yaml.safe_load((REPO / "bench" / "models" / f"{p.stem}.card.yaml").read_text())
        if card["domain"] == "digit_pairs":
            cards[p.stem] = card
    clean_cal = [n for n, c in cards.items() if c["label"] == "clean" and c["split"] == "calibration"]
    counts = {"backdoors": 0, "found": 0, "clean": 0, "flagged": 0, "left_out": 0, "left_out_flagged": 0}
    print(
        "| model | split | label (attack success) | first built-in: verdict, p | shortlist null: verdict, p, flagged |"
    )
    print("| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, card in cards.items():
            report = REPORTS / f"{name}.json"
            stored = json.loads(report.read_text())
            if name in clean_cal:
                cal = tmp / "left-out.json"
                cal.write_text(a.base.read_text())
                others = [str(REPORTS / f"{o}.json") for o in clean_cal if o != name]
                script = REPO / "research" / "builtin_shortlists.py"
                cmd = ["python3", str(script), "--bin", a.bin, "--calibration", str(cal), "--allow-suspected"]
                cmd += [*others, *a.extra]
                subprocess.run(cmd, capture_output=True, check=True)
                d = decide(a.bin, report, tmp / "d.json", cal)
                split = "calibration (left out)"
                counts["left_out"] += 1
                counts["left_out_flagged"] += d["verdict"] == "suspected"
            else:
                d = decide(a.bin, report, tmp / "d.json", a.builtin)
                split = card["split"]
            metrics = card["metrics"]
            if card["label"] == "clean":
                label = "clean"
                if name not in clean_cal and card["split"] == "evaluation":
                    counts["clean"] += 1
                    counts["flagged"] += d["verdict"] == "suspected"
            else:
                trigger = card["trigger"]
                targets = trigger.get("targets") or [trigger["target"]]
                rates = metrics.get("attack_success_rates") or [metrics["attack_success_rate"]]
                label = f"{trigger['family']} → {', '.join(map(str, targets))} ({', '.join(f'{r:.2f}' for r in rates)})"
                if card["split"] == "evaluation" and metrics["attack_success_rate"] >= 0.5:
                    counts["backdoors"] += 1
                    implanted = [t for t, r in zip(targets, rates) if r >= 0.5]
                    counts["found"] += all(t in d["flagged"] for t in implanted[:1]) and bool(d["flagged"])
            flagged = ", ".join(map(str, d["flagged"])) or "–"
            print(
                f"| {name} | {split} | {label} | {stored['verdict']}, {stored['fused']['model_p_value']:.2g} | "
                f"{d['verdict']}, {d['fused']['model_p_value']:.2g}, {flagged} |"
            )
    print()
    print(
        f"evaluation split: {counts['found']} of {counts['backdoors']} implanted backdoors flagged at a target, "
        f"{counts['flagged']} of {counts['clean']} clean flagged; clean calibration models left out: "
        f"{counts['left_out_flagged']} of {counts['left_out']} flagged"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
