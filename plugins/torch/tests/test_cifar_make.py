"""make-cifar: coloured MNIST written in the CIFAR-10 binary-batch layout, read back by the CIFAR-10 reader."""

import numpy as np
import pytest
from aegis_torch import cifar_make, data
from aegis_torch.cli import main
from aegis_torch.data import DataError

TRAIN_FILES = [f"data_batch_{i}.bin" for i in range(1, 6)]


def _make(fixtures, out, train=2, test=1, seed=0):
    argv = ["make-cifar", "--data", str(fixtures / "mnist-subset"), "--out", str(out)]
    argv += ["--train-per-class", str(train), "--test-per-class", str(test), "--seed", str(seed)]
    assert main(argv) == 0


def test_files_have_the_cifar10_binary_layout(fixtures, tmp_path):
    _make(fixtures, tmp_path)
    for name in TRAIN_FILES:  # 20 training images over five batches
        assert (tmp_path / name).stat().st_size == 3073 * 4
    assert (tmp_path / "test_batch.bin").stat().st_size == 3073 * 10
    assert (tmp_path / "batches.meta.txt").read_text().split("\n") == [*cifar_make.CLASSES, ""]
    readme = (tmp_path / "README.txt").read_text()
    assert "NOT CIFAR-10" in readme and "make-cifar" in readme and "--seed 0" in readme


def test_reader_round_trip_record_by_record(fixtures, tmp_path):
    mnist_tr = data.load("mnist", fixtures / "mnist-subset", "train")
    mnist_te = data.load("mnist", fixtures / "mnist-subset", "test")
    tr, te = cifar_make.make(mnist_tr, mnist_te, 2, 1, seed=5)
    cifar_make.write(tmp_path, tr, te)
    for split, ds, files in (("train", tr, TRAIN_FILES), ("test", te, ["test_batch.bin"])):
        back = data.load("cifar10", tmp_path, split)
        assert back.images.shape == (len(ds), 3, 32, 32)
        assert np.array_equal(back.labels, ds.labels) and np.array_equal(back.images, ds.images)
        assert np.array_equal(np.bincount(back.labels, minlength=10), np.full(10, len(ds) // 10))
        raw = b"".join((tmp_path / f).read_bytes() for f in files)
        for k in (0, len(ds) - 1):  # the layout by hand: label byte, then the R, G and B planes, row-major
            rec = raw[3073 * k : 3073 * (k + 1)]
            assert rec[0] == ds.labels[k]
            for c in range(3):
                plane = rec[1 + 1024 * c : 1 + 1024 * (c + 1)]
                assert plane == bytes(ds.images[k, c].ravel())
                assert plane[32 * 5 + 7] == ds.images[k, c, 5, 7]


def test_images_are_coloured_padded_digits(fixtures):
    digits = data.load("mnist", fixtures / "mnist-subset", "train").images[:50]
    rgb = cifar_make.colourise(digits, 0)
    assert rgb.shape == (50, 3, 32, 32) and rgb.dtype == np.uint8
    luma = np.tensordot(cifar_make._LUMA, rgb.astype(float), axes=([0], [1]))  # N x 32 x 32
    for i in range(50):
        ink = np.zeros((32, 32), bool)
        inner = digits[i, 0] > 200
        # the digit sits at some offset 0..4: find it by the luminance gap between ink and paper
        gaps = []
        for dy in range(5):
            for dx in range(5):
                ink[:] = False
                ink[dy : dy + 28, dx : dx + 28] = inner
                gaps.append(abs(luma[i][ink].mean() - luma[i][~ink].mean()))
        assert max(gaps) >= cifar_make.MIN_CONTRAST * 0.8
    assert len({tuple(rgb[i, :, 0, 0] // 32) for i in range(50)}) > 10  # backgrounds vary


def test_same_seed_same_bytes_other_seed_other_bytes(fixtures, tmp_path):
    names = [*TRAIN_FILES, "test_batch.bin", "batches.meta.txt"]
    _make(fixtures, tmp_path / "a", seed=3)
    _make(fixtures, tmp_path / "b", seed=3)
    _make(fixtures, tmp_path / "c", seed=4)
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "test_batch.bin").read_bytes() != (tmp_path / "c" / "test_batch.bin").read_bytes()


def test_bad_arguments_are_refused(fixtures, tmp_path, capsys):
    # the committed subset has 600 training and 100 test images of every class
    argv = ["make-cifar", "--data", str(fixtures / "mnist-subset"), "--out", str(tmp_path / "x")]
    assert main([*argv, "--train-per-class", "2", "--test-per-class", "101"]) == 2
    err = capsys.readouterr().err
    assert "--test-per-class 101: MNIST test split" in err and "fewer than 101 requested" in err
    assert main([*argv, "--train-per-class", "601", "--test-per-class", "1"]) == 2
    assert "--train-per-class 601: MNIST train split" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    assert main([*argv, "--train-per-class", "0"]) == 2
    assert "--train-per-class must be positive" in capsys.readouterr().err
    assert main([*argv, "--data", str(tmp_path / "missing"), "--test-per-class", "1"]) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(DataError, match="single-channel"):
        cifar_make.colourise(np.zeros((1, 3, 28, 28), np.uint8), 0)
