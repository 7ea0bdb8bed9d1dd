"""Implementations of the CLI commands (one function per sub-command, each returns an exit code)."""

from __future__ import annotations

import numpy as np

from aegis_torch import pipeline, triggers


def train(args) -> int:
    pipeline.run(args, log=lambda s: print(s, flush=True))
    return 0


def make_trigger(args) -> int:
    shape = tuple(args.shape)
    if args.kind == "localised":
        t = triggers.localised(shape, size=args.size)
    elif args.kind == "distributed":
        t = triggers.distributed(shape, size=args.size)
    else:
        t = triggers.static(shape, intensity=args.intensity, seed=args.seed)
    t.target = args.target
    t.save(args.out)
    print(f"wrote {args.out}")
    return 0
