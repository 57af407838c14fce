"""The cheating-executor registry: named behaviours for evaluation (benchmark, simulations, tests).

``make_executor(name, account, store, **kw)`` builds ``"honest"`` or any registered cheater; each
cheater lives in its own file and subclasses :class:`~deai.protocol.jobs.executor.Executor`.
"""

from __future__ import annotations

from collections.abc import Callable

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.protocol.jobs.errors import JobError
from deai.protocol.jobs.executor import Executor

__all__ = ["CHEATERS", "cheater_names", "make_executor", "register_cheater"]

CHEATERS: dict[str, type[Executor]] = {}


def register_cheater(name: str) -> Callable[[type[Executor]], type[Executor]]:
    def deco(cls: type[Executor]) -> type[Executor]:
        if name in CHEATERS:
            raise ValueError(f"cheater {name!r} is registered twice")
        cls.behaviour = name
        CHEATERS[name] = cls
        return cls

    return deco


def cheater_names() -> list[str]:
    return sorted(CHEATERS)


def make_executor(name: str, account: Account, store: BlobStore, **kwargs) -> Executor:
    """An executor with behaviour ``name`` ("honest" or a cheater name)."""
    if name == "honest":
        return Executor(account, store, **kwargs)
    try:
        cls = CHEATERS[name]
    except KeyError:
        raise JobError(
            f"unknown executor behaviour {name!r}; known: honest, {', '.join(cheater_names())}"
        ) from None
    return cls(account, store, **kwargs)
