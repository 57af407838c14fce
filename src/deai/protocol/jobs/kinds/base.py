"""The job-kind base and registry.

A job kind is a deterministic function of content-addressed inputs (safetensors blobs), JSON
parameters and a seed. Each kind declares how its outputs are compared (:class:`CompareRule`):
bit-exact where every platform gives the same bits, else a tolerance calibrated by
:mod:`deai.protocol.jobs.calibrate` (figures in ``docs/verification.md``).

To add a kind, subclass :class:`JobKind` in a new module of this package, decorate it with
``@KINDS.register("name")`` (which sets ``cls.name``) and import the module in the package
``__init__``, so every node that imports :mod:`deai.protocol.jobs.kinds` knows it. A kind must:

- check its parameters (:meth:`JobKind.check_params`) and inputs (:meth:`JobKind.output_layout`
  raises :class:`InputMismatch`) before computing anything;
- draw every random number from ``seed`` (never from the global RNG unseeded);
- return a flat ``{name: tensor}`` dict; the coordinator refuses uploads whose names, shapes or
  dtypes differ from :meth:`JobKind.output_layout`, or that hold NaN/inf.

Large inputs (model updates of hundreds of MB) need not be loaded whole: a kind that names them in
:meth:`JobKind.streamed_inputs` gets them from ``load_inputs(..., lazy=True)`` (what the executor
uses) as :class:`LazyInput` -- the blob verified by its hash, its safetensors header checked, its
tensors present only as data-less ``meta`` tensors (names, shapes, dtypes) beside an open
:class:`~deai.core.tensorio.TensorFile` the kind reads in ranges (:func:`close_inputs` closes them).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from deai.core.blobs import BlobStore
from deai.core.errors import BlobCorrupted, DeaiError
from deai.core.registry import Registry
from deai.core.tensorio import TensorFile, from_safetensors
from deai.learn.data import Dataset
from deai.learn.errors import DataError
from deai.protocol.jobs.compare import CompareRule
from deai.protocol.jobs.errors import BadJobSpec, InputMismatch, UnknownJobKind
from deai.protocol.jobs.spec import JobSpec

__all__ = [
    "KINDS",
    "MAX_INPUT_BYTES",
    "JobKind",
    "Layout",
    "LazyInput",
    "Tensors",
    "close_inputs",
    "dataset_input",
    "float_param",
    "get_kind",
    "int_param",
    "kind_names",
    "load_inputs",
    "tensor_of",
]

Tensors = dict[str, torch.Tensor]
Layout = dict[str, tuple[tuple[int, ...], torch.dtype]]
MAX_INPUT_BYTES = 256 << 20


class JobKind(ABC):
    """One deterministic computation; stateless, so one instance serves every job of its kind."""

    name: ClassVar[str] = "kind"
    rule: ClassVar[CompareRule] = CompareRule.bit_exact()

    def compare_rule(self, params: Mapping[str, Any]) -> CompareRule:
        """The kind's rule; a job may tighten or loosen it with ``params["tolerance"] = {rtol, atol}``."""
        tol = params.get("tolerance")
        if tol is None:
            return self.rule
        if not isinstance(tol, dict) or set(tol) != {"rtol", "atol"}:
            raise BadJobSpec("params.tolerance must be an object with rtol and atol")
        return CompareRule.tolerance(tol["rtol"], tol["atol"])

    def check_params(self, params: Mapping[str, Any]) -> None:  # noqa: B027 - optional hook
        """Raise :class:`BadJobSpec` naming the first bad parameter."""

    def verifier_work(self, spec: JobSpec, answer: str) -> JobSpec | None:
        """For kinds whose drawn executors split into one producer and verifiers of its output
        (``llm_generate``): the computation a verifier owes once the producer's output ``answer``
        (a blob digest) is known. None (the default): every executor runs the job itself."""
        return None

    def streamed_inputs(self, params: Mapping[str, Any], count: int) -> range:
        """Indices of the ``count`` inputs this kind reads in ranges instead of loading them; they
        reach :meth:`output_layout` and :meth:`run` as :class:`LazyInput` when loaded with
        ``lazy=True`` (and as plain tensors otherwise: a kind must accept both). Default: none."""
        return range(0)

    @abstractmethod
    def output_layout(self, inputs: Sequence[Tensors], params: Mapping[str, Any]) -> Layout:
        """Names, shapes and dtypes of the output for these inputs (raises :class:`InputMismatch`)."""

    @abstractmethod
    def run(self, inputs: Sequence[Tensors], params: Mapping[str, Any], seed: int) -> Tensors:
        """Compute the output. Must be a pure function of its arguments."""

    def execute(self, inputs: Sequence[Tensors], params: Mapping[str, Any], seed: int) -> Tensors:
        """Validate, then run under a forked RNG seeded with ``seed`` (global RNG left untouched)."""
        self.check_params(params)
        self.output_layout(inputs, params)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            with torch.no_grad():
                return self.run(inputs, params, seed)


KINDS: Registry[JobKind] = Registry("job kind", UnknownJobKind, fold_case=False, stamp="name")
"""Every job kind by its exact name (job specs name kinds case-sensitively)."""


def get_kind(name: str) -> JobKind:
    """An instance of the kind registered as ``name``; :class:`UnknownJobKind` if there is none."""
    return KINDS.get(name)()


def kind_names() -> list[str]:
    """The registered kind names, sorted."""
    return KINDS.names()


class LazyInput(dict[str, torch.Tensor]):
    """An input opened, not loaded: its tensors as data-less ``meta`` tensors (names, shapes and
    dtypes, in the flat order of :attr:`file`), and :attr:`file`, the open
    :class:`~deai.core.tensorio.TensorFile` to read its values from in ranges (which refuses
    NaN/inf in what it reads). ``label`` names the input in errors (``"input 3 (ab12...)"``)."""

    def __init__(self, file: TensorFile, label: str) -> None:
        super().__init__(file.meta())
        self.file = file
        self.label = label


def _open_lazy(store: BlobStore, digest: str, label: str, max_bytes: int) -> LazyInput:
    """Open the blob's file first, then re-hash it by streaming (the open handle keeps reading the
    bytes that verified even if the blob is deleted meanwhile), then check its header."""
    path = store.path(digest)
    try:
        fh = open(path, "rb", buffering=0)  # noqa: SIM115 - owned by the TensorFile (close_inputs)
    except FileNotFoundError:
        raise InputMismatch(f"{label}: no blob {digest}") from None
    try:
        if not store.verify(digest):
            raise BlobCorrupted(f"blob {digest} is corrupted on disk; quarantined")
        return LazyInput(TensorFile(fh, max_bytes=max_bytes, what=label), label)
    except BaseException:
        fh.close()
        raise


def load_inputs(
    store: BlobStore, spec: JobSpec, *, max_bytes: int = MAX_INPUT_BYTES, lazy: bool = False
) -> list[Tensors]:
    """Fetch every input by digest (the store re-hashes it) and parse it as safetensors, refusing
    oversized, malformed or non-finite inputs with :class:`InputMismatch` naming the input.

    With ``lazy=True`` the inputs the job's kind names in :meth:`JobKind.streamed_inputs` are
    opened as :class:`LazyInput` instead (same size bound, hash verified by streaming, header
    checked here; non-finite values are refused when the kind reads them); the caller closes them
    with :func:`close_inputs`."""
    streamed: range = range(0)
    if lazy and spec.kind in KINDS:
        streamed = get_kind(spec.kind).streamed_inputs(spec.params, len(spec.inputs))
    out: list[Tensors] = []
    try:
        for i, digest in enumerate(spec.inputs):
            label = f"input {i} ({digest[:12]})"
            try:
                if store.size(digest) > max_bytes:
                    raise InputMismatch(f"{label} exceeds {max_bytes} bytes")
                if i in streamed:
                    out.append(_open_lazy(store, digest, label, max_bytes))
                else:
                    out.append(from_safetensors(store.get(digest), max_bytes=max_bytes))
            except InputMismatch:
                raise
            except DeaiError as exc:
                raise InputMismatch(f"{label}: {exc}") from exc
    except BaseException:
        close_inputs(out)
        raise
    return out


def close_inputs(inputs: Sequence[Tensors]) -> None:
    """Close the files of any :class:`LazyInput` among ``inputs`` (plain tensors need nothing)."""
    for item in inputs:
        if isinstance(item, LazyInput):
            item.file.close()


def int_param(params: Mapping[str, Any], key: str, lo: int, hi: int, default: int | None = None) -> int:
    """A required (or defaulted) integer parameter within ``[lo, hi]``."""
    value = params.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise BadJobSpec(f"params.{key} must be an integer in [{lo}, {hi}], got {value!r}")
    return value


def float_param(
    params: Mapping[str, Any], key: str, lo: float, hi: float, default: float | None = None
) -> float:
    value = params.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or not lo <= value <= hi:
        raise BadJobSpec(f"params.{key} must be a number in [{lo}, {hi}], got {value!r}")
    return float(value)


def tensor_of(inputs: Sequence[Tensors], index: int, name: str, what: str) -> torch.Tensor:
    """Input ``index``'s tensor ``name``, or :class:`InputMismatch` naming what was expected."""
    if index >= len(inputs) or name not in inputs[index]:
        raise InputMismatch(f"input {index} must hold a tensor {name!r} ({what})")
    return inputs[index][name]


def dataset_input(inputs: Sequence[Tensors], index: int, params: Mapping[str, Any], what: str) -> Dataset:
    """Input ``index`` as data the params' model takes, as a :class:`~deai.learn.data.Dataset`:

    - labelled features: float ``x [N > 0, *shape]`` with ``prod(shape) == in_features`` (flat rows or
      images ``[N, C, H, W]``) and int64 labels ``y [N]`` in ``[0, num_classes)``;
    - token windows: int64 ``x [N > 0, T]`` with ``T <= in_features`` (the context) and int64
      next-token targets ``y`` of the same shape, every id in ``[0, num_classes)``.

    :class:`InputMismatch` otherwise (and for NaN or infinite features).
    """
    x = tensor_of(inputs, index, "x", f"{what} samples")
    y = tensor_of(inputs, index, "y", f"{what} targets")
    if x.dim() < 2 or x.shape[0] == 0 or y.dtype != torch.int64 or y.shape[:1] != x.shape[:1]:
        raise InputMismatch(f"{what} x must be non-empty [N, ...] with int64 y [N, ...]")
    tokens = x.dtype == torch.int64
    if tokens and (x.dim() != 2 or x.shape[1] > params["in_features"] or y.shape != x.shape):
        raise InputMismatch(
            f"{what} x (token windows) and y must be int64 [N, T <= {params['in_features']}], got"
            f" {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if not tokens and (not x.is_floating_point() or x[0].numel() != params["in_features"] or y.dim() != 1):
        raise InputMismatch(
            f"{what} x must be float [N, ...] of {params['in_features']} features per sample and y"
            f" int64 [N], got {x.dtype} {tuple(x.shape)} and {tuple(y.shape)}"
        )
    try:
        return Dataset(
            x if tokens else x.float().contiguous(),
            y,
            params["num_classes"],
            tuple(x.shape[1:]),
            what,
        )
    except DataError as exc:
        raise InputMismatch(f"{what} refused: {exc}") from exc


def labelled_data(
    inputs: Sequence[Tensors], index: int, params: Mapping[str, Any], what: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Input ``index`` as labelled flat features (:func:`dataset_input`, features only, flattened to
    ``x [N, in_features]``) and labels ``y [N]``."""
    data = dataset_input(inputs, index, params, what)
    if data.is_tokens:
        raise InputMismatch(f"{what} data must be labelled features, not token windows")
    return data.x.reshape(len(data), -1), data.y
