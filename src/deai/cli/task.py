"""``deai task submit|list|status|watch|cancel``: create a task on a hub, follow it, cancel it.

A task id may be given in full or as a unique prefix of one the hub coordinates. ``cancel`` is the
creator's ``cancel_task``: the ledger accepts it only before anyone joined (then the whole budget
comes back); later only the hub, as coordinator, closes the task, after paying the rounds.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.live import Live
from rich.table import Table

from deai.cli.common import connect, console, load_account
from deai.cli.errors import UsageError, did_you_mean
from deai.protocol.task.records import Phase, TaskView

__all__ = ["app", "find_task", "render_status", "watch_task"]

app = typer.Typer(help="Submit federated tasks to a hub, follow and cancel them.", no_args_is_help=True)

HubOpt = typer.Option("http://127.0.0.1:8700", "--hub", help="The hub's URL.")


def _client(url: str, account: str | None = None):
    signer = load_account(account) if account else None
    client = connect(url, signer)
    return client, client.signer


def find_task(client, task: str) -> str:
    """The full id of ``task`` (an id or a unique prefix) among the tasks the hub coordinates or
    refused; an unknown one is a :class:`UsageError` with the closest ids."""
    listing = client.call("task.list")
    known = [*listing.get("tasks", {}), *listing.get("rejected", {})]
    want = task.lower()
    if want in known:
        return want
    match = [t for t in known if t.startswith(want if want.startswith("0x") else "0x" + want)]
    if len(match) == 1:
        return match[0]
    if match:
        raise UsageError(f"task {task!r} matches {len(match)} tasks on this hub; give more of its id")
    hint = did_you_mean(want, known)
    raise UsageError(
        f"no task {task} on this hub{hint}; `deai task list --hub URL` lists the {len(known)} it has"
    )


OVER = (Phase.DONE, Phase.FAILED, Phase.REJECTED)  # a task in these phases moves no more


def render_status(status: TaskView) -> Table:
    """A table of a task's rounds: accuracy, contributors, payouts, slashed executors, epsilon."""
    title = f"task {status.task[:14]}…  {status.phase}  round {status.round}/{status.rounds or '?'}"
    table = Table(title=title)
    for col in ("round", "val acc", "val loss", "contributors", "paid", "faulted", "epsilon"):
        table.add_column(col, justify="right")
    for h in status.history:
        eps = "-" if h.epsilon is None else f"{h.epsilon:.2f}"
        table.add_row(
            str(h.round),
            f"{h.val_accuracy:.3f}",
            f"{h.val_loss:.3f}",
            str(len(h.contributors)),
            str(h.payout),
            str(len(h.faulted)),
            eps,
        )
    if status.phase not in OVER:
        jobs = ", ".join(f"{k}: {v.status}" for k, v in status.jobs.items())
        table.caption = f"delivered {status.delivered}/{status.roster}  {jobs}"
    elif status.reason:
        table.caption = f"[red]{status.reason}[/]"
    elif status.model:
        table.caption = f"model {status.model}"
    return table


def watch_task(client, task: str, *, interval: float = 0.5, timeout: float | None = None) -> TaskView:
    """Follow a task with a live table until it is done, failed or rejected; return its status."""
    start = time.monotonic()
    status = client.task_status(task)
    with Live(render_status(status), console=console, refresh_per_second=4) as live:
        while status.phase not in OVER:
            if timeout is not None and time.monotonic() - start > timeout:
                raise TimeoutError(f"task {task} still {status.phase} after {timeout} s")
            time.sleep(interval)
            try:
                status = client.task_status(task)
            except Exception as exc:  # the hub may be restarting
                live.console.print(f"[yellow]hub unreachable ({type(exc).__name__}); retrying[/]")
                continue
            live.update(render_status(status))
    return status


@app.command("submit")
def submit(
    scenario: Path = typer.Argument(..., help="Scenario YAML: dataset, model and task sections are used."),
    account: str = typer.Option(
        ..., "--account", help="The creator (pays the budget): seed:NAME:I or keystore."
    ),
    hub: str = HubOpt,
    watch: bool = typer.Option(False, "--watch", help="Follow the task until it ends."),
) -> None:
    """Build the task of a scenario (validation split, initial model, recipe) and submit it."""
    from deai.node.user.submit import submit_task
    from deai.sim.plan import NetworkPlan
    from deai.sim.scenario import load_scenario

    client, creator = _client(hub, account)
    plan = NetworkPlan.from_scenario(load_scenario(scenario))
    budget, balance = plan.bundle.spec.budget, client.query("balance", address=creator.address)
    if balance < budget:
        raise UsageError(
            f"the creator {creator.address} has a balance of {balance:,}; the task escrows a budget of"
            f" {budget:,}: fund it (`deai account fund {creator.address} --amount {budget - balance}"
            " --minter MINTER --hub URL` on a devnet) or lower task.budget"
        )
    plan.publish_data(client)  # a delegated task's training data
    task = submit_task(client, creator, plan.bundle)
    typer.echo(f"submitted task {task} (budget {plan.bundle.spec.budget:,})")
    if watch:
        final = watch_task(client, task)
        if final.phase != Phase.DONE:
            raise typer.Exit(1)


@app.command("list")
def list_(hub: str = HubOpt) -> None:
    """The tasks the hub coordinates (phase and round) and the ones it refused (why)."""
    client, _ = _client(hub)
    listing = client.call("task.list")
    for task, t in listing.get("tasks", {}).items():
        typer.echo(f"{task}  {t.get('phase')}  round {t.get('round')}")
    for task, why in listing.get("rejected", {}).items():
        typer.echo(f"{task}  rejected  {why}")
    if not listing.get("tasks") and not listing.get("rejected"):
        typer.echo("no tasks on this hub")


@app.command("status")
def status(task: str = typer.Argument(..., help="Task id or a unique prefix."), hub: str = HubOpt) -> None:
    """Print a task's phase and per-round history."""
    client, _ = _client(hub)
    console.print(render_status(client.task_status(find_task(client, task))))


@app.command("watch")
def watch(task: str = typer.Argument(..., help="Task id or a unique prefix."), hub: str = HubOpt) -> None:
    """Follow a task's rounds live until it ends."""
    client, _ = _client(hub)
    final = watch_task(client, find_task(client, task))
    raise typer.Exit(0 if final.phase == Phase.DONE else 1)


@app.command("cancel")
def cancel(
    task: str = typer.Argument(..., help="Task id or a unique prefix."),
    account: str = typer.Option(
        ..., "--account", help="The task's creator: seed:NAME:I, address or keystore."
    ),
    hub: str = HubOpt,
) -> None:
    """Cancel a task nobody joined yet: the ledger refunds its whole budget to the creator and the
    hub stops coordinating it. Once a member joined, the hub closes it at its end instead."""
    from deai.ledger.txs import CancelTask

    client, creator = _client(hub, account)
    task = find_task(client, task)
    record = client.task(task)
    if record is None:
        raise UsageError(f"task {task} is not on the ledger")
    if record.creator.lower() != creator.address.lower():
        raise UsageError(f"only the task's creator {record.creator} may cancel it, not {creator.address}")
    if not record.open:
        raise UsageError(f"task {task} is closed already")
    if record.members:
        raise UsageError(
            f"task {task} has {record.members} member(s): it can no longer be cancelled; its coordinator"
            " closes it at its end (or when it fails) and refunds what is left of the budget"
        )
    client.send_tx(creator, CancelTask(task=task))
    typer.echo(f"cancelled task {task}: {record.budget:,} refunded to {creator.address}")


if __name__ == "__main__":  # pragma: no cover
    app()
