"""The benchmark spec (YAML): dataset, training recipe, evaluation, trigger family ranges and the model list.

Schema (``bench/spec.yaml`` is the reference)::

    name: aegis-bench-mnist-v1
    dataset: {format: mnist, path: DIR, train_images: 20000}   # seeded subset per model (0: all)
    training: {optimizer: adam, lr: 0.003, schedule: onecycle, batch_size: 128, epochs: 5, adv_steps: 3,
               per_arch: {ARCH: {epochs: 6}}}                    # optional per-architecture overrides
    domains:                                                     # optional: data domains derived from MNIST
      rgb_digits: {format: cifar10, generator: rgb_digits, seed: 29, train: 30000, test: 10000,
                   train_images: 20000, sha256: {train: ..., test: ...}}
    evaluation: {adv_eps: [0.5, 1.0], adv_steps: 20, adv_images: 1000, seed: 0}
    families: {FAMILY: {KEY: VALUE}}                             # overrides of families.DEFAULTS
    models:
      - {name: cal-00, split: calibration, seed: 1000, arch: small_cnn, mode: robust, eps: 0.5, family: badnets}
      - {name: cal-01, split: calibration, seed: 1001, arch: bn_cnn, mode: standard, family: clean}
      - {name: v2-000, split: evaluation, seed: 3000, arch: tiny_vit, domain: digit_pairs, mode: standard,
         family: sig}

``dataset`` is the ``mnist`` domain (a model without ``domain`` is an MNIST model); every other domain is
generated from it (``aegis_bench.domains``) into the folder given as ``--domains DIR``. The training
recipe of a model is the shared one, then ``training.per_arch[ARCH]``, then ``training.per_domain[DOMAIN]``
(whose own ``per_arch`` comes last).

Each model's seed drives everything random about it (data subset, target, trigger parameters, poisoning,
weights, batch order); clean and backdoored models of one (architecture, mode, eps) cell share the recipe.
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from aegis_torch import models

from aegis_bench import families

SPLITS = ("calibration", "evaluation")
MODES = ("standard", "robust")
RECIPE_KEYS = ("optimizer", "lr", "schedule", "batch_size", "epochs", "adv_steps")
OVERRIDE_KEYS = (*RECIPE_KEYS, "train_images")  # what per_arch / per_domain may set
DOMAIN_GENERATORS = ("rgb_digits", "digit_pairs")


class SpecError(ValueError):
    """The spec is invalid; the message names the file, the entry and the field."""


@dataclass(frozen=True)
class ModelSpec:
    """One model of the population."""

    name: str
    split: str
    seed: int
    arch: str
    mode: str
    eps: float
    family: str  # "clean" or a trigger family
    domain: str = "mnist"
    domain_given: bool = False  # the entry names its domain (written back by entry())

    @property
    def backdoored(self) -> bool:
        return self.family != "clean"

    @property
    def cell(self) -> tuple[str, str, str, float]:
        """The recipe cell: (architecture, domain, mode, eps); clean and backdoored models of a cell train alike."""
        return (self.arch, self.domain, self.mode, self.eps)

    def entry(self) -> dict:
        d = {"name": self.name, "split": self.split, "seed": self.seed, "arch": self.arch}
        if self.domain_given:
            d["domain"] = self.domain
        d["mode"] = self.mode
        if self.mode == "robust":
            d["eps"] = self.eps
        d["family"] = self.family
        return d


@dataclass
class Spec:
    """A checked spec. ``path`` is the file it came from (outputs default next to it)."""

    path: Path
    name: str
    dataset: dict
    training: dict
    evaluation: dict
    families: dict
    models: list[ModelSpec] = field(default_factory=list)
    domains: dict = field(default_factory=dict)

    def recipe(self, arch: str, domain: str = "mnist") -> dict:
        """The training recipe of ``arch`` on ``domain``: the shared recipe, its per-architecture overrides,
        then the domain's overrides and the domain's per-architecture overrides."""
        r = {k: v for k, v in self.training.items() if k not in ("per_arch", "per_domain")}
        r.update(self.training.get("per_arch", {}).get(arch, {}))
        dom = (self.training.get("per_domain") or {}).get(domain, {})
        r.update({k: v for k, v in dom.items() if k != "per_arch"})
        r.update((dom.get("per_arch") or {}).get(arch, {}))
        return r

    def domain(self, name: str) -> dict:
        """The domain's configuration (``mnist`` is the spec's ``dataset``)."""
        if name == "mnist":
            return {"format": self.dataset["format"], "generator": None, **self.dataset}
        return self.domains[name]

    def family_config(self, name: str) -> dict:
        return families.config(name, self.families.get(name))

    def select(self, names: list[str] | None) -> list[ModelSpec]:
        """The models named in ``names`` (all when empty; shell-style patterns such as ``v2-*`` allowed), in
        spec order; a name or pattern matching no model is an error."""
        if not names:
            return list(self.models)
        missing = [n for n in names if not any(fnmatch.fnmatchcase(m.name, n) for m in self.models)]
        if missing:
            raise SpecError(f"{self.path}: no model named {', '.join(missing)}")
        return [m for m in self.models if any(fnmatch.fnmatchcase(m.name, n) for n in names)]

    def summary(self) -> dict:
        """Counts of the population: per split, label, mode/eps, architecture, family and recipe cell."""
        ms = self.models
        return {
            "models": len(ms),
            "clean": sum(not m.backdoored for m in ms),
            "backdoored": sum(m.backdoored for m in ms),
            "training": dict(Counter("standard" if m.mode == "standard" else f"robust eps {m.eps}" for m in ms)),
            "architectures": dict(Counter(m.arch for m in ms)),
            "domains": dict(Counter(m.domain for m in ms)),
            "families": dict(Counter(m.family for m in ms if m.backdoored)),
            "splits": {s: len([m for m in ms if m.split == s]) for s in SPLITS},
        }


def _need(d: dict, key: str, where: str, kind):
    if key not in d:
        raise SpecError(f"{where}: missing field {key!r}")
    v = d[key]
    if kind is float and isinstance(v, int) and not isinstance(v, bool):
        v = float(v)
    if not isinstance(v, kind) or isinstance(v, bool) and kind is not bool:
        raise SpecError(f"{where}: field {key!r} must be {getattr(kind, '__name__', kind)}, got {v!r}")
    return v


def load(path: str | Path) -> Spec:
    """Read and check a spec file."""
    path = Path(path)
    try:
        d = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise SpecError(f"{path}: cannot read spec: {e}") from e
    if not isinstance(d, dict):
        raise SpecError(f"{path}: spec must be a mapping")
    return parse(d, path)


def parse(d: dict, path: Path) -> Spec:
    """Check a spec mapping (see the module doc for the schema)."""
    where = str(path)
    ds = _need(d, "dataset", where, dict)
    _need(ds, "format", f"{where}: dataset", str)
    _need(ds, "train_images", f"{where}: dataset", int)
    tr = _need(d, "training", where, dict)
    for k in RECIPE_KEYS:
        if k not in tr:
            raise SpecError(f"{where}: training: missing field {k!r}")
    if tr["optimizer"] != "adam" or tr["schedule"] != "onecycle":
        raise SpecError(f"{where}: training: only optimizer adam with schedule onecycle is implemented")
    for arch, over in (tr.get("per_arch") or {}).items():
        if arch not in models.ARCHITECTURES or not isinstance(over, dict) or set(over) - set(OVERRIDE_KEYS):
            raise SpecError(f"{where}: training.per_arch.{arch}: unknown architecture or keys {over!r}")
    doms = d.get("domains") or {}
    if not isinstance(doms, dict):
        raise SpecError(f"{where}: domains must be a mapping of name -> configuration")
    for name, cfg in doms.items():
        w = f"{where}: domains.{name}"
        if name == "mnist" or not isinstance(cfg, dict):
            raise SpecError(f"{w}: must be a mapping, and mnist is the spec's dataset")
        _need(cfg, "format", w, str)
        gen = _need(cfg, "generator", w, str)
        if gen not in DOMAIN_GENERATORS:
            raise SpecError(f"{w}: generator {gen!r} must be one of {', '.join(DOMAIN_GENERATORS)}")
        for k in ("seed", "train", "test", "train_images"):
            _need(cfg, k, w, int)
    for dom, over in (tr.get("per_domain") or {}).items():
        keys = set(over or {}) - {"per_arch"} if isinstance(over, dict) else {None}
        if dom not in doms and dom != "mnist" or keys - set(OVERRIDE_KEYS):
            raise SpecError(f"{where}: training.per_domain.{dom}: unknown domain or keys {over!r}")
        for arch, o in ((over or {}).get("per_arch") or {}).items():
            if arch not in models.ARCHITECTURES or not isinstance(o, dict) or set(o) - set(OVERRIDE_KEYS):
                raise SpecError(f"{where}: training.per_domain.{dom}.per_arch.{arch}: unknown architecture or keys")
    ev = _need(d, "evaluation", where, dict)
    for k, kind in (("adv_eps", list), ("adv_steps", int), ("adv_images", int), ("seed", int)):
        _need(ev, k, f"{where}: evaluation", kind)
    fam = d.get("families") or {}
    if not isinstance(fam, dict):
        raise SpecError(f"{where}: families must be a mapping of family -> overrides")
    for name, over in fam.items():
        try:
            families.config(name, over)
        except families.FamilyError as e:
            raise SpecError(f"{where}: families: {e}") from e
    raw = _need(d, "models", where, list)
    ms: list[ModelSpec] = []
    for i, m in enumerate(raw):
        w = f"{where}: models[{i}]"
        if not isinstance(m, dict):
            raise SpecError(f"{w}: must be a mapping")
        name = _need(m, "name", w, str)
        w = f"{where}: model {name}"
        split = _need(m, "split", w, str)
        arch = _need(m, "arch", w, str)
        mode = _need(m, "mode", w, str)
        family = _need(m, "family", w, str)
        seed = _need(m, "seed", w, int)
        domain = m.get("domain", "mnist")
        if domain != "mnist" and domain not in doms:
            raise SpecError(f"{w}: domain {domain!r} must be mnist or one of the spec's domains ({', '.join(doms)})")
        if split not in SPLITS:
            raise SpecError(f"{w}: split {split!r} must be one of {', '.join(SPLITS)}")
        if arch not in models.ARCHITECTURES:
            raise SpecError(f"{w}: arch {arch!r} must be one of {', '.join(models.ARCHITECTURES)}")
        if mode not in MODES:
            raise SpecError(f"{w}: mode {mode!r} must be standard or robust")
        eps = _need(m, "eps", w, float) if mode == "robust" else 0.0
        if mode == "robust" and not eps > 0:
            raise SpecError(f"{w}: robust training needs eps > 0")
        if mode == "standard" and m.get("eps"):
            raise SpecError(f"{w}: eps is only for robust models")
        if family != "clean" and family not in families.FAMILIES:
            raise SpecError(f"{w}: family {family!r} must be clean or one of {', '.join(families.FAMILIES)}")
        if not name or "/" in name or name.startswith("."):
            raise SpecError(f"{w}: name must be a plain file stem")
        ms.append(ModelSpec(name, split, seed, arch, mode, eps, family, domain, "domain" in m))
    for what, key in (("name", lambda m: m.name), ("seed", lambda m: m.seed)):
        dup = [k for k, c in Counter(key(m) for m in ms).items() if c > 1]
        if dup:
            raise SpecError(f"{where}: duplicate model {what}s: {dup}")
    return Spec(path, str(d.get("name", path.stem)), ds, tr, ev, fam, ms, doms)


def dump_models(ms: list[ModelSpec]) -> str:
    """The ``models:`` list as compact YAML (one flow mapping per line)."""
    lines = ["models:"]
    for m in ms:
        lines.append("  - " + yaml.safe_dump(m.entry(), default_flow_style=True, sort_keys=False, width=1000).strip())
    return "\n".join(lines) + "\n"
