"""How else a max pool's input gradient could be written in standard ONNX ops (issue 13; docs/pgd.md,
"Exact graph changes").

Times, on one thread (as one step worker runs), a 2x2 stride-2 MaxPool and its input gradient written
five ways, and checks each gradient against the one aegis-audit builds (MaxPool with indices, then
MaxUnpool), bit for bit:

- ``indices``: MaxPool with its indices output, MaxUnpool (what the gradient graph does);
- ``slices``: four strided Slices, a variadic Max, first-maximum masks, Where, Concat, DepthToSpace;
- ``priority``: the maximum upsampled (nearest), an equality mask, the first maximum chosen through a
  per-position priority and a second MaxPool;
- ``reshape-6d``: the input reshaped to (N, C, H/2, 2, W/2, 2), ReduceMax over the two window axes, and the
  priority tie-break by broadcasting against the window's maximum (no Resize, no copy of the layout);
- ``no-tie-break``: the equality mask alone, exact only where no window holds two equal maxima.

It also counts, on the first MNIST test images through the zoo CNN's first convolution, the windows of
its first max pool that hold two or more equal maxima: those are where the mask alone would be wrong.

    .venv/bin/python research/bench_maxpool_grad.py [--mnist ../shared/datasets/mnist]
"""

from __future__ import annotations

import argparse
import gzip
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from profile_grad import session as one_thread_session  # research/ is on the path when run as a script

import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent


def session(nodes, inputs, outputs, inits=()) -> ort.InferenceSession:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return one_thread_session(model.SerializeToString())


def value(name: str, shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def const(name: str, array) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def best_ms(sess: ort.InferenceSession, feeds, rounds: int = 5, runs: int = 40) -> float:
    for _ in range(10):
        sess.run(None, feeds)
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(runs):
            sess.run(None, feeds)
        best = min(best, (time.perf_counter() - t) / runs)
    return best * 1e3


def variants(n: int, c: int, h: int, w: int) -> dict[str, ort.InferenceSession]:
    ho, wo = h // 2, w // 2
    x, dy = value("X", [n, c, h, w]), value("dY", [n, c, ho, wo])
    y, dx = value("Y", [n, c, ho, wo]), value("dX", [n, c, h, w])
    pool = {"kernel_shape": [2, 2], "strides": [2, 2]}
    zero = const("zf", np.float32(0))
    up = const("sc", np.array([1, 1, 2, 2], np.float32))
    out = {}
    out["indices"] = session(
        [
            helper.make_node("MaxPool", ["X"], ["Y", "I"], **pool),
            helper.make_node("MaxUnpool", ["dY", "I", "shp"], ["dX"], **pool),
        ],
        [x, dy],
        [y, dx],
        [const("shp", np.array([n, c, h, w], np.int64))],
    )
    starts = {"s00": [0, 0], "s01": [0, 1], "s10": [1, 0], "s11": [1, 1]}
    inits = [const(k, np.array(v, np.int64)) for k, v in starts.items()]
    inits += [const("end", np.array([h, w], np.int64)), const("ax", np.array([2, 3], np.int64))]
    inits += [const("st", np.array([2, 2], np.int64)), zero]
    nodes = [helper.make_node("Slice", ["X", s, "end", "ax", "st"], ["x" + s[1:]]) for s in starts]
    nodes += [
        helper.make_node("Max", ["x00", "x01", "x10", "x11"], ["Y"]),
        helper.make_node("Equal", ["x00", "Y"], ["m0"]),
        helper.make_node("Equal", ["x01", "Y"], ["e1"]),
        helper.make_node("Equal", ["x10", "Y"], ["e2"]),
        helper.make_node("Not", ["m0"], ["n0"]),
        helper.make_node("And", ["e1", "n0"], ["m1"]),
        helper.make_node("Or", ["m0", "e1"], ["o1"]),
        helper.make_node("Not", ["o1"], ["n1"]),
        helper.make_node("And", ["e2", "n1"], ["m2"]),
        helper.make_node("Or", ["o1", "e2"], ["o2"]),
        helper.make_node("Where", ["m0", "dY", "zf"], ["g0"]),
        helper.make_node("Where", ["m1", "dY", "zf"], ["g1"]),
        helper.make_node("Where", ["m2", "dY", "zf"], ["g2"]),
        helper.make_node("Where", ["o2", "zf", "dY"], ["g3"]),
        helper.make_node("Concat", ["g0", "g1", "g2", "g3"], ["gc"], axis=1),
        helper.make_node("DepthToSpace", ["gc"], ["dX"], blocksize=2, mode="DCR"),
    ]
    out["slices"] = session(nodes, [x, dy], [y, dx], inits)
    priority = np.tile(np.array([[8, 4], [2, 1]], np.float32), (ho, wo)).reshape(1, 1, h, w)
    out["priority"] = session(
        [
            helper.make_node("MaxPool", ["X"], ["Y"], **pool),
            helper.make_node("Resize", ["Y", "", "sc"], ["Yu"], mode="nearest"),
            helper.make_node("Equal", ["X", "Yu"], ["m"]),
            helper.make_node("Where", ["m", "P", "zf"], ["pr"]),
            helper.make_node("MaxPool", ["pr"], ["wm"], **pool),
            helper.make_node("Resize", ["wm", "", "sc"], ["wu"], mode="nearest"),
            helper.make_node("Equal", ["pr", "wu"], ["sel"]),
            helper.make_node("Resize", ["dY", "", "sc"], ["dYu"], mode="nearest"),
            helper.make_node("Where", ["sel", "dYu", "zf"], ["dX"]),
        ],
        [x, dy],
        [y, dx],
        [up, zero, const("P", priority)],
    )
    window = {"axes": [3, 5], "keepdims": 1}
    out["reshape-6d"] = session(
        [
            helper.make_node("Reshape", ["X", "s6"], ["X6"]),
            helper.make_node("ReduceMax", ["X6"], ["M6"], **window),
            helper.make_node("Reshape", ["M6", "y4"], ["Y"]),
            helper.make_node("Equal", ["X6", "M6"], ["m"]),
            helper.make_node("Where", ["m", "P6", "zf"], ["pr"]),
            helper.make_node("ReduceMax", ["pr"], ["wm"], **window),
            helper.make_node("Equal", ["pr", "wm"], ["sel"]),
            helper.make_node("Reshape", ["dY", "m6"], ["dY6"]),
            helper.make_node("Where", ["sel", "dY6", "zf"], ["dX6"]),
            helper.make_node("Reshape", ["dX6", "x4"], ["dX"]),
        ],
        [x, dy],
        [y, dx],
        [
            const("s6", np.array([n, c, ho, 2, wo, 2], np.int64)),
            const("m6", np.array([n, c, ho, 1, wo, 1], np.int64)),
            const("y4", np.array([n, c, ho, wo], np.int64)),
            const("x4", np.array([n, c, h, w], np.int64)),
            const("P6", np.array([8, 4, 2, 1], np.float32).reshape(1, 1, 1, 2, 1, 2)),
            zero,
        ],
    )
    out["no-tie-break"] = session(
        [
            helper.make_node("MaxPool", ["X"], ["Y"], **pool),
            helper.make_node("Resize", ["Y", "", "sc"], ["Yu"], mode="nearest"),
            helper.make_node("Resize", ["dY", "", "sc"], ["dYu"], mode="nearest"),
            helper.make_node("Equal", ["X", "Yu"], ["m"]),
            helper.make_node("Where", ["m", "dYu", "zf"], ["dX"]),
        ],
        [x, dy],
        [y, dx],
        [up, zero],
    )
    return out


def tied_windows(mnist: Path, images: int) -> str:
    """Share of the zoo CNN's first max-pool windows holding two or more equal maxima."""
    with gzip.open(mnist / "t10k-images-idx3-ubyte.gz") as f:
        raw = f.read()[16:]
    x = np.frombuffer(raw, np.uint8)[: images * 784].reshape(images, 1, 28, 28).astype(np.float32) / 255
    model = onnx.load(ROOT / "fixtures/zoo/robust_localised.onnx")
    conv = next(i for i, node in enumerate(model.graph.node) if node.op_type == "Conv")
    # Keep the nodes up to the first Conv (the normalisation and the Conv) and read its output.
    kept = list(model.graph.node[: conv + 1])
    del model.graph.node[:]
    model.graph.node.extend(kept)
    del model.graph.output[:]
    model.graph.output.append(helper.make_tensor_value_info(kept[-1].output[0], TensorProto.FLOAT, None))
    ort.set_default_logger_severity(3)  # the later layers' weights are left unused on purpose
    z = one_thread_session(model.SerializeToString()).run(None, {model.graph.input[0].name: x})[0]
    n, c, h, w = z.shape
    win = z[:, :, : h // 2 * 2, : w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2)
    top = win.max(axis=(3, 5), keepdims=True)
    ties = ((win == top).sum(axis=(3, 5)) > 1).mean()
    return f"{ties:.1%} of the {n * c * (h // 2) * (w // 2):,} windows of the zoo CNN's first max pool ({images} MNIST test images)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mnist", type=Path, default=ROOT.parent / "shared/datasets/mnist")
    ap.add_argument("--images", type=int, default=50)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    for shape in [(50, 16, 28, 28), (50, 32, 14, 14), (50, 8, 28, 28)]:
        n, c, h, w = shape
        feeds = {
            "X": rng.standard_normal(shape).astype(np.float32),
            "dY": rng.standard_normal((n, c, h // 2, w // 2)).astype(np.float32),
        }
        print(f"{n} x {c} x {h} x {w}, one thread, best of 5 x 40 runs")
        reference = None
        for name, sess in variants(*shape).items():
            got = sess.run(None, feeds)[1]
            reference = got if reference is None else reference
            same = "dX bit-identical" if np.array_equal(got, reference) else "dX DIFFERS"
            print(f"  {name:14s} {best_ms(sess, feeds):7.3f} ms  {same}")
    if (a.mnist / "t10k-images-idx3-ubyte.gz").exists():
        print("windows with tied maxima:", tied_windows(a.mnist, a.images))
    else:
        print(f"no MNIST test images in {a.mnist}: tied windows not counted")


if __name__ == "__main__":
    main()
