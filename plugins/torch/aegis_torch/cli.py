"""Command line: ``python -m aegis_torch <command>``; every command prints what it wrote."""

from __future__ import annotations

import argparse
import sys

from aegis_torch import data, models


def _shape(s: str) -> tuple[int, ...]:
    try:
        v = tuple(int(t) for t in s.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shape {s!r} must be comma-separated integers like 1,28,28") from None
    if len(v) != 3 or min(v) <= 0:
        raise argparse.ArgumentTypeError(f"shape {s!r} must be three positive integers C,H,W")
    return v


def _floats(s: str) -> list[float]:
    try:
        return [float(t) for t in s.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} must be comma-separated numbers") from None


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=data.FORMATS, default="mnist", help="dataset format")
    p.add_argument("--data", required=True, help="dataset folder (e.g. ../shared/datasets/mnist)")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="aegis_torch", description="Model zoo and ONNX export for aegis-audit")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="poison (optional), train, evaluate, export ONNX + model card")
    _data_args(p)
    p.add_argument("--name", required=True, help="model name: writes <out>/<name>.{onnx,pt,card.yaml}")
    p.add_argument("--out", default="fixtures/zoo")
    p.add_argument("--arch", choices=models.ARCHITECTURES, default="small_cnn")
    p.add_argument("--mode", choices=("robust", "standard"), default="robust")
    p.add_argument("--trigger", help="trigger YAML; omit for a clean model")
    p.add_argument("--rate", type=float, help="poison rate (default 0.01 for patch, 0.30 for pattern)")
    p.add_argument("--target", type=int, default=7)
    p.add_argument("--eps", type=float, default=0.5, help="L2 radius in [0,1] pixel space")
    p.add_argument("--train-steps", type=int, default=3, help="PGD steps during adversarial training")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--poison-seed", type=int, default=0)
    p.add_argument("--train-limit", type=int, default=0, help="use only the first N training images")
    p.add_argument("--adv-eval-limit", type=int, default=0, help="PGD-evaluate only the first N test images")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared CPU)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")

    p = sub.add_parser("make-trigger", help="write a trigger spec YAML (+ .npy pattern)")
    p.add_argument("--kind", choices=("localised", "distributed", "static"), required=True)
    p.add_argument("--shape", type=_shape, default=(1, 28, 28))
    p.add_argument("--size", type=int, default=2, help="square side in pixels (visible triggers)")
    p.add_argument("--intensity", type=float, default=0.1, help="pattern intensity (static)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target", type=int, default=7)
    p.add_argument("--out", required=True)

    p = sub.add_parser("make-uap", help="invisible adversarial trigger: targeted universal perturbation")
    _data_args(p)
    p.add_argument("--checkpoint", required=True, help="clean model checkpoint (.pt)")
    p.add_argument("--target", type=int, default=7)
    p.add_argument("--intensity", type=float, default=0.1, help="L-inf bound of the perturbation")
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--iters", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)

    p = sub.add_parser("evaluate", help="clean / adversarial accuracy and attack success of a checkpoint")
    _data_args(p)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--trigger")
    p.add_argument("--target", type=int, default=7)
    p.add_argument("--eps", type=float, default=0.5)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--limit", type=int, default=0, help="evaluate only the first N test images")
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("poison", help="write a poisoned training set (.npz: x float32, y, indices)")
    _data_args(p)
    p.add_argument("--trigger", required=True)
    p.add_argument("--rate", type=float)
    p.add_argument("--target", type=int, default=7)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)

    p = sub.add_parser("export", help="export a checkpoint or any user nn.Module image classifier to ONNX")
    p.add_argument("--checkpoint", help="aegis_torch checkpoint (.pt)")
    p.add_argument("--module", default="", help="pkg.module:factory building the user model")
    p.add_argument("--weights", help="state_dict file for --module (or a whole pickled module)")
    p.add_argument("--input-shape", type=_shape, help="C,H,W of one image")
    p.add_argument("--mean", type=_floats, help="per-channel mean to subtract inside the model")
    p.add_argument("--std", type=_floats, help="per-channel std to divide by inside the model")
    p.add_argument("--no-normalize", action="store_true", help="the user model already normalises [0,1] input")
    p.add_argument("--card", action="store_true", help="also write <out>.card.yaml (minimal)")
    p.add_argument("--out", required=True)

    p = sub.add_parser("make-subset", help="seeded per-class subset of an IDX dataset, written as IDX gz")
    _data_args(p)
    p.add_argument("--train-per-class", type=int, default=600)
    p.add_argument("--test-per-class", type=int, default=100)
    p.add_argument(
        "--held-out-per-class",
        type=int,
        help="instead: N images per class of the test split only, as one heldout-*-ubyte.gz pair (a gate's "
        "small held-out clean set; audit it with --data OUT/heldout-images-idx3-ubyte.gz)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)

    p = sub.add_parser(
        "make-cifar",
        help="CIFAR-10 binary-batch folder of coloured, padded MNIST digits (3x32x32; generated, not CIFAR-10)",
    )
    p.add_argument("--data", required=True, help="MNIST IDX folder (e.g. ../shared/datasets/mnist)")
    p.add_argument("--train-per-class", type=int, default=1000)
    p.add_argument("--test-per-class", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)

    p = sub.add_parser("gradcheck", help="write <name>.gradcheck.json: float64 autograd dCE/dx for a few inputs")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True, help="IDX folder to draw the test inputs from")
    p.add_argument("--count", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p = sub.add_parser("zoo-table", help="markdown table of the model cards in a folder, next to the paper")
    p.add_argument("folder", nargs="?", default="fixtures/zoo")

    p = sub.add_parser("bench", help="backdoor benchmark: build the model population of a YAML spec")
    bsub = p.add_subparsers(dest="bench_command", required=True)
    for name, text in (
        ("make", "train, evaluate, export and card every model not yet built (resumable)"),
        ("verify", "retrain models and check the ONNX file is bit-identical to the recorded hash"),
        ("table", "rewrite models.md and models.csv from the cards"),
    ):
        b = bsub.add_parser(name, help=text, description=text)
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
    b = bsub.add_parser("domains", help=text, description=text)
    b.add_argument("--spec", required=True, help="benchmark spec YAML (e.g. bench/spec.yaml)")
    b.add_argument("--out", required=True, help="folder receiving one sub-folder per domain")
    b.add_argument("--data", help="MNIST IDX folder (default: the spec's dataset.path)")
    b.add_argument("--only", nargs="+", metavar="DOMAIN", help="only these domains")
    b.add_argument("--force", action="store_true", help="regenerate even when the files are there")
    text = (
        "run every detector on every model (fused aegis-audit), calibrate on the calibration half's clean "
        "models, score both halves per detector and fused (resumable stages)"
    )
    b = bsub.add_parser("evaluate", help=text, description=text)
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
    from aegis_torch import commands

    try:
        return getattr(commands, args.command.replace("-", "_"))(args)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
