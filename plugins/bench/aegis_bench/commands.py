"""``python -m aegis_bench make|verify|table|domains|evaluate``: build the population, check a retrain is
bit-identical, rewrite the results table, generate the derived data domains, evaluate the detectors. Each returns
an exit code (0 done / identical, 1 a retrain or a domain differs)."""

from __future__ import annotations

import datetime
import time
from pathlib import Path

from aegis_bench import make as mk
from aegis_bench import spec as sp
from aegis_bench import table


def _log(s: str) -> None:
    print(f"[{datetime.datetime.now().strftime('%H:%M:%S')}] {s}", flush=True)


def _setup(args):
    import torch

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process
        pass
    s = sp.load(args.spec)
    out = Path(args.out) if args.out else s.path.parent / "models"
    return s, out


def _binary(args) -> str | None:
    if args.skip_grad_check:
        return None
    b = mk.find_aegis_audit(args.aegis_audit)
    if b is None:
        raise mk.BenchError(
            "no aegis-audit binary found for the export-grad check: build it (cargo build "
            "--release), pass --aegis-audit PATH, or --skip-grad-check"
        )
    return b


def make(args) -> int:
    s, out = _setup(args)
    selected = s.select(args.only)
    todo = [m for m in selected if not (out / f"{m.name}.card.yaml").exists()]
    _log(f"spec {s.path} ({s.name}): {len(selected)} models selected, {len(todo)} to build, output {out}")
    if not todo:
        table.write(s, out, s.path.parent if args.table_dir is None else Path(args.table_dir))
        return 0
    binary = _binary(args)
    d = mk.DataCache(s, args.data, args.domains, _log)
    start = time.perf_counter()
    done = []

    def on_done(c: dict) -> None:
        done.append(c)
        left = len(todo) - len(done)
        rate = (time.perf_counter() - start) / len(done)
        table.write(s, out, s.path.parent if args.table_dir is None else Path(args.table_dir))
        _log(
            f"progress: {len(done)}/{len(todo)} built this run, {left} left (~{left * rate / 60:.0f} min at "
            f"{rate:.0f}s per model)"
        )

    mk.make(s, args.only, out, d, binary, _log, args.threads, on_done)
    md, cs, n = table.write(s, out, s.path.parent if args.table_dir is None else Path(args.table_dir))
    _log(f"wrote {md} and {cs} ({n} models)")
    return 0


def verify(args) -> int:
    s, out = _setup(args)
    if not args.only:
        raise sp.SpecError("verify needs --only NAME (one or more models to retrain)")
    binary = _binary(args)
    d = mk.DataCache(s, args.data, args.domains, _log)
    bad = 0
    for name in args.only:
        same, old, new = mk.verify(s, name, out, d, binary, _log, args.threads)
        print(f"{name}: {'bit-identical' if same else 'DIFFERS'} (recorded {old}, retrained {new})", flush=True)
        bad += not same
    return 1 if bad else 0


def domains_cmd(args) -> int:
    """Generate the spec's derived data domains into ``--out DIR`` (``DIR/NAME``) and check their hashes."""
    from aegis_bench import domains

    s = sp.load(args.spec)
    mnist = args.data or s.dataset.get("path")
    bad = 0
    for name, cfg in s.domains.items():
        if args.only and name not in args.only:
            continue
        folder = Path(args.out) / name
        t = time.perf_counter()
        if args.force or not domains.present(cfg, folder):
            domains.generate(name, cfg, mnist, folder)
        from aegis_torch import data

        got = {split: domains.content_sha(data.load(cfg["format"], folder, split)) for split in ("train", "test")}
        want = cfg.get("sha256")
        ok = not want or want == got
        bad += not ok
        _log(
            f"domain {name}: {folder} in {time.perf_counter() - t:.0f}s; sha256 "
            + ("matches the spec" if want and ok else f"{got}" + (" DIFFERS from the spec" if want else ""))
        )
    return 1 if bad else 0


def table_cmd(args) -> int:
    s, out = _setup(args)
    md, cs, n = table.write(s, out, s.path.parent if args.table_dir is None else Path(args.table_dir))
    print(f"wrote {md} and {cs} ({n} of {len(s.models)} models)")
    return 0


def evaluate(args) -> int:
    from aegis_bench import evaluate as ev

    return ev.run(args, sp.load(args.spec), _log)


def run(args) -> int:
    cmds = {"make": make, "verify": verify, "table": table_cmd, "evaluate": evaluate, "domains": domains_cmd}
    return cmds[args.command](args)
