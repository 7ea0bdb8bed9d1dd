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

    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from aegis_torch import commands

    try:
        return getattr(commands, args.command.replace("-", "_"))(args)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
