"""cli: the ``deai`` command (typer + rich)."""
