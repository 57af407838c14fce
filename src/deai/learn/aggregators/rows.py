"""Row sources: ``n`` update vectors of ``d`` values, read in column chunks over the parameter axis.

Every aggregator reduces through a :class:`Rows` source instead of a stacked ``[n, d]`` tensor, so
one engine serves both an in-memory stack (:class:`TensorRows`, what ``Aggregator.__call__(tensor)``
wraps) and updates that stay in safetensors files (:class:`FileRows`, what the ``aggregate`` job
uses): only one ``[n, chunk]`` block is held at a time, so peak memory is O(d + n * chunk) plus
O(n^2) for pairwise geometry, instead of O(n * d).

A source yields ``(lo, hi, block)`` for consecutive column ranges of :attr:`Rows.chunk` columns
(:data:`CHUNK` unless chosen); each block is a contiguous ``[n, hi - lo]`` tensor, to be read, not
written, and valid only until the next block is read (a file source reads every block into one
reused buffer): copy what must outlive it. The loops below drop each block and its temporaries
before the next is read, so a pass holds about one block, not two.

The reductions built on it (:meth:`Rows.gram`, :meth:`Rows.sq_norms`, :meth:`Rows.sq_distances_to`,
:meth:`Rows.dots`, :meth:`Rows.weighted_sum`, :meth:`Rows.mean`, :meth:`Rows.columns`) do the same
float operations on the same blocks whatever the source, so a file-backed and an in-memory source
with the same chunk size give the same bits on one machine. Within a block,
products and sums are in the rows' dtype (float32 for updates); the sums over blocks (Gram
matrices, norms, dot products) accumulate in float64.

Derived sources (:meth:`Rows.map`, :meth:`Rows.select`) are lazy: a pre-aggregator's mixed or
selected rows are computed block by block from the source, once per pass.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence

import torch

from deai.core.errors import TensorError
from deai.core.tensorio import TensorFile
from deai.learn.errors import BadUpdates

__all__ = ["CHUNK", "FileRows", "MappedRows", "Rows", "TensorRows", "all_finite"]

CHUNK = 1 << 20
"""Columns per block (4 MiB of float32 per row): large enough that per-block overhead vanishes,
small enough that ``n`` rows of it stay far below one row of a large model."""


def all_finite(v: torch.Tensor) -> bool:
    """Whether every entry of ``v`` is finite, without a temporary the size of ``v`` in the common
    case: a finite sum proves it (NaN or infinity would propagate); only a non-finite sum (which a
    sum of large finite values can also give) is checked entry by entry, a block at a time."""
    if bool(torch.isfinite(v.sum())):
        return True
    flat = v.reshape(-1)
    return all(bool(torch.isfinite(flat[i : i + CHUNK]).all()) for i in range(0, flat.numel(), CHUNK))


class Rows(ABC):
    """``n`` rows of ``d`` values of ``dtype``, read ``chunk`` columns at a time."""

    # Whether reading a block already refuses NaN/inf (files check what they read), so callers
    # need no separate finiteness pass.
    checks_on_read: bool = False

    def __init__(self, n: int, d: int, dtype: torch.dtype, chunk: int = CHUNK) -> None:
        if chunk < 1:
            raise ValueError("chunk must be at least 1")
        self.n, self.d, self.dtype, self.chunk = n, d, dtype, chunk

    @abstractmethod
    def block(self, lo: int, hi: int) -> torch.Tensor:
        """Columns ``[lo, hi)`` of every row: a contiguous ``[n, hi - lo]`` tensor (do not modify)."""

    def chunks(self) -> Iterator[tuple[int, int, torch.Tensor]]:
        """``(lo, hi, block)`` over the columns, :attr:`chunk` at a time."""
        for lo in range(0, self.d, self.chunk):
            hi = min(self.d, lo + self.chunk)
            yield lo, hi, self.block(lo, hi)

    def scratch(self, rows: int | None = None) -> Callable[[int], torch.Tensor]:
        """A temporary for one pass: ``get(c)`` is a contiguous ``[rows, c]`` view (``rows``
        defaults to :attr:`n`) of one buffer allocated once, so a pass does not fault in fresh
        pages for every block (the next ``get`` overwrites it)."""
        m = self.n if rows is None else rows
        buf = torch.empty(m * min(self.chunk, self.d), dtype=self.dtype)
        return lambda c: buf[: m * c].view(m, c)

    # -- derived sources ---------------------------------------------------------------------------

    def map(self, m: int, fn: Callable[[torch.Tensor], torch.Tensor]) -> MappedRows:
        """``m`` rows computed block by block as ``fn(block)`` (``[n, c] -> [m, c]``, column-wise)."""
        return MappedRows(self, m, fn)

    def select(self, index: torch.Tensor | Sequence[int]) -> Rows:
        """The rows at ``index`` (in that order); the source itself when that is every row in order."""
        idx = torch.as_tensor(index, dtype=torch.long)
        if idx.numel() == self.n and bool((idx == torch.arange(self.n)).all()):
            return self
        return MappedRows(self, idx.numel(), lambda block: block[idx])

    def materialize(self) -> torch.Tensor:
        """The whole ``[n, d]`` stack (O(n d) memory: for small sources and inspection only)."""
        out = torch.empty(self.n, self.d, dtype=self.dtype)
        for lo, hi, block in self.chunks():
            out[:, lo:hi] = block
            del block
        return out

    # -- reductions --------------------------------------------------------------------------------

    def columns(self, fn: Callable[[torch.Tensor, int, int], torch.Tensor]) -> torch.Tensor:
        """A ``[d]`` vector assembled from ``fn(block, lo, hi) -> [hi - lo]`` over the blocks."""
        out = torch.empty(self.d, dtype=self.dtype)
        for lo, hi, block in self.chunks():
            out[lo:hi] = fn(block, lo, hi)
            del block
        return out

    def mean(self) -> torch.Tensor:
        """The plain mean of the rows, ``[d]``."""
        return self.columns(lambda block, lo, hi: block.mean(0))

    def weighted_sum(self, w: torch.Tensor) -> torch.Tensor:
        """``sum_i w_i x_i``, ``[d]`` (``w`` cast to the rows' dtype)."""
        w = w.to(self.dtype)
        return self.columns(lambda block, lo, hi: w @ block)

    def gram(self, *, centred: bool = False) -> torch.Tensor:
        """``[n, n]`` float64 dot products of the rows (of the rows minus their mean if ``centred``:
        centring is per coordinate, so it is exact block by block). Each block's product is float32
        (the rows' dtype); blocks are summed in float64."""
        g = torch.zeros(self.n, self.n, dtype=torch.float64)
        tmp = self.scratch()
        for lo, hi, block in self.chunks():
            b = torch.sub(block, block.mean(0, keepdim=True), out=tmp(hi - lo)) if centred else block
            g += (b @ b.T).double()
            del b, block
        return g

    def sq_norms(self) -> torch.Tensor:
        """``||x_i||^2``, ``[n]``: per block in the rows' dtype (no temporary the size of the
        block), summed over blocks in float64."""
        acc = torch.zeros(self.n, dtype=torch.float64)
        for _, _, block in self.chunks():
            acc += block.norm(dim=1).double().square()  # no temporary; faster than a product
            del block
        return acc

    def sq_distances_to(self, v: torch.Tensor) -> torch.Tensor:
        """``||x_i - v||^2`` from explicit differences (no cancellation), ``[n]``: per block in the
        rows' dtype, summed over blocks in float64."""
        v = v.to(self.dtype)
        acc = torch.zeros(self.n, dtype=torch.float64)
        tmp = self.scratch()
        for lo, hi, block in self.chunks():
            diff = torch.sub(block, v[lo:hi], out=tmp(hi - lo))
            acc += diff.norm(dim=1).double().square()
            del diff, block
        return acc

    def dots(self, v: torch.Tensor) -> torch.Tensor:
        """``<x_i, v>`` in float64, ``[n]``."""
        v = v.to(self.dtype)
        acc = torch.zeros(self.n, dtype=torch.float64)
        for lo, hi, block in self.chunks():
            acc += (block @ v[lo:hi]).double()
            del block
        return acc

    def non_finite_rows(self) -> list[int]:
        """Indices of rows holding NaN or infinity (one streamed pass)."""
        bad = torch.zeros(self.n, dtype=torch.bool)
        for _, _, block in self.chunks():
            bad |= ~torch.isfinite(block).all(1)
            del block
        return bad.nonzero().flatten().tolist()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={self.n}, d={self.d}, chunk={self.chunk})"


class TensorRows(Rows):
    """An in-memory ``[n, d]`` floating tensor as a row source: the tensor itself when one block
    covers it, else each column range copied into one reused contiguous buffer -- the same
    contiguous blocks a file source yields, so the same kernels give the same bits."""

    def __init__(self, updates: torch.Tensor, chunk: int = CHUNK) -> None:
        super().__init__(updates.shape[0], updates.shape[1], updates.dtype, chunk)
        self.updates = updates.detach()
        self._buffer: Callable[[int], torch.Tensor] | None = None

    def block(self, lo: int, hi: int) -> torch.Tensor:
        if lo == 0 and hi == self.d and self.updates.is_contiguous():
            return self.updates
        if self._buffer is None:
            self._buffer = self.scratch()
        return self._buffer(hi - lo).copy_(self.updates[:, lo:hi])

    def materialize(self) -> torch.Tensor:
        return self.updates


class MappedRows(Rows):
    """``m`` rows derived block by block from a source by a column-wise ``fn`` (see :meth:`Rows.map`)."""

    def __init__(self, base: Rows, m: int, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__(m, base.d, base.dtype, base.chunk)
        self.base, self.fn = base, fn
        self.checks_on_read = base.checks_on_read

    def block(self, lo: int, hi: int) -> torch.Tensor:
        return self.fn(self.base.block(lo, hi)).contiguous()


class FileRows(Rows):
    """One row per safetensors file, each flattened as :class:`~deai.core.tensorio.TensorFile`
    does (tensors in name order, cast to float32); blocks are read with positioned reads into one
    reused ``[n, chunk]`` buffer, so the files are never held whole (nor memory-mapped) in the
    process.

    Every file must have the first one's layout (names, shapes, dtypes), else :class:`BadUpdates`
    naming it. Reading a block that holds NaN or infinity raises :class:`BadUpdates` naming the
    file by its ``labels`` entry (e.g. ``"input 3 (ab12...)"``). The files stay the caller's to
    close.
    """

    checks_on_read = True

    def __init__(
        self, files: Sequence[TensorFile], labels: Sequence[str] | None = None, chunk: int = CHUNK
    ) -> None:
        if not files:
            raise BadUpdates("a file row source needs at least one file")
        self.labels = list(labels) if labels is not None else [f.what for f in files]
        if len(self.labels) != len(files):
            raise ValueError("one label per file")
        spec = files[0].spec
        for label, f in zip(self.labels[1:], files[1:], strict=True):
            if f.spec != spec:
                raise BadUpdates(f"{label} has another layout than {self.labels[0]}")
        super().__init__(len(files), files[0].size, torch.float32, chunk)
        self.files = list(files)
        self._buffer: torch.Tensor | None = None

    def block(self, lo: int, hi: int) -> torch.Tensor:
        if self._buffer is None:  # one buffer for every block: a pass never holds two
            self._buffer = torch.empty(self.n * min(self.chunk, self.d), dtype=torch.float32)
        out = self._buffer[: self.n * (hi - lo)].view(self.n, hi - lo)
        for i, f in enumerate(self.files):
            try:
                f.read(lo, hi, out=out[i])
            except TensorError as exc:
                raise BadUpdates(f"{self.labels[i]}: {exc}") from exc
        return out
