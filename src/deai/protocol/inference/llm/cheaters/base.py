"""LLM hosts for evaluation: the honest host and the cheating-host registry.

A host answers a :class:`~deai.protocol.inference.llm.request.GenerationRequest` with
:meth:`LLMHost.respond` given the *real* model (in the request's precision); a cheater changes
what it computes or what it returns. Each cheater lives in its own file of this package and is
declared with ``@LLM_CHEATERS.register("name")`` (which sets ``cls.behaviour``);
:func:`make_host` builds ``"honest"`` or any cheater. Cheaters derive their random choices from
their own ``seed`` (and the request), so a run is reproducible.
"""

from __future__ import annotations

import copy

import torch

from deai.core.registry import Registry
from deai.protocol.inference.llm.errors import LLMError
from deai.protocol.inference.llm.generate import generate
from deai.protocol.inference.llm.request import Generation, GenerationRequest

__all__ = ["LLM_CHEATERS", "HonestHost", "LLMHost", "cheater_names", "decoder_layers", "make_host"]


class LLMHost:
    """A host: ``respond(model, request)`` returns its answer. The base class is honest."""

    behaviour = "honest"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._derived: dict[int, torch.nn.Module] = {}

    def respond(self, model: torch.nn.Module, request: GenerationRequest) -> Generation:
        return generate(self.served_model(model), request)

    def served_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model this host actually runs (a cheater's derived model, built once per model)."""
        key = id(model)
        if key not in self._derived:
            self._derived[key] = self.derive(model)
        return self._derived[key]

    def derive(self, model: torch.nn.Module) -> torch.nn.Module:
        return model

    def _generator(self, request: GenerationRequest) -> torch.Generator:
        return torch.Generator().manual_seed((self.seed * 1_000_003 + request.seed) % 2**63)


class HonestHost(LLMHost):
    """Computes exactly what the request asks for."""


LLM_CHEATERS: Registry[LLMHost] = Registry("LLM cheater", LLMError, fold_case=False, stamp="behaviour")
"""Every cheating LLM host by name."""


def cheater_names() -> list[str]:
    """The registered cheating behaviours, sorted."""
    return LLM_CHEATERS.names()


def make_host(name: str, seed: int = 0, **kwargs) -> LLMHost:
    """A host with behaviour ``name`` (``"honest"`` or a cheater name)."""
    if name == "honest":
        return HonestHost(seed)
    return LLM_CHEATERS.get(name)(seed, **kwargs)


def decoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The stack of decoder blocks of a Llama-like (``model.layers``) or GPT-2-like
    (``transformer.h``) causal LM."""
    for path in ("model.layers", "transformer.h"):
        obj: object = model
        for part in path.split("."):
            obj = getattr(obj, part, None)
        if isinstance(obj, torch.nn.ModuleList):
            return obj
    raise LLMError("cannot find the decoder layers of this model")


def copy_model(model: torch.nn.Module) -> torch.nn.Module:
    return copy.deepcopy(model).eval()
