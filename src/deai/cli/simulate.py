"""``deai simulate SCENARIO`` and ``deai demo``: run a whole network and report on it."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import deai
from deai.cli.common import console
from deai.core.errors import DeaiError

__all__ = ["demo", "find_bundled", "simulate"]


def find_bundled(name: str) -> Path:
    """A bundled scenario by name (``scenarios/NAME.yaml`` next to the package's source tree)."""
    for root in (Path.cwd(), Path(deai.__file__).resolve().parents[2]):
        path = root / "scenarios" / f"{name}.yaml"
        if path.is_file():
            return path
    raise typer.BadParameter(f"no bundled scenario {name!r} (looked for scenarios/{name}.yaml)")


def _run(
    scenario_path: Path, transport: str | None, out: Path, small: bool = False, ledger: str | None = None
) -> dict:
    from deai.sim.report import write_report
    from deai.sim.runner import run_scenario
    from deai.sim.scenario import load_scenario

    scenario = load_scenario(scenario_path, small=small)
    if (transport or scenario.network.transport) == "http":  # before anything starts: not after 47 s
        from deai.cli.errors import check_processes

        check_processes(scenario.network.compute_providers, scenario.network.hosts)
    columns = (TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        bars = {
            "training": bar.add_task("rounds", total=scenario.task.rounds),
            "inference": bar.add_task("inference", total=max(1, scenario.inference.requests)),
        }

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(bars[stage], completed=done, total=max(1, total))

        report = run_scenario(scenario, out, transport=transport, progress=progress, ledger=ledger)
    report["inference"]["jobs"] = list(report["inference"]["jobs"])
    json_path, html_path = write_report(report, out)
    _summary(report, json_path, html_path)
    return report


def _summary(report: dict, json_path: Path, html_path: Path) -> None:
    table = Table(title=f"participants — {report['scenario']} ({report['transport']})")
    for col in ("role", "behaviour", "address", "earned", "slashed", "missed", "score"):
        table.add_column(col, justify="right" if col in ("earned", "slashed", "missed", "score") else "left")
    for p in report["participants"]:
        colour = "green" if p["behaviour"] == "honest" else "red"
        score = "" if p["score"] is None else f"{p['score']:+.3f}"
        table.add_row(
            p["role"],
            f"[{colour}]{p['behaviour']}[/]",
            p["address"][:10] + "…",
            str(p["earned"]),
            str(p["slashed"]),
            str(p.get("missed", 0)),  # drawn, never committed: a liveness fault, no stake lost
            score,
        )
    console.print(table)
    inf = report["inference"]
    eps = (
        "none (no DP)" if report["epsilon"] is None else f"{report['epsilon']:.2f} (delta {report['delta']})"
    )
    lines = [
        f"test accuracy      {report['test_accuracy']:.4f} after {report['rounds_completed']} rounds"
        + (
            f" (perplexity {report['test_perplexity']:.2f})"
            if report.get("test_perplexity") is not None
            else ""
        ),
        f"defense            {report.get('defense', '')}",
        f"scoring            {report.get('hidden_scoring_sets', 0)} hidden scoring set(s); updates sent"
        f" as {report.get('compression', 'none')}"
        + (
            f", global steps broadcast as {report['global_compression']}"
            if report.get("global_compression", "none") != "none"
            else ""
        ),
        f"privacy            epsilon {eps}",
        f"inference          {inf['answered']}/{inf['requests']} answered,"
        f" {inf['correct']} equal to the model's own answer",
        f"bytes sent         {report['bytes_sent']:,}",
        *_traffic_lines(report),
        f"ledger ({report.get('ledger', '?')})"[:19].ljust(19)
        + f"{report['ledger_entries']} entries, replayed from genesis: "
        + (
            "[green]verified[/]"
            if report["ledger_verified"]
            else f"[red]FAILED[/] {report['ledger_problem']}"
        ),
        f"wall time          {report['wall_seconds']:.1f} s",
        f"report             {json_path}  {html_path}",
        *(f"[yellow]warning[/]            {w}" for w in report.get("warnings", [])),
    ]
    console.print("\n".join(lines))


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} GB"  # pragma: no cover


def _traffic_lines(report: dict) -> list[str]:
    """One line per role: bytes sent and received per completed round (mean over the whole run;
    the totals and the round-by-round figures are in report.json)."""
    traffic = report.get("traffic") or {}
    return [
        f"traffic {role[:16]:<16}   sent {_size(t['sent_per_round'])}/round,"
        f" received {_size(t['received_per_round'])}/round"
        for role, t in traffic.get("roles", {}).items()
    ]


def simulate(
    scenario: Path = typer.Argument(..., help="Scenario YAML file (see docs/scenarios.md)."),
    transport: str | None = typer.Option(
        None, "--transport", help="memory or http (default: the scenario's network.transport)."
    ),
    out: Path = typer.Option(Path("runs/simulate"), "--out", help="Where report.json and report.html go."),
    small: bool = typer.Option(
        False, "--small", help="Apply the scenario's `small` section: its quick form (what CI runs)."
    ),
    ledger: str | None = typer.Option(
        None,
        "--ledger",
        help="sqlite (http default), memory (memory default) or evm: the ledger contracts on a chain"
        " (anvil over http, an in-process py-evm chain in memory).",
    ),
) -> None:
    """Run a scenario: train through the protocol, serve verified inference, write the report."""
    if transport not in (None, "memory", "http"):
        raise typer.BadParameter("--transport must be memory or http")
    if ledger not in (None, "memory", "sqlite", "evm"):
        raise typer.BadParameter("--ledger must be sqlite, memory or evm")
    if ledger == "evm":
        _check_anvil(transport, scenario)
    try:
        _run(scenario, transport, out, small, ledger)
    except DeaiError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc


def _check_anvil(transport: str | None, scenario: Path) -> None:
    """Over http the EVM ledger runs on anvil: say how to install it before anything starts."""
    from deai.ledger.evm.node import ANVIL_INSTALL, find_anvil
    from deai.sim.scenario import load_scenario

    if (transport or load_scenario(scenario).network.transport) == "http" and find_anvil() is None:
        raise typer.BadParameter(f"--ledger evm over http runs anvil, not installed here: {ANVIL_INSTALL}")


def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Where report.json and report.html go."),
    transport: str = typer.Option("http", "--transport", help="http (processes on loopback) or memory."),
) -> None:
    """The default scenario over HTTP on loopback with real processes: a network with one cheater
    per role is trained, hosted and queried; prints who was paid and slashed, and the report paths."""
    t0 = time.perf_counter()
    path = find_bundled("demo")
    console.print(f"[bold]deai demo[/]: {path} over {transport}")
    try:
        _run(path, transport, out)
    except DeaiError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"demo finished in {time.perf_counter() - t0:.1f} s")
