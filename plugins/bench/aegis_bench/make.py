"""Build benchmark models: one model end to end (data subset, trigger, poison, train, evaluate, export, card),
the population (resumable: a model whose card exists is skipped), and the bit-identity check of a retrain.

Outputs per model in the output folder: ``NAME.onnx``, ``NAME.card.yaml`` (written last: its presence means
the model is complete), ``NAME.pt`` (checkpoint, not committed), and for backdoored models the trigger:
``NAME.trigger.yaml`` in the shared patch/pattern schema where the family can be written so, and
``NAME.trigger.npy`` (the pattern, or the warp grid) where it has an array.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from aegis_torch import card, checkpoint, data, evaluate, export, models
from aegis_torch.train import TrainConfig, seed_everything, train

import onnx
from aegis_bench import domains, families
from aegis_bench.spec import ModelSpec, Spec

# Ops the aegis-audit gradient engine differentiates (src/grad/rules); every benchmark model must stay within.
ENGINE_OPS = frozenset(
    {
        "Relu",
        "LeakyRelu",
        "Sigmoid",
        "Tanh",
        "Clip",
        "Add",
        "Sub",
        "Mul",
        "Div",
        "Gemm",
        "MatMul",
        "Conv",
        "BatchNormalization",
        "MaxPool",
        "AveragePool",
        "GlobalAveragePool",
        "Identity",
        "Dropout",
        "Flatten",
        "Reshape",
        "Transpose",
        "Concat",
        "Pad",
        "Constant",
        "Softmax",
        "LogSoftmax",
        # issue 29's architectures: GELU (Erf), the transformer's LayerNorm, token mean and q/k/v split
        "Erf",
        "LayerNormalization",
        "ReduceMean",
        "Gather",
    }
)
STREAMS = ("subset", "trigger", "poison", "train")
Log = Callable[[str], None]


class BenchError(ValueError):
    """A benchmark model could not be built or checked; the message names the model and the check."""


def seeds(seed: int) -> dict[str, int]:
    """The per-purpose seeds derived from a model's seed (NumPy SeedSequence, one 31-bit word each)."""
    words = np.random.SeedSequence(seed).generate_state(len(STREAMS))
    return {k: int(w) & 0x7FFFFFFF for k, w in zip(STREAMS, words)}


def _array_sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


class Data:
    """The dataset of a spec (or of one of its domains), loaded once: train and test as float32 [0, 1] and
    int64 labels. ``domain`` other than mnist: the domain's folder under ``domains_dir`` (generated from the
    MNIST data first when its files are missing)."""

    def __init__(
        self, spec: Spec, root: str | None = None, domain: str = "mnist", domains_dir: str | None = None, log=print
    ):
        mnist_root = root or spec.dataset.get("path") or ""
        if not str(mnist_root):
            raise BenchError(f"{spec.path}: dataset.path is empty; pass --data DIR")
        self.domain = domain
        cfg = spec.domain(domain)
        fmt = cfg["format"]
        if domain == "mnist":
            self.root = Path(mnist_root)
        else:
            if not domains_dir:
                raise BenchError(f"{spec.path}: domain {domain} needs --domains DIR (its generated data folder)")
            self.root = domains.ensure(domain, cfg, mnist_root, domains_dir, log)
        tr, te = data.load(fmt, self.root, "train"), data.load(fmt, self.root, "test")
        self.format = fmt
        self.shape = tr.shape
        self.x, self.y = tr.float_images(), tr.labels
        self.xt, self.yt = te.float_images(), te.labels
        self.classes = int(max(self.y.max(), self.yt.max())) + 1
        self.mean, self.std = data.default_norm(fmt, self.shape[0])
        self.sha256 = {
            "train": _array_sha(tr.images) + ":" + _array_sha(tr.labels)[:16],
            "test": _array_sha(te.images) + ":" + _array_sha(te.labels)[:16],
        }
        self.train_images = int(cfg["train_images"])
        want = cfg.get("sha256")
        if want and want != self.sha256:
            raise BenchError(f"{self.root}: dataset content differs from the spec's dataset.sha256 (got {self.sha256})")


class DataCache:
    """The data of every domain a run needs, loaded on first use and kept (``get(domain)``)."""

    def __init__(self, spec: Spec, root: str | None = None, domains_dir: str | None = None, log=print):
        self.spec, self.root, self.domains_dir, self.log = spec, root, domains_dir, log
        self._loaded: dict[str, Data] = {}

    def get(self, domain: str) -> Data:
        if domain not in self._loaded:
            self._loaded[domain] = Data(self.spec, self.root, domain, self.domains_dir, self.log)
        return self._loaded[domain]


def _data_of(d: Data | DataCache, m: ModelSpec) -> Data:
    return d.get(m.domain) if isinstance(d, DataCache) else d


def find_aegis_audit(explicit: str | None = None) -> str | None:
    """The aegis-audit binary: ``explicit``, ``$AEGIS_AUDIT``, ``target/{release,debug}/aegis-audit`` of the
    repository holding this package, or ``aegis-audit`` on PATH."""
    if explicit:
        return explicit
    if os.environ.get("AEGIS_AUDIT"):
        return os.environ["AEGIS_AUDIT"]
    repo = Path(__file__).resolve().parents[3]
    for p in (repo / "target" / "release" / "aegis-audit", repo / "target" / "debug" / "aegis-audit"):
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    return shutil.which("aegis-audit")


def command_line() -> str | None:
    """The command building the models, for their cards: ``python -m aegis_bench ARGS`` (or ``aegis-bench ARGS``)
    when this process is that command (None otherwise, e.g. under pytest)."""
    main = Path(sys.argv[0])
    if main.name == "__main__.py" and main.parent.name == "aegis_bench":
        return "python -m aegis_bench " + " ".join(sys.argv[1:])
    if main.name == "aegis-bench":
        return "aegis-bench " + " ".join(sys.argv[1:])
    return None


def export_grad_check(binary: str, onnx_path: Path) -> dict:
    """Run ``aegis-audit export-grad MODEL -o TMP`` (must exit 0: every op has a gradient rule)."""
    with tempfile.TemporaryDirectory() as tmp:
        r = subprocess.run(
            [binary, "export-grad", str(onnx_path), "-o", str(Path(tmp) / "g.onnx"), "--threads", "1"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    if r.returncode != 0:
        raise BenchError(f"{onnx_path}: aegis-audit export-grad exited {r.returncode}: {r.stderr.strip()[-400:]}")
    return {
        "command": "aegis-audit export-grad MODEL -o TMP",
        "exit": 0,
        "message": (r.stdout + r.stderr).strip()[-300:],
    }


def _train_subset(d: Data, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if n <= 0 or n >= len(d.y):
        idx = np.arange(len(d.y))
    else:
        idx = np.sort(np.random.default_rng(seed).choice(len(d.y), size=n, replace=False))
    return d.x[idx], d.y[idx], idx


def eval_subset(n_test: int, n: int, seed: int) -> np.ndarray:
    """The fixed seeded test subset on which adversarial accuracy is measured (the same for every model)."""
    if n <= 0 or n >= n_test:
        return np.arange(n_test)
    return np.sort(np.random.default_rng(seed).choice(n_test, size=n, replace=False))


def make_one(
    spec: Spec, m: ModelSpec, d: Data, out: Path, aegis: str | None, log: Log = print, threads: int = 1
) -> dict:
    """Build model ``m`` into ``out``; returns its card (written last)."""
    t_start, c_start = time.perf_counter(), time.process_time()
    torch.set_num_threads(threads)
    out.mkdir(parents=True, exist_ok=True)
    sd = seeds(m.seed)
    if d.domain != m.domain:
        raise BenchError(f"{m.name}: model of domain {m.domain} given the data of domain {d.domain}")
    recipe = spec.recipe(m.arch, m.domain)
    x, y, _ = _train_subset(d, int(recipe.get("train_images", d.train_images)), sd["subset"])
    log(
        f"{m.name}: {m.arch} {m.domain} {m.mode}{f' eps {m.eps}' if m.mode == 'robust' else ''} {m.family}, "
        f"{len(y)} training images, seed {m.seed}"
    )

    fam = None
    trigger_card: dict | None = None
    poison_card: dict = {"rate": 0.0, "count": 0, "cover_count": 0, "target": None}
    if m.backdoored:
        cfg = spec.family_config(m.family)
        rng = np.random.default_rng(sd["trigger"])
        target = int(rng.integers(0, d.classes))
        rate = float(f"{families._uniform(rng, cfg['rate']):.4g}")
        ctx = families.Context(d.x, d.y, tuple(d.mean), tuple(d.std), log=log)
        fam = families.build(m.family, rng, d.shape, target, cfg, ctx)
        p = fam.poison(x, y, rate, np.random.default_rng(sd["poison"]))
        x, y = p.x, p.y
        poison_card = {
            "rate": rate,
            "count": len(p.poisoned),
            "cover_count": len(p.cover),
            "cover_kind": fam.cover_kind,
            "target": target,
            "candidates": fam.candidates,
            "cover_from": "remaining images, any class" if len(p.cover) else None,
        }
        trigger_card = {
            "family": m.family,
            "target": target,
            "params": fam.params,
            "config": {k: v for k, v in cfg.items() if k != "rate"},
        }
        if m.family not in families.V1_FAMILIES:  # issue 29's families: every target, relabelling, share
            poison_card.update(
                {
                    "targets": fam.targets,
                    "relabelled": fam.relabels,
                    "share_of_training_images": round(len(p.poisoned) / len(y), 5),
                }
            )
            if m.family == "tact":
                poison_card["cover_from"] = "images of the classes other than the source and the target"
            trigger_card["targets"] = fam.targets
        log(f"{m.name}: {m.family} -> class {target}: {len(p.poisoned)} poisoned, {len(p.cover)} cover (rate {rate})")

    cfg_t = TrainConfig(
        epochs=int(recipe["epochs"]),
        batch_size=int(recipe["batch_size"]),
        lr=float(recipe["lr"]),
        adv_eps=m.eps if m.mode == "robust" else 0.0,
        adv_steps=int(recipe["adv_steps"]),
        seed=sd["train"],
        log_every=0,
    )
    seed_everything(sd["train"])
    model = models.build(m.arch, d.shape, d.classes, d.mean, d.std)
    n_params = sum(p.numel() for p in model.parameters())
    cpu0 = time.process_time()
    seconds = train(model, x, y, cfg_t, log=lambda s: log(f"{m.name}: {s}"))
    cpu_s = time.process_time() - cpu0
    model = model.cpu().eval()

    ev = spec.evaluation
    t_eval = time.perf_counter()
    metrics: dict = {"clean_accuracy": round(evaluate.clean_accuracy(model, d.xt, d.yt), 4)}
    sub = eval_subset(len(d.yt), int(ev["adv_images"]), int(ev["seed"]))
    metrics["adversarial_accuracy"] = {
        f"l2_eps_{e}": round(
            evaluate.adversarial_accuracy(
                model, d.xt[sub], d.yt[sub], eps=float(e), steps=int(ev["adv_steps"]), seed=int(ev["seed"])
            ),
            4,
        )
        for e in ev["adv_eps"]
    }
    metrics["adversarial_attack"] = {
        "norm": "L2",
        "steps": int(ev["adv_steps"]),
        "step_size": "2.5 eps / steps",
        "random_start": True,
        "test_images": len(sub),
        "subset_seed": int(ev["seed"]),
    }
    if fam is not None:
        metrics.update(fam.attack_success(lambda xs: evaluate.predict(model, xs), d.xt, d.yt))
    else:
        metrics["attack_success_rate"] = None
    metrics["test_images"] = len(d.yt)
    eval_s = time.perf_counter() - t_eval
    log(
        f"{m.name}: clean {metrics['clean_accuracy']}, adversarial {metrics['adversarial_accuracy']}, "
        f"ASR {metrics['attack_success_rate']} (train {seconds:.0f}s, eval {eval_s:.0f}s)"
    )

    onnx_path = out / f"{m.name}.onnx"
    proto = export.export_onnx(model, d.shape, onnx_path)
    ops = export.graph_ops(proto)
    if set(ops) - ENGINE_OPS:
        raise BenchError(f"{m.name}: exported ops {sorted(set(ops) - ENGINE_OPS)} have no aegis-audit gradient rule")
    probe = d.xt[:64] if fam is None else np.concatenate([d.xt[:56], fam.apply(d.xt[56:64])])
    diff = export.parity(model, onnx_path, probe)
    if diff > 1e-4:
        raise BenchError(f"{onnx_path}: ONNX Runtime differs from PyTorch by {diff:.2e} (> 1e-4)")
    grad = export_grad_check(aegis, onnx_path) if aegis else {"skipped": "no aegis-audit binary given"}
    checkpoint.save(out / f"{m.name}.pt", model, m.arch, d.shape, d.classes)

    if fam is not None:
        trigger_card.update(_write_trigger(fam, out, m.name))
    total_s, total_cpu_s = time.perf_counter() - t_start, time.process_time() - c_start
    c = {
        "name": m.name,
        "split": m.split,
        "label": "backdoored" if m.backdoored else "clean",
        **({"domain": m.domain} if m.domain_given else {}),
        "model": onnx_path.name,
        "model_sha256": card.sha256(onnx_path),
        "model_bytes": onnx_path.stat().st_size,
        "dataset": {
            "format": d.format,
            "name": d.root.name,
            "train_images": len(y),
            "train_pool": len(d.y),
            "test_images": len(d.yt),
            "classes": d.classes,
            "sha256": d.sha256,
        },
        "architecture": m.arch,
        "parameters": int(n_params),
        "input": {
            "name": "input",
            "shape": ["N", *d.shape],
            "dtype": "float32",
            "range": [0.0, 1.0],
            "normalisation": {"mean": list(d.mean), "std": list(d.std), "inside_model": True},
        },
        "output": {"name": "logits", "shape": ["N", d.classes]},
        "onnx": {
            "opset": export.OPSET,
            "ir_version": int(proto.ir_version),
            "ops": ops,
            "parity_max_abs_diff": float(f"{diff:.3e}"),
            "export_grad": grad,
        },
        "trigger": trigger_card,
        "poison": poison_card,
        "training": {
            "mode": m.mode,
            "adv_eps": m.eps if m.mode == "robust" else None,
            "adv_steps": cfg_t.adv_steps if m.mode == "robust" else None,
            "adv_step_size": round(2.5 * m.eps / cfg_t.adv_steps, 6) if m.mode == "robust" else None,
            "adv_attack": "L2 PGD, random start" if m.mode == "robust" else None,
            "epochs": cfg_t.epochs,
            "batch_size": cfg_t.batch_size,
            "lr": cfg_t.lr,
            "optimizer": "Adam",
            "schedule": "OneCycle",
            "train_images": len(y),
            "threads": threads,
            "deterministic": True,
            "device": "cpu",
        },
        "seeds": {"model": m.seed, **sd, "eval": int(ev["seed"])},
        "metrics": metrics,
        "training_time_s": round(seconds, 1),
        "training_cpu_s": round(cpu_s, 1),
        "evaluation_time_s": round(eval_s, 1),
        "total_time_s": round(total_s, 1),
        "total_cpu_s": round(total_cpu_s, 1),
        "environment": {
            "python": platform.python_version(),
            "torch": str(torch.__version__),
            "numpy": np.__version__,
            "onnx": onnx.__version__,
            "machine": platform.machine(),
        },
        "spec": {"file": spec.path.name, "name": spec.name, "entry": m.entry()},
        "created": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command_line(),
    }
    card.write(out / f"{m.name}.card.yaml", c)
    log(
        f"{m.name}: wrote {onnx_path} ({c['model_bytes']} bytes) and its card in {total_s:.0f}s "
        f"({total_cpu_s:.0f}s CPU)"
    )
    return c


def _write_trigger(fam: families.Family, out: Path, name: str, stem: str | None = None) -> dict:
    """Write the trigger files (``STEM.yaml`` in the shared schema, ``STEM.npy`` the family's array; ``STEM`` is
    ``NAME.trigger``); returns the card's references to them. A multi-backdoor family writes one set per
    backdoor (``NAME.trigger-1.*``, ``NAME.trigger-2.*``), listed under ``files`` with their targets."""
    stem = stem or f"{name}.trigger"
    parts = fam.components()
    if len(parts) > 1:
        files = [
            {"target": p.target, **_write_trigger(p, out, name, f"{name}.trigger-{i + 1}")} for i, p in enumerate(parts)
        ]
        return {"file": files[0]["file"], "array": files[0]["array"], "files": files}
    refs: dict = {"file": None, "array": None}
    st = fam.schema_trigger()
    if st is not None:
        if st.type == "pattern":
            st.pattern_file = f"{stem}.npy"
        st.name = f"{name}-{fam.name}"
        st.save(out / f"{stem}.yaml")
        refs["file"] = f"{stem}.yaml"
        refs["schema"] = st.type
    if fam.array is not None:
        np.save(out / f"{stem}.npy", fam.array.astype(np.float32))
        refs["array"] = f"{stem}.npy"
    return refs


def make(
    spec: Spec,
    names: list[str] | None,
    out: Path,
    d: Data | DataCache,
    aegis: str | None,
    log: Log = print,
    threads: int = 1,
    on_done: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Build the selected models in spec order, skipping those whose card already exists."""
    cards = []
    for m in spec.select(names):
        path = out / f"{m.name}.card.yaml"
        if path.exists():
            log(f"{m.name}: card exists, skipped")
            cards.append(card.read(path))
            continue
        c = make_one(spec, m, _data_of(d, m), out, aegis, log, threads)
        cards.append(c)
        if on_done:
            on_done(c)
    return cards


def verify(
    spec: Spec, name: str, out: Path, d: Data | DataCache, aegis: str | None, log: Log = print, threads: int = 1
) -> tuple[bool, str, str]:
    """Retrain model ``name`` in a temporary folder; returns (identical, recorded sha256, new sha256)."""
    (m,) = spec.select([name])
    recorded = card.read(out / f"{name}.card.yaml")["model_sha256"]
    with tempfile.TemporaryDirectory() as tmp:
        c = make_one(spec, m, _data_of(d, m), Path(tmp), aegis, log, threads)
    return c["model_sha256"] == recorded, recorded, c["model_sha256"]
