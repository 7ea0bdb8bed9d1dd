"""Add the shortlists of clean many-class models' adaptive audits to the built-in calibration (issue 29, 33).

The built-in calibration's null classes come from the first benchmark's 15 clean calibration models
(10 classes, full audits). An adaptive audit (above 16 classes) decides on a shortlist that its screen
chose (the most suspicious classes and a seeded reference), so its classes are judged against the
shortlists of clean models' adaptive audits (`shortlist_classes`), and its model p-value counts the
classes it decided on. This script runs `aegis-audit calibrate` on the named clean reports (the clean
calibration-split 100-class `digit_pairs` models, and the clean `digits3` models of bench/scaling, a second
generator) and copies the resulting `shortlist_classes` into config/calibration.json, leaving its null
classes, weights and every 10-class decision unchanged. `--allow-suspected` passes on to `calibrate`
(models clean by construction whose audit flagged a class).

    python3 research/builtin_shortlists.py --bin target/release/aegis-audit --allow-suspected \
        bench/results/reports/v2-004.json ... bench/scaling/results/shortlist/*.json \
        bench/scaling/results/digits3-last2.rerun-b.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--calibration", type=Path, default=REPO / "config" / "calibration.json")
    ap.add_argument("--allow-suspected", action="store_true", help="passed on to aegis-audit calibrate")
    ap.add_argument("reports", nargs="+", type=Path)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "shortlists.json"
        cmd = [a.bin, "calibrate", *map(str, a.reports), "-o", str(out)]
        if a.allow_suspected:
            cmd.append("--allow-suspected")
        r = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if r.returncode != 0:
            raise SystemExit(f"calibrate exited {r.returncode}: {r.stderr.strip()}")
        made = json.loads(out.read_text())
    shortlists = made.get("shortlist_classes") or []
    if not shortlists:
        raise SystemExit("the reports hold no adaptive audit: no shortlist classes")
    cal = json.loads(a.calibration.read_text())
    cal["shortlist_classes"] = shortlists
    # `presets` keeps naming the null classes' presets; `shortlist_presets` names the adaptive audits'
    # (an adaptive audit of another preset is warned against the shortlists').
    cal["shortlist_presets"] = made.get("shortlist_presets") or made.get("presets", [])
    names = sorted({c["model"] for c in shortlists})
    marker = " Shortlist classes (judging adaptive audits):"
    cal["description"] = cal["description"].split(marker)[0] + (
        f"{marker} the {len(shortlists)} classes that the default adaptive audits of {len(names)} clean "
        f"100-class models (presets {', '.join(made.get('presets', []))}: "
        f"{', '.join(Path(n).stem for n in names)}) measured in full; added by python3 research/builtin_shortlists.py."
    )
    a.calibration.write_text(json.dumps(cal, indent=2, ensure_ascii=False) + "\n")
    print(f"{a.calibration}: {len(shortlists)} shortlist classes from {len(names)} models")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
