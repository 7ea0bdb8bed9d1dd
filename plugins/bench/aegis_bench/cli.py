"""Command line: ``python -m aegis_bench make|verify|table|domains|evaluate``; every command prints what it wrote
and returns an exit code (0 done / identical, 1 a retrain or a domain differs, 2 an error)."""

from __future__ import annotations

import argparse
import sys


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="aegis_bench",
        description="Backdoor benchmark of aegis-audit: build the model population of a YAML spec and evaluate "
        "the detectors on it",
    )
    sub = ap.add_subparsers(dest="command", required=True)
    for name, text in (
        ("make", "train, evaluate, export and card every model not yet built (resumable)"),
        ("verify", "retrain models and check the ONNX file is bit-identical to the recorded hash"),
        ("table", "rewrite models.md and models.csv from the cards"),
    ):
        b = sub.add_parser(name, help=text, description=text)
        b.add_argument("--spec", required=True, help="benchmark spec YAML (e.g. bench/spec.yaml)")
        b.add_argument("--out", help="model folder (default: models/ next to the spec)")
        b.add_argument("--only", nargs="+", metavar="NAME", help="only these models")
        b.add_argument("--table-dir", help="where models.md/models.csv go (default: the spec's folder)")
        if name != "table":
            b.add_argument("--data", help="dataset folder (default: the spec's dataset.path)")
            b.add_argument(
                "--domains",
                help="folder of the spec's derived data domains (DIR/NAME; generated there when missing)",
            )
            b.add_argument(
                "--aegis-audit",
                help="aegis-audit binary for the export-grad check "
                "(default: $AEGIS_AUDIT, target/release or target/debug of this repository, PATH)",
            )
            b.add_argument("--skip-grad-check", action="store_true", help="do not run aegis-audit export-grad")
        b.add_argument("--threads", type=int, default=1, help="torch threads (1: deterministic and fair)")
    text = "generate the spec's derived data domains (deterministic, from the MNIST data) into --out DIR/NAME"
    b = sub.add_parser("domains", help=text, description=text)
    b.add_argument("--spec", required=True, help="benchmark spec YAML (e.g. bench/spec.yaml)")
    b.add_argument("--out", required=True, help="folder receiving one sub-folder per domain")
    b.add_argument("--data", help="MNIST IDX folder (default: the spec's dataset.path)")
    b.add_argument("--only", nargs="+", metavar="DOMAIN", help="only these domains")
    b.add_argument("--force", action="store_true", help="regenerate even when the files are there")
    text = (
        "run every detector on every model (fused aegis-audit), calibrate on the calibration half's clean "
        "models, score both halves per detector and fused (resumable stages)"
    )
    b = sub.add_parser("evaluate", help=text, description=text)
    b.add_argument("--spec", required=True, help="benchmark spec YAML (e.g. bench/spec.yaml)")
    b.add_argument("--models", help="model folder (default: models/ next to the spec)")
    b.add_argument("--data", required=True, help="the clean data the audits get (e.g. fixtures/mnist-subset)")
    b.add_argument("--out", help="results folder (default: results/ next to the spec)")
    b.add_argument(
        "--aegis-audit",
        help="aegis-audit binary (default: $AEGIS_AUDIT, target/release or target/debug of this repository, PATH)",
    )
    b.add_argument(
        "--stages",
        default="audit,calibrate,score",
        help="comma-separated: audit, calibrate, score, groupout (held-out groups on the reports there)",
    )
    b.add_argument("--domains", help="folder of the spec's derived data domains (DIR/NAME), for their models' audits")
    b.add_argument(
        "--group-out",
        help="comma list of arch, domain, family: after the stages, score each group with a calibration made "
        "without it (OUT/groupout/summary.md)",
    )
    b.add_argument("--audit-args", default="", help="extra aegis-audit flags for every audit (one string)")
    b.add_argument("--jobs", type=int, default=1, help="audits run at once")
    b.add_argument(
        "--split",
        choices=["calibration", "evaluation", "both"],
        default="both",
        help="audit and score only the models of this half (default both)",
    )
    b.add_argument(
        "--calibrations",
        help="score with the calibration files of this folder instead of OUT/calibration (e.g. the full-data "
        "run's, to measure a smaller data budget against the same thresholds)",
    )
    b.add_argument(
        "--min-asr",
        type=float,
        default=0.5,
        help="attack success rate from which a poisoned model counts as backdoored",
    )
    b.add_argument("--target-fpr", type=float, default=0.05, help="model-level false-positive rate to calibrate")
    b.add_argument(
        "--robustness-neighbours",
        default="auto",
        help="judge each model against the N calibration models nearest in robustness: a number, 'all', or "
        "'auto' (default: chosen on the calibration half by leave-one-out among all, 4, 6, 8, 10)",
    )
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from aegis_bench import commands

    try:
        return commands.run(args)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
