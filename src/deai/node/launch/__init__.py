"""launch: starting whole networks (the top of ``deai.node``: imports hub, user and participant).

- :class:`LocalNetwork`: hub and daemons in one process over the in-memory transport (tests,
  simulations);
- :class:`ProcessNetwork`: a hub and daemons as processes on loopback (``deai up``, fault tests);
- :func:`serve_hub` / :func:`serve_node`: what ``deai hub`` and ``deai node`` run.
"""

from deai.node.launch.inprocess import LocalNetwork
from deai.node.launch.processes import ProcessNetwork
from deai.node.launch.serve import serve_hub, serve_node

__all__ = ["LocalNetwork", "ProcessNetwork", "serve_hub", "serve_node"]
