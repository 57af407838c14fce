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
        f"claimed {t['claimed']}, budget left {report['budget_left']}; earned = payouts claimed + job fees"
    )
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("account", "left"),
        ("role", "left"),
        ("score", "right"),
        ("jobs ok/fault/missed", "right"),
        ("allocated", "right"),
        ("earned", "right"),
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
            str(r["earned"]),
            str(r["slashed_in_task"] + r["job_slashes"]),
            rep,
            r["why"],
        )
    return table


FORMATS = ("table", "json", "csv")


def _from_hub(url: str, path: str, params: dict[str, str]) -> Any:
    """GET a read-only dashboard endpoint of a running hub (JSON, or CSV text)."""
    import httpx

    try:
        r = httpx.get(f"{url.rstrip('/')}{path}", params=params, timeout=30)
    except httpx.HTTPError as exc:
        console.print(f"[red]error:[/] cannot reach the hub at {url}: {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from None
    if r.status_code != 200:
        try:
            reason = r.json().get("reason", r.text[:200])
        except ValueError:
            reason = r.text[:200]
        console.print(f"[red]error:[/] the hub answered {r.status_code}: {reason}")
        raise typer.Exit(1)
    return r.text if params.get("format") == "csv" else r.json()


def statement_table(rows: list[dict[str, Any]], title: str) -> Table:
    """Statement rows (:class:`~deai.protocol.incentives.report.StatementRow` JSON) as a rich table."""
    table = Table(title=title)
    for col in ("account", "role", "earned", "by source", "slashed", "why slashed", "won/faulted/missed"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            r["account"],
            r["role"],
            str(r["earned_total"]),
            ", ".join(f"{k} {v}" for k, v in r["earned"].items() if v),
            str(r["slashed"]),
            "; ".join(r["reasons"]),
            f"{r['won']}/{r['faulted']}/{r['missed']}",
        )
    return table


@app.command("report")
def report(
    ledger: Path | None = typer.Option(None, "--ledger", help="Path of a SQLite ledger file."),
    hub: str | None = typer.Option(
        None,
        "--hub",
        help="Read from a running hub instead (its read-only dashboard API), e.g. http://HOST:8700.",
    ),
    task: str | None = typer.Option(
        None, "--task", help="Task id (0x-hex). Without it: every account of the network, every role."
    ),
    record: Path | None = typer.Option(
        None, "--record", help="The task record JSON (scores, settlement) the coordinator published."
    ),
    fmt: str = typer.Option(
        "table",
        "--format",
        help="table, json, or csv (one row per account and role: earned by source, slashed and why).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Same as --format json."),
) -> None:
    """Who earned what, who was slashed and why: one task (scores, jobs, payouts, claims) or the
    whole network (task payouts, job fees, inference fees, royalties; every slash with its reason)."""
    from deai.protocol.incentives.report import Statement, StatementRow, statement_csv, task_report

    fmt = "json" if as_json else fmt
    if fmt not in FORMATS:
        console.print(f"[red]error:[/] --format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        raise typer.Exit(2)
    if (ledger is None) == (hub is None):
        console.print(
            "[red]error:[/] give --ledger FILE (a local ledger) or --hub URL (a running hub), one of them"
        )
        raise typer.Exit(2)
    task = task.lower() if task is not None else None
    if hub is not None:
        if task is not None and fmt != "csv":
            out = _from_hub(hub, "/dashboard/api/report", {"task": task})
        else:
            params = {"format": "csv" if fmt == "csv" else "json", **({"task": task} if task else {})}
            out = _from_hub(hub, "/dashboard/api/statement", params)
            if fmt == "csv":
                print(out, end="")
                return
            out = out["rows"]
    else:
        assert ledger is not None
        rec = None
        if record is not None:
            try:
                rec = json.loads(record.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                console.print(f"[red]error:[/] cannot read the task record {record}: {exc}")
                raise typer.Exit(1) from None
        with _open(ledger) as led:
            try:
                if fmt == "csv" or task is None:
                    rows: list[StatementRow] = Statement.of(led, task).sorted_rows()
                    if fmt == "csv":
                        print(statement_csv(rows), end="")
                        return
                    out = [r.to_json() for r in rows]
                else:
                    out = task_report(led, task, rec)
            except DeaiError as exc:
                console.print(f"[red]error:[/] {exc}")
                raise typer.Exit(1) from None
    if fmt == "json":
        print(json.dumps(out, indent=2, sort_keys=True))
    elif isinstance(out, list):
        console.print(statement_table(out, "who earned and was slashed, and why (every role)"))
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
