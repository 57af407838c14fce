"""Scoring as a verified job, the incentive report, and the CLI sub-app."""

from __future__ import annotations

import json

import pytest
import torch
import typer
from typer.testing import CliRunner

from deai.cli.incentives import app as incentives_app
from deai.cli.incentives import report_table
from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.core.tensorio import to_safetensors
from deai.learn.data import prepare
from deai.learn.models import build_model
from deai.learn.partition import partition
from deai.learn.scoring import Flag, RoundUpdates, ValidationUtility, check_updates, get_scorer
from deai.learn.training import TrainConfig, get_flat, train_many
from deai.ledger.base import ManualClock
from deai.ledger.config import COMPUTE, DATA, NetworkConfig
from deai.ledger.sqlite import SqliteLedger
from deai.ledger.txs import CreateTask, JoinTask, Mint, Stake
from deai.protocol.incentives import (
    ScoreBook,
    SplitRule,
    apply_reputation,
    reputation_deltas,
    settle_task,
    slash_unrewarded,
    task_report,
)
from deai.protocol.incentives.report import task_record
from deai.protocol.jobs import Executor, JobConfig, JobDriver, JobSpec
from deai.protocol.jobs.errors import BadJobSpec
from deai.protocol.jobs.kinds import get_kind
from deai.protocol.jobs.kinds.contribution_score import KIND as SCORE_KIND

PARAMS = {"model": "logreg", "in_features": 64, "num_classes": 10}


@pytest.fixture(scope="module")
def round_inputs():
    torch.set_num_threads(1)
    sp = prepare("digits", val=0.15, test=0.2, seed=2)
    net = build_model("logreg", 64, 10, seed=0)
    parts = partition(sp.train.y, 5, "iid", seed=2)
    base = get_flat(net)
    deltas, _ = train_many(
        net, base, [sp.train.subset(p) for p in parts], TrainConfig(epochs=1, lr=0.05), list(range(5))
    )
    deltas = torch.cat([deltas, torch.zeros(1, deltas.shape[1]), deltas[1:2].clone()])  # + free rider + copy
    return net, sp.val, base, deltas


def _spec(store, net, val, deltas, method, options, seed=3):
    inputs = [
        store.put(to_safetensors({k: v.detach().clone() for k, v in net.state_dict().items()})),
        store.put(to_safetensors({"x": val.x, "y": val.y})),
        *(store.put(to_safetensors({"delta": d.clone()})) for d in deltas),
    ]
    return JobSpec(SCORE_KIND, tuple(inputs), {**PARAMS, "method": method, "options": options}, seed=seed)


def _ledger(path, tag, resolvers=()):
    minter = Account.from_seed(f"{tag}-m", 0)
    clock = ManualClock(0)
    config = NetworkConfig(minter=minter.address, rep_step_bps=0, resolvers=tuple(resolvers))
    led = SqliteLedger(path, config, clock=clock, synchronous="NORMAL")
    return led, clock, minter


def test_scoring_runs_as_a_replicated_verified_job_and_settles(tmp_path, round_inputs):
    net, val, base, deltas = round_inputs
    coord = Account.from_seed("job-coord", 0)  # resolves its own job: a genesis resolver
    led, clock, minter = _ledger(tmp_path / "ledger.sqlite", "job", resolvers=(coord.address,))
    store = BlobStore(tmp_path / "blobs", fsync=False)
    led.send(minter, Mint(to=coord.address, amount=10**9))
    executors = {}
    for i in range(4):
        a = Account.from_seed("job-exec", i)
        led.send(minter, Mint(to=a.address, amount=10**6))
        led.send(a, Stake(role=COMPUTE, amount=100_000))
        executors[a.address] = Executor(a, store, threads=1)
    providers = [Account.from_seed("job-data", i) for i in range(deltas.shape[0])]
    task = "0x" + "ab" * 32
    led.send(coord, CreateTask(task=task, budget=100_000, params="0x" + "22" * 32, provider_stake=200))
    for p in providers:
        led.send(minter, Mint(to=p.address, amount=1_000))
        led.send(p, Stake(role=DATA, amount=100))
        led.send(p, JoinTask(task=task, role=DATA))
    runner = JobDriver(led, clock, store, coord, executors, config=JobConfig(fee=10, r=3, p=1.0))
    spec = _spec(
        store, net, val, deltas, "gtg_shapley", {"max_permutations": 8, "min_permutations": 8, "block": 4}
    )
    rep = runner.run(spec)
    assert rep.status == "accepted" and len(rep.accepted) == 3 and not rep.faulted
    direct = get_scorer("gtg_shapley", max_permutations=8, min_permutations=8, block=4)(
        RoundUpdates(base, deltas), ValidationUtility(net, val), seed=3, novelty=check_updates(deltas)
    )
    assert torch.equal(rep.output["scores"], direct.scores)  # bit-exact on one machine
    assert rep.output["duplicate_of"].tolist() == direct.duplicate_of.tolist() == [-1] * 6 + [1]
    assert rep.output["flags"].tolist() == [0] * 5 + [Flag.ZERO, Flag.COPY]

    book = ScoreBook()
    book.add(
        1,
        [p.address for p in providers],
        rep.output["scores"],
        duplicate_of=rep.output["duplicate_of"],
        job=spec.job_id,
    )
    slash_unrewarded(led, coord, task, book)
    s = settle_task(led, coord, task, SplitRule(compute_bps=1_000), book, [spec.job_id])
    assert s.allocation.compute and set(s.allocation.compute) == set(rep.accepted)
    assert providers[5].address not in s.tree.amounts and providers[6].address not in s.tree.amounts
    for p in providers[:5]:
        s.claim(led, p)
    for a in rep.accepted:
        s.claim(led, executors[a].account)
    apply_reputation(led, minter, reputation_deltas(led, task, book, [spec.job_id]))
    led.check_invariants()
    assert led.verify().ok

    record = task_record(task, book, s, [spec.job_id])
    report = task_report(led, task, record)
    rows = {r["account"]: r for r in report["accounts"]}
    assert (
        rows[providers[5].address]["allocated"] == 0 and rows[providers[5].address]["slashed_in_task"] == 200
    )
    assert "copy" in rows[providers[6].address]["why"]
    assert all(rows[a]["jobs_accepted"] == 1 and rows[a]["claimed"] > 0 for a in rep.accepted)
    assert report["totals"]["claimed"] == report["totals"]["paid_out"] == s.tree.total
    assert report_table(report).row_count == len(rows)
    led.close()

    (tmp_path / "record.json").write_text(json.dumps(record))
    cli = typer.Typer()
    cli.add_typer(incentives_app, name="incentives")
    runner = CliRunner()
    ledger_path = str(tmp_path / "ledger.sqlite")
    out = runner.invoke(
        cli,
        [
            "incentives",
            "report",
            "--ledger",
            ledger_path,
            "--task",
            task,
            "--record",
            str(tmp_path / "record.json"),
            "--json",
        ],
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["totals"]["claimed"] == s.tree.total
    table = runner.invoke(cli, ["incentives", "report", "--ledger", ledger_path, "--task", task])
    assert table.exit_code == 0 and "task" in table.output
    reps = runner.invoke(cli, ["incentives", "reputation", "--ledger", ledger_path, "--json"])
    assert reps.exit_code == 0
    rep_rows = {r["account"]: r for r in json.loads(reps.output)}
    assert rep_rows[providers[0].address]["reputation"][DATA] > 0
    assert rep_rows[providers[5].address]["reputation"][DATA] < 0
    assert all(rep_rows[a]["reputation"][COMPUTE] > 0 for a in rep.accepted)
    missing = runner.invoke(
        cli, ["incentives", "report", "--ledger", str(tmp_path / "nope.sqlite"), "--task", task]
    )
    assert missing.exit_code == 1 and "no ledger" in missing.output
    unknown = runner.invoke(
        cli, ["incentives", "report", "--ledger", ledger_path, "--task", "0x" + "cd" * 32]
    )
    assert unknown.exit_code == 1 and "no task" in unknown.output


def test_the_job_kind_checks_its_params_and_inputs(tmp_path, round_inputs):
    net, val, _base, deltas = round_inputs
    kind = get_kind(SCORE_KIND)
    with pytest.raises(BadJobSpec, match="method"):
        kind.check_params({**PARAMS, "method": "magic"})
    with pytest.raises(BadJobSpec, match="scorer"):
        kind.check_params({**PARAMS, "method": "roni", "options": {"references": 0}})
    with pytest.raises(BadJobSpec, match="weights"):
        kind.check_params({**PARAMS, "method": "loo", "weights": [1, -1]})
    store = BlobStore(tmp_path / "b", fsync=False)
    spec = _spec(store, net, val, deltas[:3], "loo", {})
    from deai.protocol.jobs.kinds import load_inputs

    inputs = load_inputs(store, spec)
    out = kind.execute(inputs, spec.params, spec.seed)
    assert out["scores"].shape == (3,) and out["evaluations"].item() == 4
    from deai.protocol.jobs.errors import InputMismatch

    with pytest.raises(InputMismatch):
        kind.execute(inputs[:2], spec.params, 0)
    with pytest.raises(InputMismatch):
        kind.execute(inputs, {**spec.params, "weights": [1.0]}, 0)
