"""Where ONNX Runtime spends a gradient evaluation (issue 13; docs/pgd.md, "Where ONNX Runtime spends it").

Exports each model's gradient graph with `aegis-audit export-grad`, runs it on one thread (as one step
worker does) with ONNX Runtime's profiler on, and prints each op type's share of the kernel time. With
`--conv-flip` it also times, interleaved, the graph with each stride-1 ConvTranspose (the input gradient
of a Conv) rewritten as the equivalent Conv on flipped, transposed weights, one node at a time and all
at once, and checks that the gradient stays the same (relative difference). With `--baseline-exe` it
also times, interleaved, the gradient graph another build of aegis-audit exports for the same model and
compares every output (logits, features, loss, gradient) of the two graphs bit for bit.

    .venv/bin/python research/profile_grad.py bench/models/cal-00.onnx bench/models/cal-03.onnx --conv-flip
    .venv/bin/python research/profile_grad.py MODEL.onnx --runs 60 --baseline-exe OLD/release/aegis-audit
    .venv/bin/python research/profile_grad.py MODEL.onnx --per-node 40 [--flipped]

`--per-node N` lists the N slowest nodes with their input shapes; `--flipped` profiles the graph with every
flippable ConvTranspose rewritten.
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

import onnx
from onnx import helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent


def session(model: bytes, profile_prefix: str | None = None) -> ort.InferenceSession:
    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    if profile_prefix:
        o.enable_profiling = True
        o.profile_file_prefix = profile_prefix
    return ort.InferenceSession(model, o, providers=["CPUExecutionProvider"])


def inputs(graph: onnx.ModelProto, batch: int) -> dict[str, np.ndarray]:
    dims = [d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim][1:]
    rng = np.random.RandomState(0)
    x = rng.rand(batch, *dims).astype(np.float32)
    return {"x": x, "y": rng.randint(0, 2, batch).astype(np.int64)}


def profile(
    graph: onnx.ModelProto, feed: dict, runs: int, tmp: str, per_node: int = 0
) -> tuple[float, list[tuple[str, float]]]:
    """Kernel time per run (ms) and each op type's share; with `per_node`, also prints the slowest nodes."""
    s = session(graph.SerializeToString(), os.path.join(tmp, "p"))
    for _ in range(runs):
        s.run(["grad"], feed)
    path = s.end_profiling()
    with open(path) as f:
        events = json.load(f)
    os.remove(path)
    per_op: collections.Counter = collections.Counter()
    nodes: collections.Counter = collections.Counter()
    shapes: dict[str, str] = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_op[e["args"].get("op_name")] += e["dur"]
            nodes[e["name"]] += e["dur"]
            inputs = [next(iter(d.values())) for d in e["args"].get("input_type_shape", [])]
            shapes[e["name"]] = f"{e['args'].get('op_name')} {inputs}"
    total = sum(per_op.values())
    for name, d in nodes.most_common(per_node):
        print(f"  {d / runs / 1000:6.2f} ms {100 * d / total:5.1f}%  {shapes[name]}")
    return total / runs / 1000, [(op, d / total) for op, d in per_op.most_common()]


def flippable(graph: onnx.ModelProto) -> list[int]:
    inits = {i.name for i in graph.graph.initializer}
    out = []
    for i, n in enumerate(graph.graph.node):
        a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
        if (
            n.op_type == "ConvTranspose"
            and list(a.get("strides", [1, 1])) == [1, 1]
            and list(a.get("dilations", [1, 1])) == [1, 1]
            and a.get("group", 1) == 1
            and not any(a.get("output_padding", [0, 0]))
            and n.input[1] in inits
        ):
            out.append(i)
    return out


def flip(graph: onnx.ModelProto, which: set[int]) -> onnx.ModelProto:
    """ConvTranspose(dy, W, pads p) with stride 1 = Conv(dy, W transposed and flipped, pads k - 1 - p)."""
    m = copy.deepcopy(graph)
    inits = {i.name: i for i in m.graph.initializer}
    for i in sorted(which):
        n = m.graph.node[i]
        a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
        w = numpy_helper.to_array(inits[n.input[1]])
        k = w.shape[2:]
        p = list(a.get("pads", [0, 0, 0, 0]))
        name = f"{n.input[1]}__flipped{i}"
        flipped = np.ascontiguousarray(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
        m.graph.initializer.append(numpy_helper.from_array(flipped, name))
        pads = [k[0] - 1 - p[0], k[1] - 1 - p[1], k[0] - 1 - p[2], k[1] - 1 - p[3]]
        conv = helper.make_node(
            "Conv", [n.input[0], name, *n.input[2:3]], list(n.output), kernel_shape=list(k), pads=pads
        )
        n.CopyFrom(conv)
    return m


def export_grad(exe: Path, model: Path, out: Path) -> onnx.ModelProto:
    subprocess.run([str(exe), "export-grad", str(model), "-o", str(out)], check=True, capture_output=True)
    return onnx.load(out)


def interleaved_best(sessions: dict[str, ort.InferenceSession], feed: dict, runs: int) -> dict[str, float]:
    """Each session's best time (seconds) for the gradient over `runs` rounds that run every session once."""
    best = dict.fromkeys(sessions, float("inf"))
    for _ in range(runs):
        for k, s in sessions.items():
            t = time.perf_counter()
            s.run(["grad"], feed)
            best[k] = min(best[k], time.perf_counter() - t)
    return best


def against_baseline(graph: onnx.ModelProto, base: onnx.ModelProto, feed: dict, runs: int) -> None:
    """Both builds' gradient graphs, interleaved: best time of each, and whether every output is the same."""
    names = ["logits", "features", "loss", "grad"]
    sessions = {"this build": session(graph.SerializeToString()), "baseline": session(base.SerializeToString())}
    outs = {k: s.run(names, feed) for k, s in sessions.items()}
    best = interleaved_best(sessions, feed, runs)
    same_bits = all(
        np.array_equal(a.view(np.uint32), b.view(np.uint32)) for a, b in zip(outs["this build"], outs["baseline"])
    )
    same_values = all(np.array_equal(a, b) for a, b in zip(outs["this build"], outs["baseline"]))
    verdict = "bit-identical" if same_bits else "equal values" if same_values else "DIFFERENT"
    print(
        f"  baseline {1000 * best['baseline']:.2f} ms, this build {1000 * best['this build']:.2f} ms "
        f"(best of {runs}, interleaved): {best['baseline'] / best['this build']:.3f}x; outputs {verdict}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--batch", type=int, default=50, help="images per run (one step worker's share)")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--conv-flip", action="store_true", help="also time ConvTranspose rewritten as Conv")
    ap.add_argument("--per-node", type=int, default=0, metavar="N", help="also list the N slowest nodes")
    ap.add_argument("--flipped", action="store_true", help="profile with every flippable ConvTranspose as Conv")
    ap.add_argument("--aegis-audit", type=Path, default=ROOT / "target/release/aegis-audit")
    ap.add_argument("--baseline-exe", type=Path, help="another build of aegis-audit to time against")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for model in a.models:
            graph = export_grad(a.aegis_audit, model, Path(tmp) / f"{model.stem}.grad.onnx")
            feed = inputs(graph, a.batch)
            profiled = flip(graph, set(flippable(graph))) if a.flipped else graph
            ms, shares = profile(profiled, feed, a.runs, tmp, a.per_node)
            print(f"{model}: {ms:.2f} ms of kernel time per run of {a.batch} images")
            for op, share in shares[:10]:
                print(f"  {op:20s} {100 * share:5.1f}%")
            if a.baseline_exe:
                base = export_grad(a.baseline_exe, model, Path(tmp) / f"{model.stem}.base.grad.onnx")
                against_baseline(graph, base, feed, a.runs)
            if not a.conv_flip:
                continue
            nodes = flippable(graph)
            variants = {"as exported": graph, "all flipped": flip(graph, set(nodes))}
            for i in nodes:
                w = next(t for t in graph.graph.initializer if t.name == graph.graph.node[i].input[1])
                variants[f"only {list(w.dims)} flipped"] = flip(graph, {i})
            sessions = {k: session(v.SerializeToString()) for k, v in variants.items()}
            grads = {k: s.run(["grad"], feed)[0] for k, s in sessions.items()}
            best = interleaved_best(sessions, feed, a.runs)
            ref = grads["as exported"]
            for k in sessions:
                diff = float(np.abs(grads[k] - ref).max() / max(float(np.abs(ref).max()), 1e-30))
                print(f"  {k:32s} {1000 * best[k]:6.2f} ms (best of {a.runs}), gradient max rel. diff {diff:.1e}")


if __name__ == "__main__":
    main()
