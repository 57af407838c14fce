"""The ``deai`` command.

Subcommands load on first use (:class:`LazyGroup`): ``deai --help``, ``deai account ...`` or
``deai ledger status`` import neither torch nor the protocol code, so they start in well under a
second. Every user error ends as one line ``error: ...`` and exit status 2
(:func:`deai.cli.errors.one_line`); ``--debug`` or ``DEAI_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Any

import typer
from typer import _click as click
from typer.core import TyperGroup

from deai import __version__

__all__ = ["COMMANDS", "LazyGroup", "app"]

# name: (module, attribute, short help). An attribute named ``app`` is a group of subcommands.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "network": ("deai.cli.network", "app", "Create a network: write its genesis file."),
    "account": ("deai.cli.account", "app", "Create, show and fund accounts (encrypted keystores)."),
    "stake": ("deai.cli.stake", "stake", "Stake funds in a role (data_provider, compute_provider, host)."),
    "unstake": ("deai.cli.stake", "unstake", "Unstake a role's funds (they unbond, then `withdraw`)."),
    "withdraw": ("deai.cli.stake", "withdraw", "Move unbonded funds back to the balance."),
    "hub": ("deai.cli.hub", "hub", "Run a hub: ledger service, blob relay, task coordination."),
    "node": ("deai.cli.node", "node", "Run a participant daemon for accounts in roles."),
    "task": ("deai.cli.task", "app", "Submit, follow and cancel federated tasks on a hub."),
    "infer": ("deai.cli.infer", "infer", "Request a paid, verified inference from a registered model."),
    "up": ("deai.cli.up", "up", "A whole network of processes on loopback, and its task."),
    "demo": ("deai.cli.simulate", "demo", "The default scenario over HTTP with real processes."),
    "simulate": ("deai.cli.simulate", "simulate", "Run a scenario and write its report."),
    "ledger": ("deai.cli.ledger", "app", "Create, inspect and verify a ledger (local or via --hub)."),
    "incentives": ("deai.cli.incentives", "app", "Task reports (who earned what, and why), reputation."),
    "blob": ("deai.cli.blob", "app", "Put, get and verify content-addressed blobs."),
    "chain": ("deai.cli.chain", "app", "The EVM ledger: deploy and inspect the contracts."),
    "api": ("deai.cli.api", "api", "An OpenAI-compatible API; each request paid and verified on a network."),
    "llm": ("deai.cli.llm", "app", "Verified LLM serving: calibrate the verification thresholds."),
    "selfcheck": ("deai.cli.selfcheck", "selfcheck", "Exercise signing, envelopes, blobs and the ledger."),
}


def _debug(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return bool(root.params.get("debug")) or os.environ.get("DEAI_DEBUG", "") not in ("", "0")


class LazyGroup(TyperGroup):
    """The root group: lists :data:`COMMANDS` without importing them, loads one when it runs, and
    turns user errors into one line (exit 2)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rich_markup_mode = None  # plain help: rich help would import every command

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [n for n, (mod, _, _) in COMMANDS.items() if _exists(mod)] + sorted(self.commands)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name not in COMMANDS or not _exists(COMMANDS[cmd_name][0]):
            return None
        module, attr, _ = COMMANDS[cmd_name]
        obj = getattr(importlib.import_module(module), attr)
        if not isinstance(obj, typer.Typer):
            single = typer.Typer(add_completion=False)
            single.command(cmd_name)(obj)
            obj = single
        cmd = typer.main.get_command(obj)
        cmd.name = cmd_name
        return cmd

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        name = str(args[0])
        if self.get_command(ctx, name) is None and not name.startswith("-"):
            from deai.cli.errors import did_you_mean

            hint = did_you_mean(name, self.list_commands(ctx))
            ctx.fail(f"no command {name!r}{hint}; `deai --help` lists them")
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(n, COMMANDS[n][2] if n in COMMANDS else "") for n in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, click.exceptions.ClickException):
            raise
        except Exception as exc:
            from deai.cli.errors import one_line

            line = one_line(exc)
            if line is None or _debug(ctx):
                raise
            click.echo(f"error: {line}", err=True)
            raise typer.Exit(2) from None


def _exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # pragma: no cover
        return False


app = typer.Typer(
    name="deai",
    cls=LazyGroup,
    help="deai: train and serve models among parties who do not trust each other.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


@app.callback()
def root(
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of an error (also DEAI_DEBUG=1)."),
) -> None:
    """deai: train and serve models among parties who do not trust each other."""


@app.command()
def version() -> None:
    """Print the deai version."""
    print(f"deai {__version__}")


if __name__ == "__main__":  # pragma: no cover
    app()
