import gzip
import struct
import sys
from functools import cache

import numpy as np
import pytest
import torch

from deai.learn.data import load_dataset
from deai.learn.errors import DataError, MissingData
from deai.learn.images import (
    FASHION_MNIST_CLASSES,
    fashion_mnist,
    fashion_mnist_dirs,
    find_idx_pair,
    load_idx,
    load_idx_dir,
    read_idx,
)

_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int16): 0x0B,
    np.dtype(np.int32): 0x0C,
    np.dtype(np.float32): 0x0D,
}


def _idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, _CODES[arr.dtype], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def _write(path, data: bytes):
    if path.name.endswith(".gz"):
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def _pair(folder, prefix, n=12, h=5, w=4, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, h, w), dtype=np.uint8)
    labels = (np.arange(n) % 3).astype(np.uint8)
    ext = ".gz" if gz else ""
    _write(folder / f"{prefix}-images-idx3-ubyte{ext}", _idx_bytes(images))
    _write(folder / f"{prefix}-labels-idx1-ubyte{ext}", _idx_bytes(labels))
    return images, labels


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.float32])
def test_read_idx_round_trips(tmp_path, gz, dtype):
    arr = (np.arange(2 * 3 * 5).reshape(2, 3, 5) * 7 % 251).astype(dtype)
    path = _write(tmp_path / ("a.idx.gz" if gz else "a.idx"), _idx_bytes(arr))
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.shape == arr.shape
    assert np.array_equal(out, arr)
    out[0, 0, 0] = 1  # a writable array in native byte order


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_refuses_truncated_padded_oversized_and_wrong_magic(tmp_path, gz):
    good = _idx_bytes(np.zeros((4, 3, 3), np.uint8))
    suffix = ".gz" if gz else ""
    cases = {
        "truncated": good[:-5],
        "trailing": good + b"\x00",
        "magic": b"\x01" + good[1:],
        "dtype": good[:2] + b"\x07" + good[3:],
        "rank": good[:3] + b"\x00" + good[4:],
        "header": good[:9],
        # declares 2**28 x 2**28 bytes while holding 36: refused before any allocation
        "huge": bytes([0, 0, 8, 2]) + struct.pack(">2I", 1 << 28, 1 << 28) + good[12:],
    }
    for what, data in cases.items():
        path = _write(tmp_path / f"{what}.idx{suffix}", data)
        with pytest.raises(DataError):
            read_idx(path)
    with pytest.raises(DataError, match="exceeds the bound"):
        read_idx(_write(tmp_path / f"ok.idx{suffix}", good), max_bytes=35)
    assert read_idx(tmp_path / f"ok.idx{suffix}", max_bytes=36).shape == (4, 3, 3)


def test_gzip_bomb_declaring_less_than_it_holds_is_refused(tmp_path):
    # a small header over a large decompressed stream: only the declared bytes plus one are read
    data = _idx_bytes(np.zeros((2, 2), np.uint8)) + b"\x00" * (8 << 20)
    with pytest.raises(DataError, match="trailing"):
        read_idx(_write(tmp_path / "bomb.idx.gz", data))


def test_read_idx_refuses_a_corrupt_gzip(tmp_path):
    path = tmp_path / "bad.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataError):
        read_idx(path)


def test_load_idx_and_idx_spec(tmp_path):
    images, labels = _pair(tmp_path, "train")
    _pair(tmp_path, "t10k", n=6, seed=1, gz=False)
    ds = load_dataset(f"idx:{tmp_path}")
    assert ds.x.shape == (12, 1, 5, 4) and ds.x.dtype == torch.float32
    assert ds.feature_shape == (1, 5, 4) and ds.num_classes == 3
    assert torch.allclose(ds.x[:, 0], torch.from_numpy(images).float() / 255)
    assert ds.y.tolist() == labels.tolist() and float(ds.x.max()) <= 1.0
    test = load_idx_dir(tmp_path, "test")
    assert len(test) == 6 and test.num_classes == 3
    with pytest.raises(DataError):
        load_dataset(f"idx:{tmp_path / 'train-images-idx3-ubyte.gz'}")  # a file, not a folder


def test_idx_folder_with_one_pair_of_any_prefix(tmp_path):
    _pair(tmp_path, "mydata", n=7)
    assert find_idx_pair(tmp_path, "test") is None
    assert len(load_dataset(f"idx:{tmp_path}")) == 7
    with pytest.raises(DataError, match="no test IDX pair"):
        load_idx_dir(tmp_path, "test")


def test_load_idx_refuses_mismatched_files(tmp_path):
    _write(tmp_path / "i.idx", _idx_bytes(np.zeros((3, 2, 2), np.uint8)))
    _write(tmp_path / "l.idx", _idx_bytes(np.zeros(4, np.uint8)))
    _write(tmp_path / "flat.idx", _idx_bytes(np.zeros((3, 4), np.uint8)))
    _write(tmp_path / "neg.idx", _idx_bytes(np.array([0, -1, 1], np.int16)))
    with pytest.raises(DataError, match="labels for 3 images"):
        load_idx(tmp_path / "i.idx", tmp_path / "l.idx")
    with pytest.raises(DataError, match=r"\[N, H, W\]"):
        load_idx(tmp_path / "flat.idx", tmp_path / "l.idx")
    with pytest.raises(DataError, match="non-negative"):
        load_idx(tmp_path / "i.idx", tmp_path / "neg.idx")


def test_missing_fashion_mnist_says_how_to_install(tmp_path, monkeypatch):
    with pytest.raises(MissingData, match="apt-get install -y dataset-fashion-mnist"):
        fashion_mnist(root=tmp_path)
    monkeypatch.setenv("DEAI_DATA_DIR", str(tmp_path))
    dirs = fashion_mnist_dirs()
    assert dirs[0] == tmp_path / "fashion-mnist"
    assert any(str(d).startswith(sys.prefix) for d in dirs)  # where `make install` extracts without root
    (tmp_path / "fashion-mnist").mkdir()
    _pair(tmp_path / "fashion-mnist", "t10k", n=5)
    assert len(fashion_mnist("test")) == 5  # DEAI_DATA_DIR comes first


def test_require_data_skips_but_fails_under_ci(require_data, monkeypatch):
    def absent():
        raise MissingData("x is not installed: apt-get install x")

    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install x"):
        require_data(absent)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_data(absent)
    assert require_data(lambda: 3) == 3


@cache
def _fashion(split):
    return fashion_mnist(split)


def test_fashion_mnist_train_and_test(require_data):
    train = require_data(lambda: _fashion("train"))
    assert train.x.shape == (60000, 1, 28, 28) and train.x.dtype == torch.float32
    assert train.num_classes == 10 and train.classes == FASHION_MNIST_CLASSES
    assert torch.bincount(train.y).tolist() == [6000] * 10  # balanced
    assert float(train.x.min()) == 0.0 and float(train.x.max()) == 1.0
    test = require_data(lambda: _fashion("test"))
    assert test.x.shape == (10000, 1, 28, 28) and torch.bincount(test.y).tolist() == [1000] * 10


def test_fashion_mnist_spec(require_data):
    ds = require_data(lambda: load_dataset("fashion_mnist"))
    assert len(ds) == 60000 and ds.feature_shape == (1, 28, 28) and ds.in_features == 784
