"""The Byzantine attack suite (for evaluation) and its registry.

``get_attack(name, **kwargs)``, or a spec string such as ``get_attack("alie(z=1.5)")``:
``label_flip``, ``sign_flip`` (``scale``), ``gaussian_noise`` (``sigma``), ``alie`` (``z``),
``ipm`` (``epsilon``), ``backdoor`` (``target``, ``trigger``, ``value``, ``fraction``, ``boost``),
``free_rider`` (``mode``), ``sybil_clones`` (``poison``), ``huge_row`` (``scale``, ``z``).

Each attack is declared with ``@ATTACKS.register("name")`` on its class (which also sets
``cls.name``) and imported below, so importing this package registers all of them.
"""

from __future__ import annotations

from deai.learn._parse import parse_call
from deai.learn.attacks.alie import ALIE
from deai.learn.attacks.backdoor import Backdoor
from deai.learn.attacks.base import ATTACKS, Attack
from deai.learn.attacks.free_rider import FreeRider
from deai.learn.attacks.gaussian_noise import GaussianNoise
from deai.learn.attacks.huge_row import HugeRow
from deai.learn.attacks.ipm import IPM
from deai.learn.attacks.label_flip import LabelFlip
from deai.learn.attacks.sign_flip import SignFlip
from deai.learn.attacks.sybil_clones import SybilClones

__all__ = [
    "ALIE",
    "ATTACKS",
    "IPM",
    "Attack",
    "Backdoor",
    "FreeRider",
    "GaussianNoise",
    "HugeRow",
    "LabelFlip",
    "SignFlip",
    "SybilClones",
    "get_attack",
]


def get_attack(spec: str, **kwargs) -> Attack:
    """Build a registered attack by name, or ``"name(key=value, ...)"`` such as ``"alie(z=1.5)"``."""
    name, spec_kwargs = parse_call(spec)
    return ATTACKS.get(name)(**spec_kwargs, **kwargs)
