"""The attack base: what Byzantine providers do to their data and to the update they send.

An attack has two hooks, both optional:

- :meth:`Attack.poison` transforms a Byzantine provider's dataset before local training (data
  attacks: label flip, backdoor);
- :meth:`Attack.craft` returns the ``[f, d]`` updates the ``f`` Byzantine providers send, given the
  honest providers' updates ``[h, d]`` (omniscient attacks such as ALIE and IPM use them) and the
  Byzantines' own trained updates (``None`` when ``trains`` is False: they skip training).

Attacks are for evaluation (the robustness table, scenarios); they are the adversary's code, not
the system's, and draw randomness only from the generator they are given.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from deai.core.registry import Registry
from deai.learn.data import Dataset
from deai.learn.errors import UnknownName

__all__ = ["ATTACKS", "Attack"]


class Attack:
    """Base of every attack; the defaults do nothing (an honest provider)."""

    name: ClassVar[str] = "attack"
    kind: ClassVar[str] = "update"  # "data", "update" or "data+update": for docs and tables
    trains: ClassVar[bool] = True

    def poison(self, data: Dataset, generator: torch.Generator) -> Dataset:
        """The dataset the Byzantine provider trains on."""
        return data

    def craft(
        self,
        honest: torch.Tensor,
        own: torch.Tensor | None,
        num_byzantine: int,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """The ``[num_byzantine, d]`` updates to send."""
        if own is None:
            raise ValueError(f"{self.name}: needs the Byzantines' own trained updates")
        return own

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


ATTACKS: Registry[Attack] = Registry("attack", UnknownName, stamp="name")
"""Every attack; ``@ATTACKS.register("name")`` sets ``cls.name``."""
