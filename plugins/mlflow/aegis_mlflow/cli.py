"""`aegis-audit-gate mlflow`: the MLflow registry gate on the command line, for one version
(`models:/NAME/VERSION`, exit code = aegis-audit's) or as a sweep/poll over versions not yet audited."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import time
from pathlib import Path

from mlflow.exceptions import MlflowException

from aegis_runner import BinaryNotFound, check_data, check_extra_args, combined_exit_code, find_binary

from .fetch import Registry, parse_model_uri
from .gate import GateConfig, gate_version, sweep

EPILOG = """\
exit codes (one version): aegis-audit's own: 0 clean, 1 backdoor suspected, 2 error, 3 method not applicable.
exit codes (--sweep): 1 if any version is suspected, else 2 if any failed, else 3 if any was not applicable,
else 0 (also when nothing was pending).

tags set on each audited version: aegis.verdict (clean / backdoor_suspected / not_applicable / error, set last),
aegis.exit_code, aegis.tool_version, aegis.report_sha256 (SHA-256 of the JSON report logged to the version's
run under aegis-audit/NAME-vVERSION/), aegis.model_sha256, aegis.flagged_classes, aegis.message.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aegis-audit-gate", description="Registry gates for aegis-audit.")
    sub = parser.add_subparsers(dest="registry", required=True)
    p = sub.add_parser(
        "mlflow",
        help="gate MLflow model versions",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", nargs="?", help="models:/NAME/VERSION or models:/NAME@ALIAS (omit with --sweep)")
    p.add_argument(
        "--data",
        required=True,
        type=Path,
        help="the training data folder, or one held-out data file (IDX images file or CIFAR-10 batch), as "
        "aegis-audit --data",
    )
    p.add_argument("--promote-alias", metavar="ALIAS", help="point this alias at the version when it is clean")
    p.add_argument("--sweep", action="store_true", help="audit every version without an aegis.verdict tag")
    p.add_argument("--filter", dest="filter_string", help="search_model_versions filter for --sweep, e.g. \"name='m'\"")
    p.add_argument("--limit", type=int, help="--sweep: at most this many versions per sweep")
    p.add_argument("--interval", type=float, help="--sweep: poll again every this many seconds (default: once)")
    p.add_argument("--max-polls", type=int, default=0, help="--interval: stop after this many sweeps (0: never)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI)")
    p.add_argument("--registry-uri", help="MLflow registry URI (default: the tracking URI)")
    p.add_argument("--aegis-bin", help="aegis-audit binary (default: $AEGIS_AUDIT_BIN, then the installed one)")
    p.add_argument("--aegis-args", default="", help='extra aegis-audit flags, e.g. --aegis-args="--method reach"')
    p.add_argument("--timeout", type=float, help="seconds per audit (default: none); a timeout is an error")
    return parser


def _config(args: argparse.Namespace) -> GateConfig:
    check_data(args.data)
    find_binary(args.aegis_bin)
    return GateConfig(
        data=args.data.absolute(),
        extra_args=tuple(check_extra_args(shlex.split(args.aegis_args))),
        binary=args.aegis_bin,
        timeout=args.timeout,
        promote_alias=args.promote_alias,
    )


def _run_sweeps(registry: Registry, config: GateConfig, args: argparse.Namespace) -> int:
    stop = False

    def request_stop(signum, frame):  # finish the version in progress, then stop
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    codes: list[int] = []
    polls = 0
    while True:
        polls += 1
        audited = 0
        for outcome in sweep(registry, config, args.filter_string, args.limit):
            print(outcome.line(), flush=True)
            codes.append(outcome.exit_code)
            audited += 1
            if stop:
                break
        if audited == 0:
            print("no model version without an aegis.verdict tag", flush=True)
        if args.interval is None or stop or (args.max_polls and polls >= args.max_polls):
            return combined_exit_code(codes)
        deadline = time.monotonic() + args.interval
        while not stop and time.monotonic() < deadline:
            time.sleep(min(1.0, args.interval))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if args.sweep == bool(args.model):
        parser.error("give either models:/NAME/VERSION or --sweep")
    try:
        config = _config(args)
        registry = Registry.connect(args.tracking_uri, args.registry_uri)
        if args.sweep:
            return _run_sweeps(registry, config, args)
        name, version = parse_model_uri(registry, args.model)
    except (ValueError, BinaryNotFound) as e:
        print(f"aegis-audit-gate: error: {e}", file=sys.stderr)
        return 2
    except MlflowException as e:
        print(f"aegis-audit-gate: error: {e.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    outcome = gate_version(registry, name, version, config)
    print(outcome.line(), flush=True)
    return outcome.exit_code


if __name__ == "__main__":
    sys.exit(main())
