"""net: transports that move signed envelopes and content-addressed blobs.

Protocol code talks to a :class:`~deai.net.transport.Transport`; whether that is the
:class:`~deai.net.memory.MemoryTransport` (simulations, tests) or the
:class:`~deai.net.http.HttpTransport` (real processes) does not change what it sees, because both
end in the same server-side :class:`~deai.net.endpoint.Endpoint`, which verifies every envelope
and blob before a handler sees it.
"""

from deai.net.endpoint import Endpoint, Reply, ServiceError
from deai.net.memory import MemoryTransport
from deai.net.transport import RemoteError, Transport

__all__ = ["Endpoint", "MemoryTransport", "RemoteError", "Reply", "ServiceError", "Transport"]
