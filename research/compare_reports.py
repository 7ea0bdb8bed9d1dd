"""Compares two folders written by research/reduced_audits.sh (`aegis-audit --format json` reports and their exit
codes) run by run: exit code, verdict, method and reason, precondition, model hash, parameters, and per class the
flag, the summary and every number of the details. One line per run; exits 1 on any difference."""

import json
import pathlib
import sys

old, new = map(pathlib.Path, sys.argv[1:3])
bad = 0
for code in sorted(old.glob("*.code")):
    name = code.stem
    oc, nc = code.read_text().strip(), (new / code.name).read_text().strip()
    oj, nj = old / f"{name}.json", new / f"{name}.json"
    problems = []
    if oc != nc:
        problems.append(f"exit {oc} vs {nc}")
    if oc not in ("2",):
        a, b = json.loads(oj.read_text()), json.loads(nj.read_text())
        for key in ("verdict", "method", "precondition"):
            if a.get(key) != b.get(key):
                problems.append(f"{key}: {a.get(key)} vs {b.get(key)}")
        if a["model"]["sha256"] != b["model"]["sha256"]:
            problems.append("model sha256")
        ca, cb = a["classes"], b["classes"]
        if len(ca) != len(cb):
            problems.append(f"{len(ca)} vs {len(cb)} classes")
        for x, y in zip(ca, cb):
            for key in ("class", "flagged", "summary", "details"):
                if x.get(key) != y.get(key):
                    problems.append(f"class {x['class']} {key}: {x.get(key)} vs {y.get(key)}")
        pa = {k: v for k, v in a["parameters"].items()}
        pb = {k: v for k, v in b["parameters"].items()}
        if pa != pb:
            problems.append(f"parameters differ: {sorted(k for k in set(pa) | set(pb) if pa.get(k) != pb.get(k))}")
        n = len(ca)
        flagged = [c["class"] for c in ca if c["flagged"]]
        summary = f"exit {oc}, {a['verdict']}, {a['method']['method']}, {n} classes, flagged {flagged}"
    else:
        summary = "exit 2 (both)"
    status = "IDENTICAL" if not problems else "DIFFERENT: " + "; ".join(problems)[:2000]
    bad += bool(problems)
    print(f"{name}: {summary}: {status}")
sys.exit(1 if bad else 0)
