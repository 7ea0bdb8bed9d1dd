"""Do the shortlists of one many-class generator judge another's models? (issue 29 item 3, issue 33)

The built-in calibration judges adaptive audits (above 16 classes) against the shortlists of clean
100-class models of the benchmark's `digit_pairs` domain (1×28×56, 8 architectures). Here a second
generator, `digits3` (bench/scaling: three MNIST digits at 1×28×84, labelled by the last two, one CNN
family, `make_models.py --seeds`), gives shortlists of its own clean models, and each generator's models
are decided against the other's shortlists only:

- every `digit_pairs` report of the benchmark (bench/results/reports, both splits) against the built-in
  full-audit null plus the `digits3` shortlists: the many-class domain held out of the shortlists, the
  same metrics as the group-out table (ROC-AUC of −log10 p, TPR and FPR at α, exact target);
- every clean `digits3` report against the built-in calibration (the `digit_pairs` shortlists): its
  false positives.

    PYTHONPATH=plugins/torch:plugins/bench .venv/bin/python research/shortlist_transfer.py \\
        --bin target/release/aegis-audit bench/scaling/results/shortlist/*.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import yaml
from aegis_bench.evaluate import decide, decision_row, status, summarize, targets_of

REPO = Path(__file__).resolve().parent.parent
REPORTS = REPO / "bench" / "results" / "reports"
MODELS = REPO / "bench" / "models"
BUILTIN = REPO / "config" / "calibration.json"
MIN_ASR = 0.5


def shortlists_of(binary: str, reports: list[Path], tmp: Path) -> dict:
    """`aegis-audit calibrate` on the reports: its shortlist classes and their presets."""
    out = tmp / "made.json"
    cmd = [binary, "calibrate", *map(str, reports), "-o", str(out), "--allow-suspected"]  # clean by construction
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise SystemExit(f"calibrate exited {r.returncode}: {r.stderr.strip()}")
    return json.loads(out.read_text())


def metrics_line(label: str, rows: list[dict]) -> str:
    s = summarize(rows)
    auc = "–" if s["auc"] is None else f"{s['auc']:.3f}"
    exact = "–" if s["exact_target"] is None else f"{s['exact_target']:.1%}"
    return (
        f"| {label} | {s['backdoored']}/{s['clean']} | {auc} | {s['detected']}/{s['backdoored']} | "
        f"{sum(1 for r in rows if r['status'] == 'clean' and r['flagged'])}/{s['clean']} | {exact} |"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("digits3", nargs="+", type=Path, help="adaptive reports of clean digits3 models")
    a = ap.parse_args()
    builtin = json.loads(BUILTIN.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        made = shortlists_of(a.bin, a.digits3, tmp)
        other = dict(builtin, shortlist_classes=made["shortlist_classes"])
        other["shortlist_presets"] = made.get("shortlist_presets") or made.get("presets", [])
        other["description"] = "built-in full-audit null, shortlists of the digits3 reports only"
        other_cal = tmp / "digits3-shortlists.json"
        other_cal.write_text(json.dumps(other))
        both = dict(builtin, shortlist_classes=builtin["shortlist_classes"] + made["shortlist_classes"])
        both["shortlist_presets"] = sorted(set(builtin.get("shortlist_presets", [])) | set(other["shortlist_presets"]))
        both["description"] = "built-in, shortlists of digit_pairs and digits3"
        both_cal = tmp / "both-shortlists.json"
        both_cal.write_text(json.dumps(both))
        print(
            f"digits3 shortlists: {len(made['shortlist_classes'])} classes of {len(a.digits3)} models "
            f"(presets {', '.join(other['shortlist_presets'])})"
        )
        rows: dict[str, list[dict]] = {"digits3 shortlists only": [], "built-in (digit_pairs)": []}
        for p in sorted(REPORTS.glob("v2-*.json")):
            card = yaml.safe_load((MODELS / f"{p.stem}.card.yaml").read_text())
            if card["domain"] != "digit_pairs":
                continue
            for label, cal in (("digits3 shortlists only", other_cal), ("built-in (digit_pairs)", BUILTIN)):
                score, flagged = decision_row(decide(a.bin, cal, p))
                rows[label].append(
                    {
                        "name": p.stem,
                        "split": card["split"],
                        "status": status(card, MIN_ASR),
                        "score": score,
                        "flagged": flagged,
                        "target": None,
                        "targets": targets_of(card, MIN_ASR),
                        "classes": 100,
                        "seconds": None,
                    }
                )
        print()
        print("digit_pairs models (both splits) decided against:")
        print()
        print("| shortlists | models (bd/clean) | ROC-AUC | backdoors found | clean flagged | exact target |")
        print("| --- | --- | --- | --- | --- | --- |")
        for label, rs in rows.items():
            print(metrics_line(label, rs))
            if label.startswith("built-in"):
                print(
                    metrics_line(
                        "built-in, evaluation split only (no model of its shortlists)",
                        [r for r in rs if r["split"] == "evaluation"],
                    )
                )
        print()
        print("| model | split | status | targets | digits3 shortlists only | built-in |")
        print("| --- | --- | --- | --- | --- | --- |")
        for x, y in zip(*rows.values()):
            cell = lambda r: f"{r['score']:.2f}" + (f" → {r['flagged']}" if r["flagged"] else "")
            print(f"| {x['name']} | {x['split']} | {x['status']} | {x['targets'] or '–'} | {cell(x)} | {cell(y)} |")
        print()
        print("clean digits3 models decided against the built-in shortlists (digit_pairs), and against both:")
        print()
        print("| model | built-in: −log10 p, flagged | both shortlists, left out of them |")
        print("| --- | --- | --- |")
        for p in a.digits3:
            s1, f1 = decision_row(decide(a.bin, BUILTIN, p))
            rest = [q for q in a.digits3 if q != p]
            left = shortlists_of(a.bin, rest, tmp) if len(rest) > 1 else {"shortlist_classes": []}
            lo = dict(both, shortlist_classes=builtin["shortlist_classes"] + left["shortlist_classes"])
            lo_cal = tmp / "left-out.json"
            lo_cal.write_text(json.dumps(lo))
            s2, f2 = decision_row(decide(a.bin, lo_cal, p))
            print(f"| {p.stem} | {s1:.2f} {f1 or ''} | {s2:.2f} {f2 or ''} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
