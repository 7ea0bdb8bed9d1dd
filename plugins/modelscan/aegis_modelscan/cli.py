"""`aegis-modelscan settings-file`: writes a modelscan settings file with the aegis scanner enabled, for
`modelscan --settings-file FILE -p PATH`."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from aegis_runner import check_data

from .settings import settings_toml


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aegis-modelscan", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("settings-file", help="write modelscan-settings.toml with the aegis scanner enabled")
    p.add_argument(
        "--data",
        required=True,
        help="training data folder (IDX, CIFAR, ImageFolder) or one held-out data file, as aegis-audit --data",
    )
    p.add_argument("-o", "--output", default="modelscan-settings.toml", help="file to write (default: %(default)s)")
    p.add_argument("--aegis-args", default="", help='extra aegis-audit flags, e.g. --aegis-args="--method reach"')
    p.add_argument("--aegis-bin", default=None, help="aegis-audit binary (default: $AEGIS_AUDIT_BIN, then PATH)")
    p.add_argument("--timeout", type=float, default=None, help="seconds per model (default: none)")
    p.add_argument("--reports-dir", default=None, help="keep each model's JSON and SARIF report here")
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing file")
    args = parser.parse_args(argv)
    out = Path(args.output)
    if out.exists() and not args.force:
        print(f"aegis-modelscan: error: {out} exists (use --force to overwrite)", file=sys.stderr)
        return 2
    try:
        check_data(args.data)
    except ValueError as e:
        print(f"aegis-modelscan: error: {e}", file=sys.stderr)
        return 2
    out.write_text(
        settings_toml(
            args.data,
            extra_args=shlex.split(args.aegis_args),
            binary=args.aegis_bin,
            timeout=args.timeout,
            reports_dir=args.reports_dir,
        ),
        encoding="utf-8",
    )
    print(f"wrote {out}: run `modelscan --settings-file {out} -p PATH`", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
