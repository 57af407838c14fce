"""hub: what the hub process runs (uses ``deai.node.participant``, never ``user`` or ``launch``).

:class:`Hub` serves the ledger, relays blobs and coordinates tasks behind one verifying endpoint;
its default plugin routes paid inference requests to staked hosts (:mod:`deai.node.hub.inference`).
It keeps coordinator state in a :class:`KV` and adopts only the tasks its :class:`AdmissionPolicy`
accepts.
"""

from deai.node.hub.admission import AdmissionPolicy, TaskRefused
from deai.node.hub.kv import KV
from deai.node.hub.server import Hub

__all__ = ["KV", "AdmissionPolicy", "Hub", "TaskRefused"]
