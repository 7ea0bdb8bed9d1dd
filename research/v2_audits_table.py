"""The v2 benchmark models audited so far, as a markdown table with totals per domain (bench/README.md).

Reads bench/models.csv (the cards' table) and bench/results/reports/v2-*.json (default fused audits with
the built-in calibration, which no v2 model helped choose). A backdoor counts when its attack success is at
least 0.5; "at target" means every target of the model is among the flagged classes.

    python3 research/v2_audits_table.py
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    cards = {r["name"]: r for r in csv.DictReader((ROOT / "bench" / "models.csv").open())}
    rows = []
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for name, c in sorted(cards.items()):
        path = ROOT / "bench" / "results" / "reports" / f"{name}.json"
        if not name.startswith("v2") or not path.exists():
            continue
        r = json.loads(path.read_text())
        flagged = [x["class"] for x in r["classes"] if x["flagged"]]
        targets = [int(t) for t in (c["targets"] or c["target"] or "").split()]
        backdoor = c["label"] == "backdoored" and float(c["asr"] or 0) >= 0.5
        t = totals[c["domain"]]
        if backdoor:
            t["backdoors"] += 1
            t["found"] += bool(flagged)
            t["at_target"] += bool(flagged) and all(x in flagged for x in targets)
        elif c["label"] == "clean":
            t["clean"] += 1
            t["false_positives"] += bool(flagged)
        label = f"{c['family']} → {' '.join(map(str, targets))} (ASR {float(c['asr']):.2f})" if targets else "clean"
        p = r.get("fused", {}).get("model_p_value")
        rows.append(
            f"| {name} | {c['architecture']} | {c['domain']} | {c['training']} | {label} | {r['verdict']} "
            f"{' '.join(map(str, flagged))} | {p:.2g} | {r['wall_time_s']:.0f} |"
        )
    print("| model | arch | domain | training | label | verdict, flagged | model p | wall s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    print()
    print("| domain | backdoors (ASR ≥ 0.5) found | at every target | clean flagged |")
    print("| --- | --- | --- | --- |")
    for dom, t in sorted(totals.items()):
        print(
            f"| {dom} | {t['found']}/{t['backdoors']} | {t['at_target']}/{t['backdoors']} | {t['false_positives']}/{t['clean']} |"
        )


if __name__ == "__main__":
    main()
