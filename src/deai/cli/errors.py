"""One clear line per user error: what went wrong, with what, and how to fix it.

:func:`one_line` turns the exceptions a user can cause (deai's own error classes, an unreachable hub,
a missing file, a bad account spec) into a single line; the ``deai`` command
(:mod:`deai.cli.main`) prints it and exits 2, and shows the traceback only with ``--debug`` or
``DEAI_DEBUG=1``. Anything else is a bug and keeps its traceback. :func:`did_you_mean` gives the
"did you mean" hint for an unknown name (difflib).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["MAX_PROCESSES", "HubUnreachable", "UsageError", "check_processes", "did_you_mean", "one_line"]

MAX_PROCESSES = 64  # daemons a network of processes on one machine may start (`deai up`, --transport http)


class UsageError(Exception):
    """A mistake in what the user asked for; its message is the whole line to print."""


class HubUnreachable(UsageError):
    """No hub answered at the URL given (wrong ``--hub``, or the hub is not running)."""


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest known name, or ``''``."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_processes(computes: int, hosts: int, data_processes: int = 2) -> None:
    """A network of processes on this machine runs one daemon per compute provider and per host:
    refuse, before anything starts, a scenario that would start more than :data:`MAX_PROCESSES`."""
    n = 1 + data_processes + computes + hosts
    if n > MAX_PROCESSES:
        raise UsageError(
            f"network.compute_providers: {computes} and network.hosts: {hosts} would start {n} processes"
            f" on this machine (one per compute provider and per host; at most {MAX_PROCESSES}): lower"
            " them, or run the scenario in one process with --transport memory"
        )


def _remote(exc: Exception) -> str:
    from deai.net.transport import RemoteError

    assert isinstance(exc, RemoteError)
    reason = exc.reason
    if "InsufficientBalance" in exc.error or ("balance" in reason.lower() and "need" in reason.lower()):
        return f"the hub refused it ({exc.error}): {reason}; fund the account first (deai account fund)"
    return f"the hub refused it ({exc.error}): {reason}"


def one_line(exc: BaseException) -> str | None:
    """The one line to print for a user error, or None when ``exc`` is a bug (keep the traceback)."""
    if isinstance(exc, UsageError):
        return str(exc)
    from deai.core.errors import DeaiError

    if isinstance(exc, DeaiError):
        from deai.net.transport import RemoteError

        if isinstance(exc, RemoteError):
            return _remote(exc)
        text = str(exc) or type(exc).__name__
        return f"{type(exc).__name__}: {text}"
    if isinstance(exc, FileNotFoundError):
        return f"no such file: {exc.filename or exc}"
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.filename or exc}"
    if isinstance(exc, IsADirectoryError):
        return f"is a folder, not a file: {exc.filename or exc}"
    if isinstance(exc, TimeoutError):
        return f"timed out: {exc}"
    if type(exc).__module__.startswith("httpx"):
        return f"cannot reach the hub ({type(exc).__name__}: {exc}); check --hub and that the hub is running"
    if isinstance(exc, ValueError) and str(exc).startswith("account spec"):
        return str(exc)
    return None
