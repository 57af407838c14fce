"""The ``deai`` command."""

from __future__ import annotations

import typer

from deai import __version__
from deai.cli import account, blob, hub, incentives, ledger, node, selfcheck, simulate, task, up

app = typer.Typer(
    name="deai",
    help="deai: train and serve models among parties who do not trust each other.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(account.app, name="account")
app.add_typer(blob.app, name="blob")
app.add_typer(ledger.app, name="ledger")
app.add_typer(incentives.app, name="incentives")
app.command("demo")(simulate.demo)
app.command("simulate")(simulate.simulate)
app.command("selfcheck")(selfcheck.selfcheck)
app.command("hub")(hub.hub)
app.command("node")(node.node)
app.command("up")(up.up)
app.add_typer(task.app, name="task")


@app.command()
def version() -> None:
    """Print the deai version."""
    print(f"deai {__version__}")


if __name__ == "__main__":  # pragma: no cover
    app()
