"""Every user mistake is one clear line (``error: ...``, exit 2) and no traceback; commands that
need no model code import no torch. The hub is a real process on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deai.cli.main import app
from deai.core.accounts import Account
from deai.ledger.config import NetworkConfig
from deai.node.launch.serve import spawn_hub, wait_for_url

runner = CliRunner()
MINTER = "seed:errtest:minter:0"
HUB = "seed:errtest:hub:0"


def _one_line_error(result, *needles: str) -> str:
    out = result.output.strip()
    assert result.exit_code == 2, out
    assert "Traceback" not in out and len(out.splitlines()) == 1, out
    assert out.startswith("error: "), out
    for n in needles:
        assert n in out, out
    return out


def _imports(argv: list[str], env: dict | None = None) -> dict:
    code = (
        "import sys, json\n"
        "from deai.cli.main import app\n"
        f"sys.argv = ['deai', *{argv!r}]\n"
        "try:\n    app()\nexcept SystemExit as e:\n    code = e.code\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'code': code}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_help_and_account_commands_do_not_import_torch(tmp_path):
    assert _imports(["--help"]) == {"torch": False, "code": 0}
    assert _imports(["account", "show", "seed:x:0"]) == {"torch": False, "code": 0}
    genesis = tmp_path / "g.json"
    assert _imports(["network", "init", "--minter", "seed:x:0", "--out", str(genesis)])["torch"] is False
    assert genesis.exists()


def test_unknown_names_get_a_did_you_mean(tmp_path):
    result = runner.invoke(app, ["acount", "list"])
    assert result.exit_code == 2 and "did you mean 'account'" in result.output
    bad = runner.invoke(app, ["network", "init", "--minter", "seed:x:0", "--set", "unbonding_dely=1",
                              "--out", str(tmp_path / "g.json")])  # fmt: skip
    _one_line_error(bad, "did you mean 'unbonding_delay_ms'")
    role = runner.invoke(app, ["stake", "--role", "hots", "--amount", "1", "--account", "seed:x:0",
                               "--hub", "http://127.0.0.1:9"])  # fmt: skip
    _one_line_error(role, "did you mean 'host'")


def test_a_hub_without_its_genesis_file_says_how_to_write_one(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "deai.cli.hub", "--dir", str(tmp_path / "hub"), "--account", HUB,
         "--genesis", str(tmp_path / "genesis.json")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    text = (out.stdout + out.stderr).strip()
    assert out.returncode == 2 and "Traceback" not in text and len(text.splitlines()) == 1, text
    assert "deai network init" in text


def test_wrong_hub_url_fails_fast_in_one_line():
    result = runner.invoke(app, ["task", "status", "0x12", "--hub", "http://127.0.0.1:9"])
    _one_line_error(result, "no deai hub at http://127.0.0.1:9", "--hub")
    not_url = runner.invoke(app, ["account", "show", "seed:x:0", "--hub", "localhost:8700"])
    _one_line_error(not_url, "is not a URL")


def test_debug_shows_the_traceback():
    result = runner.invoke(app, ["--debug", "task", "status", "0x12", "--hub", "http://127.0.0.1:9"])
    assert result.exit_code != 2 and result.exception is not None


@pytest.fixture(scope="module")
def hub_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("errhub")
    minter = Account.from_seed("errtest:minter", 0)
    hub = Account.from_seed("errtest:hub", 0)
    config = NetworkConfig(minter=minter.address, network="errtest", resolvers=(hub.address,))
    (root / "genesis.json").write_text(json.dumps(config.to_dict()))
    proc = spawn_hub(root / "hub", HUB, genesis=root / "genesis.json")
    try:
        yield wait_for_url(root / "hub", proc)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_mistakes_against_a_running_hub(hub_url, tmp_path):
    unknown = runner.invoke(app, ["task", "status", "0xdeadbeef", "--hub", hub_url])
    _one_line_error(unknown, "no task 0xdeadbeef", "deai task list")
    scenario = Path(__file__).resolve().parents[2] / "scenarios" / "clean.yaml"
    unfunded = runner.invoke(
        app, ["task", "submit", str(scenario), "--account", "seed:poor:0", "--hub", hub_url]
    )
    _one_line_error(unfunded, "balance of 0", "deai account fund")
    node = subprocess.run(
        [sys.executable, "-m", "deai.cli.node", "--hub", hub_url, "--role", "compute_provider",
         "--accounts", "seed:poor:1", "--state", str(tmp_path / "node")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    text = (node.stdout + node.stderr).strip()
    assert node.returncode == 2 and "Traceback" not in text and len(text.splitlines()) == 1, text
    assert "Unfunded" in text and "deai account fund" in text
    not_minter = runner.invoke(app, ["account", "fund", "seed:poor:2", "--amount", "5",
                                     "--minter", "seed:poor:3", "--hub", hub_url])  # fmt: skip
    _one_line_error(not_minter, "not this network's minter")


def test_fund_stake_show_and_cancel_on_a_running_hub(hub_url):
    user = Account.from_seed("errtest:user", 0)
    funded = runner.invoke(app, ["account", "fund", "seed:errtest:user:0", "--amount", "500000",
                                 "--minter", MINTER, "--hub", hub_url])  # fmt: skip
    assert funded.exit_code == 0 and "balance 500,000" in funded.output, funded.output
    staked = runner.invoke(app, ["stake", "--role", "host", "--amount", "1500", "--account",
                                 "seed:errtest:user:0", "--hub", hub_url])  # fmt: skip
    assert staked.exit_code == 0 and "stake 1,500" in staked.output, staked.output
    shown = runner.invoke(app, ["account", "show", "seed:errtest:user:0", "--hub", hub_url])
    assert user.address in shown.output and "balance      498,500" in shown.output, shown.output
    assert "stake host" in shown.output and "1,500" in shown.output
    scenario = Path(__file__).resolve().parents[2] / "scenarios" / "clean.yaml"
    sub = runner.invoke(app, ["task", "submit", str(scenario), "--account", "seed:errtest:user:0",
                              "--hub", hub_url])  # fmt: skip
    assert sub.exit_code == 0, sub.output
    task = sub.output.split()[2]
    other = runner.invoke(app, ["task", "cancel", task[:12], "--account", "seed:poor:0", "--hub", hub_url])
    _one_line_error(other, "only the task's creator")
    cancel = runner.invoke(
        app, ["task", "cancel", task[:12], "--account", "seed:errtest:user:0", "--hub", hub_url]
    )
    assert cancel.exit_code == 0 and "refunded" in cancel.output, cancel.output
    after = runner.invoke(app, ["account", "show", "seed:errtest:user:0", "--hub", hub_url])
    assert "balance      498,500" in after.output, after.output  # the whole budget came back
    for _ in range(100):  # the hub's coordinator stops on its next tick
        status = runner.invoke(app, ["task", "status", task[:12], "--hub", hub_url])
        if "cancelled by its creator" in status.output:
            break
        time.sleep(0.1)
    assert "failed" in status.output and "cancelled by its creator" in status.output, status.output
    again = runner.invoke(app, ["task", "cancel", task, "--account", "seed:errtest:user:0", "--hub", hub_url])
    _one_line_error(again, "closed already")
    verified = runner.invoke(app, ["ledger", "verify", "--hub", hub_url])
    assert verified.exit_code == 0 and "OK" in verified.output, verified.output


def test_a_missing_label_in_a_string_column_is_one_line(tmp_path):
    csv = tmp_path / "t.csv"
    rows = ["a,b,label"] + [f"{i},{i % 3},{'cat' if i % 2 else 'dog'}" for i in range(40)]
    rows[5] = "4,1,"  # an empty label cell: pandas reads NaN in a string column
    csv.write_text("\n".join(rows) + "\n")
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"seed: 1\ndataset: {{name: 'csv:{csv}'}}\nnetwork: {{data_providers: 2}}\n")
    result = runner.invoke(app, ["simulate", str(scenario), "--out", str(tmp_path / "out")])
    out = result.output.strip()
    assert result.exit_code != 0 and "Traceback" not in out, out
    assert "label(s) missing" in out and "row 4" in out, out


def test_more_processes_than_a_machine_runs_is_refused_up_front(tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text("seed: 1\nnetwork: {data_providers: 4, compute_providers: 10000, transport: http}\n")
    result = runner.invoke(app, ["simulate", str(scenario), "--out", str(tmp_path / "out")])
    _one_line_error(result, "network.compute_providers: 10000", "--transport memory")
    up = runner.invoke(app, ["up", str(scenario), "--dir", str(tmp_path / "net")])
    _one_line_error(up, "network.compute_providers: 10000")
    assert not (tmp_path / "net").exists()  # refused before anything started


def test_a_data_provider_without_its_data_file_is_one_line(hub_url, tmp_path):
    (tmp_path / "data").mkdir()
    node = subprocess.run(
        [sys.executable, "-m", "deai.cli.node", "--hub", hub_url, "--role", "data_provider",
         "--accounts", "seed:nodata:0-1", "--state", str(tmp_path / "node"),
         "--data", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    text = (node.stdout + node.stderr).strip()
    assert node.returncode == 2 and "Traceback" not in text and len(text.splitlines()) == 1, text
    assert "no data file" in text and "2 of 2 accounts" in text


def test_inference_mistakes_are_one_line(hub_url, tmp_path):
    import numpy as np

    listed = runner.invoke(app, ["infer", "--list", "--hub", hub_url])
    assert listed.exit_code == 0 and "no models served yet" in listed.output, listed.output
    missing = runner.invoke(app, ["infer", "--input", str(tmp_path / "x.npz"), "--account", "seed:u:0",
                                  "--hub", hub_url])  # fmt: skip
    _one_line_error(missing, "no input file")
    np.savez(tmp_path / "x.npz", x=np.zeros((2, 64), dtype="float32"))
    none = runner.invoke(app, ["infer", "--input", str(tmp_path / "x.npz"), "--account", "seed:u:0",
                               "--hub", hub_url])  # fmt: skip
    _one_line_error(none, "serves no model yet")
    np.savez(tmp_path / "nan.npz", x=np.full((2, 64), np.nan, dtype="float32"))
    nan = runner.invoke(app, ["infer", "--input", str(tmp_path / "nan.npz"), "--account", "seed:u:0",
                              "--hub", hub_url])  # fmt: skip
    _one_line_error(nan, "NaN")
