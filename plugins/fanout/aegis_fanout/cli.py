"""`aegis-audit-fanout`: audit many models, one aegis-audit process per model, on Ray or on this machine,
and write one summary (CSV), one merged SARIF log and every model's reports."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from aegis_runner import BinaryNotFound, Failure, check_data, check_extra_args, combined_exit_code, find_binary

from .backends import Resources, run_local, run_ray
from .manifest import Entry, ManifestError, read_manifest, registry_entries
from .summary import model_dir, write_model_reports, write_summary
from .task import InfrastructureError, TaskConfig, TaskResult, as_row, audit_entry, task_args

EX_TEMPFAIL = 75  # --index: an infrastructure failure; the Job controller retries the index

EPILOG = """\
output folder: summary.csv (index, uri, verdict, exit_code, flagged_classes, method, model_sha256,
tool_version, failure, message, duration_s, report), aegis.sarif (every model in one SARIF run, locations
rewritten to the manifest URIs), models/NNNNN/{report.json,report.sarif,result.json}.

retries: only infrastructure failures (fetch failed, aegis-audit killed by a signal, worker lost) are
retried; exit 1 (backdoor suspected), 3 (not applicable), 2 (input error) and timeouts are final.

exit code: 1 if any model is suspected, else 2 if any audit failed, else 3 if any method did not apply,
else 0. With --index: that model's aegis-audit exit code, or 75 after an infrastructure failure.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="aegis-audit-fanout", description=__doc__, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("--backend", choices=["ray", "local"], default="local", help="where tasks run (default: local)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--manifest", type=Path, help="text file, one model URI per line (path, file://, models:/...)")
    what.add_argument("--registry-query", metavar="FILTER", help="MLflow version filter, e.g. \"name='m'\"")
    what.add_argument("--collect", action="store_true", help="only write summary.csv and aegis.sarif from --out")
    p.add_argument("--pending-only", action="store_true", help="--registry-query: versions without aegis.verdict")
    p.add_argument("--tracking-uri", help="MLflow tracking URI for models:/ URIs (default: $MLFLOW_TRACKING_URI)")
    p.add_argument(
        "--data",
        type=Path,
        help="training data folder or one held-out data file, as aegis-audit --data (on every worker)",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--cpus-per-task", type=float, default=1.0, help="CPUs per task (default: 1; sets --threads)")
    p.add_argument("--gpus-per-task", type=float, default=0.0, help="GPUs per task (default: 0; >0 sets --device cuda)")
    p.add_argument("--timeout", type=float, help="seconds per aegis-audit process (default: none); final when hit")
    p.add_argument("--retries", type=int, default=2, help="retries after an infrastructure failure (default: 2)")
    p.add_argument("--parallel", type=int, help="local: tasks at once (default: CPU count / --cpus-per-task)")
    p.add_argument("--ray-address", help="ray: cluster address (default: a new local instance)")
    p.add_argument("--ray-num-cpus", type=int, help="ray: CPUs of the new local instance (default: all)")
    p.add_argument("--index", type=int, help="run only this manifest entry here (Kubernetes Indexed Job)")
    p.add_argument("--aegis-bin", help="aegis-audit binary (default: $AEGIS_AUDIT_BIN, then the installed one)")
    p.add_argument("--aegis-args", default="", help='extra aegis-audit flags, e.g. --aegis-args="--method reach"')
    p.add_argument("--sarif-category", default="aegis-audit-fanout/", help="automationDetails.id of the SARIF run")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (or, off a terminal, no line per model)")
    return p


def _entries(args: argparse.Namespace) -> list[Entry]:
    if args.manifest:
        return read_manifest(args.manifest)
    entries = registry_entries(args.tracking_uri, args.registry_query, args.pending_only)
    if not entries:
        raise ManifestError(f"the registry query {args.registry_query!r} matches no model version")
    return entries


def _collect(out: Path) -> list[TaskResult]:
    results = []
    for path in sorted((out / "models").glob("*/result.json")):
        row = json.loads(path.read_text(encoding="utf-8"))
        row.pop("report", None)
        texts = {}
        for key, name in (("report_json", "report.json"), ("report_sarif", "report.sarif")):
            f = path.parent / name
            texts[key] = f.read_text(encoding="utf-8") if f.is_file() else None
        results.append(TaskResult(**row, **texts))
    return results


def _save(out: Path, result: TaskResult) -> None:
    report = write_model_reports(out, result)
    path = model_dir(out, result.index) / "result.json"
    path.write_text(json.dumps({**as_row(result), "report": report}, indent=1) + "\n", encoding="utf-8")


def _run_one(entry: Entry, config: TaskConfig, retries: int) -> tuple[TaskResult, int]:
    for attempt in range(1, retries + 2):
        try:
            result = audit_entry(entry.index, entry.uri, config)
            return result, result.exit_code
        except InfrastructureError as e:
            if attempt == retries + 1:
                message = f"{e} (after {attempt} attempts)"
                return TaskResult.failed(entry.index, entry.uri, Failure.INFRASTRUCTURE, message), EX_TEMPFAIL
    raise AssertionError("unreachable")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.collect:
            results = _collect(args.out)
            write_summary(args.out, results, args.sarif_category)
            print(f"{len(results)} models: {args.out / 'summary.csv'}, {args.out / 'aegis.sarif'}", file=sys.stderr)
            return combined_exit_code(r.exit_code for r in results)
        check_data(args.data)
        extra = task_args(check_extra_args(shlex.split(args.aegis_args)), args.cpus_per_task, args.gpus_per_task)
        if args.backend == "local" or args.index is not None or args.aegis_bin:
            find_binary(args.aegis_bin)
        entries = _entries(args)
        base = args.manifest.parent.absolute() if args.manifest else Path.cwd()
        config = TaskConfig(
            str(args.data.absolute()), extra, args.aegis_bin, args.timeout, args.tracking_uri, str(base)
        )
        if args.index is not None and not 0 <= args.index < len(entries):
            raise ValueError(f"--index {args.index} is outside the manifest's {len(entries)} entries")
    except (ValueError, BinaryNotFound) as e:  # ManifestError is a ValueError
        print(f"aegis-audit-fanout: error: {e}", file=sys.stderr)
        return 2
    if args.index is not None:
        result, code = _run_one(entries[args.index], config, args.retries)
        _save(args.out, result)
        print(f"{result.uri}: {result.verdict} (exit {result.exit_code}): {result.message}")
        return code
    return _fan_out(args, entries, config)


def _fan_out(args: argparse.Namespace, entries: list[Entry], config: TaskConfig) -> int:
    from tqdm import tqdm

    resources = Resources(args.cpus_per_task, args.gpus_per_task, args.retries)
    counts: dict[str, int] = {}
    with tqdm(total=len(entries), unit="model", desc="aegis-audit", disable=args.no_progress or None) as bar:

        def progress(result: TaskResult) -> None:
            _save(args.out, result)  # as each finishes: an interrupted fan-out keeps what it has done
            counts[result.verdict] = counts.get(result.verdict, 0) + 1
            bar.set_postfix(counts, refresh=False)
            bar.update(1)
            if bar.disable and not args.no_progress:  # not a terminal (a CI or pod log): one line per model
                done = sum(counts.values())
                print(f"[{done}/{len(entries)}] {result.uri}: {result.verdict} (exit {result.exit_code})",
                      file=sys.stderr, flush=True)  # fmt: skip

        if args.backend == "ray":
            results = run_ray(entries, config, resources, progress, args.ray_address, args.ray_num_cpus)
        else:
            results = run_local(entries, config, resources, progress, args.parallel)
    csv_path, sarif_path = write_summary(args.out, results, args.sarif_category)
    summary = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    print(f"{len(results)} models ({summary}): {csv_path}, {sarif_path}", file=sys.stderr)
    return combined_exit_code(r.exit_code for r in results)


if __name__ == "__main__":
    sys.exit(main())
