"""``deai incentives report|reputation``: who earned what in a task, and everyone's reputation."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer
from rich.console import JustifyMethod
from rich.table import Table

from deai.cli.common import console
from deai.core.errors import DeaiError
from deai.ledger.config import ROLES
from deai.ledger.sqlite import SqliteLedger

app = typer.Typer(help="Incentives: task reports (earnings and why) and reputation.", no_args_is_help=True)

LedgerPath = typer.Option(..., "--ledger", help="Path of a SQLite ledger file.")


def _open(path: Path) -> SqliteLedger:
    if not path.is_file():
        console.print(f"[red]error:[/] no ledger file at {path}")
        raise typer.Exit(1)
    try:
        return SqliteLedger(path)
    except DeaiError as exc:
        console.print(f"[red]error:[/] cannot open ledger {path}: {exc}")
        raise typer.Exit(1) from exc


def report_table(report: Mapping[str, Any]) -> Table:
    """The report's accounts as a rich table."""
    t = report["totals"]
    table = Table(
        title=f"task {report['task'][:18]}... ({report['status']}): paid out {t['paid_out']}, "
        f"claimed {t['claimed']}, budget left {report['budget_left']}"
    )
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("account", "left"),
        ("role", "left"),
        ("score", "right"),
        ("jobs ok/fault/missed", "right"),
        ("allocated", "right"),
        ("claimed", "right"),
        ("slashed", "right"),
        ("reputation", "right"),
        ("why", "left"),
    )
    for col, just in columns:
        table.add_column(col, justify=just, overflow="fold")
    for r in report["accounts"]:
        score = "" if r["score_total"] is None else f"{r['score_total']:+.4g}"
        roles = ",".join(x.replace("_provider", "") for x in r["roles"])
        rep = ",".join(str(v) for v in r["reputation"].values())
        table.add_row(
            r["account"][:12] + "...",
            roles,
            score,
            f"{r['jobs_accepted']}/{r['jobs_faulted']}/{r['jobs_missed']}",
            str(r["allocated"]),
            str(r["claimed"]),
            str(r["slashed_in_task"] + r["job_slashes"]),
            rep,
            r["why"],
        )
    return table


@app.command("report")
def report(
    ledger: Path = LedgerPath,
    task: str = typer.Option(..., "--task", help="Task id (0x-hex)."),
    record: Path | None = typer.Option(
        None, "--record", help="The task record JSON (scores, settlement) the coordinator published."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Who earned what in a task, and why (scores, jobs, slashes, payouts, claims)."""
    from deai.protocol.incentives.report import task_report

    rec = None
    if record is not None:
        try:
            rec = json.loads(record.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            console.print(f"[red]error:[/] cannot read the task record {record}: {exc}")
            raise typer.Exit(1) from exc
    with _open(ledger) as led:
        try:
            out = task_report(led, task.lower() if task.startswith("0X") else task, rec)
        except DeaiError as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from exc
    if as_json:
        print(json.dumps(out, indent=2, sort_keys=True))
    else:
        console.print(report_table(out))


@app.command("reputation")
def reputation(
    ledger: Path = LedgerPath,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Reputation per account and role (every account that staked, ran a job or was rated)."""
    with _open(ledger) as led:
        seen: set[str] = set()
        for ev in led.events():
            d = ev.data
            for k in ("account", "to"):
                if isinstance(d.get(k), str) and d[k].startswith("0x") and len(d[k]) == 42:
                    seen.add(d[k])
            for k in ("accepted", "faulted", "executors"):
                seen.update(a for a in d.get(k) or [] if isinstance(a, str))
        rows: list[dict[str, Any]] = []
        for a in sorted(seen):
            reps = {r: led.reputation(a, r) for r in ROLES}
            stakes = {r: led.stake(a, r) for r in ROLES}
            if any(reps.values()) or any(stakes.values()):
                rows.append({"account": a, "reputation": reps, "stake": stakes})
    if as_json:
        print(json.dumps(rows, indent=2, sort_keys=True))
        return
    table = Table(title="reputation (stake) per role")
    table.add_column("account")
    for r in ROLES:
        table.add_column(r.replace("_provider", ""), justify="right")
    for row in rows:
        table.add_row(row["account"], *(f"{row['reputation'][r]} ({row['stake'][r]})" for r in ROLES))
    console.print(table)
