"""``deai ledger init|status|verify|seal|tx``: create, inspect and audit a SQLite ledger.

Mounted in the main CLI as ``app.add_typer(ledger.app, name="ledger")``. The ledger file defaults
to ``$DEAI_HOME/ledger.sqlite``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.table import Table

from deai.cli.common import console, deai_home
from deai.core.accounts import check_address
from deai.core.errors import DeaiError
from deai.ledger import ROLES, NetworkConfig, SqliteLedger
from deai.ledger.records import JobRecord, TaskRecord

__all__ = ["app"]

app = typer.Typer(help="Create, inspect and verify the ledger (SQLite backend).", no_args_is_help=True)

PathOption = typer.Option(None, "--path", help="Ledger file (default: $DEAI_HOME/ledger.sqlite).")


def _path(path: Path | None) -> Path:
    return path if path is not None else deai_home() / "ledger.sqlite"


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/] {message}")
    return typer.Exit(1)


def _open(path: Path | None, *, audit: bool = False) -> SqliteLedger:
    """Open the ledger file; ``audit``: also one that fails the start-up check (read-only)."""
    path = _path(path)
    if not path.exists():
        raise _fail(f"no ledger at {path} (create one with `deai ledger init`)")
    try:
        return SqliteLedger(path, audit=audit)
    except DeaiError as exc:
        raise _fail(str(exc)) from exc


def _when(ms: int) -> str:
    if ms >= 10**12:  # a wall-clock time
        return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"t={ms} ms"


@app.command("init")
def init(
    path: Path | None = PathOption,
    minter: str | None = typer.Option(
        None, "--minter", help="Address allowed to mint (required without --config)."
    ),
    network: str = typer.Option("deai-local", "--network", help="Network (chain) id signed into every tx."),
    config_file: Path | None = typer.Option(None, "--config", help="Network config as a JSON file."),
) -> None:
    """Create an empty ledger (the genesis) with a network config."""
    target = _path(path)
    if target.exists():
        raise _fail(f"{target} exists; refusing to overwrite a ledger")
    try:
        if config_file is not None:
            config = NetworkConfig.from_dict(json.loads(config_file.read_text()))
        elif minter is not None:
            config = NetworkConfig(minter=check_address(minter), network=network)
        else:
            raise _fail("give --minter ADDRESS or --config FILE")
        SqliteLedger(target, config).close()
    except (DeaiError, OSError, json.JSONDecodeError) as exc:
        raise _fail(str(exc)) from exc
    table = Table(title=f"ledger created: {target}", show_header=False)
    table.add_row("genesis hash", config.genesis_hash)
    for name, value in config.to_dict().items():
        table.add_row(name, json.dumps(value) if isinstance(value, dict) else str(value))
    console.print(table)


@app.command("status")
def status(path: Path | None = PathOption) -> None:
    """Head, state root, where the supply sits, and counts of what the ledger holds."""
    ledger = _open(path)
    try:
        head, state = ledger.head(), ledger.state()
        supply = ledger.check_invariants()
        overview = Table(title=f"ledger {ledger.path}", show_header=False)
        overview.add_row("network", ledger.config.network)
        overview.add_row("height", str(head.height))
        overview.add_row("head hash", head.hash)
        overview.add_row("clock", _when(head.time))
        overview.add_row("state root", state.root())
        overview.add_row("accounts that sent", str(len(state.tables["nonces"])))
        tasks = [t for _, t in state.records(TaskRecord)]
        jobs = [j for _, j in state.records(JobRecord)]
        overview.add_row("tasks (open)", f"{len(tasks)} ({sum(t.open for t in tasks)})")
        overview.add_row("jobs (open)", f"{len(jobs)} ({sum(j.open for j in jobs)})")
        overview.add_row("models", str(len(state.tables["models"])))
        console.print(overview)
        buckets = Table(title="supply (conservation holds)")
        buckets.add_column("bucket")
        buckets.add_column("amount", justify="right")
        for name, amount in supply.items():
            buckets.add_row(name, f"{amount:,}", style="bold" if name == "minted" else None)
        console.print(buckets)
    finally:
        ledger.close()


def _remote_entries(client, genesis: str):
    """The hub's log entries from genesis, page by page (``ledger.entries``), parsed as foreign
    data: a malformed page is a LedgerCorrupted naming it."""
    from deai.ledger.errors import LedgerCorrupted
    from deai.ledger.log import LogEntry

    since = 0
    while True:
        page = client.call("ledger.entries", {"since": since, "limit": 1000})
        try:
            if page["genesis"] != genesis:
                raise LedgerCorrupted(f"the hub's log starts from genesis {page['genesis']}, not {genesis}")
            rows = page["entries"]
            for r in rows:
                yield LogEntry(
                    seq=int(r["seq"]),
                    prev_hash=str(r["prev_hash"]),
                    time=int(r["time"]),
                    tx=bytes.fromhex(r["tx"]),
                    signature=bytes.fromhex(r["signature"]),
                    events_hash=str(r["events_hash"]),
                    hash=str(r["hash"]),
                )
            nxt = int(page["next"])
        except (KeyError, TypeError, ValueError) as exc:
            raise LedgerCorrupted(
                f"the hub's ledger.entries answer from {since} is malformed: {exc!r}"
            ) from None
        if not rows or nxt <= since:
            return
        since = nxt


def _verify_remote(hub: str) -> None:
    """``verify --hub``: replay the hub's whole log here, from the genesis it reports, and compare
    the head and state root it claims."""
    from deai.cli.common import connect
    from deai.ledger.errors import LedgerError
    from deai.ledger.log import replay

    client = connect(hub)
    config = NetworkConfig.from_dict(client.info()["config"])
    claimed_head, claimed_root = client.query("head"), client.query("state_root")
    try:
        state, head, n = replay(config, _remote_entries(client, config.genesis_hash))
        problem = None
        if n >= claimed_head["height"]:
            at = _nth_head(client, config, claimed_head["height"]) if n > claimed_head["height"] else head
            if at != claimed_head["hash"]:
                problem = f"the hub claims head {claimed_head['hash']} at height {claimed_head['height']}"
            elif n == claimed_head["height"] and state.root() != claimed_root:
                problem = f"replayed state root {state.root()} differs from the hub's {claimed_root}"
        else:
            problem = f"the hub served {n} entries but claims a height of {claimed_head['height']}"
    except LedgerError as exc:
        state, head, n, problem = None, "", 0, f"{type(exc).__name__}: {exc}"
    table = Table(title=f"ledger verification of {hub} (network {config.network})", show_header=False)
    table.add_row("genesis hash", config.genesis_hash)
    table.add_row("entries replayed", str(n))
    table.add_row("head", head)
    table.add_row("replayed state root", state.root() if state is not None else "-")
    table.add_row("hub's state root", str(claimed_root))
    table.add_row("result", "[green]OK[/]" if problem is None else f"[red]FAILED[/]: {problem}")
    console.print(table)
    if problem is not None:
        raise typer.Exit(1)


def _nth_head(client, config: NetworkConfig, height: int) -> str:
    """The hash of entry ``height - 1`` as the hub serves it (the log grew during the check)."""
    page = client.call("ledger.entries", {"since": height - 1, "limit": 1})
    return str(page["entries"][0]["hash"]) if height and page.get("entries") else config.genesis_hash


@app.command("verify")
def verify(
    path: Path | None = PathOption,
    hub: str | None = typer.Option(
        None, "--hub", help="Verify a running hub's ledger instead: replay its log here from genesis."
    ),
) -> None:
    """Replay the log from genesis: hash links, signatures, events and the final state root; and
    check the signed checkpoint (who signed it, and that the file still matches it). With --hub,
    the hub's log is fetched (``ledger.entries``) and replayed here."""
    if hub is not None:
        _verify_remote(hub)
        return
    ledger = _open(path, audit=True)
    try:
        report = ledger.verify()
        checkpoint = _checkpoint_line(ledger)
    finally:
        ledger.close()
    table = Table(title="ledger verification", show_header=False)
    table.add_row("signed checkpoint", checkpoint)
    table.add_row("entries replayed", str(report.entries))
    table.add_row("head", report.head)
    table.add_row("replayed state root", str(report.state_root))
    table.add_row("stored state root", str(report.stored_root))
    table.add_row("result", "[green]OK[/]" if report.ok else f"[red]FAILED[/]: {report.problem}")
    console.print(table)
    if not report.ok:
        raise typer.Exit(1)


def _checkpoint_line(ledger: SqliteLedger) -> str:
    try:
        cp = ledger.checkpoint_record()
    except DeaiError as exc:
        return f"unusable: {exc}"
    return "none" if cp is None else f"height {cp.height}, signed by {cp.signer}"


@app.command("seal")
def seal(
    account: str = typer.Option(
        ..., "--account", help="The operator (the hub's account): seed:NAME:I or a keystore."
    ),
    path: Path | None = PathOption,
) -> None:
    """Replay the whole log, then sign a checkpoint of the file as it is, as the operator.

    For a ledger written before checkpoints existed or by another account. The signature vouches
    for the file: a hub refuses to start on a ledger whose checkpoint is missing or signed by
    another key, so seal only a file you trust (a truncated log replays fine)."""
    from deai.node.launch.serve import parse_accounts

    try:
        (operator,) = parse_accounts([account])
    except (DeaiError, ValueError, OSError) as exc:
        raise _fail(str(exc)) from exc
    ledger = _open(path, audit=True)
    try:
        report = ledger.verify()
        if not report.ok:
            raise _fail(f"not sealed: {report.problem}")
        cp = ledger.seal(operator)
    finally:
        ledger.close()
    console.print(f"sealed: checkpoint at height {cp.height} (head {cp.head}) signed by {cp.signer}")


@app.command("tx")
def tx(
    address: str = typer.Argument(..., help="Account whose transactions to list."),
    path: Path | None = PathOption,
    limit: int = typer.Option(20, "--limit", min=1, help="How many of the newest transactions."),
) -> None:
    """An account's balances and stakes, and its transactions (newest first)."""
    try:
        address = check_address(address)
    except DeaiError as exc:
        raise _fail(str(exc)) from exc
    ledger = _open(path)
    try:
        account = Table(title=f"account {address}", show_header=False)
        account.add_row("balance", f"{ledger.balance(address):,}")
        account.add_row("next nonce", str(ledger.nonce(address)))
        for role in ROLES:
            staked, unbonding = ledger.stake(address, role), ledger.unbonding(address, role)
            if staked or unbonding or ledger.reputation(address, role):
                extra = (
                    f", unbonding {unbonding.amount:,} until {_when(unbonding.release)}" if unbonding else ""
                )
                account.add_row(
                    role, f"stake {staked:,}, reputation {ledger.reputation(address, role)}{extra}"
                )
        console.print(account)
        records = ledger.history(address, limit)
    finally:
        ledger.close()
    table = Table(title=f"transactions ({len(records)} newest)")
    for column in ("height", "time", "kind", "nonce", "body", "entry hash"):
        table.add_column(column, overflow="fold")
    for r in records:
        body = ", ".join(f"{k}={v}" for k, v in r.body.items() if v not in (None, "", [], ()))
        table.add_row(str(r.height), _when(r.time), r.kind, str(r.nonce), body, r.hash[:18] + "…")
    console.print(table)
