"""Datasets: loaders, seeded stratified splits and standardization.

A :class:`Dataset` holds one of two kinds of samples, told apart by ``x``'s dtype:

- **features** (``x`` float32): ``[N, F]`` flat rows or ``[N, C, H, W]`` images (any ``[N, *shape]``;
  ``feature_shape`` is ``shape``, or ``(C, H, W)`` for images kept flat so a model can restore them),
  with integer labels ``y`` int64 ``[N]`` in ``0..num_classes-1``;
- **token windows** (``x`` int64 ``[N, T]``): ``T`` token ids in ``0..num_classes-1`` (the vocabulary)
  per sample, and next-token targets ``y`` int64 ``[N, T]`` (``x`` shifted by one; see
  :mod:`deai.learn.text`). ``feature_shape`` is ``(T,)``.

:func:`load_dataset` understands:

- ``"digits"``, ``"wine"``, ``"breast_cancer"``: scikit-learn's bundled datasets (no download);
- ``"csv:PATH"``, ``"parquet:PATH"``: a table; ``label`` names the label column, every other column
  must be numeric;
- ``"npz:PATH"``: a NumPy archive with a feature array ``x`` (or ``X``) and a label array named by
  ``label`` (or ``y``); loaded with ``allow_pickle=False``;
- ``"images:DIR"``: an image folder with one sub-folder per class (sorted names are the classes),
  read with Pillow, resized to one size, scaled to ``[0, 1]``;
- ``"fashion_mnist"``: Fashion-MNIST's 60,000 training images as ``[N, 1, 28, 28]`` in ``[0, 1]``, 10
  classes, from the Debian package ``dataset-fashion-mnist`` (a
  :class:`~deai.learn.errors.MissingData` error says how to install it); the 10,000 test images are
  ``deai.learn.images.fashion_mnist("test")``;
- ``"idx:DIR"``: a folder of IDX files (``train-images-idx3-ubyte[.gz]`` and
  ``train-labels-idx1-ubyte[.gz]``, or a single images/labels pair of any prefix) as ``[N, 1, H, W]``;
  the ``t10k`` pair is ``deai.learn.images.load_idx_dir(DIR, "test")``.

Text corpora (``"text:PATH"``, ``"shakespeare"``, ``"kjv"``) are not datasets: they load with
:func:`deai.learn.text.load_corpus` and become token windows with :func:`deai.learn.text.token_windows`.

Labels of any type are mapped to ``0..C-1`` in sorted order; ``classes`` keeps the original values.
:func:`prepare` is the usual pipeline: load, split (train/validation/test), standardize on train.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from deai.learn.errors import DataError

__all__ = [
    "BUILTIN",
    "Dataset",
    "Splits",
    "Standardizer",
    "load_dataset",
    "prepare",
    "split_dataset",
    "standardize",
]

BUILTIN = ("digits", "wine", "breast_cancer", "fashion_mnist")
_PATH_KINDS = ("csv", "npz", "parquet", "images", "idx")
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


@dataclass(frozen=True)
class Dataset:
    """Samples ``x`` (float32 features or int64 token windows), targets ``y`` (int64) and what
    describes them (see the module docstring)."""

    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    feature_shape: tuple[int, ...]
    name: str = "dataset"
    classes: tuple = field(default=())

    def __post_init__(self) -> None:
        what = f"dataset {self.name!r}"
        if self.x.dim() < 2 or self.y.dim() not in (1, 2) or self.x.shape[0] != self.y.shape[0]:
            raise DataError(f"{what}: x {tuple(self.x.shape)} and y {tuple(self.y.shape)} differ")
        if self.y.dtype != torch.int64 or self.x.dtype not in (torch.float32, torch.int64):
            raise DataError(f"{what}: x must be float32 (features) or int64 (tokens) and y int64")
        if int(np.prod(self.feature_shape)) != int(np.prod(self.x.shape[1:])):
            raise DataError(f"{what}: feature_shape {self.feature_shape} != {tuple(self.x.shape[1:])}")
        if self.is_tokens:
            if self.x.dim() != 2 or self.y.shape != self.x.shape:
                raise DataError(f"{what}: token windows x and targets y must both be [N, T]")
            for t in (self.x, self.y):
                if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.num_classes):
                    raise DataError(f"{what}: token ids outside 0..{self.num_classes - 1}")
            return
        if self.y.dim() != 1:
            raise DataError(f"{what}: labels must be [N], got {tuple(self.y.shape)}")
        if len(self.y) and (int(self.y.min()) < 0 or int(self.y.max()) >= self.num_classes):
            raise DataError(f"{what}: labels outside 0..{self.num_classes - 1}")
        if not bool(torch.isfinite(self.x).all()):
            raise DataError(f"{what}: features hold NaN or infinity")

    @property
    def is_tokens(self) -> bool:
        """Token windows (next-token targets) rather than labelled features."""
        return self.x.dtype == torch.int64

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def in_features(self) -> int:
        """Features per sample (``C*H*W`` for images), or the window length ``T`` of token data."""
        return int(np.prod(self.x.shape[1:]))

    def subset(self, index: torch.Tensor | np.ndarray | list[int]) -> Dataset:
        """The samples at ``index`` (in that order), same metadata."""
        idx = torch.as_tensor(np.asarray(index, dtype=np.int64))
        return Dataset(
            self.x[idx], self.y[idx], self.num_classes, self.feature_shape, self.name, self.classes
        )

    def replace(self, x: torch.Tensor | None = None, y: torch.Tensor | None = None) -> Dataset:
        """A copy with new features and/or labels (attacks use this to poison a provider's data)."""
        return Dataset(
            self.x if x is None else x,
            self.y if y is None else y,
            self.num_classes,
            self.feature_shape,
            self.name,
            self.classes,
        )


def _encode_labels(raw: np.ndarray, what: str) -> tuple[torch.Tensor, tuple]:
    if raw.ndim != 1:
        raise DataError(f"{what}: labels must be one-dimensional, got shape {raw.shape}")
    if raw.dtype.kind == "f" and not np.isfinite(raw).all():
        raise DataError(f"{what}: labels hold NaN or infinity")
    if raw.dtype.kind == "O":  # e.g. a string label column: an empty cell reads as NaN
        missing = [i for i, v in enumerate(raw) if v is None or (isinstance(v, float) and v != v)]
        if missing:
            raise DataError(
                f"{what}: {len(missing)} label(s) missing (empty or NaN), the first at row {missing[0]};"
                " drop or fill those rows"
            )
        if len({type(v) for v in raw}) > 1:
            raise DataError(f"{what}: labels mix types ({sorted({type(v).__name__ for v in raw})})")
    classes, codes = np.unique(raw, return_inverse=True)
    if len(classes) < 2:
        raise DataError(f"{what}: needs at least two classes, found {len(classes)}")
    return torch.as_tensor(codes.astype(np.int64)), tuple(
        c.item() if hasattr(c, "item") else c for c in classes
    )


def _from_arrays(x: np.ndarray, y: np.ndarray, name: str, shape: tuple[int, ...] | None = None) -> Dataset:
    if x.ndim < 2:
        raise DataError(f"{name}: features must have a sample axis and at least one feature axis")
    if x.shape[0] != y.shape[0]:
        raise DataError(f"{name}: {x.shape[0]} feature rows but {y.shape[0]} labels")
    if x.dtype.kind not in "biuf":
        raise DataError(f"{name}: features must be numeric, got dtype {x.dtype}")
    feature_shape = tuple(shape or x.shape[1:])
    flat = torch.as_tensor(np.ascontiguousarray(x.reshape(x.shape[0], -1), dtype=np.float32))
    if not bool(torch.isfinite(flat).all()):
        raise DataError(f"{name}: features hold NaN or infinity")
    labels, classes = _encode_labels(np.asarray(y), name)
    return Dataset(flat, labels, len(classes), feature_shape, name, classes)


def _builtin(name: str) -> Dataset:
    from sklearn import datasets as skd

    bunch = {"digits": skd.load_digits, "wine": skd.load_wine, "breast_cancer": skd.load_breast_cancer}[
        name
    ]()
    shape = (1, 8, 8) if name == "digits" else None
    return _from_arrays(np.asarray(bunch.data), np.asarray(bunch.target), name, shape)


def _table(frame, label: str, name: str) -> Dataset:
    if label not in frame.columns:
        raise DataError(f"{name}: no label column {label!r}; columns are {list(frame.columns)}")
    features = frame.drop(columns=[label])
    bad = [c for c in features.columns if features[c].dtype.kind not in "biuf"]
    if bad:
        raise DataError(f"{name}: non-numeric feature columns {bad}; encode them first")
    if features.shape[1] == 0:
        raise DataError(f"{name}: no feature columns besides {label!r}")
    if features.isna().to_numpy().any():
        raise DataError(f"{name}: missing values in the features")
    return _from_arrays(features.to_numpy(), frame[label].to_numpy(), name)


def _npz(path: Path, label: str) -> Dataset:
    with np.load(path, allow_pickle=False) as archive:
        keys = set(archive.files)
        xkey = next((k for k in ("x", "X", "features") if k in keys), None)
        ykey = next((k for k in (label, "y") if k in keys), None)
        if xkey is None or ykey is None:
            raise DataError(f"{path}: needs arrays 'x' and {label!r} (or 'y'); found {sorted(keys)}")
        return _from_arrays(archive[xkey], archive[ykey], path.name)


def _images(root: Path, image_size: tuple[int, int] | None) -> Dataset:
    from PIL import Image, UnidentifiedImageError

    class_dirs = sorted(p for p in root.iterdir() if p.is_dir())
    if len(class_dirs) < 2:
        raise DataError(f"{root}: an image folder needs one sub-folder per class (at least two)")
    files = [
        (f, label)
        for label, d in enumerate(class_dirs)
        for f in sorted(d.iterdir())
        if f.is_file() and f.suffix.lower() in _IMAGE_SUFFIXES
    ]
    if not files:
        raise DataError(f"{root}: no images found")
    arrays, labels, mode, size = [], [], None, image_size
    for f, label in files:
        try:
            with Image.open(f) as img:
                if mode is None:
                    mode = "L" if img.mode in ("1", "L", "I", "I;16", "F") else "RGB"
                    size = size or img.size
                assert size is not None  # set from the first image when not given
                arrays.append(np.asarray(img.convert(mode).resize(size, Image.Resampling.BILINEAR)))
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"{f}: not a readable image ({exc})") from exc
        labels.append(label)
    x = np.stack(arrays).astype(np.float32) / 255.0
    x = x[:, None] if mode == "L" else x.transpose(0, 3, 1, 2)  # to (N, C, H, W)
    y = np.asarray([class_dirs[i].name for i in labels])
    return _from_arrays(x, y, root.name)


def load_dataset(spec: str, label: str = "label", *, image_size: tuple[int, int] | None = None) -> Dataset:
    """Load a dataset by name or ``kind:PATH`` spec (see the module docstring)."""
    if spec == "fashion_mnist":
        from deai.learn.images import fashion_mnist  # images.py imports this module

        return fashion_mnist("train")
    if spec in BUILTIN:
        return _builtin(spec)
    kind, sep, rest = spec.partition(":")
    if not sep or kind not in _PATH_KINDS:
        kinds = "/".join(f"{k}:" for k in _PATH_KINDS)
        raise DataError(f"unknown dataset {spec!r}; use one of {BUILTIN} or {kinds} paths")
    path = Path(rest).expanduser()
    if not path.exists():
        raise DataError(f"{spec}: {path} does not exist")
    if kind in ("images", "idx") and not path.is_dir():
        raise DataError(f"{spec}: {'an image' if kind == 'images' else 'an IDX'} folder must be a directory")
    if kind == "images":
        return _images(path, image_size)
    if kind == "idx":
        from deai.learn.images import load_idx_dir

        return load_idx_dir(path, "train")
    if kind == "npz":
        return _npz(path, label)
    import pandas as pd

    try:
        frame = pd.read_csv(path) if kind == "csv" else pd.read_parquet(path)
    except (ValueError, OSError) as exc:
        raise DataError(f"{spec}: cannot read ({exc})") from exc
    return _table(frame, label, path.name)


@dataclass(frozen=True)
class Splits:
    """Train, validation and test parts of one dataset."""

    train: Dataset
    val: Dataset
    test: Dataset


def split_dataset(data: Dataset, val: float = 0.1, test: float = 0.2, seed: int = 0) -> Splits:
    """Stratified seeded split: every class is split in the same proportions.

    Each part gets ``round(fraction * class_count)`` samples of each class; train gets the rest.
    Token windows are split the same way as one class.
    """
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise DataError(f"bad split fractions val={val}, test={test}")
    rng = np.random.default_rng(seed)
    parts: tuple[list, list, list] = ([], [], [])
    # token windows have no class to stratify by: one group of every sample
    y = np.zeros(len(data), np.int64) if data.is_tokens else data.y.numpy()
    for c in range(1 if data.is_tokens else data.num_classes):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(len(idx))]
        n_val, n_test = round(val * len(idx)), round(test * len(idx))
        parts[1].append(idx[:n_val])
        parts[2].append(idx[n_val : n_val + n_test])
        parts[0].append(idx[n_val + n_test :])
    out = []
    for chunks in parts:
        idx = np.concatenate(chunks) if chunks else np.zeros(0, np.int64)
        out.append(data.subset(idx[rng.permutation(len(idx))]))
    return Splits(*out)


@dataclass(frozen=True)
class Standardizer:
    """Per-feature ``(x - mean) / std`` fitted on training data; constant features keep std 1."""

    mean: torch.Tensor
    std: torch.Tensor

    @classmethod
    def fit(cls, data: Dataset) -> Standardizer:
        if len(data) == 0:
            raise DataError("cannot fit a standardizer on an empty dataset")
        if data.is_tokens:
            raise DataError("token windows are not standardized")
        mean = data.x.mean(0)
        std = data.x.std(0, correction=0)
        return cls(mean, torch.where(std > 1e-8, std, torch.ones_like(std)))

    def __call__(self, data: Dataset) -> Dataset:
        return data.replace(x=((data.x - self.mean) / self.std).contiguous())


def standardize(train: Dataset, *others: Dataset) -> tuple[Dataset, ...]:
    """Standardize ``train`` and ``others`` with statistics fitted on ``train`` only."""
    s = Standardizer.fit(train)
    return (s(train), *(s(o) for o in others))


def prepare(
    spec: str,
    *,
    label: str = "label",
    val: float = 0.1,
    test: float = 0.2,
    seed: int = 0,
    scale: bool = True,
) -> Splits:
    """Load, split and (if ``scale``) standardize on the training part: the usual pipeline."""
    splits = split_dataset(load_dataset(spec, label), val=val, test=test, seed=seed)
    if not scale:
        return splits
    return Splits(*standardize(splits.train, splits.val, splits.test))
