"""Robust aggregators over ``n`` updates of ``d`` values, and their registry.

An aggregator takes a stacked ``[n, d]`` tensor or a row source (:mod:`.rows`: :class:`TensorRows`,
:class:`FileRows` over safetensors files read block by block) and reduces it block by block over
the parameter axis, so aggregating files never holds more than ``[n, CHUNK]`` of them at a time.

``get_aggregator(spec, f=0, **kwargs)`` builds one from a spec string:

- a name: ``"median"``, ``"trimmed_mean"``, ``"krum"``, ...; ``"default"`` is the recommended
  defense sized for each call's rows (:mod:`.default`; :func:`describe_default` says what it runs);
- a name with keyword arguments in parentheses (Python literals): ``"trimmed_mean(trim=3)"``;
- pre-aggregators chained with ``+`` before a final aggregator, applied left to right:
  ``"bucketing(s=2)+trimmed_mean"``, ``"nnm+centered_clipping"``, ``"bucketing(s=2)+nnm+krum"``.

``f`` (the number of Byzantine inputs to tolerate) goes to every stage; ``kwargs`` go to the final
aggregator (a clash with the spec's own arguments is an error). See ``docs/learn.md`` for each
aggregator's assumption and cost.

To add one, subclass :class:`Aggregator` (or :class:`PreAggregator`) in a new module here,
implement :meth:`Aggregator.reduce` over a :class:`Rows` source (:meth:`PreAggregator.mix` for a
pre-aggregator: a lazy source), decorate it with ``@AGGREGATORS.register("name")``
(``@PRE_AGGREGATORS.register``), and import the class below; see ``CONTRIBUTING.md``.
"""

from __future__ import annotations

from deai.learn._parse import parse_call, split_plus
from deai.learn.aggregators.base import AGGREGATORS, PRE_AGGREGATORS, Aggregator, PreAggregator
from deai.learn.aggregators.bucketing import Bucketing
from deai.learn.aggregators.bulyan import Bulyan
from deai.learn.aggregators.centered_clipping import CenteredClipping
from deai.learn.aggregators.default import DEFAULT_RULE, Default, default_f, describe_default
from deai.learn.aggregators.fltrust import FLTrust
from deai.learn.aggregators.foolsgold import FoolsGold
from deai.learn.aggregators.geometric_median import GeometricMedian
from deai.learn.aggregators.krum import Krum, MultiKrum
from deai.learn.aggregators.mean import Mean
from deai.learn.aggregators.median import CoordinateMedian
from deai.learn.aggregators.nnm import NNM
from deai.learn.aggregators.root_gate import RootGate
from deai.learn.aggregators.rows import CHUNK, FileRows, Rows, TensorRows
from deai.learn.aggregators.trimmed_mean import TrimmedMean
from deai.learn.errors import UnknownName

__all__ = [
    "AGGREGATORS",
    "CHUNK",
    "DEFAULT_RULE",
    "NNM",
    "PRE_AGGREGATORS",
    "Aggregator",
    "Bucketing",
    "Bulyan",
    "CenteredClipping",
    "CoordinateMedian",
    "Default",
    "FLTrust",
    "FileRows",
    "FoolsGold",
    "GeometricMedian",
    "Krum",
    "Mean",
    "MultiKrum",
    "PreAggregator",
    "RootGate",
    "Rows",
    "TensorRows",
    "TrimmedMean",
    "default_f",
    "describe_default",
    "get_aggregator",
    "needs_root_update",
    "parse_spec",
]


def needs_root_update(agg: Aggregator) -> bool:
    """Whether any stage of ``agg`` (FLTrust, the root gate) wants ``root_update=`` on every call."""
    while isinstance(agg, PreAggregator) and not agg.needs_root:
        agg = agg.inner
    return agg.needs_root


def parse_spec(spec: str) -> list[tuple[str, dict]]:
    """``"bucketing(s=2)+trimmed_mean"`` -> ``[("bucketing", {"s": 2}), ("trimmed_mean", {})]``."""
    return [parse_call(part) for part in split_plus(spec)]


def get_aggregator(spec: str, f: int = 0, **kwargs) -> Aggregator:
    """Build an aggregator (with any pre-aggregators) from a spec string; see the module docstring."""
    stages = parse_spec(spec)
    *pre, (last, last_kwargs) = stages
    if last in PRE_AGGREGATORS:
        raise UnknownName(f"{spec!r} ends with the pre-aggregator {last!r}; add an aggregator after '+'")
    clash = set(last_kwargs) & set(kwargs)
    if clash:
        raise ValueError(f"aggregator arguments given twice: {sorted(clash)}")
    agg = AGGREGATORS.get(last)(f=f, **last_kwargs, **kwargs)
    for name, stage_kwargs in reversed(pre):
        if name in AGGREGATORS and name not in PRE_AGGREGATORS:
            raise UnknownName(f"{name!r} is an aggregator, not a pre-aggregator; only the last stage may be")
        agg = PRE_AGGREGATORS.get(name)(agg, f=f, **stage_kwargs)
    return agg
