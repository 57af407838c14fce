"""``deai node``: run a participant daemon for one or more accounts and roles."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from deai.node.participant.policy import JoinPolicy

if TYPE_CHECKING:
    from deai.node.launch.chain import ChainRef

__all__ = ["app", "node"]

_D = JoinPolicy()


def node(
    hub_url: str = typer.Option(..., "--hub", help="The hub's URL, e.g. http://127.0.0.1:8700."),
    roles: list[str] = typer.Option(
        ..., "--role", help="data_provider, compute_provider or host (repeatable)."
    ),
    accounts: list[str] = typer.Option(
        ..., "--accounts", help="seed:NAME:I[-J] or keystore files (repeatable)."
    ),
    state: Path = typer.Option(..., "--state", help="The daemon's folder (memory, job inputs)."),
    data: Path | None = typer.Option(None, "--data", help="Data folder: ADDRESS.npz per data provider."),
    behaviour: list[str] = typer.Option([], "--behaviour", help="ADDRESS=NAME: an adversarial behaviour."),
    ca: str | None = typer.Option(None, "--ca", help="CA certificate file to trust for an HTTPS hub."),
    device: str = typer.Option(
        "cpu", "--device", help="Where data providers train: cpu, cuda[:i] or auto (a GPU when present)."
    ),
    min_reward: int = typer.Option(
        _D.min_reward,
        "--min-reward",
        min=0,
        help="Join a task only if it pays at least this per provider per round"
        " (budget // rounds // max providers).",
    ),
    max_task_stake: int = typer.Option(
        _D.max_task_stake,
        "--max-task-stake",
        min=0,
        help="Join a task only if its provider stake is at most this.",
    ),
    min_job_fee: int = typer.Option(
        _D.min_job_fee,
        "--min-job-fee",
        min=0,
        help="Commit to a job only if it pays at least this per executor.",
    ),
    min_reveal_ms: int = typer.Option(
        _D.min_reveal_ms,
        "--min-reveal-ms",
        min=0,
        help="Commit to a job only if its reveal window is at least this long (ms).",
    ),
    log_level: str = typer.Option(
        "info", "--log-level", help="debug, info, warning or error (debug adds tracebacks)."
    ),
    log_format: str = typer.Option(
        "text", "--log-format", help="text (one line per event) or json (JSON lines)."
    ),
    rpc: str | None = typer.Option(
        None, "--rpc", help="Read the ledger from this EVM chain's JSON-RPC URL, not from the hub."
    ),
    ledger_address: str | None = typer.Option(
        None, "--ledger-address", help="With --rpc: the network's Ledger contract (from a source you trust)."
    ),
) -> None:
    """Run the roles for the accounts until interrupted; a restart resumes from --state.

    The daemon works only for pay (the join policy: --min-reward, --max-task-stake, --min-job-fee)
    and commits only to jobs it can finish and reveal in time; refused tasks and jobs are logged
    once."""
    from deai.core.logs import configure
    from deai.node.launch.chain import ChainRef
    from deai.node.launch.serve import serve_node

    try:
        configure(log_level, log_format)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None

    if device not in ("cpu", "auto") and not device.startswith("cuda"):
        raise typer.BadParameter("--device must be cpu, cuda[:i] or auto")
    if (rpc is None) != (ledger_address is None):
        raise typer.BadParameter("--rpc and --ledger-address go together")
    chain = ChainRef(rpc, ledger_address) if rpc is not None and ledger_address is not None else None
    accts = _preflight(hub_url, accounts, roles, ca or True, data, chain)
    behaviours = dict(b.split("=", 1) for b in behaviour)
    policy = JoinPolicy(
        min_reward=min_reward,
        max_task_stake=max_task_stake,
        min_job_fee=min_job_fee,
        min_reveal_ms=min_reveal_ms,
    )
    serve_node(
        hub_url,
        {r: accts for r in roles},
        state,
        data_dir=data,
        behaviours=behaviours,
        options={"policy": policy, "device": device},
        verify=ca or True,
        chain=chain,
    )


def _preflight(
    url: str,
    specs: list[str],
    roles: list[str],
    verify: bool | str,
    data: Path | None = None,
    chain: ChainRef | None = None,
) -> list:
    """The accounts, once the hub answers (within 30 s) and each account can pay its role stakes;
    otherwise one line naming the problem and its fix, exit 2 (no retrying forever)."""
    from deai.cli.common import connect, load_accounts, probe_hub
    from deai.cli.errors import UsageError, did_you_mean, one_line
    from deai.ledger.config import ROLES
    from deai.node.participant.staking import check_funds

    try:
        for role in roles:
            if role not in ROLES:
                hint = did_you_mean(role, ROLES)
                raise UsageError(f"--role: unknown role {role!r}{hint}; roles: {', '.join(ROLES)}")
        accts = load_accounts([s for spec in specs for s in spec.split(",") if s])
        if "data_provider" in roles and data is not None:  # DATA/ADDRESS.npz per account
            missing = [a.address for a in accts if not (data / f"{a.address}.npz").is_file()]
            if missing:
                raise UsageError(
                    f"no data file {data / (missing[0] + '.npz')} ({len(missing)} of {len(accts)} accounts"
                    " lack one): each data provider needs DATA/ADDRESS.npz with arrays x and y"
                )
        probe_hub(url, timeout=30.0, verify=verify)  # the hub may be starting
        check_funds(connect(url, accts[0], verify=verify, chain=chain), accts, roles)
    except Exception as exc:
        line = one_line(exc)
        if line is None:
            raise
        typer.echo(f"error: {line}", err=True)
        raise typer.Exit(2) from None
    return accts


app = typer.Typer(add_completion=False)
app.command()(node)

if __name__ == "__main__":  # pragma: no cover
    app()
