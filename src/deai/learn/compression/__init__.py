"""Communication compressors: which values of an update travel (sparsifiers) and how (quantizers).

``get_compressor(spec)`` builds a :class:`Compressor` from a spec string: an optional sparsifier,
then ``+``, then an optional quantizer, each ``name`` or ``name(key=value, ...)``:

- ``"none"``: dense float32, exact (4 bytes per parameter);
- sparsifiers: ``"topk(ratio=0.01)"`` (global top-|x|), ``"randomk(ratio=0.01)"`` (positions
  from a seed; only values travel), ``"chunked_topk(ratio=0.02, chunk=4096)"`` (top-k in each
  chunk, SparseLoCo-style);
- quantizers: ``"int8"``, ``"int4"``, ``"int2"``, each with ``chunk=`` (values per scale),
  ``rounding="nearest"|"stochastic"``, ``scale_dtype="float16"|"float32"``;
- chains: ``"topk(ratio=0.01)+int2"``, ``"chunked_topk(ratio=0.02, chunk=4096)+int2"``.

A compressed update is a flat dict of tensors (save it with
:func:`deai.core.tensorio.to_safetensors`). :func:`check_compressed` and :func:`decompress` bound
every part of one received from someone else (:class:`BadCompressed` otherwise) and decoding is
deterministic on every executor. :class:`ErrorFeedback` keeps a provider's residual.
:func:`compressed_bytes` is the size on the wire. See ``docs/compression.md``.

To add a scheme, subclass :class:`Sparsifier` or :class:`Quantizer` in a new module here,
decorate it with ``@COMPRESSORS.register("name")`` and import it below.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from deai.core.tensorio import to_safetensors
from deai.learn._parse import parse_call, split_plus
from deai.learn.compression.base import (
    COMPRESSORS,
    HEADER,
    VALUES,
    Header,
    Quantizer,
    SparseUpdate,
    Sparsifier,
    Stage,
)
from deai.learn.compression.chunked_topk import ChunkedTopK
from deai.learn.compression.compressor import Compressor
from deai.learn.compression.errors import BadCompressed, BadCompressionSpec, CompressionError
from deai.learn.compression.feedback import ErrorFeedback, FeedbackStep
from deai.learn.compression.int2 import Int2
from deai.learn.compression.int4 import Int4
from deai.learn.compression.int8 import Int8
from deai.learn.compression.none import Dense
from deai.learn.compression.quantize import UniformQuantizer
from deai.learn.compression.randomk import RandomK
from deai.learn.compression.tail import TAIL, decompress_with_tail, tail_bytes
from deai.learn.compression.topk import TopK

__all__ = [
    "COMPRESSORS",
    "HEADER",
    "TAIL",
    "VALUES",
    "BadCompressed",
    "BadCompressionSpec",
    "ChunkedTopK",
    "CompressionError",
    "Compressor",
    "Dense",
    "ErrorFeedback",
    "FeedbackStep",
    "Header",
    "Int2",
    "Int4",
    "Int8",
    "Quantizer",
    "RandomK",
    "SparseUpdate",
    "Sparsifier",
    "Stage",
    "TopK",
    "UniformQuantizer",
    "check_compressed",
    "compressed_bytes",
    "compression_ratio",
    "decompress",
    "decompress_with_tail",
    "get_compressor",
    "tail_bytes",
]

MAX_SPEC = 512
"""The longest spec string accepted."""


def get_compressor(spec: str | Compressor) -> Compressor:
    """Build a compressor from a spec string (see the module docstring); a :class:`Compressor`
    is returned as is. :class:`~deai.learn.errors.UnknownName` for an unknown stage name,
    :class:`BadCompressionSpec` for bad arguments or stages in the wrong order."""
    if isinstance(spec, Compressor):
        return spec
    if not isinstance(spec, str) or not spec.strip() or len(spec) > MAX_SPEC:
        raise BadCompressionSpec(f"a compressor spec is a non-empty string of <= {MAX_SPEC} characters")
    stages: list[Stage] = []
    for part in split_plus(spec):
        name, kwargs = parse_call(part)
        factory = COMPRESSORS.get(name)
        try:
            stages.append(factory(**kwargs))
        except TypeError as exc:
            raise BadCompressionSpec(f"bad arguments for {name!r}: {exc}") from None
    kinds = [s.kind for s in stages]
    if kinds == ["identity"]:
        return Compressor()
    if kinds not in (["sparsifier"], ["quantizer"], ["sparsifier", "quantizer"]):
        raise BadCompressionSpec(
            f"{spec!r}: a compressor is one sparsifier, one quantizer, or a sparsifier + a quantizer "
            "('none' alone)"
        )
    sparsifier = stages[0] if kinds[0] == "sparsifier" else None
    quantizer = stages[-1] if kinds[-1] == "quantizer" else None
    assert sparsifier is None or isinstance(sparsifier, Sparsifier)
    assert quantizer is None or isinstance(quantizer, Quantizer)
    return Compressor(sparsifier, quantizer)


def check_compressed(
    tensors: Mapping[str, torch.Tensor], d: int, spec: str | Compressor, *, seed: int | None = None
) -> Header:
    """Check a received compressed update of a ``d``-parameter vector against ``spec`` (every
    check of :meth:`Compressor.decode`); returns its header, or raises :class:`BadCompressed`."""
    return get_compressor(spec).check(tensors, d, seed=seed)


def decompress(
    tensors: Mapping[str, torch.Tensor], d: int, spec: str | Compressor, *, seed: int | None = None
) -> torch.Tensor:
    """Check and decompress a received update to its dense float32 ``[d]`` vector."""
    return get_compressor(spec).decompress(tensors, d, seed=seed)


def compressed_bytes(tensors: Mapping[str, torch.Tensor]) -> int:
    """The size of ``tensors`` on the wire: the length of their safetensors serialization."""
    return len(to_safetensors(tensors))


def compression_ratio(tensors: Mapping[str, torch.Tensor], d: int) -> float:
    """How many times smaller than the ``4 * d`` bytes of the dense float32 vector."""
    return 4 * d / compressed_bytes(tensors)
