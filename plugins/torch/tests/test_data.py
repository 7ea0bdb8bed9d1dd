"""Dataset readers: IDX (gz and raw), CIFAR-10 (python and binary), ImageFolder, and the committed subset."""

import gzip
import pickle
import struct
import zlib

import numpy as np
import pytest
from aegis_torch import data
from aegis_torch.data import DataError


def test_committed_mnist_subset_has_every_class(fixtures):
    tr = data.load("mnist", fixtures / "mnist-subset", "train")
    te = data.load("mnist", fixtures / "mnist-subset", "test")
    assert tr.shape == (1, 28, 28)
    assert np.array_equal(np.bincount(tr.labels, minlength=10), np.full(10, 600))
    assert np.array_equal(np.bincount(te.labels, minlength=10), np.full(10, 100))
    assert 0.05 < tr.float_images().mean() < 0.25


def test_idx_round_trip_gz_and_raw(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    data.write_idx(tmp_path / "a.gz", arr)
    data.write_idx(tmp_path / "b", arr)
    assert np.array_equal(data.read_idx(tmp_path / "a.gz"), arr)
    assert np.array_equal(data.read_idx(tmp_path / "b"), arr)
    # a name without .gz finds the .gz file and vice versa
    assert np.array_equal(data.read_idx(tmp_path / "a"), arr)
    assert np.array_equal(data.read_idx(tmp_path / "b.gz"), arr)


def test_mnist_raw_files(tmp_path):
    imgs = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    for prefix in ("train", "t10k"):
        data.write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", imgs)
        data.write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", np.arange(5, dtype=np.uint8))
    ds = data.load("fashion-mnist", tmp_path, "test")
    assert ds.images.shape == (5, 1, 28, 28) and np.array_equal(ds.images[:, 0], imgs)


def test_idx_errors_name_the_file(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(DataError, match="bad magic"):
        data.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"abc")
    with pytest.raises(DataError, match="need 10 bytes"):
        data.read_idx(tmp_path / "short")
    with pytest.raises(DataError, match="not found"):
        data.read_idx(tmp_path / "nothing.gz")
    with pytest.raises(DataError, match="unknown dataset format"):
        data.load("svhn", tmp_path, "train")


def test_cifar10_python_and_binary(tmp_path):
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        imgs = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
        with open(tmp_path / name, "wb") as f:
            pickle.dump({b"data": imgs, b"labels": [1, 2, 3]}, f)
    ds = data.load("cifar10", tmp_path, "train")
    assert ds.images.shape == (15, 3, 32, 32) and ds.labels.tolist() == [1, 2, 3] * 5
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    rec = np.concatenate([np.array([[4], [9]], np.uint8), rng.integers(0, 256, (2, 3072), dtype=np.uint8)], 1)
    (bin_dir / "test_batch.bin").write_bytes(rec.tobytes())
    te = data.load("cifar10", bin_dir, "test")
    assert te.labels.tolist() == [4, 9] and np.array_equal(te.images[1].ravel(), rec[1, 1:])
    (bin_dir / "test_batch.bin").write_bytes(b"x" * 100)
    with pytest.raises(DataError, match="multiple of 3073"):
        data.load("cifar10", bin_dir, "test")


def _png(path, img, filt):
    h, w, c = img.shape
    ctype = {1: 0, 3: 2, 4: 6}[c]
    rows = b""
    prev = np.zeros(w * c, np.int32)
    for r in range(h):
        line = img[r].reshape(-1).astype(np.int32)
        left = np.concatenate([np.zeros(c, np.int32), line[:-c]])
        upleft = np.concatenate([np.zeros(c, np.int32), prev[:-c]])
        if filt == 1:
            enc = (line - left) & 0xFF
        elif filt == 3:
            enc = (line - (left + prev) // 2) & 0xFF
        elif filt == 4:
            p = left + prev - upleft
            pa, pb, pc = np.abs(p - left), np.abs(p - prev), np.abs(p - upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
            enc = (line - pred) & 0xFF
        elif filt == 2:
            enc = (line - prev) & 0xFF
        else:
            enc = line
        rows += bytes([filt]) + enc.astype(np.uint8).tobytes()
        prev = line

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, ctype, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("filt", [0, 1, 2, 3, 4])
def test_imagefolder_png_and_npy(tmp_path, filt):
    rng = np.random.default_rng(filt)
    want = {}
    for cls in ("cat", "dog"):
        (tmp_path / "train" / cls).mkdir(parents=True)
        img = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
        _png(tmp_path / "train" / cls / "a.png", img, filt)
        np.save(tmp_path / "train" / cls / "b.npy", img.transpose(2, 0, 1).copy())
        want[cls] = img.transpose(2, 0, 1)
    ds = data.load("imagefolder", tmp_path, "train")
    assert ds.classes == ["cat", "dog"] and ds.labels.tolist() == [0, 0, 1, 1]
    assert np.array_equal(ds.images[0], want["cat"]) and np.array_equal(ds.images[3], want["dog"])


def test_imagefolder_errors(tmp_path):
    with pytest.raises(DataError, match="no class sub-folders"):
        data.load("imagefolder", tmp_path, "train")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="not a PNG"):
        data.load("imagefolder", tmp_path, "train")


def test_gz_corruption_is_named(tmp_path):
    (tmp_path / "c.gz").write_bytes(gzip.compress(b"abcdef")[:10])
    with pytest.raises(DataError, match="corrupt gzip"):
        data.read_idx(tmp_path / "c.gz")


def test_held_out_subset_comes_from_the_test_split_only(fixtures, tmp_path, capsys):
    from aegis_torch.cli import main

    out = tmp_path / "held"
    args = ["make-subset", "--data", str(fixtures / "mnist-subset"), "--held-out-per-class", "7", "--seed", "3"]
    assert main([*args, "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["heldout-images-idx3-ubyte.gz", "heldout-labels-idx1-ubyte.gz"]
    images = data.read_idx(out / "heldout-images-idx3-ubyte.gz")
    labels = data.read_idx(out / "heldout-labels-idx1-ubyte.gz")
    assert images.shape == (70, 28, 28) and np.array_equal(np.bincount(labels, minlength=10), np.full(10, 7))
    te = data.load("mnist", fixtures / "mnist-subset", "test")
    test_rows = {te.images[i, 0].tobytes(): int(te.labels[i]) for i in range(len(te))}
    assert all(test_rows.get(img.tobytes()) == int(lab) for img, lab in zip(images, labels))
    # seeded: the same seed draws the same images, another seed others
    again, other = tmp_path / "again", tmp_path / "other"
    assert main([*args, "--out", str(again)]) == 0
    assert main([*args[:-1], "4", "--out", str(other)]) == 0
    assert np.array_equal(data.read_idx(again / "heldout-images-idx3-ubyte.gz"), images)
    assert not np.array_equal(data.read_idx(other / "heldout-images-idx3-ubyte.gz"), images)
    capsys.readouterr()
