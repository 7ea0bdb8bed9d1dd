"""L2 PGD bounds, seeded training (same seed, same weights), and a small end-to-end run of the CLI."""

import numpy as np
import torch
from aegis_torch import attack, data, models, uap
from aegis_torch.cli import main
from aegis_torch.train import TrainConfig, train


def _subset(fixtures, n):
    ds = data.load("mnist", fixtures / "mnist-subset", "train")
    return ds.float_images()[:n], ds.labels[:n]


def test_pgd_stays_in_the_l2_ball_and_pixel_range(fixtures):
    x, y = _subset(fixtures, 32)
    torch.manual_seed(0)
    m = models.build("small_cnn", (1, 28, 28), 10, [0.13], [0.31])
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    adv = attack.pgd_l2(m, xt, yt, eps=0.5, steps=10, generator=torch.Generator().manual_seed(0))
    norms = (adv - xt).flatten(1).norm(dim=1)
    assert norms.max() <= 0.5 + 1e-5 and norms.min() > 0.1
    assert adv.min() >= 0 and adv.max() <= 1
    loss = torch.nn.functional.cross_entropy
    assert loss(m(adv), yt) > loss(m(xt), yt)


def test_translation_moves_toward_the_target_within_the_ball(fixtures):
    x, _ = _subset(fixtures, 16)
    torch.manual_seed(0)
    m = models.build("small_cnn", (1, 28, 28), 10, [0.13], [0.31])
    xt = torch.from_numpy(x)
    target = torch.full((16,), 3, dtype=torch.long)
    out = attack.translate_l2(m, xt, target, eps=0.75, step=0.25, steps=6)
    norms = (out - xt).flatten(1).norm(dim=1)
    assert norms.max() <= 0.75 + 1e-5 and norms.min() > 0.1  # six steps of 0.25, projected to 0.75
    assert out.min() >= 0 and out.max() <= 1
    loss = torch.nn.functional.cross_entropy
    assert loss(m(out), target) < loss(m(xt), target)


def test_training_is_seeded_and_learns(fixtures):
    x, y = _subset(fixtures, 1024)
    weights = []
    for _ in range(2):
        torch.manual_seed(3)
        m = models.build("small_cnn", (1, 28, 28), 10, [0.13], [0.31])
        train(
            m,
            x,
            y,
            TrainConfig(epochs=2, batch_size=32, lr=3e-3, adv_eps=0.5, adv_steps=1, seed=3, log_every=0),
            log=lambda s: None,
        )
        weights.append(torch.cat([p.detach().flatten() for p in m.parameters()]))
    assert torch.equal(weights[0], weights[1])
    with torch.no_grad():
        acc = (m.eval()(torch.from_numpy(x)).argmax(1).numpy() == y).mean()
    assert acc > 0.5


def test_uap_is_bounded_and_targeted(fixtures):
    x, _y = _subset(fixtures, 256)
    m = models.build("small_cnn", (1, 28, 28), 10, [0.13], [0.31]).eval()
    t = uap.targeted_uap(m, x, target=7, intensity=0.1, iters=5, batch=64)
    assert t.type == "pattern" and t.target == 7
    assert np.abs(t.pattern).max() <= 1.0 + 1e-6
    assert np.abs(t.apply(x) - x).max() <= 0.1 + 1e-6


def test_train_command_writes_model_and_card(fixtures, tmp_path):
    from aegis_torch import card

    rc = main(
        [
            "train",
            "--data",
            str(fixtures / "mnist-subset"),
            "--name",
            "tiny",
            "--out",
            str(tmp_path),
            "--trigger",
            str(fixtures / "triggers" / "localised.yaml"),
            "--rate",
            "0.05",
            "--epochs",
            "1",
            "--train-limit",
            "600",
            "--adv-eval-limit",
            "50",
            "--train-steps",
            "1",
        ]
    )
    assert rc == 0
    c = card.read(tmp_path / "tiny.card.yaml")
    assert c["poison"] == {"rate": 0.05, "count": 30, "target": 7, "seed": 0}
    assert c["trigger"]["type"] == "patch" and c["architecture"] == "small_cnn"
    assert c["training"]["mode"] == "robust" and c["training"]["adv_eps"] == 0.5
    assert c["dataset"]["train_images"] == 600 and c["metrics"]["adversarial_attack"]["test_images"] == 50
    assert 0.0 <= c["metrics"]["attack_success_rate"] <= 1.0 and c["training_time_s"] > 0
    assert c["model_sha256"] == card.sha256(tmp_path / "tiny.onnx")
    assert c["onnx"]["parity_max_abs_diff"] <= 1e-4


def test_cli_usage_errors_exit_2(tmp_path, capsys):
    assert main(["evaluate", "--data", str(tmp_path), "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert "none.pt" in capsys.readouterr().err
    assert main(["make-subset", "--format", "cifar10", "--data", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "not IDX" in capsys.readouterr().err


def test_garbage_checkpoint_is_named(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a checkpoint")
    assert main(["gradcheck", "--checkpoint", str(bad), "--data", str(tmp_path), "--out", str(tmp_path / "g")]) == 2
    assert "bad.pt" in capsys.readouterr().err
