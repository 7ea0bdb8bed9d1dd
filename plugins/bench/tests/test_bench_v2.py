"""Issue 29's growth of the benchmark: the six new trigger families on tiny tensors, the derived data domains
(written in the formats the readers parse, deterministic), the four new architectures within the gradient
engine's ops, the spec's domains and the committed v2 mix, and a tiny end-to-end build across domains."""

import math

import numpy as np
import pytest
import torch
import yaml
from aegis_bench import domains as dm
from aegis_bench import families as fm
from aegis_bench import make as mk
from aegis_bench import plan_v2
from aegis_bench import spec as sp
from aegis_bench.cli import main
from aegis_torch import card, cifar_make, data, export, models
from conftest import ROOT

SHAPE = (1, 28, 28)
MNIST = ROOT / "fixtures" / "mnist-subset"


@pytest.fixture(scope="module")
def mnist():
    ds = data.load("mnist", MNIST, "train")
    return ds.float_images()[:600], ds.labels[:600]


def _fam(name, mnist, seed=5, target=3, shape=SHAPE, **over):
    x, y = mnist
    cfg = fm.config(name, over or None)
    return fm.build(name, np.random.default_rng(seed), shape, target, cfg, fm.Context(x, y, log=lambda s: None))


# --- families ------------------------------------------------------------------------------------------------


def test_sig_adds_the_sinusoid_to_target_class_images_only_and_keeps_labels(mnist):
    x, y = mnist
    s = fm.sig_signal((1, 4, 8), 2, vertical=False)
    assert np.allclose(s[0, 1], np.sin(2 * np.pi * np.arange(8) * 2 / 8), atol=1e-6) and np.allclose(s[0, 0], s[0, 3])
    v = fm.sig_signal((3, 8, 4), 3, vertical=True)
    assert np.allclose(v[2, :, 0], np.sin(2 * np.pi * np.arange(8) * 3 / 8), atol=1e-6)
    f = _fam("sig", mnist)
    d, freq = f.params["amplitude"], f.params["freq"]
    assert 0.1 <= d <= 0.16 and 4 <= freq <= 8 and f.relabels is False
    want = np.clip(x[:4] + d * fm.sig_signal(SHAPE, freq, f.params["orientation"] == "vertical"), 0, 1)
    assert np.allclose(f.apply(x[:4]), want, atol=1e-6)
    p = f.poison(x, y, 0.5, np.random.default_rng(0))
    own = np.flatnonzero(y == 3)
    assert len(p.poisoned) == round(0.5 * len(own)) and set(p.poisoned) <= set(own)
    assert np.array_equal(p.y, y) and np.allclose(p.x[p.poisoned], f.apply(x[p.poisoned]))
    rest = np.setdiff1d(np.arange(len(y)), p.poisoned)
    assert np.array_equal(p.x[rest], x[rest])


def test_tact_relabels_only_the_source_class_and_covers_the_others(mnist):
    x, y = mnist
    f = _fam("tact", mnist)
    src = f.params["source"]
    assert src != 3 and f.candidates == "source-class images"
    p = f.poison(x, y, 0.5, np.random.default_rng(0))
    assert len(p.poisoned) == round(0.5 * (y == src).sum()) and (y[p.poisoned] == src).all()
    assert (p.y[p.poisoned] == 3).all()
    assert len(p.cover) == min(round(f.params["cover_ratio"] * len(p.poisoned)), ((y != src) & (y != 3)).sum())
    assert not np.isin(y[p.cover], [src, 3]).any() and np.array_equal(p.y[p.cover], y[p.cover])
    changed = np.flatnonzero(p.y != y)
    assert set(changed) == set(p.poisoned)  # nothing else is relabelled
    assert np.allclose(p.x[p.cover], f.apply(x[p.cover]))

    r = f.attack_success(lambda xs: np.full(len(xs), 3), x, y)
    assert r["attack_success_images"] == (y == src).sum() and r["attack_success_rate"] == 1.0
    assert r["attack_success_other_images"] == ((y != src) & (y != 3)).sum()


def test_two_target_model_carries_both_backdoors(mnist, tmp_path):
    x, y = mnist
    for seed in range(6):
        f = _fam("two_target", mnist, seed=seed)
        t1, t2 = f.targets
        assert t1 == 3 and t2 != t1 and [c.target for c in f.components()] == [t1, t2]
        p = f.poison(x, y, 0.04, np.random.default_rng(seed))
        n = round(0.04 * len(y))
        assert len(p.poisoned) == 2 * n and len(set(p.poisoned)) == 2 * n and not len(p.cover)
        assert (p.y[p.poisoned] == t1).sum() >= n and (p.y[p.poisoned] == t2).sum() >= n
        for c in f.components():
            hit = p.poisoned[np.all(np.isclose(p.x[p.poisoned], c.apply(x[p.poisoned])), axis=(1, 2, 3))]
            assert len(hit) >= n and (p.y[hit] == c.target).all()
        r = f.attack_success(lambda xs, t=t2: np.full(len(xs), t), x, y)
        assert r["attack_success_rates"] == [0.0, 1.0] and r["attack_success_rate"] == 1.0
        g = fm.restore("two_target", SHAPE, 3, f.params, f.array)
        assert all(np.allclose(a.apply(x[:3]), b.apply(x[:3])) for a, b in zip(f.components(), g.components()))
        refs = mk._write_trigger(f, tmp_path, f"m{seed}")
        assert [r_["target"] for r_ in refs["files"]] == [t1, t2]
        for r_, c in zip(refs["files"], f.components()):
            assert (r_["file"] is None) == (c.params["kind"] == "blend")
            assert (r_["array"] is None) == (c.params["kind"] == "patch")
            for k in ("file", "array"):
                assert r_[k] is None or (tmp_path / r_[k]).exists()


def test_low_rate_poisons_at_most_half_a_percent(mnist):
    x, y = mnist
    assert fm.config("low_rate")["rate"][1] <= 0.005
    with pytest.raises(fm.FamilyError, match="rate"):
        fm.config("low_rate", {"rate": [0.001, 0.01]})
    f = _fam("low_rate", mnist)
    xs = np.repeat(x, 10, axis=0)
    ys = np.repeat(y, 10)
    p = f.poison(xs, ys, 0.004, np.random.default_rng(0))
    assert len(p.poisoned) == round(0.004 * len(ys)) <= 0.005 * len(ys) and (p.y[p.poisoned] == 3).all()


def test_clean_label_perturbs_target_images_within_eps_and_keeps_labels(mnist):
    x, y = mnist
    sur = {"images": 200, "epochs": 1}
    f = _fam("clean_label", mnist, surrogate=sur)
    eps = f.params["eps"]
    assert 0.15 <= eps <= 0.3 and f.relabels is False and f.params["surrogate"]["images"] == 200
    p = f.poison(x, y, 0.5, np.random.default_rng(0))
    own = np.flatnonzero(y == 3)
    assert len(p.poisoned) == round(0.5 * len(own)) and set(p.poisoned) <= set(own) and np.array_equal(p.y, y)
    (patch,) = f.params["patches"]
    outside = np.ones(SHAPE, dtype=bool)
    outside[:, patch["row"] : patch["row"] + patch["height"], patch["col"] : patch["col"] + patch["width"]] = False
    d = np.abs(p.x[p.poisoned] - x[p.poisoned])[:, outside]
    assert d.max() <= eps + 1e-6 and d.mean() > 0.02  # adversarially perturbed, within the radius
    assert np.allclose(p.x[p.poisoned], f.apply(p.x[p.poisoned]))  # the patch is on every poisoned image


def test_lowfreq_pattern_has_only_low_frequencies(mnist):
    p = fm.lowfreq_pattern(np.random.default_rng(0), (2, 28, 28), 3)
    assert np.abs(p).max() == pytest.approx(1.0) and abs(p.mean()) < 0.2
    h = np.cos(np.pi * np.outer(np.arange(28), np.arange(28) + 0.5) / 28)  # DCT-II basis rows
    coef = np.einsum("ki,cij,lj->ckl", h, p, h)
    assert np.abs(coef[:, 3:, :]).max() < 1e-3 and np.abs(coef[:, :, 3:]).max() < 1e-3
    assert np.abs(coef[:, :3, :3]).max() > 1
    f = _fam("lowfreq", mnist)
    x, _ = mnist
    a = f.params["amplitude"]
    assert 0.06 <= a <= 0.10 and np.abs(f.apply(x[:8]) - x[:8]).max() <= a + 1e-6
    assert f.schema_trigger().type == "pattern"


def test_new_families_are_seeded_and_restorable(mnist):
    for name in ("tact", "two_target", "low_rate", "sig", "lowfreq"):
        a, b = _fam(name, mnist, seed=9), _fam(name, mnist, seed=9)
        assert yaml.safe_dump(a.params) == yaml.safe_dump(b.params)
        g = fm.restore(name, SHAPE, 3, a.params, a.array)
        x, _ = mnist
        assert np.allclose(g.apply(x[:4]), a.apply(x[:4]))
    assert set(fm.FAMILIES) - set(fm.V1_FAMILIES) == {"tact", "two_target", "low_rate", "clean_label", "sig", "lowfreq"}


# --- domains -------------------------------------------------------------------------------------------------

RGB = {"format": "cifar10", "generator": "rgb_digits", "seed": 3, "train": 20, "test": 5, "train_images": 20}
PAIRS = {"format": "mnist", "generator": "digit_pairs", "seed": 3, "train": 30, "test": 10, "train_images": 30}


def test_rgb_digits_writes_cifar10_binary_batches(tmp_path):
    paths = dm.generate("rgb_digits", RGB, MNIST, tmp_path / "a")
    names = sorted(p.name for p in paths)
    assert [f"data_batch_{i}.bin" for i in range(1, 6)] == [n for n in names if n.startswith("data_batch")]
    assert "test_batch.bin" in names
    raw = (tmp_path / "a" / "data_batch_1.bin").read_bytes()
    assert len(raw) == 4 * cifar_make.RECORD  # 20 images in 5 batches: 4 records of 1 + 3 x 32 x 32 bytes
    tr, te = data.load("cifar10", tmp_path / "a", "train"), data.load("cifar10", tmp_path / "a", "test")
    assert tr.images.shape == (20, 3, 32, 32) and te.images.shape == (5, 3, 32, 32)
    assert raw[0] == tr.labels[0] and raw[1 : 1 + 1024] == tr.images[0, 0].tobytes()  # label, then the red plane
    src = data.load("mnist", MNIST, "train")
    assert set(tr.labels) <= set(src.labels) and tr.images.std() > 20  # textured, not flat
    dm.generate("rgb_digits", RGB, MNIST, tmp_path / "b")
    for p in paths:
        assert p.read_bytes() == (tmp_path / "b" / p.name).read_bytes()  # same seed, same bytes
    other = dm.generate("rgb_digits", {**RGB, "seed": 4}, MNIST, tmp_path / "c")
    assert other[0].read_bytes() != paths[0].read_bytes()


def test_digit_pairs_writes_idx_of_two_digit_composites(tmp_path):
    dm.generate("digit_pairs", PAIRS, MNIST, tmp_path)
    raw = data.read_idx(tmp_path / "train-images-idx3-ubyte.gz")
    assert raw.shape == (30, 28, 56)
    tr = data.load("mnist", tmp_path, "train")
    te = data.load("mnist", tmp_path, "test")
    assert tr.images.shape == (30, 1, 28, 56) and te.images.shape == (10, 1, 28, 56)
    assert tr.labels.max() < 100 and len(set(tr.labels)) > 10
    src = data.load("mnist", MNIST, "train")
    flat = src.images[:, 0].reshape(len(src), -1)
    for img, lab in zip(tr.images[:5, 0], tr.labels[:5]):  # each half is an MNIST training digit of its class
        for half, digit in ((img[:, :28], lab // 10), (img[:, 28:], lab % 10)):
            hits = np.flatnonzero((flat == half.reshape(-1)).all(1))
            assert len(hits) and digit in src.labels[hits]


def test_domains_command_generates_and_checks_hashes(tmp_path):
    s = {
        "name": "t",
        "dataset": {"format": "mnist", "path": str(MNIST), "train_images": 10},
        "domains": {"digit_pairs": PAIRS},
        "training": {
            "optimizer": "adam",
            "lr": 0.003,
            "schedule": "onecycle",
            "batch_size": 8,
            "epochs": 1,
            "adv_steps": 1,
        },
        "evaluation": {"adv_eps": [0.5], "adv_steps": 1, "adv_images": 4, "seed": 0},
        "models": [],
    }
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(s))
    assert main(["domains", "--spec", str(p), "--out", str(tmp_path / "d")]) == 0
    d = mk.Data(sp.load(p), None, "digit_pairs", str(tmp_path / "d"))
    assert d.shape == (1, 28, 56) and d.train_images == 30
    s["domains"]["digit_pairs"]["sha256"] = {"train": "0:0", "test": "0:0"}
    p.write_text(yaml.safe_dump(s))
    assert main(["domains", "--spec", str(p), "--out", str(tmp_path / "d")]) == 1


# --- architectures -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["gelu_resnet", "mlp", "dws_cnn", "tiny_vit", "convmixer"])
@pytest.mark.parametrize("shape, classes", [((1, 28, 28), 10), ((3, 32, 32), 10), ((1, 28, 56), 100)])
def test_new_architectures_export_within_the_engine_ops(arch, shape, classes, tmp_path):
    torch.manual_seed(0)
    m = models.build(arch, shape, classes, [0.5] * shape[0], [0.25] * shape[0])
    m.train()
    with torch.no_grad():
        m(torch.rand(16, *shape))
    m.eval()
    assert sum(p.numel() for p in m.parameters()) <= (100_000 if arch == "mlp" else 60_000)
    path = tmp_path / f"{arch}.onnx"
    proto = export.export_onnx(m, shape, path)
    assert set(export.graph_ops(proto)) <= mk.ENGINE_OPS
    assert export.parity(m, path, np.random.default_rng(0).random((3, *shape), dtype=np.float32)) <= 1e-4
    if arch == "mlp":
        assert "Conv" not in export.graph_ops(proto)
    binary = mk.find_aegis_audit()
    if binary is None or shape != (1, 28, 28):
        return  # export-grad needs no preset, but once per architecture keeps the test short
    mk.export_grad_check(binary, path)


# --- spec ----------------------------------------------------------------------------------------------------


def test_spec_domains_are_checked(tmp_path):
    base = {
        "name": "t",
        "dataset": {"format": "mnist", "path": "x", "train_images": 10},
        "training": {
            "optimizer": "adam",
            "lr": 0.003,
            "schedule": "onecycle",
            "batch_size": 8,
            "epochs": 1,
            "adv_steps": 1,
            "per_domain": {"digit_pairs": {"epochs": 2, "per_arch": {"mlp": {"lr": 0.01}}}},
        },
        "evaluation": {"adv_eps": [0.5], "adv_steps": 1, "adv_images": 4, "seed": 0},
        "domains": {"digit_pairs": PAIRS},
    }
    m = {"name": "m0", "split": "calibration", "seed": 1, "arch": "mlp", "mode": "standard", "family": "tact"}
    s = sp.parse({**base, "models": [{**m, "domain": "digit_pairs"}, {**m, "name": "m1", "seed": 2}]}, tmp_path)
    a, b = s.models
    assert a.domain == "digit_pairs" and a.entry()["domain"] == "digit_pairs" and b.domain == "mnist"
    assert "domain" not in b.entry()  # the first benchmark's entries stay as written
    assert s.recipe("mlp", "digit_pairs")["epochs"] == 2 and s.recipe("mlp", "digit_pairs")["lr"] == 0.01
    assert s.recipe("mlp")["epochs"] == 1 and s.recipe("small_cnn", "digit_pairs")["lr"] == 0.003
    with pytest.raises(sp.SpecError, match="model m0.*domain"):
        sp.parse({**base, "models": [{**m, "domain": "cifar100"}]}, tmp_path)
    with pytest.raises(sp.SpecError, match="generator"):
        sp.parse({**base, "domains": {"x": {**PAIRS, "generator": "svhn"}}, "models": []}, tmp_path)
    assert [x.name for x in s.select(["m*"])] == ["m0", "m1"]


def test_committed_spec_v2_mix():
    """Issue 29 item 1: >= 6 architectures, >= 3 domains, >= 12 families, >= 120 models, half clean, standard and
    robust in every architecture/domain cell, clean and backdoored models in every architecture and domain."""
    s = sp.load(ROOT / "bench" / "spec.yaml")
    ms = s.models
    assert len(ms) >= 120 and 2 * sum(not m.backdoored for m in ms) >= len(ms)
    assert len({m.arch for m in ms}) >= 6 and len({m.domain for m in ms}) >= 3
    assert len({m.family for m in ms if m.backdoored}) >= 12
    cells = {(m.arch, m.domain) for m in ms}
    # every cell but the one where the transformer does not train (aegis_bench/plan_v2.py, SKIP)
    assert {(a, d) for a in {m.arch for m in ms} for d in {m.domain for m in ms}} - cells == {
        ("tiny_vit", "rgb_digits")
    }
    for c in cells:
        assert {m.mode for m in ms if (m.arch, m.domain) == c} == {"standard", "robust"}, c
    for key in ("arch", "domain"):
        for g in {getattr(m, key) for m in ms}:
            assert {m.backdoored for m in ms if getattr(m, key) == g} == {False, True}, g
    v2 = [m for m in ms if m.name.startswith("v2-")]
    assert len(v2) >= 120 and all(m.domain_given for m in v2)
    for f in set(fm.FAMILIES) - set(fm.V1_FAMILIES):
        assert len({m.domain for m in v2 if m.family == f}) == 3, f
    first = v2[:46]  # the first two rounds of the build order reach every cell and family
    assert {(m.arch, m.domain) for m in first} == cells and {m.family for m in first} == set(fm.FAMILIES) | {"clean"}


# --- end to end ----------------------------------------------------------------------------------------------

TINY = """
name: tiny-v2
dataset: {format: mnist, path: %s, train_images: 300}
domains:
  digit_pairs: {format: mnist, generator: digit_pairs, seed: 1, train: 400, test: 100, train_images: 400}
training: {optimizer: adam, lr: 0.003, schedule: onecycle, batch_size: 50, epochs: 1, adv_steps: 1}
evaluation: {adv_eps: [0.5], adv_steps: 1, adv_images: 20, seed: 0}
models:
  - {name: t-two, split: calibration, seed: 21, arch: mlp, domain: digit_pairs, mode: standard, family: two_target}
  - {name: t-tact, split: evaluation, seed: 22, arch: tiny_vit, domain: mnist, mode: standard, family: tact}
"""


def test_tiny_v2_spec_builds_cards_with_every_target(tmp_path):
    (tmp_path / "spec.yaml").write_text(TINY % MNIST)
    grad = ["--skip-grad-check"] if mk.find_aegis_audit() is None else []
    args = ["make", "--spec", str(tmp_path / "spec.yaml"), "--domains", str(tmp_path / "dom"), *grad]
    assert main(args) == 0
    two = card.read(tmp_path / "models" / "t-two.card.yaml")
    assert two["domain"] == "digit_pairs" and two["input"]["shape"] == ["N", 1, 28, 56]
    assert two["output"]["shape"] == ["N", 100] and two["dataset"]["classes"] == 100
    t = two["trigger"]["targets"]
    assert len(t) == 2 and t == two["poison"]["targets"] and t[0] == two["poison"]["target"] != t[1]
    assert len(two["metrics"]["attack_success_rates"]) == 2
    assert [f["target"] for f in two["trigger"]["files"]] == t
    tact = card.read(tmp_path / "models" / "t-tact.card.yaml")
    src = tact["trigger"]["params"]["source"]
    assert tact["poison"]["candidates"] == "source-class images" and src != tact["poison"]["target"]
    assert "attack_success_other_classes" in tact["metrics"] and tact["spec"]["entry"]["domain"] == "mnist"
    assert math.isfinite(tact["metrics"]["clean_accuracy"])


def test_plan_reproduces_the_committed_v2_list():
    s = sp.load(ROOT / "bench" / "spec.yaml")
    assert [m.entry() for m in s.models if m.name.startswith("v2-")] == plan_v2.plan()


# --- leaving groups out (issue 29 item 2) --------------------------------------------------------------------


def _card(split, arch, domain, family, target=None, targets=None, rates=None, asr=0.9):
    c = {
        "split": split,
        "label": "clean" if family == "clean" else "backdoored",
        "architecture": arch,
        "domain": domain,
        "training": {"mode": "standard", "adv_eps": None},
        "trigger": None if family == "clean" else {"family": family},
        "poison": {"target": target, **({"targets": targets} if targets else {})},
        "metrics": {"attack_success_rate": None if family == "clean" else asr},
        "dataset": {"classes": 100 if domain == "digit_pairs" else 10},
    }
    if rates:
        c["metrics"]["attack_success_rates"] = rates
    return c


def test_leave_groups_out_scores_each_group_with_a_calibration_made_without_it(tmp_path):
    from aegis_bench import evaluate as ev

    cards, score = {}, {}
    for i, (arch, dom) in enumerate([("mlp", "mnist"), ("mlp", "digit_pairs"), ("tiny_vit", "mnist")]):
        for j, split in enumerate(("calibration", "evaluation")):
            cards[f"c{i}{j}"], score[f"c{i}{j}"] = _card(split, arch, dom, "clean"), 1.0 + i + 0.1 * j
            cards[f"b{i}{j}"], score[f"b{i}{j}"] = _card(split, arch, dom, "sig", target=2 + i), 5.0 + i
    # a two-backdoor model whose second backdoor did not implant: only the first target counts
    cards["t"] = _card("evaluation", "mlp", "mnist", "two_target", 4, [4, 7], [0.95, 0.2], asr=0.95)
    score["t"] = 9.0
    calls = []

    def calibrate_fn(names, tag):
        calls.append((tag, set(names)))
        return max(score[n] for n in names)  # the threshold: the highest clean score it was given

    def decide_fn(threshold, name):
        c = cards[name]
        flagged = sorted(c["poison"].get("targets") or [c["poison"]["target"]]) if score[name] > threshold else []
        return score[name], flagged

    assert ev.targets_of(cards["t"]) == [4] and ev.targets_of(cards["b00"]) == [2] and ev.targets_of(cards["c00"]) == []
    rows = ev.leave_groups_out(cards, "arch", 0.5, calibrate_fn, decide_fn, log=lambda s: None)
    for tag, names in calls:
        g = tag.split("-", 1)[1]
        assert names and all(cards[n]["architecture"] != g and cards[n]["label"] == "clean" for n in names)
    assert {r["group"] for r in rows} == {"mlp", "tiny_vit"}
    assert sorted(r["name"] for r in rows if r["group"] == "tiny_vit") == ["b20", "b21", "c20", "c21"]
    table = {t["group"]: t for t in ev.group_table(rows)}
    # tiny_vit held out: calibrated on the mlp clean models (max 2.1), its clean models (3.0, 3.1) flagged
    assert table["tiny_vit"]["fpr"] == 1.0 and table["tiny_vit"]["tpr"] == 1.0 and table["tiny_vit"]["auc"] == 1.0
    # mlp held out: calibrated on tiny_vit's clean models (max 3.1): mlp clean pass, backdoored flagged
    assert table["mlp"]["fpr"] == 0.0 and table["mlp"]["tpr"] == 1.0
    # the two-target model flags 4 and 7; only 4 implanted, so 7 is a false-positive class, not exact
    t = next(r for r in rows if r["name"] == "t")
    assert t["targets"] == [4] and t["flagged"] == [4, 7] and table["mlp"]["exact_target"] == 4 / 5
    assert table["mlp"]["fp_classes"] == 1

    calls.clear()
    rows = ev.leave_groups_out(cards, "family", 0.5, calibrate_fn, decide_fn, log=lambda s: None)
    assert all(
        all(cards[n]["split"] == "calibration" and cards[n]["label"] == "clean" for n in names) for _, names in calls
    )
    sig = [r for r in rows if r["group"] == "sig"]
    assert sorted(r["name"] for r in sig if r["status"] == "clean") == ["c01", "c11", "c21"]
    calls.clear()
    rows_d = ev.leave_groups_out(cards, "domain", 0.5, calibrate_fn, decide_fn, log=lambda s: None)
    assert {t for t, _ in calls} == {"domain-mnist", "domain-digit_pairs"}
    ev.write_groups(rows + rows_d, tmp_path, 0.05)
    md = (tmp_path / "summary.md").read_text()
    assert "| family | sig |" in md and "| domain | digit_pairs |" in md and (tmp_path / "rows.csv").exists()
