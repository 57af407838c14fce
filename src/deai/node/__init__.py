"""node: the hub and participant processes of a deai network, grouped by the process that runs them.

- :mod:`deai.node.participant` -- what a participant's daemon runs: the hub client
  (:class:`~deai.node.participant.client.HubClient`), the :class:`~deai.node.participant.daemon.Daemon`,
  the role registry (:data:`~deai.node.participant.roles.ROLES`) and the roles (data provider,
  compute provider, host), their join policy and staking, and finding a served model;
- :mod:`deai.node.user` -- what a task creator or an inference user runs: build and submit a task
  (:mod:`~deai.node.user.submit`), request and recheck a verified inference (:mod:`~deai.node.user.infer`);
- :mod:`deai.node.hub` -- what the hub process runs: the :class:`~deai.node.hub.server.Hub` behind one
  :class:`~deai.net.endpoint.Endpoint`, its inference plugin, admission policy, change notification
  and key-value store;
- :mod:`deai.node.launch` -- starting whole networks: :class:`~deai.node.launch.inprocess.LocalNetwork`
  (one process, in-memory transport), :class:`~deai.node.launch.processes.ProcessNetwork` (processes
  on loopback) and what ``deai hub`` / ``deai node`` run (:mod:`~deai.node.launch.serve`).

Imports point one way: ``launch`` -> ``hub`` -> ``user`` -> ``participant`` (a group imports only
the groups after it; ``tests/node/test_node_layout.py`` checks it). This package itself imports
none of them, so importing one group does not load the others.
"""
