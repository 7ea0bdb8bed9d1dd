#!/usr/bin/env python3
"""The architecture coverage table of docs/coverage.md: every torchvision classification architecture,
exported with the TorchScript exporter (opset 17) and PyTorch's default dynamo exporter, through
``aegis-audit inspect`` and ``export-grad``, and the gradient graph's input gradient against float64
autograd (aegis_torch.coverage).

Usage (from the repository root, after ``cargo build --release``):

    PYTHONPATH=plugins/torch .venv/bin/python research/coverage_table.py            # named models (slow)
    PYTHONPATH=plugins/torch .venv/bin/python research/coverage_table.py --ci       # the test suite's configurations
    ... --only resnet50 --size 224 --inputs 6 --no-write                          # one model, printed only

Results accumulate in docs/coverage.json (one entry per architecture x exporter x configuration), and the
table between the markers in docs/coverage.md is rewritten from it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins" / "torch"))

import torch
from aegis_torch import coverage, tvarch

DOC = ROOT / "docs" / "coverage.md"
DATA = ROOT / "docs" / "coverage.json"
BEGIN, END = "<!-- coverage-table:begin -->", "<!-- coverage-table:end -->"


def _fmt(v: float) -> str:
    return f"{v:.1e}"


def _short(s: str) -> str:
    return "ok" if s == "ok" else s.replace("|", "/")[:90]


def table(rows: list[dict], config: str) -> str:
    """The Markdown table of ``rows`` with ``config`` ("full" or "ci")."""
    out = [
        (
            "| Architecture | Input | Exporter (opset) | inspect | export-grad | Feature | Gradient error | "
            "PyTorch float32 error | Bound | Result |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    order = {a.name: i for i, a in enumerate(tvarch.FULL)}
    for r in sorted(
        (r for r in rows if r["config"] == config),
        key=lambda r: (order.get(r["arch"], 99), r["exporter"] != "torchscript"),
    ):
        feature = {"convolutional classifier": "before the classifier conv", "class token": "class token"}
        kind = next((v for k, v in feature.items() if k in r["feature_reason"]), "last block" if r["feature"] else "")
        if r["export_grad"] != "ok" or not r["err"]:
            grad = t32 = bound = "–"
        else:
            grad = _fmt(max(r["err"]))
            if r["err_matched"]:
                grad += f" ({_fmt(max(r['err_matched']))} on ORT's piece, {r['flips']} kinks)"
            t32, bound = _fmt(max(r["err_torch32"])), _fmt(min(r["bound"]))
        verdict = "pass" if r["passed"] else "**fail**"
        out.append(
            f"| {r['arch']} ({r['family']}) | {r['size']}² | {r['exporter']} ({r['opset']}) | {_short(r['inspect'])} | "
            f"{_short(r['export_grad'])} | {kind} | {grad} | {t32} | {bound} | {verdict} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ci", action="store_true", help="the test suite's reduced configurations (tvarch.CI)")
    ap.add_argument("--only", nargs="*", help="architecture names (default: all)")
    ap.add_argument("--exporter", choices=tvarch.EXPORTERS, help="one exporter (default: both)")
    ap.add_argument("--size", type=int, help="input side instead of the architecture's default")
    ap.add_argument("--inputs", type=int, default=2, help="random inputs per model (default 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--binary", default=str(ROOT / "target" / "release" / "aegis-audit"))
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/ unchanged")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    config = "ci" if args.ci else "full"
    archs = tvarch.CI if args.ci else tvarch.FULL
    if args.only:
        archs = [a for a in archs if a.name in args.only]
    rows = json.loads(DATA.read_text()) if DATA.exists() else []
    work = Path(tempfile.mkdtemp(prefix="aegis_coverage_"))
    for arch in archs:
        if args.size:
            arch = dataclasses.replace(arch, size=args.size)
        model = tvarch.build(arch, args.seed)
        for exporter in [args.exporter] if args.exporter else tvarch.EXPORTERS:
            t = time.time()
            try:
                r = coverage.check(
                    arch, exporter, work, Path(args.binary), inputs=args.inputs, seed=args.seed, model=model
                )
                d = r.as_dict()
            except Exception as e:  # an exporter failure is a row too  # noqa: BLE001
                d = {
                    **coverage.Result(arch.name, arch.family, exporter, arch.size).as_dict(),
                    "inspect": f"export failed: {type(e).__name__}: {str(e).splitlines()[0][:80]}",
                }
            d["config"] = config
            d["wall_s"] = round(time.time() - t, 1)
            print(
                json.dumps(
                    {
                        k: d[k]
                        for k in (
                            "arch",
                            "exporter",
                            "size",
                            "opset",
                            "inspect",
                            "export_grad",
                            "err",
                            "err_torch32",
                            "err_matched",
                            "flips",
                            "passed",
                            "wall_s",
                        )
                    }
                ),
                flush=True,
            )
            for f in work.glob(f"{arch.name}_{exporter}*"):
                f.unlink()
            if args.no_write or args.size or args.inputs != 2 or args.seed != 0:
                continue
            rows = [x for x in rows if (x["arch"], x["exporter"], x["config"]) != (arch.name, exporter, config)]
            rows.append(d)
            DATA.write_text(json.dumps(rows, indent=1) + "\n")
        del model
    if not args.no_write:
        text = DOC.read_text()
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        body = "\n\n".join(
            f"**{'Named torchvision models' if c == 'full' else 'Test-suite configurations'}**\n\n{table(rows, c)}"
            for c in ("full", "ci")
            if any(r["config"] == c for r in rows)
        )
        DOC.write_text(f"{head}{BEGIN}\n{body}\n{END}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
