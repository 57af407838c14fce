"""Calibrate a job kind's tolerance: run one job under different thread counts and BLAS settings.

Honest executors differ in the last bits when the order of a floating-point reduction changes:
another intra-op thread count splits a matmul or sum differently, and oneDNN (mkldnn) kernels and
plain BLAS kernels sum in different orders. :func:`calibrate` runs the same job under each
:class:`Setting`, compares every output with the reference (the first setting) and reports the
worst absolute and relative deviation -- the figure a kind's declared tolerance must exceed with
margin (``docs/verification.md`` lists them per kind, from ``benchmarks/verification.py``).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from deai.core.tensorio import tensor_digest
from deai.protocol.jobs.compare import CompareRule, agrees, max_deviation
from deai.protocol.jobs.kinds.base import Tensors, get_kind

__all__ = ["DEFAULT_SETTINGS", "Calibration", "Setting", "calibrate"]


@dataclass(frozen=True)
class Setting:
    """One execution environment: intra-op ``threads`` and whether oneDNN (mkldnn) kernels are used."""

    threads: int = 1
    mkldnn: bool = True

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        prev = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # oneDNN's note about Intel GPU TF32
                with torch.backends.mkldnn.flags(enabled=self.mkldnn):
                    yield
        finally:
            torch.set_num_threads(prev)

    def __str__(self) -> str:
        return f"threads={self.threads}{'' if self.mkldnn else ', no oneDNN'}"


DEFAULT_SETTINGS = (
    Setting(1),
    Setting(2),
    Setting(3),
    Setting(4),
    Setting(1, mkldnn=False),
    Setting(2, mkldnn=False),
)


@dataclass(frozen=True)
class Calibration:
    """Worst deviation from the reference over all settings, and whether ``rule`` accepts them all."""

    kind: str
    settings: tuple[str, ...]
    max_abs: float
    max_rel: float
    bit_exact: bool
    rule: CompareRule
    within_rule: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "settings": list(self.settings),
            "max_abs_deviation": self.max_abs,
            "max_rel_deviation": self.max_rel,
            "bit_exact_across_settings": self.bit_exact,
            "rule": str(self.rule),
            "within_rule": self.within_rule,
        }


def calibrate(
    kind_name: str,
    inputs: Sequence[Tensors],
    params: Mapping[str, Any],
    seed: int,
    settings: Sequence[Setting] = DEFAULT_SETTINGS,
) -> Calibration:
    """Run the job under each setting and measure deviations from the first one."""
    kind = get_kind(kind_name)
    outputs = []
    for s in settings:
        with s.applied():
            outputs.append(kind.execute(inputs, params, seed))
    ref = outputs[0]
    worst_abs = worst_rel = 0.0
    for out in outputs[1:]:
        a, r = max_deviation(ref, out)
        worst_abs, worst_rel = max(worst_abs, a), max(worst_rel, r)
    rule = kind.compare_rule(params)
    digests = {tensor_digest(o) for o in outputs}
    within = all(agrees(ref, o, rule) for o in outputs[1:])
    return Calibration(
        kind_name, tuple(map(str, settings)), worst_abs, worst_rel, len(digests) == 1, rule, within
    )
