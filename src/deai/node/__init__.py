"""node: the hub (ledger service, blob relay, coordination) and the participant daemon (roles).

- :class:`~deai.node.hub.Hub`: handlers behind one :class:`~deai.net.endpoint.Endpoint`;
- :class:`~deai.node.client.HubClient`: a participant's signed requests over any transport;
- :class:`~deai.node.daemon.Daemon` and the role registry (:mod:`deai.node.roles`);
- :class:`~deai.node.network.LocalNetwork`: a whole network in one process (in-memory transport);
- :mod:`deai.node.process`: hub and daemon processes on loopback (HTTP).
"""
