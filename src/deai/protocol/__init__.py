"""protocol: the state machines of the network (task lifecycle, verified jobs, secure aggregation,
scoring, settlement). No sockets, no sleeps: time comes in as a value."""
