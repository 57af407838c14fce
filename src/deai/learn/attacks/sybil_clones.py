"""Sybil clones: k identities controlled by one party send one colluding update."""

from __future__ import annotations

import torch

from deai.learn.attacks.base import ATTACKS, Attack
from deai.learn.data import Dataset

__all__ = ["SybilClones"]


@ATTACKS.register("sybil_clones")
class SybilClones(Attack):
    """All ``f`` Byzantine identities send the update trained by the first one, identical.

    With ``poison="label_flip"`` (default) that update is trained on flipped labels (the FoolsGold
    threat model: Sybils pushing one poisoned goal); with ``poison=None`` the clones are honest
    copies that only multiply one party's weight (what contribution scoring must not pay for).
    """

    kind = "data+update"

    def __init__(self, poison: str | None = "label_flip") -> None:
        if poison not in (None, "label_flip"):
            raise ValueError("sybil_clones: poison must be None or 'label_flip'")
        self.poison_kind = poison

    def poison(self, data: Dataset, generator: torch.Generator) -> Dataset:
        if self.poison_kind == "label_flip":
            return data.replace(y=(data.num_classes - 1 - data.y).contiguous())
        return data

    def craft(self, honest, own, num_byzantine, generator) -> torch.Tensor:
        own = super().craft(honest, own, num_byzantine, generator)
        return own[:1].expand(num_byzantine, -1).clone()
