"""``deai chain start|deploy|status``: the EVM ledger on a local anvil node or any JSON-RPC URL.

- ``deai chain start --state DIR``: run anvil in the foreground with its state kept in
  ``DIR/state.json`` (loaded at start, dumped on exit and every few seconds); prints the RPC URL.
  With ``--genesis FILE`` it also deploys the ledger contract of that network the first time (the
  address is kept in ``DIR/ledger.json``) and prints it.
- ``deai chain deploy --rpc URL --genesis FILE``: deploy the ledger contract on any EVM chain
  (the node's first unlocked account pays, or ``--relayer`` names a keystore account).
- ``deai chain status --rpc URL --address ADDR --genesis FILE``: head, supply and a verify.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from deai.cli.common import load_account
from deai.cli.network import read_genesis

__all__ = ["app"]

app = typer.Typer(help="The EVM ledger: run a chain, deploy and inspect the contract.", no_args_is_help=True)

GenesisOption = typer.Option(..., "--genesis", help="The network's genesis file (deai network init).")


@app.command("start")
def start(
    state: Path = typer.Option(Path(".deai/chain"), "--state", help="Folder of the chain's state."),
    host: str = typer.Option("127.0.0.1", "--host", help="Listen here (0.0.0.0: other machines too)."),
    port: int = typer.Option(8545, "--port", help="RPC port (0: any free port)."),
    genesis: Path | None = typer.Option(None, "--genesis", help="Also deploy this network's ledger."),
) -> None:
    """Run anvil until interrupted; its state survives restarts."""
    from deai.ledger.evm.backend import EvmLedger
    from deai.ledger.evm.node import AnvilNode

    node = AnvilNode(state, port=port, host=host).start()
    try:
        typer.echo(f"rpc {node.url}")
        if genesis is not None:
            config = read_genesis(genesis)
            record = state / "ledger.json"
            known = json.loads(record.read_text()) if record.is_file() else {}
            address = known.get(config.genesis_hash)
            ledger = EvmLedger(node.url, config, deploy=address or True)
            known[config.genesis_hash] = ledger.address
            record.write_text(json.dumps(known, indent=1))
            typer.echo(f"ledger {ledger.address} (network {config.network}, height {ledger.head().height})")
        typer.echo("running; Ctrl-C stops it (the state is kept)")
        while node.process is not None and node.process.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        node.stop()


@app.command("deploy")
def deploy(
    rpc: str = typer.Option(..., "--rpc", help="The chain's JSON-RPC URL."),
    genesis: Path = GenesisOption,
    relayer: str | None = typer.Option(None, "--relayer", help="Keystore account that pays the gas."),
) -> None:
    """Deploy the ledger contract of a network; prints its address."""
    from deai.ledger.evm.backend import EvmLedger

    payer = load_account(relayer) if relayer else None
    ledger = EvmLedger(rpc, read_genesis(genesis), relayer=payer)
    typer.echo(ledger.address)


@app.command("status")
def status(
    rpc: str = typer.Option(..., "--rpc", help="The chain's JSON-RPC URL."),
    address: str = typer.Option(..., "--address", help="The ledger contract."),
    genesis: Path = GenesisOption,
) -> None:
    """Head, supply and a verify of a deployed ledger, read from the chain itself."""
    from deai.ledger.evm.backend import EvmLedger

    ledger = EvmLedger(rpc, read_genesis(genesis), deploy=address)
    head, report = ledger.head(), ledger.verify()
    typer.echo(
        json.dumps(
            {
                "height": head.height,
                "head": head.hash,
                "supply": ledger.supply(),
                "verified": report.ok,
                "problem": report.problem,
            },
            indent=1,
        )
    )
    if not report.ok:
        raise typer.Exit(1)
