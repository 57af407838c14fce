"""``deai up SCENARIO``: a whole local network of processes on loopback, and its task.

Starts a hub and the participant daemons the scenario describes (data providers split over a few
processes, one process per compute provider and per host), funds every account, submits the
scenario's task and follows it live; once the model is registered it waits until every host
daemon announced it is ready to serve it (only then may inference requests be sent). With
``--keep`` the network stays up after the task (Ctrl-C stops it); otherwise every process is
stopped cleanly (SIGTERM, then SIGKILL after a timeout).

``--ledger evm`` puts the ledger on a chain: anvil started in ``DIR/chain`` (its state kept across
restarts), or the chain at ``--rpc URL``; the network's contracts are deployed there, the hub only
relays transactions to them and every daemon reads the ledger from the chain itself.
"""

from __future__ import annotations

import signal
import tempfile
import threading
from pathlib import Path

import typer

from deai.cli.common import console

__all__ = ["app", "up"]


def up(
    scenario: Path = typer.Argument(..., help="Scenario YAML file."),
    folder: Path | None = typer.Option(
        None, "--dir", help="Where the network keeps its files (default: a temp dir)."
    ),
    port: int = typer.Option(0, "--port", help="Hub port (0: any free port)."),
    data_processes: int = typer.Option(
        2, "--data-processes", help="Daemons the data providers are split over."
    ),
    no_task: bool = typer.Option(False, "--no-task", help="Start the network only; submit tasks yourself."),
    keep: bool = typer.Option(
        False, "--keep", help="Keep the network running after the task (Ctrl-C stops it)."
    ),
    timeout: float = typer.Option(
        600.0, "--timeout", help="Give up following the task after this many seconds."
    ),
    ledger: str = typer.Option(
        "sqlite", "--ledger", help="sqlite (the hub's ledger file) or evm (contracts on a chain)."
    ),
    rpc: str | None = typer.Option(
        None, "--rpc", help="With --ledger evm: this chain's JSON-RPC URL instead of a new anvil node."
    ),
) -> None:
    """Launch the scenario's network on 127.0.0.1, run its task, and stop cleanly."""
    from deai.cli.errors import check_processes
    from deai.cli.task import watch_task
    from deai.node.user.submit import submit_task
    from deai.sim.plan import NetworkPlan
    from deai.sim.scenario import load_scenario

    if ledger not in ("sqlite", "evm") or (rpc is not None and ledger != "evm"):
        raise typer.BadParameter("--ledger must be sqlite or evm; --rpc goes with --ledger evm")
    if ledger == "evm" and rpc is None:
        from deai.ledger.evm.node import ANVIL_INSTALL, find_anvil

        if find_anvil() is None:
            raise typer.BadParameter(f"--ledger evm starts anvil, which is not installed: {ANVIL_INSTALL}")
    loaded = load_scenario(scenario)
    check_processes(loaded.network.compute_providers, loaded.network.hosts, data_processes)
    plan = NetworkPlan.from_scenario(loaded)
    root = folder or Path(tempfile.mkdtemp(prefix="deai-up-"))
    console.print(f"starting the network in {root}")
    net = plan.processes(root, data_processes=data_processes, port=port, ledger=ledger, rpc=rpc)
    ok = True
    try:
        console.print(
            f"hub [bold]{net.url}[/]  data providers {len(plan.providers)}  compute {len(plan.computes)}"
            f"  hosts {len(plan.hosts)}  processes {1 + len(net.nodes)}"
        )
        # the accounts a user may act as on this network (development keys, funded at start)
        if net.chain is not None:  # what a participant needs to read the ledger from the chain itself
            typer.echo(f"chain    --rpc {net.chain.rpc} --ledger-address {net.chain.address}")
        typer.echo(f"creator  seed:{plan.tag}creator:0  {plan.creator.address}  (funded: may submit tasks)")
        typer.echo(f"minter   seed:{net.network}:{net.seed}:minter:0  (may fund accounts: deai account fund)")
        typer.echo(f"submit   deai task submit {scenario} --account seed:{plan.tag}creator:0 --hub {net.url}")
        if not no_task:
            client = net.client(plan.creator)
            plan.wait_staked(client)  # the provider daemons up before the join grace runs
            task = submit_task(client, plan.creator, plan.bundle)
            console.print(f"task [bold]{task}[/]")
            final = watch_task(client, task, timeout=timeout)
            ok = final.phase == "done"
            if ok and final.model and any("host" in n.roles for n in net.nodes.values()):
                # the hosts fetch and check the new model on its registration; say when inference
                # requests can be sent (the ledger draws among every staked host, ready or not)
                net.wait_ready(final.model, timeout=timeout)
                console.print(f"hosts ready to serve model [bold]{final.model}[/]")
        if keep or no_task:
            console.print("network running; Ctrl-C to stop")
            stop = threading.Event()
            signal.signal(signal.SIGINT, lambda *_: stop.set())
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            stop.wait()
    finally:
        console.print("stopping the network")
        net.stop()
    raise typer.Exit(0 if ok else 1)


app = typer.Typer(add_completion=False)
app.command()(up)

if __name__ == "__main__":  # pragma: no cover
    app()
