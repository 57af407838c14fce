"""docs/deploy.md, run as written: three machines as three folders (each its own DEAI_HOME and
shell), a hub and daemons as real processes on loopback, a task trained, an inference answered and
verified, the ledger replayed from the hub. The fast test keeps the page and the CLI in lockstep."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from tests.cli.deploy_doc import DOC, Block, blocks, deai_lines
from typer._click import Context
from typer.main import get_command

from deai.cli.main import app


def test_every_deai_line_of_the_page_parses():
    root = get_command(app)
    lines = [args for b in blocks() for args in deai_lines(b)]
    assert len(lines) >= 20
    # the chain variant (an sh block: shown, not run by the slow test) parses too
    chain = [
        args
        for body in re.findall(r"```sh\n(.*?)```", DOC.read_text(), flags=re.S)
        for args in deai_lines(Block("A", body, []))
    ]
    assert {" ".join(a[:2]) for a in chain} >= {"chain start", "hub --dir", "node --hub"}
    lines += chain
    seen = set()
    for args in lines:
        cmd, rest, ctx, name = root, list(args), None, "deai"
        while hasattr(cmd, "get_command"):  # a group: walk down to the command the line runs
            ctx = Context(cmd, info_name=name, parent=ctx)
            name, rest = rest[0], rest[1:]
            found = cmd.get_command(ctx, name)
            assert found is not None, f"deai {' '.join(args)}: no command {name!r}"
            cmd = found
        cmd.make_context(name, rest, parent=ctx)  # raises on an unknown option or a missing one
        seen.add(" ".join(args[:2]))
    for wanted in ("network init", "account new", "account fund", "stake --role", "task submit"):
        assert any(s.startswith(wanted.split()[0]) for s in seen), wanted
    machines = {b.machine for b in blocks()}
    assert machines == {"A", "B", "C"}, machines


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Machine:
    """One folder with its own long-lived bash (its environment persists across blocks)."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        folder.mkdir(parents=True)
        self.folder = folder
        self.proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=folder,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.run("set -e", timeout=10)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def run(self, script: str, timeout: float) -> list[str]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(script + "\necho __BLOCK_DONE__\n")
        self.proc.stdin.flush()
        out, end = [], time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, end - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"{self.folder.name}: block timed out; output:\n" + "\n".join(out)
                ) from None
            if line is None:
                raise AssertionError(f"{self.folder.name}: a command failed; output:\n" + "\n".join(out))
            if line == "__BLOCK_DONE__":
                self.log += out
                return out
            out.append(line)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)  # the shell and the daemons it started
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)


@pytest.mark.slow
def test_the_deploy_page_builds_a_network_of_three_machines(tmp_path):
    port = _free_port()
    venv_bin = str(Path(sys.executable).parent)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DEAI_")},
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    machines: dict[str, Machine] = {}
    try:
        for block in blocks():
            m = machines.get(block.machine)
            if m is None:
                m = machines[block.machine] = Machine(tmp_path / block.machine, env)
            for name, source in block.copies:
                shutil.copy(machines[source].folder / name, m.folder / name)
            script = block.text.replace("HUB_HOST", "127.0.0.1").replace("8700", str(port))
            m.run(script, timeout=600)
        out = "\n".join(machines["A"].log)
        assert "error:" not in out, out
        assert "labels" in out and "agreed" in out, out  # the inference answered, checked on the ledger
        assert "OK" in out, out  # the ledger replayed from the hub
        providers = (tmp_path / "B" / "providers.txt").read_text().split()
        assert len(providers) == 3
        balances = machines["A"].run(
            "for a in $(cat providers.txt); do deai account show $a --hub $HUB | grep balance; done", 120
        )
        assert len(balances) == 3
        # the providers were paid: each balance moved from what the minter gave (10,000, less stakes)
        assert all(line.split()[1] != "9,900" for line in balances), balances
    finally:
        for m in machines.values():
            m.stop()
        for name in ("A/hub.log", "B/providers.log", "C/compute.log", "C/hosts.log"):
            p = tmp_path / name
            if p.exists():
                print(f"--- {name}\n" + p.read_text()[-3000:])


assert DOC.exists()
