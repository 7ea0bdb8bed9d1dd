"""Measure the audit's cost on the digits3 models (issue 33): one row per model in a CSV.

For each model, runs `BIN MODEL --data DATA --json OUT.json --quiet [--effort E]` with
ORT_DYLIB_PATH set, and records the wall time, the gradient evaluations (every detector's, plus the
effort screen's when there is one), the verdict, the model p-value and how many classes the report
measured in full.

    python bench/scaling/measure.py --bin target/release/aegis-audit --effort auto \
        --data-root /work/scaling-data --out bench/scaling/results/auto.csv --only last1 last2
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

LABELINGS = {"last1": 10, "last2": 100, "all3": 1000}
DEFAULT_ORT = "/work/main/.ort/libonnxruntime.so.1.31.1"
COLUMNS = [
    "model",
    "classes",
    "effort",
    "wall_seconds",
    "gradient_evaluations",
    "verdict",
    "model_p_value",
    "classes_measured",
    "exit_code",
]


def gradient_evaluations(report: dict) -> int:
    total = sum(d.get("gradient_evaluations", 0) for d in report.get("detectors", []))
    screen = (report.get("effort") or {}).get("screen")
    if screen:
        total += screen.get("gradient_evaluations", 0)
    return total


def measure(args: argparse.Namespace, labeling: str) -> dict:
    model = args.models / f"digits3-{labeling}.onnx"
    data = args.data_root / labeling
    effort = args.effort or "default"
    out_json = args.json_dir / f"digits3-{labeling}.{effort}.json"
    cmd = [str(args.bin), str(model), "--data", str(data), "--json", str(out_json), "--quiet"]
    if args.effort:
        cmd += ["--effort", args.effort]
    cmd += args.extra
    env = dict(os.environ, ORT_DYLIB_PATH=args.ort)
    print(f"$ {' '.join(cmd)}", flush=True)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _, stderr = proc.communicate()
    except BaseException:  # interrupted or terminated: do not leave the audit running
        proc.kill()
        proc.wait()
        raise
    wall = time.perf_counter() - start
    row = {
        "model": model.stem,
        "classes": LABELINGS[labeling],
        "effort": effort,
        "wall_seconds": f"{wall:.1f}",
        "exit_code": proc.returncode,
    }
    if proc.returncode not in (0, 1, 3) or not out_json.exists():
        print(f"  failed (exit {proc.returncode}): {stderr.strip()[-2000:]}", file=sys.stderr, flush=True)
        return row
    report = json.loads(out_json.read_text())
    if isinstance(report, list):  # a multi-model document; one model here
        report = report[0]
    row.update(
        classes=report.get("dataset", {}).get("classes", row["classes"]),
        gradient_evaluations=gradient_evaluations(report),
        verdict=report.get("verdict", ""),
        model_p_value=(report.get("fused") or {}).get("model_p_value", ""),
        classes_measured=len(report.get("classes", [])),
    )
    print(f"  {row}", flush=True)
    return row


def main() -> int:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", type=Path, required=True, help="the aegis-audit binary")
    ap.add_argument("--effort", help="value of --effort (auto, full); left out: the binary's default")
    ap.add_argument("--models", type=Path, default=here / "models", help="folder of digits3-*.onnx")
    ap.add_argument("--data-root", type=Path, default=Path("/work/scaling-data"), help="folder of the IDX folders")
    ap.add_argument("--only", nargs="*", choices=list(LABELINGS), default=list(LABELINGS), help="labelings to run")
    ap.add_argument("--out", type=Path, default=here / "results" / "cost.csv", help="the CSV")
    ap.add_argument("--append", action="store_true", help="add rows to an existing CSV instead of rewriting it")
    ap.add_argument("--json-dir", type=Path, help="where the JSON reports go (default: beside the CSV)")
    ap.add_argument("--ort", default=os.environ.get("ORT_DYLIB_PATH", DEFAULT_ORT), help="ORT_DYLIB_PATH")
    ap.add_argument("extra", nargs="*", help="after --: more arguments for aegis-audit")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.json_dir = args.json_dir or args.out.parent
    args.json_dir.mkdir(parents=True, exist_ok=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)

    append = args.append and args.out.exists()
    with open(args.out, "a" if append else "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        if not append:
            writer.writeheader()
        for labeling in args.only:
            writer.writerow(measure(args, labeling))
            f.flush()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
