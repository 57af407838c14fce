"""Image datasets in the IDX format (MNIST, Fashion-MNIST and any user's own IDX files).

- :func:`read_idx` reads one IDX file (raw or ``.gz``) into a NumPy array, bounded: the header's
  magic, element type and rank are checked, every dimension is bounded, and the size the header
  declares must equal the bytes the file holds, so a foreign file can neither make the reader
  allocate more than it really holds nor pass off a truncated or padded payload.
- :func:`load_idx` pairs an images file (``[N, H, W]``) with a labels file (``[N]``) into a
  :class:`~deai.learn.data.Dataset` with ``x`` float32 ``[N, 1, H, W]`` in ``[0, 1]`` and ``y`` int64;
  :func:`load_idx_dir` finds the pair of one split (``train`` or ``t10k``) in a folder.
- :func:`fashion_mnist` finds Fashion-MNIST where it is installed (see :data:`FASHION_MNIST_INSTALL`)
  and raises :class:`~deai.learn.errors.MissingData` saying how to install it when it is not.

Labels keep their integer values: ``num_classes`` is the largest label plus one, so the train and
test parts of one set agree on the classes even when a part misses one.
"""

from __future__ import annotations

import gzip
import os
import struct
import sys
from io import BufferedIOBase
from pathlib import Path

import numpy as np
import torch

from deai.learn.data import Dataset
from deai.learn.errors import DataError, MissingData

__all__ = [
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_INSTALL",
    "IDX_MAX_BYTES",
    "fashion_mnist",
    "fashion_mnist_dirs",
    "find_idx_pair",
    "load_idx",
    "load_idx_dir",
    "read_idx",
]

IDX_MAX_BYTES = 1 << 30
"""Default bound on the payload of one IDX file (1 GiB; Fashion-MNIST's train images are 47 MB)."""

_MAX_RANK = 4
_MAX_DIM = 1 << 28
# IDX element type codes (third magic byte) and their big-endian NumPy dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CHUNK = 1 << 22

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

FASHION_MNIST_INSTALL = (
    "install the Debian package: `sudo apt-get install -y dataset-fashion-mnist` "
    "(files land in /usr/share/datasets/fashion-mnist), or without root: "
    "`apt-get download dataset-fashion-mnist && dpkg-deb -x dataset-fashion-mnist_*.deb "
    f"{Path(sys.prefix) / 'share' / 'deai-data'}` (`make install` does one of the two), or put the four "
    "IDX files (train-images-idx3-ubyte.gz, ...) in $DEAI_DATA_DIR/fashion-mnist"
)


def _read_exact(f: BufferedIOBase, n: int, what: str) -> bytearray:
    """Read exactly ``n`` bytes, growing the buffer only as data arrives (a header that lies about
    its size cannot make us allocate what the stream does not hold)."""
    buf = bytearray()
    while len(buf) < n:
        chunk = f.read(min(_CHUNK, n - len(buf)))
        if not chunk:
            raise DataError(f"{what}: truncated: the header declares {n} payload bytes, found {len(buf)}")
        buf += chunk
    return buf


def _parse_header(f: BufferedIOBase, what: str, max_bytes: int) -> tuple[np.dtype, tuple[int, ...], int]:
    magic = f.read(4)
    if len(magic) != 4 or magic[0] != 0 or magic[1] != 0:
        raise DataError(f"{what}: not an IDX file (magic {magic.hex() or 'missing'})")
    code, rank = magic[2], magic[3]
    if code not in _IDX_DTYPES:
        raise DataError(f"{what}: unknown IDX element type 0x{code:02x}")
    if not 1 <= rank <= _MAX_RANK:
        raise DataError(f"{what}: IDX rank {rank} outside 1..{_MAX_RANK}")
    raw = f.read(4 * rank)
    if len(raw) != 4 * rank:
        raise DataError(f"{what}: truncated IDX header")
    shape = struct.unpack(f">{rank}I", raw)
    if any(d > _MAX_DIM for d in shape):
        raise DataError(f"{what}: IDX dimension {max(shape)} exceeds {_MAX_DIM}")
    dtype = np.dtype(_IDX_DTYPES[code])
    size = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
    if size > max_bytes:
        raise DataError(f"{what}: the IDX payload of {size} bytes exceeds the bound of {max_bytes}")
    return dtype, shape, size


def read_idx(path: str | Path, *, max_bytes: int = IDX_MAX_BYTES) -> np.ndarray:
    """One IDX file as an array in native byte order (``.gz`` files are decompressed on the fly).

    Raises :class:`~deai.learn.errors.DataError` for a wrong magic, an unknown element type, a rank
    outside 1..4, a payload over ``max_bytes``, or a file whose bytes differ from the declared size
    (truncated, or with trailing data).
    """
    path = Path(path)
    what = str(path)
    if not path.is_file():
        raise DataError(f"{what}: no such file")
    compressed = path.name.endswith(".gz")
    try:
        with gzip.open(path, "rb") if compressed else path.open("rb") as f:
            dtype, shape, size = _parse_header(f, what, max_bytes)
            if not compressed:
                # a plain file's size is known before reading: refuse a mismatch up front
                actual = path.stat().st_size - 4 - 4 * len(shape)
                if actual != size:
                    raise DataError(
                        f"{what}: the header declares {size} payload bytes, the file holds {actual}"
                    )
            payload = _read_exact(f, size, what)
            if f.read(1):
                raise DataError(f"{what}: trailing data after the declared {size} payload bytes")
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{what}: cannot read ({exc})") from exc
    return np.frombuffer(payload, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def load_idx(
    images_path: str | Path,
    labels_path: str | Path,
    *,
    name: str | None = None,
    classes: tuple = (),
    max_bytes: int = IDX_MAX_BYTES,
) -> Dataset:
    """An image dataset from an IDX images file ``[N, H, W]`` and an IDX labels file ``[N]``.

    ``x`` is float32 ``[N, 1, H, W]``: unsigned-byte images are scaled to ``[0, 1]``, other element
    types are taken as they are (and must be finite). Labels must be non-negative integers;
    ``num_classes`` is ``max(label) + 1`` (at least 2). ``classes`` names the classes when known.
    """
    images = read_idx(images_path, max_bytes=max_bytes)
    labels = read_idx(labels_path, max_bytes=max_bytes)
    name = name or Path(images_path).name.split("-")[0]
    if images.ndim != 3:
        raise DataError(f"{images_path}: IDX images must be [N, H, W], got shape {images.shape}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DataError(f"{labels_path}: {labels.shape} labels for {images.shape[0]} images")
    if labels.dtype.kind not in "iu" or (labels.size and int(labels.min()) < 0):
        raise DataError(f"{labels_path}: labels must be non-negative integers")
    num_classes = max(int(labels.max()) + 1 if labels.size else 0, len(classes), 2)
    if classes and len(classes) != num_classes:
        raise DataError(f"{labels_path}: labels reach {num_classes - 1} but {len(classes)} classes are named")
    x = images.astype(np.float32)[:, None]
    if images.dtype == np.uint8:
        x /= 255.0
    return Dataset(
        torch.from_numpy(x),
        torch.from_numpy(labels.astype(np.int64)),
        num_classes,
        tuple(x.shape[1:]),
        name,
        tuple(classes) or tuple(range(num_classes)),
    )


_SPLIT_PREFIXES = {"train": ("train",), "test": ("t10k", "test")}


def find_idx_pair(folder: str | Path, split: str = "train") -> tuple[Path, Path] | None:
    """The ``(images, labels)`` files of ``split`` in ``folder``, or ``None`` when absent.

    Looks for ``{prefix}-images-idx3-ubyte[.gz]`` and ``{prefix}-labels-idx1-ubyte[.gz]`` with prefix
    ``train`` (split ``"train"``) or ``t10k``/``test`` (split ``"test"``); a folder holding exactly one
    images file and one labels file (any prefix) serves as the train split.
    """
    if split not in _SPLIT_PREFIXES:
        raise DataError(f"unknown split {split!r}; use 'train' or 'test'")
    folder = Path(folder)
    if not folder.is_dir():
        return None
    for prefix in _SPLIT_PREFIXES[split]:
        for ext in ("", ".gz"):
            images = folder / f"{prefix}-images-idx3-ubyte{ext}"
            labels = folder / f"{prefix}-labels-idx1-ubyte{ext}"
            if images.is_file() and labels.is_file():
                return images, labels
    if split == "train":
        images_any = sorted(folder.glob("*-images-idx3-ubyte*"))
        labels_any = sorted(folder.glob("*-labels-idx1-ubyte*"))
        if len(images_any) == 1 and len(labels_any) == 1:
            return images_any[0], labels_any[0]
    return None


def load_idx_dir(
    folder: str | Path, split: str = "train", *, name: str | None = None, classes: tuple = ()
) -> Dataset:
    """The ``split`` of the IDX files in ``folder`` (see :func:`find_idx_pair` for the file names)."""
    pair = find_idx_pair(folder, split)
    if pair is None:
        raise DataError(
            f"{folder}: no {split} IDX pair (expected e.g. {_SPLIT_PREFIXES[split][0]}-images-idx3-ubyte.gz "
            f"and {_SPLIT_PREFIXES[split][0]}-labels-idx1-ubyte.gz)"
        )
    return load_idx(*pair, name=name or f"{Path(folder).name}-{split}", classes=classes)


def fashion_mnist_dirs(root: str | Path | None = None) -> list[Path]:
    """Where :func:`fashion_mnist` looks, in order: ``root`` alone when given; otherwise
    ``$DEAI_DATA_DIR/fashion-mnist``, ``/usr/share/datasets/fashion-mnist`` (the Debian package) and
    ``<venv>/share/deai-data/usr/share/datasets/fashion-mnist`` (the package extracted without root)."""
    if root is not None:
        return [Path(root).expanduser()]
    dirs = []
    if os.environ.get("DEAI_DATA_DIR"):
        dirs.append(Path(os.environ["DEAI_DATA_DIR"]).expanduser() / "fashion-mnist")
    dirs.append(Path("/usr/share/datasets/fashion-mnist"))
    dirs.append(Path(sys.prefix) / "share" / "deai-data" / "usr" / "share" / "datasets" / "fashion-mnist")
    return dirs


def fashion_mnist(split: str = "train", root: str | Path | None = None) -> Dataset:
    """Fashion-MNIST's ``split`` (``"train"``: 60,000 images, ``"test"``: 10,000), 28x28 grey images
    as ``x`` float32 ``[N, 1, 28, 28]`` in ``[0, 1]``, 10 classes (:data:`FASHION_MNIST_CLASSES`).

    Raises :class:`~deai.learn.errors.MissingData` with the install command when no folder of
    :func:`fashion_mnist_dirs` holds the files. Loading takes about 2 s on a 2-core machine.
    """
    dirs = fashion_mnist_dirs(root)
    for d in dirs:
        if find_idx_pair(d, split) is not None:
            return load_idx_dir(d, split, name=f"fashion_mnist-{split}", classes=FASHION_MNIST_CLASSES)
    raise MissingData(
        f"Fashion-MNIST ({split}) not found in {', '.join(map(str, dirs))}; {FASHION_MNIST_INSTALL}"
    )
