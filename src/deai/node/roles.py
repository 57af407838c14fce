"""Participant roles and their registry: what a daemon does for the accounts it hosts.

A role is a poll-driven object: :meth:`Role.setup` once (e.g. stake), then :meth:`Role.step`
repeatedly; ``step`` returns True when it did something (the daemon polls again at once) and keeps
what it must remember across restarts in :attr:`Role.memory` (plain JSON, saved by the daemon).

Built-in roles: ``data_provider`` (:mod:`deai.node.provider_role`) and ``compute_provider``
(:mod:`deai.node.compute_role`). Other layers plug in more with :func:`register_role` -- the hosting
role registers itself as ``host`` from ``deai.node.host``, which :func:`get_role` imports on demand.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from deai.core.accounts import Account
from deai.node.client import HubClient

__all__ = ["ROLES", "Role", "RoleContext", "get_role", "register_role", "role_names"]

ROLES: dict[str, type[Role]] = {}
_PLUGINS = {"host": "deai.node.host"}


class RoleContext:
    """What a role gets from its daemon: the hub client, its folders, options and behaviours."""

    def __init__(
        self,
        client: HubClient,
        state_dir: Path,
        *,
        data_dir: Path | None = None,
        options: dict[str, Any] | None = None,
        behaviours: dict[str, str] | None = None,
    ) -> None:
        self.client, self.state_dir, self.data_dir = client, Path(state_dir), data_dir
        self.options = dict(options or {})
        self.behaviours = dict(behaviours or {})


class Role(ABC):
    name = "role"

    def __init__(self, ctx: RoleContext, accounts: Sequence[Account], memory: dict | None = None) -> None:
        self.ctx, self.client = ctx, ctx.client
        self.accounts = {a.address: a for a in accounts}
        self.memory: dict[str, Any] = memory if memory is not None else {}

    def setup(self) -> None:  # noqa: B027 - optional
        """One-time preparation (staking); safe to repeat after a restart."""

    @abstractmethod
    def step(self) -> bool:
        """One poll of the hub; True if something was done."""

    def done(self) -> bool:
        """True when the role has nothing left to do (for runners that stop when all are done)."""
        return False


_RoleT = TypeVar("_RoleT", bound=Role)


def register_role(name: str) -> Callable[[type[_RoleT]], type[_RoleT]]:
    """Class decorator: register a :class:`Role` subclass under ``name`` (keeps its type)."""

    def deco(cls: type[_RoleT]) -> type[_RoleT]:
        cls.name = name
        ROLES[name] = cls
        return cls

    return deco


def get_role(name: str) -> type[Role]:
    if name not in ROLES and name in _PLUGINS:
        importlib.import_module(_PLUGINS[name])
    if name not in ROLES:
        importlib.import_module("deai.node.provider_role")
        importlib.import_module("deai.node.compute_role")
    try:
        return ROLES[name]
    except KeyError:
        raise ValueError(f"unknown role {name!r}; known: {', '.join(role_names())}") from None


def role_names() -> list[str]:
    return sorted(set(ROLES) | set(_PLUGINS) | {"data_provider", "compute_provider"})
