"""``deai task submit|status|watch``: create a task on a hub and follow its rounds."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.live import Live
from rich.table import Table

from deai.cli.common import console
from deai.protocol.task.records import Phase, TaskView

__all__ = ["app", "render_status", "watch_task"]

app = typer.Typer(help="Submit federated tasks to a hub and follow them.", no_args_is_help=True)

HubOpt = typer.Option("http://127.0.0.1:8700", "--hub", help="The hub's URL.")


def _client(url: str, account: str | None = None):
    from deai.core.accounts import Account
    from deai.node.launch.serve import hub_client, parse_accounts

    signer = parse_accounts([account])[0] if account else Account.create()
    return hub_client(url, signer), signer


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

    plan = NetworkPlan.from_scenario(load_scenario(scenario))
    client, creator = _client(hub, account)
    task = submit_task(client, creator, plan.bundle)
    console.print(f"submitted task [bold]{task}[/] (budget {plan.bundle.spec.budget})")
    if watch:
        watch_task(client, task)


@app.command("status")
def status(task: str = typer.Argument(...), hub: str = HubOpt) -> None:
    """Print a task's phase and per-round history."""
    client, _ = _client(hub)
    console.print(render_status(client.task_status(task)))


@app.command("watch")
def watch(task: str = typer.Argument(...), hub: str = HubOpt) -> None:
    """Follow a task's rounds live until it ends."""
    client, _ = _client(hub)
    final = watch_task(client, task)
    raise typer.Exit(0 if final.phase == Phase.DONE else 1)


if __name__ == "__main__":  # pragma: no cover
    app()
