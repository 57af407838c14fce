"""participant: what a participant's daemon process runs (imports nothing else from ``deai.node``).

A :class:`Daemon` hosts several accounts in one or more roles and drives them against one hub
through a :class:`HubClient`. Roles are registered by name in :data:`ROLES`; each registers itself
where it is defined, and the imports below load every one of them, so ``ROLES.get(name)`` knows all
the built-in roles as soon as anything from this package is imported. To add a role, subclass
:class:`Role` in a new module here, decorate it with ``@ROLES.register("name")`` and import it below.
"""

from deai.node.participant.client import HubClient, TxFailed
from deai.node.participant.compute import ComputeProviderRole
from deai.node.participant.daemon import Daemon
from deai.node.participant.host import HostRole
from deai.node.participant.policy import JoinPolicy
from deai.node.participant.provider import DataProviderRole
from deai.node.participant.roles import ROLES, Role, RoleContext, UnknownRole

__all__ = [
    "ROLES",
    "ComputeProviderRole",
    "Daemon",
    "DataProviderRole",
    "HostRole",
    "HubClient",
    "JoinPolicy",
    "Role",
    "RoleContext",
    "TxFailed",
    "UnknownRole",
]
