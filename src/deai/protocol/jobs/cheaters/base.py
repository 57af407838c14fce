"""The cheating-executor registry: named behaviours for evaluation (benchmark, simulations, tests).

``make_executor(name, account, store, **kw)`` builds ``"honest"`` or any registered cheater; each
cheater lives in its own file of this package, subclasses :class:`~deai.protocol.jobs.executor.Executor`
and is declared with ``@CHEATERS.register("name")`` (which sets ``cls.behaviour``).
"""

from __future__ import annotations

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.core.registry import Registry
from deai.protocol.jobs.errors import JobError
from deai.protocol.jobs.executor import Executor

__all__ = ["CHEATERS", "cheater_names", "make_executor"]

CHEATERS: Registry[Executor] = Registry("cheater", JobError, fold_case=False, stamp="behaviour")
"""Every cheating executor behaviour by name ("honest" is the plain :class:`Executor`)."""


def cheater_names() -> list[str]:
    """The registered cheating behaviours, sorted."""
    return CHEATERS.names()


def make_executor(name: str, account: Account, store: BlobStore, **kwargs) -> Executor:
    """An executor with behaviour ``name`` ("honest" or a cheater name)."""
    if name == "honest":
        return Executor(account, store, **kwargs)
    if name not in CHEATERS:
        raise JobError(f"unknown executor behaviour {name!r}; known: honest, {', '.join(cheater_names())}")
    return CHEATERS.get(name)(account, store, **kwargs)
