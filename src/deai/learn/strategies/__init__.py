"""Server-side strategies (update rules on the flat global vector) and their registry.

``get_strategy(name, **kwargs)``: ``"fedavg"``, ``"fedprox"`` (``mu``), ``"fedadam"``, ``"fedyogi"``
(``server_lr``, ``beta1``, ``beta2``, ``tau``), ``"diloco"`` (``server_lr``, ``momentum``).
A new strategy subclasses :class:`Strategy` and is declared with ``@STRATEGIES.register("name")``.
"""

from __future__ import annotations

from deai.learn.strategies.base import STRATEGIES, Strategy
from deai.learn.strategies.diloco import DiLoCo
from deai.learn.strategies.fedavg import FedAvg
from deai.learn.strategies.fedopt import FedAdam, FedYogi
from deai.learn.strategies.fedprox import FedProx

__all__ = ["STRATEGIES", "DiLoCo", "FedAdam", "FedAvg", "FedProx", "FedYogi", "Strategy", "get_strategy"]


def get_strategy(name: str, **kwargs) -> Strategy:
    """Build a registered strategy by name."""
    return STRATEGIES.get(name)(**kwargs)
