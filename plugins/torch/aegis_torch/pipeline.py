"""One zoo model end to end: load data, poison, train, evaluate, export ONNX, write the model card."""

from __future__ import annotations

import datetime
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

import onnx
from aegis_torch import card, checkpoint, data, evaluate, export, models, poison, triggers
from aegis_torch.train import TrainConfig, seed_everything, train


def run(args, log=print) -> dict:
    """Train and publish ``<out>/<name>.{onnx,pt,card.yaml}``; returns the card."""
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tr = data.load(args.format, args.data, "train")
    te = data.load(args.format, args.data, "test")
    x, y = tr.float_images(), tr.labels
    xt, yt = te.float_images(), te.labels
    if args.train_limit:
        x, y = x[: args.train_limit], y[: args.train_limit]
    num_classes = int(max(y.max(), yt.max())) + 1
    mean, std = data.default_norm(args.format, tr.shape[0])
    trig = None
    poison_info: dict = {"rate": 0.0, "count": 0, "target": None, "seed": None}
    if args.trigger:
        trig = triggers.load(args.trigger)
        rate = args.rate if args.rate is not None else poison.DEFAULT_RATES[trig.type]
        x, y, idx = poison.poison(x, y, trig, rate, args.target, args.poison_seed)
        poison_info = {"rate": rate, "count": len(idx), "target": args.target, "seed": args.poison_seed}
        log(f"poisoned {len(idx)} of {len(y)} training images with {trig.name} -> class {args.target}")
    seed_everything(args.seed)
    model = models.build(args.arch, tr.shape, num_classes, mean, std)
    robust = args.mode == "robust"
    cfg = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        adv_eps=args.eps if robust else 0.0,
        adv_steps=args.train_steps,
        seed=args.seed,
        device=args.device,
    )
    cpu0 = time.process_time()
    seconds = train(model, x, y, cfg, log=log)
    cpu_seconds = time.process_time() - cpu0
    model = model.cpu().eval()
    log(f"trained in {seconds:.0f}s; evaluating")
    n_eval = args.adv_eval_limit or len(xt)
    metrics = {
        "clean_accuracy": round(evaluate.clean_accuracy(model, xt, yt), 4),
        "adversarial_accuracy": round(
            evaluate.adversarial_accuracy(model, xt[:n_eval], yt[:n_eval], eps=args.eps, steps=20, seed=args.seed), 4
        ),
        "adversarial_attack": {
            "norm": "L2",
            "eps": args.eps,
            "steps": 20,
            "step_size": 2.5 * args.eps / 20,
            "random_start": True,
            "test_images": int(n_eval),
        },
        "test_images": len(yt),
    }
    if trig is not None:
        metrics["attack_success_rate"] = round(evaluate.attack_success_rate(model, xt, yt, trig, args.target), 4)
    log(f"metrics {metrics}")
    onnx_path = out / f"{args.name}.onnx"
    checkpoint.save(out / f"{args.name}.pt", model, args.arch, tr.shape, num_classes)
    proto = export.export_onnx(model, tr.shape, onnx_path)
    diff = export.parity(model, onnx_path, xt[:64])
    if diff > 1e-4:
        raise export.ExportError(f"{onnx_path}: ONNX Runtime differs from PyTorch by {diff:.2e} (> 1e-4)")
    c = {
        "name": args.name,
        "model": onnx_path.name,
        "model_sha256": card.sha256(onnx_path),
        "dataset": {
            "format": args.format,
            "name": Path(args.data).name,
            "train_images": len(y),
            "test_images": len(yt),
            "classes": num_classes,
        },
        "architecture": args.arch,
        "input": {
            "name": "input",
            "shape": ["N", *tr.shape],
            "dtype": "float32",
            "range": [0.0, 1.0],
            "normalisation": {"mean": mean, "std": std, "inside_model": True},
        },
        "output": {"name": "logits", "shape": ["N", num_classes]},
        "onnx": {
            "opset": export.OPSET,
            "ir_version": int(proto.ir_version),
            "ops": export.graph_ops(proto),
            "parity_max_abs_diff": float(f"{diff:.3e}"),
        },
        "trigger": None if trig is None else {"file": Path(args.trigger).name, **trig.to_dict()},
        "poison": poison_info,
        "training": {
            "mode": args.mode,
            **{k: v for k, v in asdict(cfg).items() if k not in ("seed", "log_every")},
            "optimizer": "Adam",
            "schedule": "OneCycle",
            "adv_step_size": 2.5 * args.eps / args.train_steps if robust else None,
        },
        "seeds": {"train": args.seed, "poison": args.poison_seed if trig else None, "eval": args.seed},
        "metrics": metrics,
        "training_time_s": round(seconds, 1),
        "training_cpu_s": round(cpu_seconds, 1),
        "threads": args.threads,
        "environment": {
            "python": platform.python_version(),
            "torch": str(torch.__version__),
            "onnx": onnx.__version__,
            "numpy": np.__version__,
        },
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "python -m aegis_torch " + " ".join(sys.argv[1:]),
    }
    card.write(out / f"{args.name}.card.yaml", c)
    log(f"wrote {onnx_path} ({onnx_path.stat().st_size} bytes) and its card")
    return c
