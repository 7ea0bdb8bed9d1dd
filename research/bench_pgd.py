"""PGD throughput benchmark, side by side in one run: aegis-audit's engine (`examples/bench_pgd.rs`, the gradient
graph on ONNX Runtime) against PyTorch CPU variants doing the identical untargeted L2 PGD (per-example normalised
step, projection onto the L2 ball, clamp to [0, 1], no random start) on the same weights, images, steps, batch and
threads, on two architectures:

  zoo-cnn       a zoo checkpoint (fixtures/zoo/<model>.pt) and the ONNX file exported from it (Conv, Relu,
                MaxPool, Gemm);
  resnet-small  a reduced-width residual network with BatchNorm (widths 16-32-64-128, two residual blocks per
                stage, as aegis_torch's resnet18 at a quarter of its width), seeded weights, BatchNorm statistics
                calibrated on training images, exported with aegis_torch (cached under target/bench/).

PyTorch variants, every one with frozen weights (`requires_grad_(False)`, eval mode; the step under `no_grad`):
  torch-eager            the plain loop;
  torch-eager-cl         the same in channels-last memory format;
  torchscript-frozen     `torch.jit.freeze(torch.jit.trace(model))` (conv-BatchNorm folding) and autograd;
  torch-compile          `torch.compile(model)` (Inductor, C++ code) and autograd through it;
  torch-compile-step     the whole step (gradient by `torch.func.grad`, step, projection, clamp) under one
                         `torch.compile`;
  torch-eager-mp,        data-parallel: `--threads` processes of one thread each, each attacking an even share
  torchscript-frozen-mp  of the images (what aegis-audit's step workers do with one ONNX Runtime session each).
Variants that fail here (for example a compiler error) are reported and skipped, never silently dropped.

Timing: every implementation is warmed up first (sessions created, compilation done, outside the timing); then
`--repeats` rounds run every implementation once each, in a rotated order (interleaved, so a load change hits all
of them alike), and the best round of each counts. The table gives seconds, PGD step·images/s, the arithmetic rate
(GFLOP/s: PyTorch's FlopCounterMode count of one step's convolutions and matrix products, forward and input
gradient), the fraction not fooled and the mean L2 perturbation (equal work: these agree up to floating-point
rounding), and per architecture the ratio aegis-audit / fastest PyTorch variant. Two more aegis rows are
references: `aegis-1-session` (one ONNX Runtime session with `--threads` intra-op threads instead of one
single-threaded step worker per thread) and `aegis-before` (the engine before the in-graph PGD step: a gradient
evaluation per step, the step in Rust).

The convolution ceiling, measured in the same run after the rounds: every convolution of the model timed alone
(PyTorch's oneDNN kernels, the model's weights and input shapes at --batch, --threads threads, the faster of the
two memory formats, best of 20) and counted twice, for the forward pass and for the input gradient, with nothing
else (no activation, normalisation, loss or step): the step·images/s an engine would reach if its whole step cost
only that. An optimistic bound for any engine whose convolutions are as fast as oneDNN's (it takes each input
gradient to cost what its forward costs, and everything else nothing), set against the fastest PyTorch variant and
against the issue's 2x target.

usage: .venv/bin/python research/bench_pgd.py [--arch zoo-cnn resnet-small] [--n 500] [--steps 20] [--batch 100]
       [--threads 2] [--repeats 5] [--json FILE] [--baseline-exe OTHER_BUILD/bench_pgd]
"""

from __future__ import annotations

import argparse
import copy
import functools
import io
import json
import multiprocessing
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

root = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(root / "plugins/torch"))
from aegis_torch import checkpoint, data, export, models

EPS = 1.5
ARCHES = ("zoo-cnn", "resnet-small")
TORCH_VARIANTS = (
    "torch-eager",
    "torch-eager-cl",
    "torchscript-frozen",
    "torch-compile",
    "torch-compile-step",
    "torch-eager-mp",
    "torchscript-frozen-mp",
)


# ---------------------------------------------------------------------------------------------- models


class Block(nn.Module):
    """A ResNet basic block: conv-BN-relu-conv-BN plus the (projected) shortcut, relu."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = nn.Identity()
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.short(x))


def resnet_small(c: int, h: int, w: int, classes: int = 10, width: int = 16) -> nn.Sequential:
    """aegis_torch's resnet18 layout (3x3 stem, 4 stages of 2 blocks, fixed-size average pool) at `width`."""
    layers: list[nn.Module] = [nn.Conv2d(c, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
    cin = width
    for mult, stride in ((1, 1), (2, 2), (4, 2), (8, 2)):
        layers += [Block(cin, width * mult, stride), Block(width * mult, width * mult, 1)]
        cin = width * mult
    hp, wp = -(-h // 8), -(-w // 8)
    layers += [nn.AvgPool2d((hp, wp)), nn.Flatten(), nn.Linear(cin, classes)]
    return nn.Sequential(*layers)


def build_resnet_small(train_x: np.ndarray, cache: pathlib.Path) -> tuple[nn.Module, pathlib.Path]:
    """Seeded weights, BatchNorm statistics from 1,000 training images; exported once (cached by content)."""
    torch.manual_seed(0)
    model = models.Normalized(resnet_small(1, 28, 28), [0.1307], [0.3081])
    model.train()
    with torch.no_grad():
        for s in range(0, 1000, 100):
            model(torch.as_tensor(train_x[s : s + 100].astype(np.float32) / 255.0))
    model.eval()
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / "resnet_small.onnx"
    export.export_onnx(model, (1, 28, 28), path)
    diff = export.parity(model, path, train_x[:8].astype(np.float32) / 255.0)
    if diff > 1e-3:
        raise SystemExit(f"resnet-small: ONNX and PyTorch logits differ by {diff}")
    return model, path


# ---------------------------------------------------------------------------------------------- PGD


def l2_step(x, g, x0, step):
    """x + step * g / (||g|| + 1e-10), projected onto ||x - x0|| <= EPS, clamped to [0, 1] (aegis's step)."""
    gn = g.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    x = x + (step / (gn + 1e-10)) * g
    d = x - x0
    dn = d.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    shrink = torch.where(dn > EPS, EPS / dn, torch.ones_like(dn))
    return (x0 + d * shrink).clamp(0, 1)


def autograd_pgd(model, memory_format=torch.contiguous_format):
    def run(x0_all, y_all, steps, batch):
        step = 2.5 * EPS / steps
        out = []
        for s in range(0, len(y_all), batch):
            x0 = x0_all[s : s + batch].contiguous(memory_format=memory_format)
            y = y_all[s : s + batch]
            x = x0.clone()
            for _ in range(steps):
                x.requires_grad_(True)
                loss = F.cross_entropy(model(x), y, reduction="sum")
                (g,) = torch.autograd.grad(loss, x)
                with torch.no_grad():
                    x = l2_step(x, g, x0, step)
            out.append(x.detach())
        return torch.cat(out)

    return run


def compiled_step_pgd(model):
    def loss(x, y):
        return F.cross_entropy(model(x), y, reduction="sum")

    grad = torch.func.grad(loss)

    def one(x, x0, y, step: float):
        return l2_step(x, grad(x, y), x0, step)

    one = torch.compile(one, dynamic=False)

    def run(x0_all, y_all, steps, batch):
        step = 2.5 * EPS / steps
        out = []
        for s in range(0, len(y_all), batch):
            x0, y = x0_all[s : s + batch], y_all[s : s + batch]
            x = x0.clone()
            for _ in range(steps):
                x = one(x, x0, y, step)
            out.append(x)
        return torch.cat(out)

    return run


def frozen(model: nn.Module) -> nn.Module:
    model = model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def make_variant(name: str, model: nn.Module, example: torch.Tensor):
    if name.endswith("-mp"):
        return MultiProcess(name.removesuffix("-mp"), model, example)
    model = frozen(copy.deepcopy(model))  # channels-last conversion, tracing or compiling never touch the original
    if name == "torch-eager":
        return autograd_pgd(model)
    if name == "torch-eager-cl":
        return autograd_pgd(model.to(memory_format=torch.channels_last), torch.channels_last)
    if name == "torchscript-frozen":
        with torch.no_grad():
            traced = torch.jit.freeze(torch.jit.trace(model, example))
        return autograd_pgd(traced)
    if name == "torch-compile":
        return autograd_pgd(torch.compile(model, dynamic=False))
    if name == "torch-compile-step":
        return compiled_step_pgd(model)
    raise ValueError(name)


_worker = None


def _mp_init(model_bytes: bytes, base: str, example: np.ndarray) -> None:
    global _worker
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    model = torch.load(io.BytesIO(model_bytes), weights_only=False)
    _worker = make_variant(base, model, torch.from_numpy(example))


def _mp_run(args):
    x0, y, steps, batch = args
    return _worker(torch.from_numpy(x0), torch.from_numpy(y), steps, batch).numpy()


class MultiProcess:
    """`torch.get_num_threads()` processes of one thread each, each attacking an even share of the images in
    batches of at most `batch` (as aegis-audit's step workers do); the pool is started outside the timing."""

    def __init__(self, base: str, model: nn.Module, example: torch.Tensor):
        self.procs = torch.get_num_threads()
        buf = io.BytesIO()
        torch.save(model, buf)
        ctx = multiprocessing.get_context("spawn")
        self.pool = ctx.Pool(self.procs, initializer=_mp_init, initargs=(buf.getvalue(), base, example.numpy()))

    def __call__(self, x0, y, steps, batch):
        b = [w * len(y) // self.procs for w in range(self.procs + 1)]
        shards = [(x0[b[w] : b[w + 1]].numpy(), y[b[w] : b[w + 1]].numpy(), steps, batch) for w in range(self.procs)]
        return torch.from_numpy(np.concatenate(self.pool.map(_mp_run, shards)))


def step_flops(model: nn.Module, x: torch.Tensor) -> float:
    """Floating-point operations of one PGD gradient per image: PyTorch's count (FlopCounterMode) of the
    convolutions and matrix products of the forward pass and of the input gradient (the weights are frozen)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = x.clone().requires_grad_(True)
    with FlopCounterMode(display=False) as counter:
        # backward(), not autograd.grad: the counter's module hooks do not support the latter.
        F.cross_entropy(model(x), torch.zeros(len(x), dtype=torch.long), reduction="sum").backward()
    return counter.get_total_flops() / len(x)


def best_seconds(fn, runs: int = 20) -> float:
    fn()
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def conv_ceiling(model: nn.Module, x: torch.Tensor) -> dict:
    """Every Conv2d of the model alone on its own input shape (the faster memory format, best of 20), counted
    twice (forward and input gradient): seconds per batch and the step·images/s of a step costing only that."""
    shapes: list[tuple[nn.Conv2d, torch.Size]] = []
    hooks = [
        m.register_forward_hook(lambda mod, inp, out: shapes.append((mod, inp[0].shape)))
        for m in model.modules()
        if isinstance(m, nn.Conv2d)
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    layers = []
    with torch.no_grad():
        for conv, shape in shapes:
            inp = torch.rand(shape)
            times = {}
            for fmt_name, fmt in (("nchw", torch.contiguous_format), ("channels-last", torch.channels_last)):
                xi, w = inp.contiguous(memory_format=fmt), conv.weight.contiguous(memory_format=fmt)
                conv2d = functools.partial(
                    F.conv2d, xi, w, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups
                )
                times[fmt_name] = best_seconds(conv2d)
            fmt_name = min(times, key=times.get)
            layers.append(
                {
                    "input": list(shape),
                    "weight": list(conv.weight.shape),
                    "format": fmt_name,
                    "seconds": times[fmt_name],
                }
            )
    seconds = 2 * sum(layer["seconds"] for layer in layers)
    return {"layers": layers, "seconds_per_batch": seconds, "step_images_per_s": len(x) / seconds}


def summary(x_adv: torch.Tensor, x0: torch.Tensor, y: torch.Tensor, model: nn.Module) -> tuple[float, float]:
    with torch.no_grad():
        not_fooled = (model(x_adv.contiguous()).argmax(1) == y).float().mean().item()
    dist = (x_adv - x0).flatten(1).norm(dim=1).mean().item()
    return not_fooled, dist


# ---------------------------------------------------------------------------------------------- aegis


def build_example() -> pathlib.Path:
    subprocess.run(["cargo", "build", "-q", "--release", "--example", "bench_pgd"], cwd=root, check=True)
    return root / "target/release/examples/bench_pgd"


# aegis-audit's engine as the audit runs it, and two references: one session with intra-op threads instead of
# one single-threaded worker per thread, and the engine before the in-graph step (gradient evaluation, step in Rust).
AEGIS = {
    "aegis-audit": [],
    "aegis-1-session": ["--workers", "1"],
    "aegis-before": ["--engine", "eval", "--workers", "1"],
}


def aegis(exe, onnx_path, a, flags, warmup_only=False):
    cmd = [str(exe), str(onnx_path), a.data, str(a.n), str(a.steps), str(a.batch), str(a.threads), *flags]
    env = dict(os.environ)
    env.setdefault("ORT_DYLIB_PATH", str(root / ".ort/libonnxruntime.so.1.31.1"))
    if warmup_only:
        cmd += ["--warmup-only"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", nargs="+", default=list(ARCHES), choices=ARCHES)
    ap.add_argument("--zoo-model", default="robust_localised", help="zoo checkpoint for zoo-cnn")
    ap.add_argument("--data", default=str(root / "fixtures/mnist-subset"), help="MNIST directory (IDX)")
    ap.add_argument("--n", type=int, default=500, help="test images attacked")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5, help="interleaved rounds; the best round counts")
    ap.add_argument("--variants", nargs="+", default=list(TORCH_VARIANTS), choices=TORCH_VARIANTS)
    ap.add_argument("--json", help="also write every measurement here")
    ap.add_argument(
        "--baseline-exe",
        help="another build of examples/bench_pgd (e.g. from an older commit), run in the same interleaved rounds "
        "as the row aegis-baseline: an A/B of two builds with PyTorch as the yardstick",
    )
    a = ap.parse_args()
    if a.n % a.batch:
        ap.error("--n must be a multiple of --batch (a ragged last batch would recompile the compiled variants)")

    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    exe = build_example()
    test = data.load("mnist", a.data, "test")
    if len(test.labels) < a.n:
        ap.error(f"{a.data} has {len(test.labels)} test images, fewer than --n {a.n}")
    x0 = torch.as_tensor(test.images[: a.n].astype(np.float32) / 255.0)
    y = torch.as_tensor(test.labels[: a.n].astype(np.int64))

    results = []
    roofline: dict[str, dict] = {}
    for arch in a.arch:
        if arch == "zoo-cnn":
            model, _ = checkpoint.load(root / "fixtures/zoo" / f"{a.zoo_model}.pt")
            onnx_path = root / "fixtures/zoo" / f"{a.zoo_model}.onnx"
        else:
            train = data.load("mnist", a.data, "train")
            model, onnx_path = build_resnet_small(train.images, root / "target/bench")
        model = frozen(model)
        impls = {}
        for name in a.variants:
            try:
                run = make_variant(name, model, x0[: a.batch])
                run(x0[: a.batch], y[: a.batch], 2, a.batch)  # warm-up: tracing, compilation, allocator
                impls[name] = run
            # A variant this PyTorch build cannot run (compiler errors are RuntimeErrors) is reported, not hidden.
            except (RuntimeError, ValueError, TypeError, NotImplementedError, OSError) as e:
                print(f"{arch}: {name} skipped: {type(e).__name__}: {str(e).splitlines()[0][:200]}", file=sys.stderr)
        engines = {k: (exe, v) for k, v in AEGIS.items() if k != "aegis-1-session" or a.threads > 1}
        if a.baseline_exe:
            engines["aegis-baseline"] = (pathlib.Path(a.baseline_exe), [])
        for e, flags in engines.values():
            aegis(e, onnx_path, a, flags, warmup_only=True)
        best: dict[str, dict] = {}
        names = [*engines, *impls]
        for r in range(a.repeats):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                if name in engines:
                    e, flags = engines[name]
                    m = aegis(e, onnx_path, a, flags)
                else:
                    t0 = time.perf_counter()
                    x_adv = impls[name](x0, y, a.steps, a.batch)
                    secs = time.perf_counter() - t0
                    not_fooled, dist = summary(x_adv, x0, y, model)
                    m = {"seconds": secs, "not_fooled": not_fooled, "mean_l2": dist}
                m.update(impl=name, arch=arch, round=r)
                results.append(m)
                if name not in best or m["seconds"] < best[name]["seconds"]:
                    best[name] = m
        work = a.n * a.steps
        flops = step_flops(model, x0[: a.batch])
        ceiling = conv_ceiling(model, x0[: a.batch])
        roofline[arch] = {"flops_per_step_image": flops, "conv_ceiling": ceiling}
        fastest_torch = min((b for n, b in best.items() if n not in engines), key=lambda b: b["seconds"], default=None)
        print(
            f"\n{arch}: {a.n} images x {a.steps} steps, batch {a.batch}, {a.threads} threads, best of {a.repeats} "
            f"interleaved rounds"
        )
        print(
            f"{'implementation':22} {'seconds':>8} {'step*img/s':>11} {'GFLOP/s':>8} {'aegis/this':>10} {'not fooled':>10} "
            f"{'mean L2':>8}"
        )
        for name in names:
            b = best[name]
            print(
                f"{name:22} {b['seconds']:8.3f} {work / b['seconds']:11.1f} {work * flops / b['seconds'] / 1e9:8.1f} "
                f"{b['seconds'] / best['aegis-audit']['seconds'] if name != 'aegis-audit' else 1.0:9.2f}x "
                f"{b['not_fooled']:10.4f} {b['mean_l2']:8.4f}"
            )
        if fastest_torch:
            for name in engines:
                ratio = fastest_torch["seconds"] / best[name]["seconds"]
                print(f"ratio {name} / fastest PyTorch ({fastest_torch['impl']}) = {ratio:.2f}x")
            torch_rate = work / fastest_torch["seconds"]
            print(
                f"arithmetic: {flops / 1e6:.2f} MFLOP per step·image; convolution ceiling ({len(ceiling['layers'])} "
                f"convolutions at oneDNN's isolated speed, counted twice, nothing else): "
                f"{ceiling['step_images_per_s']:.1f} step·img/s = {ceiling['step_images_per_s'] / torch_rate:.2f}x "
                f"the fastest PyTorch variant (the 2x target: {2 * torch_rate:.1f})"
            )
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps({"args": vars(a), "runs": results, "roofline": roofline}, indent=1))


if __name__ == "__main__":
    main()
