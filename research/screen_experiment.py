"""Would an adaptive screen keep the fused verdicts? (issue 13, item 3; docs/pgd.md, "Adaptive sampling")

Audits every benchmark model once more with fewer samples (the screen's flags), re-decides both the
screen's reports and the stored full reports (bench/results/reports) with the built-in calibration
(`aegis-audit decide`), and asks: which screened model p-value would have let an audit stop early,
clean, without changing any verdict? The bound is chosen on the calibration half only (half the
smallest screened -log10 p among the calibration models the full audit flags) and checked on the
evaluation half. Writes one CSV row per model and prints the rule, its check and the time it saves.

    .venv/bin/python research/screen_experiment.py --data ../shared/datasets/mnist --out OUT \\
        -- --seeds-per-class 30 --universal-images 30 --reach-images 15 --reach-sweep-images 8
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def decide(binary: Path, reports: list[Path], out: Path) -> dict[str, dict]:
    """The fused decision of each report under the built-in calibration, by model name."""
    subprocess.run([str(binary), "decide", *map(str, reports), "--json", str(out)], check=False, capture_output=True)
    models = json.loads(out.read_text())["models"]
    return {Path(m["file"]).stem: m["fused"] for m in models}


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def flagged(fused: dict) -> list[int]:
    return [c["class"] for c in fused["classes"] if c["flagged"]]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="MNIST folder (the benchmark's data)")
    ap.add_argument("--out", required=True, type=Path, help="folder for the screen's reports and the CSV")
    ap.add_argument("--aegis-audit", type=Path, default=ROOT / "target/release/aegis-audit")
    ap.add_argument("--full-times", type=Path, default=ROOT / "bench/results/runs-eval-workers.csv")
    ap.add_argument("flags", nargs="*", help="the screen's aegis-audit flags (after --)")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    status = {r["name"]: (r["split"], r["status"]) for r in read_csv(ROOT / "bench/results/results.csv")}
    full_times = {r["name"]: float(r["wall_s"]) for r in read_csv(a.full_times)}
    names = sorted(status)
    seconds = {}
    for name in names:
        report = a.out / f"{name}.json"
        if not report.exists():  # a rerun keeps the reports it has
            cmd = [str(a.aegis_audit), str(ROOT / f"bench/models/{name}.onnx"), "--data", a.data, "--quiet"]
            subprocess.run([*cmd, "--json", str(report), *a.flags], check=False, capture_output=True)
        seconds[name] = json.loads(report.read_text())["timings"]["total"]
    screen = decide(a.aegis_audit, [a.out / f"{n}.json" for n in names], a.out / "screen-decide.json")
    full = decide(a.aegis_audit, [ROOT / f"bench/results/reports/{n}.json" for n in names], a.out / "full-decide.json")

    def nlp(f: dict) -> float:
        return -math.log10(max(f["model_p_value"], 1e-300))

    table = []
    for n in names:
        split, kind = status[n]
        s, f = screen[n], full[n]
        table.append(
            {
                "name": n,
                "split": split,
                "status": kind,
                "screen_neg_log10_p": round(nlp(s), 3),
                "full_neg_log10_p": round(nlp(f), 3),
                "screen_flagged": " ".join(map(str, flagged(s))),
                "full_flagged": " ".join(map(str, flagged(f))),
                "screen_seconds": round(seconds[n], 1),
                "full_seconds": full_times.get(n, float("nan")),
            }
        )
    with open(a.out / "screen.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(table[0]))
        w.writeheader()
        w.writerows(table)
    # The rule, from the calibration half only.
    cal_flagged = [r["screen_neg_log10_p"] for r in table if r["split"] == "calibration" and r["full_flagged"]]
    bound = min(cal_flagged) / 2
    print(f"clear when screened -log10 p <= {bound:.3f} (model p >= {10**-bound:.3f}), from the calibration half")
    for split in ("calibration", "evaluation"):
        part = [r for r in table if r["split"] == split]
        cleared = [r for r in part if r["screen_neg_log10_p"] <= bound]
        wrong = [r["name"] for r in cleared if r["full_flagged"]]
        drops = [r["full_neg_log10_p"] - r["screen_neg_log10_p"] for r in part if r["full_flagged"]]
        print(
            f"{split}: {len(cleared)} of {len(part)} models cleared at the screen, verdicts changed: "
            f"{len(wrong)} {wrong}; largest drop screen vs full among flagged: {max(drops):.2f}"
        )
    ratios = [r["screen_seconds"] / r["full_seconds"] for r in table if r["full_seconds"] == r["full_seconds"]]
    print(f"screen / full audit wall time: median {statistics.median(ratios):.2f} (both on this machine)")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("ORT_DYLIB_PATH", str(ROOT / ".ort/libonnxruntime.so.1.31.1"))
    sys.exit(main())
