"""Backdoor (trigger) poisoning (Gu et al., BadNets 2017; boosting as in Bagdasaryan et al., 2020)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deai.learn.attacks.base import ATTACKS, Attack
from deai.learn.data import Dataset

__all__ = ["Backdoor"]


@ATTACKS.register("backdoor")
class Backdoor(Attack):
    """Stamp a trigger (features ``trigger`` set to ``value``) on a ``fraction`` of the Byzantine's
    samples and relabel them ``target``; train; send the update multiplied by ``boost``.

    The default trigger is the last four features (for digits: the bottom-right pixels; with
    standardized data ``value`` is in standard deviations). :meth:`success_rate` measures the attack:
    the share of test samples of other classes that the model assigns to ``target`` once stamped.
    """

    kind = "data+update"

    def __init__(
        self,
        target: int = 0,
        trigger: Sequence[int] | None = None,
        value: float = 3.0,
        fraction: float = 0.5,
        boost: float = 1.0,
    ) -> None:
        if not 0 < fraction <= 1:
            raise ValueError("backdoor: fraction must be in (0, 1]")
        self.target, self.trigger, self.value = target, trigger, value
        self.fraction, self.boost = fraction, boost

    def _idx(self, num_features: int) -> torch.Tensor:
        if self.trigger is None:
            return torch.arange(num_features - 4, num_features)
        return torch.as_tensor(list(self.trigger), dtype=torch.long)

    def stamp(self, x: torch.Tensor) -> torch.Tensor:
        """A copy of ``x`` with the trigger applied to every row."""
        out = x.clone()
        out[:, self._idx(x.shape[1])] = self.value
        return out

    def poison(self, data: Dataset, generator: torch.Generator) -> Dataset:
        k = max(1, round(self.fraction * len(data)))
        rows = torch.randperm(len(data), generator=generator)[:k]
        x, y = data.x.clone(), data.y.clone()
        x[rows] = self.stamp(x[rows])
        y[rows] = self.target
        return data.replace(x=x, y=y)

    def craft(self, honest, own, num_byzantine, generator) -> torch.Tensor:
        return self.boost * super().craft(honest, own, num_byzantine, generator)

    @torch.no_grad()
    def success_rate(self, model: nn.Module, test: Dataset) -> float:
        """Share of non-target test samples classified as ``target`` once the trigger is stamped."""
        keep = test.y != self.target
        if not bool(keep.any()):
            return float("nan")
        model.eval()
        pred = model(self.stamp(test.x[keep])).argmax(1)
        return float((pred == self.target).float().mean())
