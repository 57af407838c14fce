"""Shared CLI plumbing: where deai keeps its files, password prompts, a rich console."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console

__all__ = ["console", "deai_home", "password_option", "read_password"]

console = Console()


def deai_home() -> Path:
    """``$DEAI_HOME`` or ``~/.deai``: keystores, blobs and ledgers of this machine."""
    return Path(os.environ.get("DEAI_HOME", Path.home() / ".deai"))


password_option = typer.Option(
    None, "--password", help="Keystore password (default: $DEAI_PASSWORD, else prompt)."
)


def read_password(password: str | None, *, confirm: bool = False) -> str:
    if password is not None:
        return password
    if "DEAI_PASSWORD" in os.environ:
        return os.environ["DEAI_PASSWORD"]
    return typer.prompt("Keystore password", hide_input=True, confirmation_prompt=confirm)
