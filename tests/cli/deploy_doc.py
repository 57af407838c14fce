"""Read docs/deploy.md as a script: its bash blocks, each on the machine its first line names.

Shared by ``test_deploy_doc.py`` (the fast check that every ``deai`` line of the page parses, and the
slow test that runs the page on three folders with real processes on loopback).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
MACHINE = re.compile(r"^# machine (\w+)\s*$")
COPY = re.compile(r"^# \(copy (\S+) from machine (\w+) to this folder\)\s*$")


@dataclass
class Block:
    machine: str
    text: str
    copies: list[tuple[str, str]]  # (file, from machine), done before the block runs


def blocks(doc: Path = DOC) -> list[Block]:
    out = []
    for body in re.findall(r"```bash\n(.*?)```", doc.read_text(), flags=re.S):
        first = body.splitlines()[0]
        m = MACHINE.match(first)
        assert m, f"a bash block of {doc.name} must start with '# machine X', not {first!r}"
        copies = [(c.group(1), c.group(2)) for line in body.splitlines() if (c := COPY.match(line))]
        out.append(Block(m.group(1), body, copies))
    return out


def deai_lines(block: Block) -> list[list[str]]:
    """The ``deai ...`` command lines of a block (continuations joined, heredocs skipped), as
    argument lists with shell substitutions replaced by a placeholder word."""
    text = re.sub(r"<<'EOF'\n.*?\nEOF\n", "\n", block.text, flags=re.S).replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        for inner in re.findall(r"\$\((deai [^)]*)\)", line):
            out.append(shlex.split(inner)[1:])
        line = re.split(r" >>? ", line)[0]
        line = re.sub(r"\$\([^)]*\)", "X", line).strip().rstrip("&").strip()
        line = re.sub(r"^nohup ", "", re.sub(r"^\w+=", "", line))
        if line.startswith("deai "):
            out.append(shlex.split(line)[1:])
    return out
