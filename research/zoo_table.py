"""Runs `aegis-audit` on zoo and validation models and prints a Markdown table like the paper's Table VI:
the trigger's target (from the model card), verdict, flagged classes, the anomaly index of the target
class and the largest one among the other classes (AEGIS: the shortcut index; Neural Cleanse and reach: theirs), per-class cluster counts, the precondition's
adversarial accuracy and wall time.

usage: .venv/bin/python research/zoo_table.py [--bin target/release/aegis-audit]
           [--models robust_localised,fixtures/validation/val_robust_localised3_t3.onnx,...] [-- extra audit flags]
A bare name is looked up in fixtures/zoo, then fixtures/validation.
"""

import argparse
import json
import pathlib
import re
import subprocess
import time

root = pathlib.Path(__file__).resolve().parent.parent
ap = argparse.ArgumentParser()
ap.add_argument("--bin", default=str(root / "target/release/aegis-audit"))
ap.add_argument("--data", default=str(root / "fixtures/mnist-subset"))
ap.add_argument(
    "--models",
    default="robust_clean_s0,robust_clean_s1,robust_localised,robust_distributed,"
    "robust_static,robust_adversarial,standard_clean,standard_localised",
)
ap.add_argument("extra", nargs="*")
a = ap.parse_args()


def resolve(name):
    p = pathlib.Path(name)
    if p.suffix == ".onnx":
        return p if p.is_absolute() else root / p
    for d in ("fixtures/zoo", "fixtures/validation"):
        if (root / d / f"{name}.onnx").is_file():
            return root / d / f"{name}.onnx"
    raise SystemExit(f"no model {name} in fixtures/zoo or fixtures/validation")


def target_of(model):
    card = model.with_name(model.name.replace(".onnx", ".card.yaml"))
    if not card.is_file():
        return None
    m = re.search(r"^poison: \{.*target: (\w+)", card.read_text(), re.MULTILINE)
    return None if m is None or m.group(1) == "null" else int(m.group(1))


print(
    "| model | target | verdict | flagged | anomaly index: target / max other | clusters per class 0–9 "
    "| adv. acc. (ε=1.5) | wall s |"
)
print("|---|---|---|---|---|---|---|---|")
for name in a.models.split(","):
    model = resolve(name)
    tgt = target_of(model)
    t0 = time.time()
    p = subprocess.run(  # noqa: PLW1510
        [a.bin, str(model), "--data", a.data, "--format", "json", "--quiet", *a.extra],
        capture_output=True,
        text=True,
    )
    wall = time.time() - t0
    label = model.stem
    if p.returncode == 2:
        print(f"| {label} | {tgt} | error | | {p.stderr.strip()[:80]} | | | {wall:.0f} |", flush=True)
        continue
    r = json.loads(p.stdout)
    flagged = ",".join(str(c["class"]) for c in r["classes"] if c["flagged"]) or "–"
    counts = " ".join(str(c["details"].get("clusters", "?")) for c in r["classes"]) or "–"
    # AEGIS: the shortcut index; Neural Cleanse and reach: their anomaly index.
    idx = {c["class"]: c["details"].get("shortcut_index", c["details"].get("anomaly_index")) for c in r["classes"]}
    if idx and all(v is not None for v in idx.values()):
        other = max(v for k, v in idx.items() if k != tgt)
        shortcut = f"{idx[tgt]:.2f} / {other:.2f}" if tgt is not None else f"– / {other:.2f}"
    else:
        shortcut = "–"
    pre = r.get("precondition")
    adv = f"{pre['adversarial_accuracy']:.3f}" if pre else "skipped"
    print(
        f"| {label} | {tgt if tgt is not None else 'clean'} | {r['verdict']} (exit {p.returncode}) | {flagged} "
        f"| {shortcut} | {counts} | {adv} | {wall:.0f} |",
        flush=True,
    )
