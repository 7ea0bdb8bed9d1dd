"""Implementations of the CLI commands (one function per sub-command, each returns an exit code)."""

from __future__ import annotations

import numpy as np

from aegis_torch import pipeline, triggers


def train(args) -> int:
    pipeline.run(args, log=lambda s: print(s, flush=True))
    return 0


def make_trigger(args) -> int:
    shape = tuple(args.shape)
    if args.kind == "localised":
        t = triggers.localised(shape, size=args.size)
    elif args.kind == "distributed":
        t = triggers.distributed(shape, size=args.size)
    else:
        t = triggers.static(shape, intensity=args.intensity, seed=args.seed)
    t.target = args.target
    t.save(args.out)
    print(f"wrote {args.out}")
    return 0


def make_uap(args) -> int:
    from aegis_torch import checkpoint, data, uap

    model, _ = checkpoint.load(args.checkpoint)
    tr = data.load(args.format, args.data, "train")
    rng = np.random.default_rng(args.seed)
    keep = np.flatnonzero(tr.labels != args.target)
    idx = rng.choice(keep, size=min(args.images, len(keep)), replace=False)
    t = uap.targeted_uap(model, tr.float_images()[idx], args.target, args.intensity, iters=args.iters, seed=args.seed)
    t.save(args.out)
    print(f"wrote {args.out}")
    return 0


def evaluate(args) -> int:
    from aegis_torch import checkpoint, data
    from aegis_torch import evaluate as ev

    model, _ = checkpoint.load(args.checkpoint)
    te = data.load(args.format, args.data, "test")
    x, y = te.float_images(), te.labels
    if args.limit:
        x, y = x[: args.limit], y[: args.limit]
    print(f"clean_accuracy: {ev.clean_accuracy(model, x, y):.4f}")
    adv = ev.adversarial_accuracy(model, x, y, eps=args.eps, steps=args.steps, seed=args.seed)
    print(f"adversarial_accuracy: {adv:.4f}  # L2 PGD eps={args.eps} steps={args.steps}")
    if args.trigger:
        asr = ev.attack_success_rate(model, x, y, triggers.load(args.trigger), args.target)
        print(f"attack_success_rate: {asr:.4f}")
    return 0


def poison(args) -> int:
    from aegis_torch import data
    from aegis_torch import poison as po

    tr = data.load(args.format, args.data, "train")
    t = triggers.load(args.trigger)
    rate = args.rate if args.rate is not None else po.DEFAULT_RATES[t.type]
    x, y, idx = po.poison(tr.float_images(), tr.labels, t, rate, args.target, args.seed)
    np.savez_compressed(args.out, x=x, y=y, indices=idx)
    print(f"wrote {args.out}: {len(idx)} of {len(y)} images poisoned toward {args.target}")
    return 0


def export(args) -> int:
    from aegis_torch import card, checkpoint, models
    from aegis_torch import export as ex

    if args.checkpoint:
        model, ck = checkpoint.load(args.checkpoint)
        shape = tuple(ck["shape"])
    else:
        if args.input_shape is None:
            raise ex.ExportError("--input-shape C,H,W is required with --module/--weights")
        shape = tuple(args.input_shape)
        model = ex.load_user_module(args.module, args.weights).eval()
        if not args.no_normalize:
            c = shape[0]
            mean = args.mean if args.mean is not None else [0.0] * c
            std = args.std if args.std is not None else [1.0] * c
            if len(mean) != c or len(std) != c:
                raise ex.ExportError(f"--mean/--std need {c} values (one per channel), got {len(mean)}/{len(std)}")
            model = models.Normalized(model, mean, std).eval()
    proto = ex.export_onnx(model, shape, args.out)
    rng = np.random.default_rng(0)
    x = rng.random((8, *shape), dtype=np.float32)
    diff = ex.parity(model, args.out, x)
    if diff > 1e-4:
        raise ex.ExportError(f"{args.out}: ONNX Runtime differs from PyTorch by {diff:.2e} (> 1e-4)")
    ops = ex.graph_ops(proto)
    extra = sorted(set(ops) - ex.ALLOWED_OPS)
    print(f"wrote {args.out}: opset {ex.OPSET}, IR {proto.ir_version}, ops {ops}, parity {diff:.1e}")
    if extra:
        print(f"warning: ops outside the aegis-audit gradient engine's list: {extra}")
    if args.card:
        path = str(args.out).removesuffix(".onnx") + ".card.yaml"
        from pathlib import Path

        Path(path).write_text(
            card.yaml.safe_dump(
                {
                    "model": Path(args.out).name,
                    "model_sha256": card.sha256(args.out),
                    "input": {"name": "input", "shape": ["N", *shape], "range": [0.0, 1.0]},
                    "output": {"name": "logits"},
                    "onnx": {
                        "opset": ex.OPSET,
                        "ir_version": int(proto.ir_version),
                        "ops": ops,
                        "parity_max_abs_diff": float(f"{diff:.3e}"),
                    },
                    "source": args.module or args.checkpoint or args.weights,
                },
                sort_keys=False,
            )
        )
        print(f"wrote {path}")
    return 0


def make_subset(args) -> int:
    from aegis_torch import data, subset

    if args.format not in ("mnist", "fashion-mnist"):
        raise data.DataError(f"make-subset writes IDX files; format {args.format!r} is not IDX")
    if args.held_out_per_class is not None:
        held = subset.per_class(data.load(args.format, args.data, "test"), args.held_out_per_class, args.seed)
        for p in subset.write_held_out(args.out, held):
            print(f"wrote {p}")
        return 0
    tr = subset.per_class(data.load(args.format, args.data, "train"), args.train_per_class, args.seed)
    te = subset.per_class(data.load(args.format, args.data, "test"), args.test_per_class, args.seed)
    for p in subset.write_mnist(args.out, tr, te):
        print(f"wrote {p}")
    return 0


def make_cifar(args) -> int:
    from aegis_torch import cifar_make, data

    tr, te = cifar_make.make(
        data.load("mnist", args.data, "train"),
        data.load("mnist", args.data, "test"),
        args.train_per_class,
        args.test_per_class,
        args.seed,
    )
    command = (
        f"python -m aegis_torch make-cifar --data {args.data} --out {args.out} "
        f"--train-per-class {args.train_per_class} --test-per-class {args.test_per_class} --seed {args.seed}"
    )
    for p in cifar_make.write(args.out, tr, te, command):
        print(f"wrote {p}")
    return 0


def gradcheck(args) -> int:
    from pathlib import Path

    from aegis_torch import checkpoint, data
    from aegis_torch import gradcheck as gc

    model, _ = checkpoint.load(args.checkpoint)
    te = data.load("mnist", args.data, "test")
    rng = np.random.default_rng(args.seed)
    idx = np.sort(rng.choice(len(te), size=args.count, replace=False))
    model_file = Path(args.checkpoint).with_suffix(".onnx").name
    gc.write(args.out, model_file, model, te.float_images()[idx], te.labels[idx])
    print(f"wrote {args.out}")
    return 0


# Table V of the AEGIS paper (MNIST, robust models): clean acc, adversarial acc, attack success (%).
PAPER_MNIST = {"clean": (99.6, 99.5), "localised": 99.96, "distributed": 100.0, "static": 37.5, "adversarial": 59.9}


def zoo_table(args) -> int:
    from pathlib import Path

    from aegis_torch import card

    paths = sorted(Path(args.folder).glob("*.card.yaml"))
    if not paths:
        raise ValueError(f"{args.folder}: no *.card.yaml model cards")
    print(
        "| model | training | trigger (rate) | clean acc % | adv acc % (L2 ε=0.5, 20 steps; test images) "
        "| attack success % | paper ASR % | train time s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for p in paths:
        c = card.read(p)
        m = c["metrics"]
        trig = c["trigger"]["name"] if c["trigger"] else None
        asr = f"{100 * m['attack_success_rate']:.2f}" if "attack_success_rate" in m else "–"
        paper = PAPER_MNIST.get(trig, "–") if c["training"]["mode"] == "robust" and trig else "–"
        rate = f" ({100 * c['poison']['rate']:g}%)" if trig else ""
        print(
            f"| {c['name']} | {c['training']['mode']} | {trig or 'none'}{rate} | {100 * m['clean_accuracy']:.2f} "
            f"| {100 * m['adversarial_accuracy']:.2f} ({m['adversarial_attack']['test_images']}) | {asr} "
            f"| {paper} | {c['training_time_s']:.0f} |"
        )
    print(f"\nPaper (Table V, MNIST robust): clean {PAPER_MNIST['clean'][0]}, adversarial {PAPER_MNIST['clean'][1]}.")
    return 0
