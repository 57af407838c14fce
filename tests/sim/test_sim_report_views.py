"""report.html's fixes: test and validation accuracy apart, a loss curve, no ``None``, earnings by
source and slash reasons; and the run report's figures are the network statement's."""

import re

from deai.core.accounts import Account
from deai.ledger.config import COMPUTE, NetworkConfig
from deai.ledger.memory import MemoryLedger
from deai.ledger.txs import Mint, Slash, Stake
from deai.protocol.incentives.report import Statement, statement_csv
from deai.sim.accounting import earnings
from deai.sim.report import write_report


def report():
    people = [
        {
            "address": "0xabc",
            "role": "data_provider",
            "behaviour": "honest",
            "earned": 10,
            "earned_by": {"payouts": 10},
            "slashed": 0,
            "slash_reasons": [],
            "score": 0.3,
        },
        {
            "address": "0xdef",
            "role": "compute_provider",
            "behaviour": "fake_result",
            "earned": 0,
            "earned_by": {},
            "slashed": 50,
            "slash_reasons": ["job 0x12ab..: wrong result"],
            "score": None,
        },
    ]
    rounds = [{"round": 1, "accuracy": 0.7, "loss": 1.2}, {"round": 2, "accuracy": 0.8, "loss": 0.9}]
    return {
        "scenario": "t",
        "test_accuracy": 0.75,
        "rounds_completed": 2,
        "epsilon": None,
        "rounds": rounds,
        "participants": people,
        "inference": {"requests": 0, "answered": 0, "correct": 0},
        "bytes_sent": 1,
        "wall_seconds": 1.0,
        "ledger_verified": True,
    }


def test_report_html_says_which_accuracy_and_why(tmp_path):
    _, h = write_report(report(), tmp_path)
    page = h.read_text()
    assert "test accuracy (final model, held-out test set)</th><td>0.7500" in page
    assert "validation accuracy (last round)</th><td>0.8000" in page
    assert 'alt="validation accuracy"' in page and 'alt="validation loss"' in page
    assert ">None<" not in page and "<td>—</td>" in page  # the compute provider's score
    assert "why slashed" in page and "job 0x12ab..: wrong result" in page
    assert re.search(r"<td>payouts 10</td>", page)


def test_run_report_figures_are_the_statements():
    minter, a, b = Account.from_seed("acc-m", 0), Account.from_seed("acc-a", 0), Account.from_seed("acc-b", 0)
    ledger = MemoryLedger(NetworkConfig(network="acc", minter=minter.address, slasher=minter.address))
    for who in (a, b):
        ledger.send(minter, Mint(to=who.address, amount=10_000))
        ledger.send(who, Stake(role=COMPUTE, amount=2_000))
    ledger.send(minter, Slash(account=b.address, role=COMPUTE, amount=300, reason="forged output"))
    money = earnings(ledger)
    assert money[b.address].slashed == 300 and money[b.address].reasons == ["by the network: forged output"]
    assert a.address not in money  # staked, nothing earned or lost
    rows = Statement.of(ledger).sorted_rows()
    assert [(r.account, r.role, r.slashed) for r in rows] == [(b.address, COMPUTE, 300)]
    assert statement_csv(rows).splitlines()[1].endswith(",300,0,0,0,by the network: forged output")
