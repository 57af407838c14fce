"""Compile the ledger contract with the local ``vyper`` package, once, into a cache.

The sources are package data (``contracts/*.vy``); nothing is fetched. The result (ABI and
deployment bytecode) is cached as ``$DEAI_CACHE_DIR/evm/<sha256 of the sources and compiler>.json``
(default ``~/.cache/deai``), written atomically, so a changed contract or compiler recompiles and
two processes compiling at once never read a half-written file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["CONTRACTS", "Compiled", "cache_dir", "compiled"]

CONTRACTS = Path(__file__).parent / "contracts"


@dataclass(frozen=True)
class Compiled:
    """A compiled contract: its ``abi`` and deployment ``bytecode`` (0x-hex)."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    source_sha: str


def cache_dir() -> Path:
    env = os.environ.get("DEAI_CACHE_DIR")
    return (Path(env).expanduser() if env else Path.home() / ".cache" / "deai") / "evm"


@cache
def compiled(name: str = "Ledger") -> Compiled:
    """The compiled contract ``contracts/<name>.vy`` (from the cache when the sources match)."""
    import vyper  # type: ignore[import-untyped]

    source = (CONTRACTS / f"{name}.vy").read_text()
    sha = hashlib.sha256(f"{vyper.__version__}\n{name}\n{source}".encode()).hexdigest()
    path = cache_dir() / f"{sha}.json"
    try:
        data = json.loads(path.read_text())
        return Compiled(name, data["abi"], data["bytecode"], sha)
    except (OSError, ValueError, KeyError):
        pass
    from vyper import compile_code

    out = compile_code(source, output_formats=["abi", "bytecode"])
    result = Compiled(name, out["abi"], out["bytecode"], sha)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".compile-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump({"abi": result.abi, "bytecode": result.bytecode}, f)
    os.replace(tmp, path)
    return result
