"""The v2 benchmark models audited so far, as a markdown table with totals per domain (bench/README.md).

Reads bench/models.csv (the cards' table) and bench/results/reports/v2-*.json (default fused audits). With
`--bin`, every report is decided again with that aegis-audit's built-in calibration (`aegis-audit decide`:
the stored indices, today's decision); without it, the verdicts stored in the reports. A backdoor counts
when its attack success is at least 0.5; "at target" means every target of the model is among the flagged
classes.

    python3 research/v2_audits_table.py --bin target/release/aegis-audit
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def decided(binary: str | None, path: Path) -> dict:
    """The report's verdict, flagged classes and model p-value: stored, or decided again by ``binary``."""
    r = json.loads(path.read_text())
    if binary is None:
        flagged = [x["class"] for x in r["classes"] if x["flagged"]]
        return {"verdict": r["verdict"], "flagged": flagged, "p": r["fused"]["model_p_value"], "wall": r["wall_time_s"]}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "decided.json"
        subprocess.run([binary, "decide", str(path), "--json", str(out)], capture_output=True, check=False)
        m = json.loads(out.read_text())["models"][0]
    return {
        "verdict": m["verdict"],
        "flagged": m["flagged"],
        "p": m["fused"]["model_p_value"],
        "wall": r["wall_time_s"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", help="decide every report again with this aegis-audit")
    args = ap.parse_args()
    cards = {r["name"]: r for r in csv.DictReader((ROOT / "bench" / "models.csv").open())}
    rows = []
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for name, c in sorted(cards.items()):
        path = ROOT / "bench" / "results" / "reports" / f"{name}.json"
        if not name.startswith("v2") or not path.exists():
            continue
        r = decided(args.bin, path)
        flagged = r["flagged"]
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
        p = r["p"]
        rows.append(
            f"| {name} | {c['architecture']} | {c['domain']} | {c['training']} | {label} | {r['verdict']} "
            f"{' '.join(map(str, flagged))} | {p:.2g} | {r['wall']:.0f} |"
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
