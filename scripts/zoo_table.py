"""Runs `aegis-audit` on every zoo model and prints a Markdown table like the paper's Table VI:
verdict, flagged classes, per-class cluster counts (or the precondition result) and wall time.

usage: .venv/bin/python scripts/zoo_table.py [--bin target/release/aegis-audit] [-- extra audit flags]
"""
import argparse, json, pathlib, subprocess, sys, time

root = pathlib.Path(__file__).resolve().parent.parent
ap = argparse.ArgumentParser()
ap.add_argument("--bin", default=str(root / "target/release/aegis-audit"))
ap.add_argument("--data", default=str(root / "fixtures/mnist-subset"))
ap.add_argument("--models", default="robust_clean_s0,robust_clean_s1,robust_localised,robust_distributed,"
                "robust_static,robust_adversarial,standard_clean,standard_localised")
ap.add_argument("extra", nargs="*")
a = ap.parse_args()
print("| model | verdict | flagged | clusters per class 0–9 | adv. acc. (ε=1.5) | wall s |")
print("|---|---|---|---|---|---|")
for name in a.models.split(","):
    model = root / "fixtures/zoo" / f"{name}.onnx"
    t0 = time.time()
    p = subprocess.run([a.bin, str(model), "--data", a.data, "--format", "json", "--quiet", *a.extra],
                       capture_output=True, text=True)
    wall = time.time() - t0
    if p.returncode == 2:
        print(f"| {name} | error | | {p.stderr.strip()[:80]} | | {wall:.0f} |", flush=True)
        continue
    r = json.loads(p.stdout)
    flagged = ",".join(str(c["class"]) for c in r["classes"] if c["flagged"]) or "–"
    counts = " ".join(str(c["details"].get("clusters", "?")) for c in r["classes"]) or "–"
    pre = r.get("precondition")
    adv = f"{pre['adversarial_accuracy']:.3f}" if pre else "skipped"
    print(f"| {name} | {r['verdict']} (exit {p.returncode}) | {flagged} | {counts} | {adv} | {wall:.0f} |", flush=True)
