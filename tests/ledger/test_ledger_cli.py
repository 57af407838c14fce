"""``deai ledger init|status|verify|tx``, mounted on a local typer app as the main CLI mounts it."""

from __future__ import annotations

import json
import sqlite3

import typer
from typer.testing import CliRunner

from deai.cli import ledger as ledger_cli
from deai.core.accounts import Account
from deai.core.encoding import hash_value
from deai.ledger import COMPUTE, SqliteLedger, txs

app = typer.Typer()
app.add_typer(ledger_cli.app, name="ledger")
runner = CliRunner()
MINTER = Account.from_seed("cli", 0)
USER = Account.from_seed("cli", 1)


def invoke(*args, env):
    return runner.invoke(app, ["ledger", *args], env=env, terminal_width=200)


def test_init_status_tx_verify_and_tamper(tmp_path):
    env = {"DEAI_HOME": str(tmp_path), "COLUMNS": "200"}
    result = invoke("init", "--minter", MINTER.address, "--network", "cli-net", env=env)
    assert result.exit_code == 0, result.output
    assert "genesis hash" in result.output and "cli-net" in result.output
    assert invoke("init", "--minter", MINTER.address, env=env).exit_code == 1  # never overwrites

    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    ledger.send(MINTER, txs.Mint(to=USER.address, amount=50_000))
    ledger.send(USER, txs.Stake(role=COMPUTE, amount=2_000))
    ledger.send(USER, txs.CreateTask(task=hash_value("t"), budget=7_000, params=hash_value("p")))
    ledger.close()

    status = invoke("status", env=env)
    assert status.exit_code == 0, status.output
    assert "task_escrow" in status.output and "7,000" in status.output and "50,000" in status.output
    history = invoke("tx", USER.address, env=env)
    assert history.exit_code == 0, history.output
    assert "create_task" in history.output and "stake 2,000" in history.output
    assert invoke("tx", "0x123", env=env).exit_code == 1

    ok = invoke("verify", env=env)
    assert ok.exit_code == 0 and "OK" in ok.output and "entries replayed" in ok.output

    db = sqlite3.connect(tmp_path / "ledger.sqlite")
    tx = json.loads(db.execute("SELECT tx FROM log WHERE seq = 0").fetchone()[0])
    tx["body"]["amount"] = 60_000
    db.execute("UPDATE log SET tx = ? WHERE seq = 0", (json.dumps(tx, separators=(",", ":")).encode(),))
    db.commit()
    db.close()
    bad = invoke("verify", env=env)
    assert bad.exit_code == 1 and "FAILED" in bad.output and "log entry 0" in bad.output


def test_init_from_config_file_and_missing_ledger(tmp_path):
    env = {"DEAI_HOME": str(tmp_path)}
    assert invoke("status", env=env).exit_code == 1
    assert invoke("init", env=env).exit_code == 1
    config = tmp_path / "net.json"
    config.write_text(json.dumps({"minter": MINTER.address, "network": "from-file", "slash_bps": 2_500}))
    result = invoke("init", "--config", str(config), "--path", str(tmp_path / "x.sqlite"), env=env)
    assert result.exit_code == 0 and "from-file" in result.output
    assert SqliteLedger(tmp_path / "x.sqlite").config.slash_bps == 2_500
    config.write_text(json.dumps({"minter": MINTER.address, "bogus": 1}))
    bad = invoke("init", "--config", str(config), "--path", str(tmp_path / "y.sqlite"), env=env)
    assert bad.exit_code == 1 and "bogus" in bad.output
