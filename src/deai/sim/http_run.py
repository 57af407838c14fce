"""The ``http`` transport of :func:`deai.sim.runner.run_scenario`: real processes on loopback.

The hub and the participant daemons run as separate processes (``deai hub`` / ``deai node``)
talking HTTP on 127.0.0.1; this process submits the task as its creator and follows it. When the
task is done, host daemons are started and the creator sends its verified inference requests
through the hub (``serve``). Once the daemons have claimed their payouts, the network is stopped
cleanly and the hub's durable ledger is opened for the report and replayed from genesis.

Traffic: each daemon writes its client counters to ``traffic.json`` in its state folder (at most once
a second, and when it stops); the returned :class:`~deai.sim.runner.TrafficLog` reads them with the
counters of this process's own clients (the creator's), snapshot at each round change while the
task trains (so per-round figures are approximate to a second) and exactly once all have stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from deai.ledger.base import Ledger
from deai.node.user.submit import submit_task
from deai.protocol.task.records import Phase, TaskView
from deai.sim.plan import NetworkPlan

if TYPE_CHECKING:
    from deai.sim.runner import TrafficLog

__all__ = ["run_http"]

QUIET_S = 2.0  # the ledger is considered settled after this long without a new event


def _settle(client, since: int, timeout: float) -> None:
    """Wait until the ledger stops moving (daemons claiming their payouts), at most ``timeout``."""
    end, last_change = time.monotonic() + timeout, time.monotonic()
    while time.monotonic() < end and time.monotonic() - last_change < QUIET_S:
        events, since_next = client.events(since)
        if events:
            since, last_change = since_next, time.monotonic()
        time.sleep(0.2)


def run_http(
    plan: NetworkPlan,
    root: Path,
    progress,
    serve: Callable[..., tuple[Any, dict]],
    *,
    timeout: float = 900.0,
    ledger: str = "sqlite",
) -> tuple[Ledger, TaskView, Any, dict[str, Any], int, TrafficLog, Callable[[], None]]:
    """Train the plan's task over HTTP and serve it with ``serve(net, status, checkpoint_bytes)``;
    return the network's ledger, the final task status, the model and inference results ``serve``
    returned, the bytes all parties sent to the hub, the traffic log, and what stops what is left
    running once the ledger has been read (the chain of ``ledger="evm"``)."""
    from deai.sim.runner import TrafficLog

    net = plan.processes(root, with_hosts=False, ledger=ledger)
    log = TrafficLog(plan.creator.address, net.traffic)
    try:
        client = net.client(plan.creator)
        plan.wait_staked(client)  # every provider daemon up before the join window (and its grace) runs
        task = submit_task(client, plan.creator, plan.bundle)
        rounds, start = plan.bundle.spec.rounds, time.monotonic()
        while True:
            status = client.task_status(task)
            log.mark(status.round)
            progress("training", min(status.round, rounds), rounds)
            if status.phase in (Phase.DONE, Phase.FAILED, Phase.REJECTED):
                break
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"task still {status.phase} after {timeout:.0f} s")
            time.sleep(0.25)
        log.mark(-1)
        progress("training", rounds, rounds)
        checkpoint = client.get_blob(status.checkpoint) if status.checkpoint else b""
        model, inference = serve(net, status, checkpoint)
        _settle(client, 0, timeout=30.0)
        bytes_sent = int(httpx.get(f"{net.url}/v1/health", timeout=10).json()["bytes_in"])
    finally:
        net.stop(keep_chain=True)
    return net.ledger(), status, model, inference, bytes_sent, log, net.stop_chain
