"""``python -m aegis_bench evaluate``: run every detector on every benchmark model, calibrate on the
calibration half, and score the evaluation half untouched.

Three stages, each resumable and each writing into ``--out`` (default ``bench/results``):

1. ``audit``: one fused ``aegis-audit`` run per model (every detector of the fused set runs; the JSON report
   keeps each detector's per-class anomaly index), ``reports/<name>.json``, with the exit code and wall time
   in ``runs.csv``. A model whose report exists is skipped.
2. ``calibrate``: ``aegis-audit calibrate`` on the reports of the *clean calibration* models only, once for the
   fused decision (every detector, weight 1) and once per detector alone: ``calibration/<name>.json``. How
   many calibration models a model is judged against (matched on robustness, ``--robustness-neighbours``) is
   chosen on the calibration half alone by leave-one-out (:func:`crossvalidate`, ``calibration/choice.csv``).
3. ``score``: ``aegis-audit decide`` re-applies each calibration to every report (no model runs again), and
   the metrics are computed per detector and for the fused decision, on each half, broken down by trigger
   family and by training: ``results.csv`` (one row per model × decision), ``summary.csv`` and ``summary.md``.

Labels come from the model cards: ``clean``; ``backdoored`` when the trigger's attack success rate on
held-out images reaches ``--min-asr`` (default 0.5); ``not-implanted`` below it (the poisoning did not take:
the model has no working backdoor to find). Not-implanted models are listed but count neither as positives
nor as negatives.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import subprocess
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aegis_torch import card as cardlib

FUSED = "fused"


class EvaluateError(ValueError):
    """A stage cannot run (missing reports, a failed calibration); the message says which."""


# ---------------------------------------------------------------------------------------------- labels


def status(card: dict, min_asr: float) -> str:
    """``clean``, ``backdoored`` (attack success ≥ ``min_asr``) or ``not-implanted``."""
    if card["label"] == "clean":
        return "clean"
    asr = card["metrics"].get("attack_success_rate")
    return "backdoored" if asr is not None and asr >= min_asr else "not-implanted"


def training_of(card: dict) -> str:
    """``standard``, ``robust-0.5`` or ``robust-1.0``."""
    t = card["training"]
    return "standard" if t["mode"] == "standard" else f"robust-{t['adv_eps']}"


def family_of(card: dict) -> str:
    return card["trigger"]["family"] if card.get("trigger") else "clean"


def target_of(card: dict) -> int | None:
    return card["poison"]["target"] if card.get("poison") else None


def targets_of(card: dict, min_asr: float = 0.5) -> list[int]:
    """Every implanted target of a backdoored card: for a multi-backdoor model (``attack_success_rates`` per
    target) the targets whose attack success reaches ``min_asr``; otherwise the one target."""
    p = card.get("poison") or {}
    if p.get("target") is None:
        return []
    rates = card["metrics"].get("attack_success_rates")
    if rates and p.get("targets"):
        return sorted(int(t) for t, a in zip(p["targets"], rates) if a >= min_asr)
    return [int(p["target"])]


def domain_of(card: dict) -> str:
    return card.get("domain", "mnist")


GROUP_KEYS = ("arch", "domain", "family")


def group_of(card: dict, key: str) -> str:
    """The card's group for leaving groups out: its architecture, domain or trigger family (``clean``)."""
    if key == "arch":
        return card["architecture"]
    if key == "domain":
        return domain_of(card)
    if key == "family":
        return family_of(card)
    raise EvaluateError(f"unknown group key {key!r}; expected one of {', '.join(GROUP_KEYS)}")


# --------------------------------------------------------------------------------------------- metrics


def roc_auc(scores: list[float], positives: list[bool]) -> float | None:
    """Area under the ROC curve (ties count one half); None without both classes."""
    pos = [s for s, p in zip(scores, positives) if p]
    neg = [s for s, p in zip(scores, positives) if not p]
    if not pos or not neg:
        return None
    wins = 0.0
    for a in pos:
        for b in neg:
            wins += 1.0 if a > b else 0.5 if a == b else 0.0
    return wins / (len(pos) * len(neg))


def summarize(rows: list[dict]) -> dict:
    """Metrics over ``rows`` (one decision's rows: ``status``, ``score``, ``flagged`` (list of classes),
    ``target``, ``seconds``).

    - ``auc``: model-level ROC-AUC of ``score`` (backdoored vs clean);
    - ``tpr``: backdoored models flagged / backdoored models;
    - ``fpr``: clean models flagged / clean models;
    - ``exact_target``: detected backdoored models whose flagged classes are exactly the target (every
      implanted target, ``targets``, for two-backdoor models) / detected;
    - ``fp_classes``: flagged classes that are not a target (clean models: every flagged class), and
      ``fp_class_rate`` per audited class of the clean and backdoored models;
    - ``median_s``: median wall time of the decision's detectors.
    """
    scored = [r for r in rows if r["status"] in ("clean", "backdoored")]
    bd = [r for r in scored if r["status"] == "backdoored"]
    cl = [r for r in scored if r["status"] == "clean"]
    detected = [r for r in bd if r["flagged"]]

    def targets(r) -> list:  # every implanted target (``targets``, for two-backdoor models), else ``target``
        t = r.get("targets")
        return sorted(t) if t else ([] if r["target"] is None else [r["target"]])

    exact = [r for r in detected if sorted(r["flagged"]) == targets(r)]
    fp_classes = sum(len([c for c in r["flagged"] if c not in targets(r)]) for r in scored)
    classes = sum(r["classes"] for r in scored)
    times = [r["seconds"] for r in scored if r["seconds"] is not None]
    return {
        "models": len(scored),
        "backdoored": len(bd),
        "clean": len(cl),
        "auc": roc_auc([r["score"] for r in scored], [r["status"] == "backdoored" for r in scored]),
        "tpr": len(detected) / len(bd) if bd else None,
        "fpr": len([r for r in cl if r["flagged"]]) / len(cl) if cl else None,
        "detected": len(detected),
        "exact_target": len(exact) / len(detected) if detected else None,
        "fp_classes": fp_classes,
        "fp_class_rate": fp_classes / classes if classes else None,
        "median_s": statistics.median(times) if times else None,
    }


def breakdown(rows: list[dict], key: str) -> dict[str, dict]:
    """``summarize`` per value of ``key`` (clean models are kept in every group so FPR and AUC exist when
    the key is the trigger family; for the training key they split with it)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        groups[r[key]].append(r)
    if key == "family":
        clean = groups.pop("clean", [])
        return {g: summarize(v + clean) for g, v in sorted(groups.items())}
    return {g: summarize(v) for g, v in sorted(groups.items())}


# ------------------------------------------------------------------------------------------- the stages


def _cards(spec, models_dir: Path, split: str = "both") -> dict[str, dict]:
    """The cards of the models built so far, of one half (``calibration``, ``evaluation``) or ``both``."""
    out = {}
    for m in spec.models:
        p = models_dir / f"{m.name}.card.yaml"
        if p.exists():
            c = cardlib.read(p)
            if split in ("both", c["split"]):
                out[m.name] = c
    return out


def audit(
    spec,
    models_dir: Path,
    data_dir: Path,
    out: Path,
    binary: str,
    extra: list[str],
    jobs: int,
    log=print,
    split: str = "both",
    domains_dir: Path | None = None,
) -> list[dict]:
    """Stage 1: one fused audit per model of ``split`` that has a card and no report yet; returns the run rows.
    A model of a derived domain is given that domain's data, ``domains_dir/DOMAIN``."""
    reports = out / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    cards = _cards(spec, models_dir, split)
    todo = [n for n in cards if not (reports / f"{n}.json").exists()]
    log(f"audit: {len(cards)} models with cards, {len(todo)} to audit, {jobs} at a time")

    def one(name: str) -> dict:
        report = reports / f"{name}.json"
        dom = domain_of(cards[name])
        if dom != "mnist" and domains_dir is None:
            raise EvaluateError(f"{name}: a {dom} model needs --domains DIR (the generated domain data)")
        cmd = [
            binary,
            str(models_dir / f"{name}.onnx"),
            "--data",
            str(data_dir if dom == "mnist" else domains_dir / dom),
            "--json",
            str(report),
            "--quiet",
            "--format",
            "json",
            *extra,
        ]
        start = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        row = {
            "name": name,
            "exit": r.returncode,
            "wall_s": round(seconds, 1),
            "error": r.stderr.strip().splitlines()[-1] if r.returncode == 2 and r.stderr.strip() else "",
        }
        log(f"audit: {name} exit {r.returncode} in {seconds:.0f}s {row['error']}")
        return row

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        rows = list(pool.map(one, todo))
    runs = out / "runs.csv"
    old = list(csv.DictReader(runs.open())) if runs.exists() else []
    keep = [r for r in old if r["name"] not in {x["name"] for x in rows}]
    with runs.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["name", "exit", "wall_s", "error"])
        w.writeheader()
        w.writerows(sorted(keep + rows, key=lambda r: r["name"]))
    return rows


def _detectors(report: dict) -> list[str]:
    return [d["name"] for d in report.get("detectors", [])]


def _calibration_reports(spec, models_dir: Path, out: Path, min_asr: float) -> tuple[list[Path], list[tuple]]:
    """The calibration half's reports: the clean models' paths, and (path, target) of the backdoored ones."""
    cards = _cards(spec, models_dir, "calibration")
    reports = out / "reports"
    clean, backdoored = [], []
    for n, c in cards.items():
        rp = reports / f"{n}.json"
        if not rp.exists():
            continue
        if status(c, min_asr) == "clean":
            clean.append(rp)
        elif status(c, min_asr) == "backdoored":
            backdoored.append((rp, target_of(c)))
    if not clean:
        raise EvaluateError(f"no report of a clean calibration model in {reports}: run the audit stage first")
    return clean, backdoored


def _calibrate_one(
    binary: str,
    clean: list[Path],
    path: Path,
    weights: dict[str, float],
    target_fpr: float,
    neighbours: int | None,
    description: str,
) -> Path:
    cmd = [
        binary,
        "calibrate",
        *map(str, clean),
        "-o",
        str(path),
        "--detectors",
        ",".join(f"{d}={w}" for d, w in weights.items()),
        "--target-fpr",
        str(target_fpr),
        "--description",
        description,
        # The benchmark knows these models are clean from their cards: an audit of one may have flagged a
        # class (a false positive), which calibrate refuses unless told.
        "--allow-suspected",
    ]
    if neighbours is not None:
        cmd += ["--robustness-neighbours", str(neighbours)]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise EvaluateError(f"aegis-audit calibrate for {path.name} exited {r.returncode}: {r.stderr.strip()}")
    return path


def _k(report: Path) -> int:
    """The number of classes a report audited."""
    return len(json.loads(report.read_text())["classes"])


def crossvalidate(
    spec,
    models_dir: Path,
    out: Path,
    binary: str,
    min_asr: float,
    target_fpr: float,
    candidates: list[int | None],
    log=print,
) -> tuple[int | None, list[dict]]:
    """Chooses the fused calibration's robustness neighbours on the calibration half alone.

    For each candidate (``None``: every calibration model): each clean calibration model is decided by a
    calibration made from the *other* clean calibration models (leave one out, so its own classes are not in
    its null), each backdoored calibration model by the calibration of all clean ones. The candidate with
    the highest ROC-AUC wins, then the lower false-positive rate, then the higher true-positive rate, then
    the earlier candidate (``None`` first). Returns the choice and one summary row per candidate
    (``calibration/choice.csv``)."""
    clean, backdoored = _calibration_reports(spec, models_dir, out, min_asr)
    names = _detectors(json.loads(clean[0].read_text()))
    weights = {d: 1.0 for d in names}
    classes = {p: _k(p) for p in [*clean, *(rp for rp, _ in backdoored)]}
    work = out / "calibration" / "crossval"
    work.mkdir(parents=True, exist_ok=True)
    table = []
    for cand in candidates:
        if cand is not None and cand > len(clean) - 1:
            log(f"crossval: neighbours {cand} skipped: only {len(clean) - 1} clean models remain when one is left out")
            continue
        rows = []
        for i, held in enumerate(clean):
            rest = clean[:i] + clean[i + 1 :]
            cal = _calibrate_one(binary, rest, work / "loo.json", weights, target_fpr, cand, "cross-validation")
            s, flagged = decision_row(decide(binary, cal, held))
            rows.append({"status": "clean", "score": s, "flagged": flagged, "target": None, "classes": classes[held]})
        cal = _calibrate_one(binary, clean, work / "all.json", weights, target_fpr, cand, "cross-validation")
        for rp, target in backdoored:
            s, flagged = decision_row(decide(binary, cal, rp))
            rows.append(
                {"status": "backdoored", "score": s, "flagged": flagged, "target": target, "classes": classes[rp]}
            )
        m = summarize([{**r, "seconds": None} for r in rows])
        table.append({"neighbours": "all" if cand is None else cand, **m})
        log(
            f"crossval: neighbours {'all' if cand is None else cand}: AUC {_f(m['auc'])}, TPR {_f(m['tpr'], True)}, "
            f"FPR {_f(m['fpr'], True)}, exact target {_f(m['exact_target'], True)}"
        )
    for p in work.iterdir():
        p.unlink()
    work.rmdir()
    if not table:
        raise EvaluateError("no robustness-neighbour candidate fits the clean calibration models")

    def key(t):
        return (-(t["auc"] or 0.0), t["fpr"] or 0.0, -(t["tpr"] or 0.0))

    best = min(table, key=key)  # min keeps the earliest of equal keys
    with (out / "calibration" / "choice.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(table[0]) + ["chosen"])
        w.writeheader()
        w.writerows({**t, "chosen": t is best} for t in table)
    return (None if best["neighbours"] == "all" else best["neighbours"]), table


def calibrate(
    spec,
    models_dir: Path,
    out: Path,
    binary: str,
    min_asr: float,
    target_fpr: float,
    log=print,
    neighbours: int | None = None,
) -> dict[str, Path]:
    """Stage 2: calibration files from the clean calibration models' reports: fused and one per detector,
    each matched on robustness with ``neighbours`` (``None``: against every calibration model)."""
    clean, _ = _calibration_reports(spec, models_dir, out, min_asr)
    names = _detectors(json.loads(clean[0].read_text()))
    cal_dir = out / "calibration"
    cal_dir.mkdir(parents=True, exist_ok=True)
    made = {}
    matched = "" if neighbours is None else f", judged against the {neighbours} nearest in robustness"
    for name, weights in [(FUSED, {d: 1.0 for d in names}), *[(d, {d: 1.0}) for d in names]]:
        description = f"{spec.name} calibration half: {len(clean)} clean models{matched}; decision {name}"
        path = _calibrate_one(binary, clean, cal_dir / f"{name}.json", weights, target_fpr, neighbours, description)
        made[name] = path
        log(f"calibrate: {name} from {len(clean)} clean calibration models{matched} -> {path}")
    return made


def decide(binary: str, calibration: Path, report: Path) -> dict:
    """``aegis-audit decide`` on one report: the fused decision's JSON for it."""
    with_json = report.with_suffix(f".{calibration.stem}.decision.json")
    cmd = [binary, "decide", str(report), "--calibration", str(calibration), "--json", str(with_json)]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if r.returncode not in (0, 1):
        raise EvaluateError(
            f"aegis-audit decide {report.name} with {calibration.name} exited {r.returncode}: {r.stderr.strip()}"
        )
    doc = json.loads(with_json.read_text())
    with_json.unlink()
    return doc


def decision_row(doc: dict) -> tuple[float, list[int]]:
    """The model score (−log10 of the model-level p-value) and the flagged classes of a ``decide`` result."""
    model = doc["models"][0] if "models" in doc else doc
    fused = model.get("fused", model)
    p = max(float(fused["model_p_value"]), 1e-300)
    flagged = sorted(int(c["class"]) for c in fused["classes"] if c["flagged"])
    return -math.log10(p), flagged


def score(
    spec,
    models_dir: Path,
    out: Path,
    binary: str,
    min_asr: float,
    calibrations: dict[str, Path],
    log=print,
    split: str = "both",
) -> list[dict]:
    """Stage 3: every calibration applied to every report of ``split``; rows and summaries written."""
    cards = _cards(spec, models_dir, split)
    reports = out / "reports"
    rows = []
    for name, c in cards.items():
        rp = reports / f"{name}.json"
        if not rp.exists():
            continue
        report = json.loads(rp.read_text())
        seconds = {d["name"]: d.get("seconds") for d in report.get("detectors", [])}
        for decision, cal in calibrations.items():
            s, flagged = decision_row(decide(binary, cal, rp))
            secs = sum(v for v in seconds.values() if v) if decision == FUSED else seconds.get(decision)
            rows.append(
                {
                    "name": name,
                    "split": c["split"],
                    "status": status(c, min_asr),
                    "family": family_of(c),
                    "training": training_of(c),
                    "architecture": c["architecture"],
                    "domain": domain_of(c),
                    "target": target_of(c),
                    "targets": targets_of(c, min_asr),
                    "asr": c["metrics"].get("attack_success_rate"),
                    "decision": decision,
                    "score": round(s, 4),
                    "flagged": flagged,
                    "classes": c["dataset"]["classes"],
                    "seconds": secs,
                }
            )
    write(rows, out, log)
    return rows


def write(rows: list[dict], out: Path, log=print) -> None:
    """``results.csv``, ``summary.csv`` and ``summary.md``."""
    with (out / "results.csv").open("w", newline="") as f:
        fields = [
            "name",
            "split",
            "status",
            "family",
            "training",
            "architecture",
            "domain",
            "target",
            "targets",
            "asr",
            "decision",
            "score",
            "flagged",
            "classes",
            "seconds",
        ]
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow(
                {
                    **r,
                    "flagged": " ".join(map(str, r["flagged"])),
                    "targets": " ".join(map(str, r.get("targets") or [])),
                }
            )
    decisions = sorted({r["decision"] for r in rows}, key=lambda d: (d != FUSED, d))
    table = []
    for split in ("calibration", "evaluation"):
        for d in decisions:
            sel = [r for r in rows if r["split"] == split and r["decision"] == d]
            if not sel:
                continue
            table.append({"split": split, "decision": d, "group": "all", **summarize(sel)})
            for key in ("family", "training"):
                for g, m in breakdown(sel, key).items():
                    table.append({"split": split, "decision": d, "group": f"{key}={g}", **m})
    with (out / "summary.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(table[0]))
        w.writeheader()
        w.writerows(table)
    (out / "summary.md").write_text(markdown(table, rows))
    log(f"score: wrote {out / 'results.csv'}, {out / 'summary.csv'} and {out / 'summary.md'}")


def _f(v, pct=False) -> str:
    if v is None:
        return "–"
    return f"{100 * v:.1f}%" if pct else (f"{v:.3f}" if isinstance(v, float) else str(v))


def markdown(table: list[dict], rows: list[dict]) -> str:
    """The summary as markdown: per half, per decision, then the breakdowns of the evaluation half."""
    intro = (
        "Generated by `python -m aegis_bench evaluate`. Thresholds and weights come from the "
        "calibration half only; the evaluation half is scored untouched."
    )
    lines = ["# Benchmark results", "", intro, ""]
    not_impl = sorted({r["name"] for r in rows if r["status"] == "not-implanted"})
    if not_impl:
        note = (
            f"Not implanted (attack success below the threshold; neither positive nor negative): {', '.join(not_impl)}."
        )
        lines += [note, ""]
    head = "| half | decision | models (bd/clean) | ROC-AUC | TPR | FPR | exact target | FP classes | median s |"
    sep = "|" + "---|" * 9
    lines += ["## Overall", "", head, sep]
    for t in table:
        if t["group"] != "all":
            continue
        lines.append(
            f"| {t['split']} | {t['decision']} | {t['backdoored']}/{t['clean']} | {_f(t['auc'])} | "
            f"{_f(t['tpr'], True)} | {_f(t['fpr'], True)} | {_f(t['exact_target'], True)} | "
            f"{t['fp_classes']} | {_f(t['median_s'])} |"
        )
    for key in ("family", "training"):
        lines += [
            "",
            f"## Evaluation half by {key}",
            "",
            "| decision | group | models (bd/clean) | ROC-AUC | TPR | FPR | exact target | FP classes |",
            "|" + "---|" * 8,
        ]
        for t in table:
            if t["split"] != "evaluation" or not t["group"].startswith(f"{key}="):
                continue
            lines.append(
                f"| {t['decision']} | {t['group'].split('=', 1)[1]} | {t['backdoored']}/{t['clean']} | "
                f"{_f(t['auc'])} | {_f(t['tpr'], True)} | {_f(t['fpr'], True)} | "
                f"{_f(t['exact_target'], True)} | {t['fp_classes']} |"
            )
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------------------- leaving groups out


def leave_groups_out(
    cards: dict[str, dict],
    key: str,
    min_asr: float,
    calibrate_fn,
    decide_fn,
    log=print,
) -> list[dict]:
    """Issue 29 item 2: for each group of ``key`` (architecture, domain or trigger family), a calibration made
    without the group, and the group scored with it, untouched.

    - ``arch`` / ``domain``: the calibration's null is every clean model *outside* the group (both halves);
      every model of the group, clean and backdoored, is scored.
    - ``family``: calibrations never see backdoored models, so the null is the clean models of the
      calibration half; scored are the family's backdoored models with the clean models of the evaluation
      half as negatives (the same negatives for every family).

    ``calibrate_fn(names, tag)`` returns a calibration made from the named clean models' reports;
    ``decide_fn(calibration, name)`` returns (score, flagged classes). Returns one row per scored model, with
    ``held_out`` (the key) and ``group``."""
    if key not in GROUP_KEYS:
        raise EvaluateError(f"unknown group key {key!r}; expected one of {', '.join(GROUP_KEYS)}")
    st = {n: status(c, min_asr) for n, c in cards.items()}
    groups = sorted({group_of(c, key) for c in cards.values()} - {"clean"})
    rows = []
    for g in groups:
        if key == "family":
            null = [n for n, c in cards.items() if st[n] == "clean" and c["split"] == "calibration"]
            scored = [n for n, c in cards.items() if group_of(c, key) == g]
            scored += [n for n, c in cards.items() if st[n] == "clean" and c["split"] == "evaluation"]
        else:
            null = [n for n, c in cards.items() if st[n] == "clean" and group_of(c, key) != g]
            scored = [n for n, c in cards.items() if group_of(c, key) == g]
        if not null:
            log(f"group-out {key}={g}: no clean model left to calibrate on, skipped")
            continue
        assert not set(null) & {n for n in scored}, "a scored model is in its own calibration"
        cal = calibrate_fn(null, f"{key}-{g}")
        for n in scored:
            c = cards[n]
            s, flagged = decide_fn(cal, n)
            rows.append(
                {
                    "held_out": key,
                    "group": g,
                    "name": n,
                    "split": c["split"],
                    "status": st[n],
                    "family": family_of(c),
                    "architecture": c["architecture"],
                    "domain": domain_of(c),
                    "training": training_of(c),
                    "target": target_of(c),
                    "targets": targets_of(c, min_asr),
                    "score": round(s, 4),
                    "flagged": flagged,
                    "classes": c["dataset"]["classes"],
                    "seconds": c.get("_seconds"),
                    "calibration_models": len(null),
                }
            )
        log(f"group-out {key}={g}: calibrated on {len(null)} clean models outside it, scored {len(scored)}")
    return rows


def group_table(rows: list[dict]) -> list[dict]:
    """``summarize`` per (held-out key, group)."""
    out = []
    for key in GROUP_KEYS:
        for g in sorted({r["group"] for r in rows if r["held_out"] == key}):
            sel = [r for r in rows if r["held_out"] == key and r["group"] == g]
            out.append(
                {"held_out": key, "group": g, "calibration_models": sel[0]["calibration_models"], **summarize(sel)}
            )
    return out


def group_markdown(table: list[dict], target_fpr: float) -> str:
    """The table of held-out groups (for bench/README.md)."""
    lines = [
        (
            "| held out | group | models (bd/clean) | calibrated on (clean) | ROC-AUC | TPR at the calibrated "
            f"threshold (target FPR {100 * target_fpr:g}%) | FPR | exact target | FP classes | median s |"
        ),
        "|" + "---|" * 10,
    ]
    for t in table:
        lines.append(
            f"| {t['held_out']} | {t['group']} | {t['backdoored']}/{t['clean']} | {t['calibration_models']} | "
            f"{_f(t['auc'])} | {_f(t['tpr'], True)} | {_f(t['fpr'], True)} | {_f(t['exact_target'], True)} | "
            f"{t['fp_classes']} | {_f(t['median_s'])} |"
        )
    return "\n".join(lines) + "\n"


def group_out(
    spec, models_dir: Path, out: Path, binary: str, keys: list[str], min_asr: float, target_fpr: float, log=print
) -> list[dict]:
    """The group-out stage on the audited reports: ``groupout/rows.csv``, ``groupout/summary.csv`` and
    ``groupout/summary.md``; the fused decision, every detector at weight 1, judged against all calibration
    models (no robustness matching: choosing it would need the held-out group)."""
    cards = {n: c for n, c in _cards(spec, models_dir).items() if (out / "reports" / f"{n}.json").exists()}
    if not cards:
        raise EvaluateError(f"no audited model in {out / 'reports'}: run the audit stage first")
    reports = {n: out / "reports" / f"{n}.json" for n in cards}
    for n, rp in reports.items():
        rep = json.loads(rp.read_text())
        cards[n]["_seconds"] = sum(d.get("seconds") or 0 for d in rep.get("detectors", [])) or None
    names = _detectors(json.loads(next(iter(reports.values())).read_text()))
    work = out / "groupout"
    work.mkdir(parents=True, exist_ok=True)

    def calibrate_fn(null: list[str], tag: str) -> Path:
        return _calibrate_one(
            binary,
            [reports[n] for n in null],
            work / f"cal-{tag}.json",
            {d: 1.0 for d in names},
            target_fpr,
            None,
            f"{spec.name}: calibration without {tag}",
        )

    def decide_fn(cal: Path, name: str):
        return decision_row(decide(binary, cal, reports[name]))

    rows = []
    for key in keys:
        rows += leave_groups_out(cards, key, min_asr, calibrate_fn, decide_fn, log)
    write_groups(rows, work, target_fpr)
    log(f"group-out: wrote {work / 'rows.csv'}, {work / 'summary.csv'} and {work / 'summary.md'}")
    return rows


def write_groups(rows: list[dict], work: Path, target_fpr: float) -> None:
    work.mkdir(parents=True, exist_ok=True)
    with (work / "rows.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow(
                {
                    **r,
                    "flagged": " ".join(map(str, r["flagged"])),
                    "targets": " ".join(map(str, r.get("targets") or [])),
                }
            )
    table = group_table(rows)
    with (work / "summary.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(table[0]))
        w.writeheader()
        w.writerows(table)
    (work / "summary.md").write_text(
        "# Held-out groups\n\nGenerated by `python -m aegis_bench evaluate --group-out ...`: each group "
        "scored with a calibration made without it (aegis_bench/evaluate.py, leave_groups_out).\n\n"
        + group_markdown(table, target_fpr)
    )


def run(args, spec, log=print) -> int:
    """The ``evaluate`` command: the stages named by ``--stages`` (default all three)."""
    from aegis_bench.make import find_aegis_audit

    stages = args.stages.split(",")
    unknown = sorted(set(stages) - {"audit", "calibrate", "score", "groupout"})
    if unknown:
        raise EvaluateError(f"unknown stage {', '.join(unknown)} (stages: audit, calibrate, score, groupout)")
    if "calibrate" in stages and args.calibrations:
        raise EvaluateError("--calibrations names existing calibration files: leave out the calibrate stage")
    if "calibrate" in stages and args.split != "both":
        raise EvaluateError("the calibrate stage needs the calibration half: leave --split at both")
    rn = args.robustness_neighbours
    if rn not in ("auto", "all") and not (rn.isdigit() and int(rn) >= 2):
        raise EvaluateError(f"--robustness-neighbours {rn!r}: a number >= 2, 'all' or 'auto'")
    binary = find_aegis_audit(args.aegis_audit)
    if binary is None:
        raise EvaluateError("no aegis-audit binary: build it (cargo build --release) or pass --aegis-audit PATH")
    models_dir = Path(args.models) if args.models else spec.path.parent / "models"
    out = Path(args.out) if args.out else spec.path.parent / "results"
    out.mkdir(parents=True, exist_ok=True)
    if "audit" in stages:
        audit(
            spec,
            models_dir,
            Path(args.data),
            out,
            binary,
            args.audit_args.split() if args.audit_args else [],
            args.jobs,
            log,
            args.split,
            Path(args.domains) if getattr(args, "domains", None) else None,
        )
    if "calibrate" in stages or "score" in stages:
        cal_dir = Path(args.calibrations) if args.calibrations else out / "calibration"
        if "calibrate" in stages:
            neighbours = args.robustness_neighbours
            if neighbours == "auto":
                neighbours, _ = crossvalidate(
                    spec, models_dir, out, binary, args.min_asr, args.target_fpr, [None, 4, 6, 8, 10], log
                )
                log(f"calibrate: robustness neighbours chosen on the calibration half: {neighbours or 'all'}")
            else:
                neighbours = None if neighbours == "all" else int(neighbours)
            cals = calibrate(spec, models_dir, out, binary, args.min_asr, args.target_fpr, log, neighbours)
        else:
            cals = {p.stem: p for p in sorted(cal_dir.glob("*.json"))}
            if not cals:
                raise EvaluateError(f"no calibration in {cal_dir}: run the calibrate stage first")
        if "score" in stages:
            score(spec, models_dir, out, binary, args.min_asr, cals, log, args.split)
    if getattr(args, "group_out", None) or "groupout" in stages:
        keys = (getattr(args, "group_out", None) or ",".join(GROUP_KEYS)).split(",")
        bad = sorted(set(keys) - set(GROUP_KEYS))
        if bad:
            raise EvaluateError(f"--group-out {', '.join(bad)}: expected a comma list of {', '.join(GROUP_KEYS)}")
        group_out(spec, models_dir, out, binary, keys, args.min_asr, args.target_fpr, log)
    return 0
