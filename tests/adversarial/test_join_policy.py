"""Participants' side of issue 12: honest daemons work only for pay (finding 8) and never accept a
duty they cannot meet in time; hosts get ready to serve a model before anyone asks (finding 11).

Every test runs a whole in-memory network (hub, ledger, daemons: the same handlers, roles and
protocol code as processes over HTTP) and checks conservation of funds at the end.
"""

from __future__ import annotations

import logging

import pytest

from deai.core.accounts import Account
from deai.learn.models import build_model
from deai.learn.partition import partition
from deai.ledger.config import COMPUTE, HOST
from deai.node.hub.admission import AdmissionPolicy
from deai.node.launch.inprocess import LocalNetwork
from deai.node.participant.host import ensure_hosts, read_ready
from deai.node.participant.policy import JoinPolicy
from deai.node.participant.served import publish_model
from deai.node.user.infer import request_inference
from deai.node.user.submit import make_task
from deai.protocol.task.model import checkpoint_bytes
from deai.protocol.task.spec import Windows

FUNDS = 100_000
WINDOWS = Windows(join_ms=60_000, train_ms=60_000, commit_ms=15_000, reveal_ms=15_000, secagg_ms=15_000)


class World:
    """An in-memory network with ``n`` data providers, ``m`` compute providers and ``h`` hosts,
    everyone funded; daemons are added by the test with the policy it wants."""

    def __init__(self, root, splits, *, n=4, m=4, h=3, tag="jp"):
        self.net = LocalNetwork(root, network=f"deai-{tag}", seed=2)
        self.tag = tag
        self.providers = [Account.from_seed(f"{tag}p", i) for i in range(n)]
        self.computes = [Account.from_seed(f"{tag}c", i) for i in range(m)]
        self.hosts = [Account.from_seed(f"{tag}h", i) for i in range(h)]
        self.creator = Account.from_seed(f"{tag}creator", 0)
        everyone = [*self.providers, *self.computes, *self.hosts, self.creator, self.net.hub_account]
        self.net.fund(everyone, FUNDS)
        parts = partition(splits.train.y, n, "iid", seed=0)
        self.datasets = {p.address: splits.train.subset(parts[i]) for i, p in enumerate(self.providers)}
        self.splits = splits

    @property
    def ledger(self):
        return self.net.ledger

    def data(self, name, accounts, **policy):
        data = {a.address: self.datasets[a.address] for a in accounts}
        options = {"datasets": data, "policy": policy}
        return self.net.add_daemon(name, {"data_provider": accounts}, options=options)

    def compute(self, name, accounts, **policy):
        return self.net.add_daemon(name, {"compute_provider": accounts}, options={"policy": policy})

    def submit(self, **recipe):
        base = dict(rounds=2, budget=6_000, min_providers=2, max_providers=len(self.providers))
        bundle = make_task(self.splits.val, **{**base, "windows": WINDOWS, **recipe})
        return self.net.submit(self.creator, bundle)

    def events(self, kind):
        return [e.data for e in self.ledger.events() if e.kind == kind]

    def conserved(self):
        self.ledger.check_invariants()
        supply = self.ledger.supply()
        assert sum(v for k, v in supply.items() if k != "minted") == supply["minted"]


def _refusals(caplog, what):
    return [r for r in caplog.records if r.levelno >= logging.WARNING and f"refused {what}" in r.getMessage()]


def test_an_underpaid_task_is_refused_once_and_never_joined(tmp_path, digits, caplog):
    # 6,000 over 2 rounds and 4 providers pays 750 per provider per round: one daemon asks for
    # 1,000 and stays out (logged once, however many polls), the other takes it.
    w = World(tmp_path, digits)
    greedy = w.data("greedy", w.providers[:2], min_reward=1_000)
    w.data("modest", w.providers[2:])
    w.compute("compute", w.computes)
    caplog.set_level(logging.WARNING)
    task = w.submit()
    w.net.run(w.net.task_done(task))
    assert w.net.status(task).phase == "done"
    joined = {d["account"] for d in w.events("task_joined")}
    assert joined == {p.address for p in w.providers[2:]}
    assert "per provider per round" in greedy.roles["data_provider"].memory["refused"][task]
    assert len(_refusals(caplog, "task")) == 1
    assert all(w.ledger.balance(p.address) + w.ledger.stake(p.address, "data_provider") == FUNDS
               for p in w.providers[:2])  # fmt: skip
    w.conserved()


@pytest.mark.parametrize(
    ("recipe", "words"),
    [
        ({"budget": 0, "job_fee": 0}, "pays 0 per provider per round"),  # finding 8: free work
        ({"provider_stake": 20_000}, "asks a provider stake of 20000"),
    ],
)
def test_free_or_stake_hungry_tasks_find_no_provider(tmp_path, digits, caplog, recipe, words):
    # Even a hub that takes any task (its operator's admission policy is its own business) gets no
    # honest provider for a task that pays nothing or locks too much of their funds.
    w = World(tmp_path, digits, tag="jf")
    w.net.hub.admission = AdmissionPolicy(min_data_reward=0)
    daemon = w.data("data", w.providers)
    caplog.set_level(logging.WARNING)
    task = w.submit(**recipe)
    assert task in w.net.hub.coordinators  # adopted: the refusal is the providers' own
    w.net.run(lambda: w.net.status(task).phase != "join", max_steps=2_000)
    for _ in range(20):  # more polls: the refusal is not retried, nor logged again
        w.net.step()
    assert w.events("task_joined") == []
    assert words in daemon.roles["data_provider"].memory["refused"][task]
    assert len(_refusals(caplog, "task")) == 1
    w.conserved()


@pytest.mark.parametrize(
    ("policy", "words"),
    [
        ({"min_job_fee": 11}, "below the minimum 11"),  # the task's jobs pay 10
        ({"first_estimate_ms": 10**6}, "commit deadline"),  # it cannot finish in the window
        ({"min_reveal_ms": 20_000}, "reveal window"),  # 15 s to reveal is too short for it
    ],
)
def test_an_executor_commits_only_to_jobs_it_accepts_and_can_finish(tmp_path, digits, caplog, policy, words):
    w = World(tmp_path, digits, m=4, tag="jc")
    w.data("data", w.providers)
    w.compute("picky", w.computes[:1], **policy)
    w.compute("compute", w.computes[1:])
    caplog.set_level(logging.WARNING)
    task = w.submit(redundancy=3, sample_rate=1.0)
    w.net.run(w.net.task_done(task))
    assert w.net.status(task).phase == "done"
    me = w.computes[0].address
    drawn = [d for d in w.events("job_registered") if me in d["executors"]]
    assert drawn, "the picky compute provider was never drawn: the test proves nothing"
    assert not [d for d in w.events("committed") if d["executor"] == me]
    assert w.ledger.stake(me, COMPUTE) == w.ledger.config.min_stake[COMPUTE]  # never slashed
    missed = sum(d.get("missed", []).count(me) for d in w.events("job_resolved"))
    assert missed >= 1  # a liveness fault, reported apart, costs no stake
    refusals = _refusals(caplog, "compute_provider job")
    assert len(refusals) == len({d["job"] for d in drawn})  # each job refused once, for its reason
    assert all(words in r.getMessage() for r in refusals)
    w.conserved()


def test_hosts_get_ready_for_a_new_model_before_any_request(tmp_path, digits):
    w = World(tmp_path, digits, tag="jr")
    w.data("data", w.providers)
    w.compute("compute", w.computes)
    task = w.submit()
    w.net.run(w.net.task_done(task))
    model_id = w.net.status(task).model
    # an outsider registers a model of its own: hosts must not download it unasked
    outsider = Account.from_seed("jroutsider", 0)
    params = {"model": "mlp", "in_features": 64, "num_classes": 10, "model_kwargs": {}}
    ckpt = checkpoint_bytes(build_model("mlp", 64, 10, seed=5))
    w.net.fund([outsider], 1_000)  # enough to upload its blobs
    other = publish_model(w.net.client(outsider), outsider, ckpt, params, {outsider.address: 1.0})

    names = ensure_hosts(w.net, w.hosts, tag=w.tag, stake=50_000)
    w.net.wait_ready(model_id, names, max_steps=200)
    role = w.net.daemons[-1].roles["host"]
    assert model_id in role.ready_models() and model_id in read_ready(tmp_path / "hosts")
    assert role.store.size(role.ready_models()[model_id]) > 0  # fetched and checked already
    assert other not in role.ready_models() and other.removeprefix("0x") not in role.store
    assert not [d for d in w.events("job_registered") if d.get("task") is None]  # nobody asked yet

    x = digits.test.x[:5]
    client = w.net.client(w.creator)
    answer = request_inference(client, w.creator, model_id, x, fee=10, r=3, p=1.0, pump=w.net.step)
    assert len(answer["accepted"]) == 3 and answer["faulted"] == []  # every host ready and honest
    assert all(w.ledger.stake(h.address, HOST) == 50_000 for h in w.hosts)
    w.conserved()


def test_a_scenario_whose_task_no_honest_daemon_would_take_is_refused():
    from deai.sim.scenario import ScenarioError, parse_scenario

    with pytest.raises(ScenarioError, match=r"policy\.min_reward"):
        parse_scenario({"seed": 1, "task": {"budget": 0}})  # free work: nobody would join
    with pytest.raises(ScenarioError, match=r"policy\.min_job_fee"):
        parse_scenario({"seed": 1, "inference": {"fee": 0}})
    lax = parse_scenario({"seed": 1, "task": {"budget": 0}, "policy": {"min_reward": 0}})
    assert lax.policy.min_reward == 0  # a network that works for free must say so


def test_policy_flags_reach_the_daemon():
    import typer
    from typer.main import get_command

    from deai.cli.node import node
    from deai.node.participant.policy import policy_args

    app = typer.Typer()
    app.command()(node)
    given = {"min_reward": 7, "max_task_stake": 8, "min_job_fee": 9, "min_reveal_ms": 10}
    argv = ["--hub", "h", "--role", "host", "--accounts", "seed:x:0", "--state", "s", *policy_args(given)]
    ctx = get_command(app).make_context("node", argv)
    assert {k: ctx.params[k] for k in given} == given


def test_the_timing_estimate_is_the_daemons_own_on_the_ledger_clock():
    from deai.node.participant.policy import SAFETY, Timing

    timing = Timing(JoinPolicy(margin_ms=1_000, first_estimate_ms=2_000))
    job = {"job": "0x01", "commit_deadline": 10_000, "reveal_deadline": 12_000}
    assert (
        timing.too_late("aggregate", 6_999, job["commit_deadline"]) is None
    )  # 2 s + 1 s margin: lands before 10 s
    assert "commit deadline" in timing.too_late("aggregate", 7_000, job["commit_deadline"])
    for ms in (100, 4_000, 300):  # the slowest recent run, with a safety factor, counts
        timing.record("aggregate", ms)
    assert timing.estimate("aggregate") == round(4_000 * SAFETY)
    assert timing.too_late("aggregate", 2_999, job["commit_deadline"]) is None and timing.too_late(
        "aggregate", 3_000, job["commit_deadline"]
    )
    assert timing.estimate("score") == 2_000  # a kind never run: the first estimate
    # work that would end after the reveal deadline of a job already committed to waits
    owed = {"job": "0x02", "commit_deadline": 5_000, "reveal_deadline": 9_000}
    owed_by = [owed["reveal_deadline"]]
    assert timing.blocks_reveal("aggregate", 2_000, owed_by) and not timing.blocks_reveal(
        "score", 2_000, owed_by
    )
