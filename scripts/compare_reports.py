"""Compare two folders of aegis-audit JSON reports, model by model (issue 13: a change that should leave every
audit number unchanged, checked on the benchmark's reports).

Every field is compared exactly (floats to the bit, as JSON writes them), except those that describe the run
rather than the result: wall times, per-phase timings, peak memory, the command line and, unless
`--count-evaluations`, the number of gradient evaluations; `--ignore KEY` skips more (for example `memory`,
which older reports lack). Where a report has an exit-code file beside it (`NAME.code`, as
research/reduced_audits.sh writes), the exit codes are compared too, and a report of a run that exited 2 (an
input error: no report) is not read. Prints one line per model and exits 1 if any differs.

    .venv/bin/python scripts/compare_reports.py bench/results/reports OUT/reports
    python3 scripts/compare_reports.py old new          # two folders of research/reduced_audits.sh
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

RUN_FIELDS = {"wall_time_s", "timings", "seconds", "command_line", "peak_resident_bytes"}


def differences(a: object, b: object, ignore: set[str], path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k in ignore:
                continue
            if k not in a or k not in b:
                out.append(f"{path}/{k}: only in {'the second' if k not in a else 'the first'}")
            else:
                out += differences(a[k], b[k], ignore, f"{path}/{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} against {len(b)} entries"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, ignore, f"{path}[{i}]")]
    return [] if a == b and type(a) is type(b) else [f"{path}: {a!r} against {b!r}"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("first", type=Path)
    ap.add_argument("second", type=Path)
    ap.add_argument("--count-evaluations", action="store_true", help="also compare gradient_evaluations")
    ap.add_argument("--ignore", action="append", default=[], metavar="KEY", help="also skip this field (repeatable)")
    a = ap.parse_args()
    ignore = RUN_FIELDS | set(a.ignore) | (set() if a.count_evaluations else {"gradient_evaluations"})
    names = sorted(p.name for p in a.first.glob("*.json"))
    if not names:
        sys.exit(f"no JSON reports in {a.first}")
    differ = 0
    for name in names:
        other = a.second / name
        if not other.exists():
            print(f"{name}: missing in {a.second}")
            differ += 1
            continue
        codes = [f.with_suffix(".code") for f in (a.first / name, other)]
        exit_codes = [c.read_text().strip() if c.exists() else None for c in codes]
        if exit_codes[0] != exit_codes[1]:
            print(f"{name}: exit {exit_codes[0]} against {exit_codes[1]}")
            differ += 1
            continue
        if exit_codes[0] == "2":
            print(f"{name}: identical (exit 2 both)")
            continue
        d = differences(json.loads((a.first / name).read_text()), json.loads(other.read_text()), ignore)
        print(f"{name}: {'identical' if not d else f'{len(d)} differences, first {d[0]}'}")
        differ += bool(d)
    print(f"{len(names) - differ} of {len(names)} identical")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
