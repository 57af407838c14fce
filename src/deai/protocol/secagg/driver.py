"""An in-memory driver: runs one round between a server and n clients through the real wire encoding.

The protocol layer drives the same state machines over its transports; this driver is what tests,
benchmarks and :mod:`deai.protocol.secagg.bucketed` use in one process. It counts every byte each
provider sends and the time each party spends, and can make chosen providers drop out at any phase.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from deai.core.accounts import Account
from deai.protocol.secagg.client import SecAggClient
from deai.protocol.secagg.config import SecAggConfig
from deai.protocol.secagg.messages import Message, decode, encode, wire_size
from deai.protocol.secagg.phases import Phase
from deai.protocol.secagg.server import SecAggResult, SecAggServer

__all__ = ["RoundStats", "run_round"]

_ORDER = (Phase.ADVERTISE, Phase.SHARE, Phase.MASKED, Phase.CONSISTENCY, Phase.UNMASK)


@dataclass
class RoundStats:
    sent_bytes: dict[int, int] = field(default_factory=dict)  # provider -> bytes it sent
    received_bytes: dict[int, int] = field(default_factory=dict)  # provider -> bytes sent to it
    client_seconds: dict[int, float] = field(default_factory=dict)
    server_seconds: float = 0.0
    clipped: int = 0  # coordinates clipped into the ring's range, over all providers


def run_round(
    config: SecAggConfig,
    updates: np.ndarray,
    accounts: Sequence[Account],
    drop: Mapping[int, Phase] | None = None,
    seed: int | None = None,
    wire: bool = True,
) -> tuple[SecAggResult, RoundStats]:
    """Run a round; provider u silently stops before sending its message of phase ``drop[u]``.

    ``seed`` makes the clients' keys reproducible (simulation); ``wire=False`` skips encoding and
    decoding (messages still counted at their wire size).
    """
    drop = dict(drop or {})
    stats = RoundStats()
    server = SecAggServer(config)
    clients = {}
    for u in range(config.n):
        cseed = None if seed is None else f"{seed}:{u}".encode()
        clients[u] = SecAggClient(config, u, accounts[u], seed=cseed)
        stats.sent_bytes[u] = stats.received_bytes[u] = 0
        stats.client_seconds[u] = 0.0

    def client_step(u, fn, *args):
        t0 = time.perf_counter()
        out = fn(*args)
        stats.client_seconds[u] += time.perf_counter() - t0
        return out

    def deliver(u, msg):
        stats.sent_bytes[u] += wire_size(msg, config)
        if wire:
            msg = decode(encode(msg, config), config)
        t0 = time.perf_counter()
        server.receive(msg)
        stats.server_seconds += time.perf_counter() - t0

    inbox: dict[int, Message | None] = {u: None for u in range(config.n)}
    for phase in _ORDER:
        for u, incoming in inbox.items():
            if drop.get(u) == phase:
                continue
            if phase == Phase.ADVERTISE:
                msg = client_step(u, clients[u].start, updates[u])
            elif incoming is None:
                continue
            else:
                stats.received_bytes[u] += wire_size(incoming, config)
                if wire:
                    incoming = decode(encode(incoming, config), config)
                msg = client_step(u, clients[u].handle, incoming)
            deliver(u, msg)
        t0 = time.perf_counter()
        out = server.close_phase()
        stats.server_seconds += time.perf_counter() - t0
        inbox = {u: out.get(u) for u in range(config.n) if out.get(u) is not None}
    stats.clipped = sum(c.clipped for c in clients.values())
    assert server.result is not None
    return server.result, stats
