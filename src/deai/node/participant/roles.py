"""Participant roles and their registry: what a daemon does for the accounts it hosts.

A role is a poll-driven object: :meth:`Role.setup` once (e.g. stake), then :meth:`Role.step`
repeatedly; ``step`` returns True when it did something (the daemon polls again at once) and keeps
what it must remember across restarts in :attr:`Role.memory` (plain JSON, saved by the daemon).

Roles are looked up by name in :data:`ROLES` (``ROLES.get("host")``; an unknown name raises
:class:`UnknownRole`). Each role class registers itself where it is defined
(``@ROLES.register("data_provider")`` in :mod:`deai.node.participant.provider`, ``compute_provider``
in :mod:`deai.node.participant.compute`, ``host`` in :mod:`deai.node.participant.host`), and the
package ``deai.node.participant`` imports each of those modules, so importing anything from the
package registers all of them. This module imports no role.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deai.core.accounts import Account
from deai.core.errors import DeaiError
from deai.core.registry import Registry
from deai.node.participant.client import HubClient

__all__ = ["ROLES", "Role", "RoleContext", "UnknownRole"]


class UnknownRole(DeaiError, ValueError):
    """No role is registered under that name."""


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


# Names are case-sensitive (they are the ledger's stake roles and the CLI's ``--role`` values);
# registering writes the name onto the class (``DataProviderRole.name == "data_provider"``).
ROLES: Registry[Role] = Registry("role", UnknownRole, fold_case=False, stamp="name")
