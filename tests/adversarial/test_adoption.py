"""Issue 12, findings 3 and 8 (the hub's side): no task spec can stop coordination, nothing is free.

Finding 3: an unfunded account posted a task whose ``model_kwargs`` made model construction raise
(``{"hidden": [-1]}``); ``Hub._adopt`` caught only DeaiError, so the event cursor never advanced,
every tick failed (also after a restart), no task moved again and submits answered 500.
Finding 8: tasks with budget 0 and fee 0 were adopted and trained by everyone.

Here a real hub over HTTP gets, in one stream of events, a task whose model cannot be built, one
whose model is too large to build, a free one and an under-funded one, then a valid one: the four
are refused with a reason and closed on the ledger (creators refunded), the valid one is adopted
and reaches its first round, and a hub restarted on the same state does the same without getting
stuck. Funds are conserved throughout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator

import pytest

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.core.encoding import canonical, sha256_hex
from deai.ledger.config import DATA, NetworkConfig
from deai.ledger.sqlite import SqliteLedger
from deai.ledger.txs import CreateTask, JoinTask, Mint, Stake
from deai.net.http import HttpTransport, ServerThread, make_app
from deai.node.hub.admission import AdmissionPolicy
from deai.node.hub.kv import KV
from deai.node.hub.server import Hub
from deai.node.participant.client import HubClient
from deai.node.user.submit import TaskBundle, make_task
from deai.protocol.task.spec import Windows

NET = "adv-adopt"
MINTER = Account.from_seed("adopt-minter", 0)
HUB = Account.from_seed("adopt-hub", 0)
CREATOR = Account.from_seed("adopt-creator", 0)  # an honest creator with funds
ACCOMPLICE = Account.from_seed("adopt-accomplice", 0)  # holds 1: enough to upload a spec blob
ATTACKER = Account.from_seed("adopt-attacker", 0)  # holds nothing
PROVIDERS = [Account.from_seed("adopt-provider", i) for i in range(2)]
MINTED = {CREATOR: 100_000, ACCOMPLICE: 1, **{p: 1_000 for p in PROVIDERS}}
WINDOWS = Windows(join_ms=600_000, train_ms=600_000, commit_ms=60_000, reveal_ms=60_000, secagg_ms=60_000)


@pytest.fixture(scope="module")
def digits_val():
    from deai.learn.data import prepare

    return prepare("digits", seed=0).val


def bundle(val, **recipe) -> TaskBundle:
    base = dict(rounds=2, budget=6_000, min_providers=2, max_providers=2, windows=WINDOWS)
    return make_task(val, **{**base, **recipe})


@dataclasses.dataclass
class Served:
    hub: Hub
    url: str

    def client(self, account: Account) -> HubClient:
        return HubClient(HttpTransport(self.url), NET, account)


@contextlib.contextmanager
def serve(root) -> Iterator[Served]:
    """A hub over HTTP on the ledger, blobs and state under ``root`` (kept across restarts)."""
    ledger = SqliteLedger(root / "ledger.sqlite", NetworkConfig(minter=MINTER.address, network=NET))
    if ledger.nonce(MINTER.address) == 0:
        for account, amount in MINTED.items():
            ledger.send(MINTER, Mint(to=account.address, amount=amount))
    hub = Hub(ledger, BlobStore(root / "blobs", max_bytes=8 << 20), HUB, kv=KV(root / "kv"))
    try:
        with ServerThread(make_app(hub.endpoint)) as server:
            yield Served(hub, server.url)
        assert ledger.supply()["minted"] == sum(MINTED.values())
        ledger.check_invariants()
    finally:
        ledger.close()


def create(client: HubClient, creator: Account, spec_bytes: bytes, budget: int) -> str:
    """Create a task on the ledger for spec bytes already uploaded (the attacker's way: raw bytes)."""
    task = "0x" + sha256_hex(spec_bytes)
    result = client.send_tx(
        creator, CreateTask(task=task, budget=budget, params=task, coordinator=HUB.address)
    )
    assert result["ok"], result  # applied, and answered: a submit never gets a 500
    return task


def raw_spec(good: TaskBundle, **changes) -> bytes:
    """A spec's canonical bytes with fields changed past what TaskSpec() would let one build."""
    return canonical({**good.spec.to_json(), **changes})


def upload(client: HubClient, *blobs: bytes) -> None:
    for data in blobs:
        client.put_blob(data, expected=sha256_hex(data))


def test_bad_and_underfunded_tasks_are_refused_and_closed_and_a_valid_one_runs(tmp_path, digits_val, caplog):
    caplog.set_level(logging.WARNING, logger="deai.node.hub.server")
    good = bundle(digits_val)
    free = bundle(digits_val, budget=0, job_fee=0)
    poor = bundle(digits_val, budget=100)
    unbuildable = raw_spec(good, model_kwargs={"hidden": [-1]}, budget=0)  # finding 3's spec
    huge = raw_spec(good, model_kwargs={"hidden": [10**6, 10**6]}, budget=0)  # 10^12 parameters
    with serve(tmp_path) as s:
        creator, accomplice = s.client(CREATOR), s.client(ACCOMPLICE)
        upload(creator, good.init, good.validation, poor.spec.to_bytes(), free.spec.to_bytes())
        upload(accomplice, unbuildable, huge)
        attacker = s.client(ATTACKER)
        refused = {
            create(attacker, ATTACKER, unbuildable, 0): ("BadTaskSpec", "hidden"),
            create(attacker, ATTACKER, huge, 0): ("BadTaskSpec", "parameters"),
            create(attacker, ATTACKER, free.spec.to_bytes(), 0): ("TaskRefused", "budget"),
            create(creator, CREATOR, poor.spec.to_bytes(), 100): ("TaskRefused", "budget"),
        }
        upload(creator, good.spec.to_bytes())
        valid = create(creator, CREATOR, good.spec.to_bytes(), 6_000)
        for _ in range(3):
            s.hub.tick()  # ticks keep working; nothing is retried

        tasks = creator.call("task.list")
        assert set(tasks["tasks"]) == {valid}
        for task, (error, word) in refused.items():
            status = creator.call("task.status", {"task": task})
            assert status["phase"] == "rejected" and status["reason"].startswith(error), status
            assert word in status["reason"]
            record = creator.query("task", task_id=task)
            assert record.status == "closed" and record.budget == 0  # refunded to its creator
            assert sum(task in r.getMessage() for r in caplog.records) == 1  # one line, once
        assert creator.query("balance", address=CREATOR.address) == MINTED[CREATOR] - 6_000

        # the valid task moves: two providers join, and it reaches its first round
        for p in PROVIDERS:
            s.client(p).submit([(p, Stake(role=DATA, amount=100)), (p, JoinTask(task=valid, role=DATA))])
        s.hub.tick()
        status = creator.call("task.status", {"task": valid})
        assert status["phase"] == "train" and status["round"] == 1, status

    # a restarted hub resumes on the same state: the refusals stand, the valid task is where it was,
    # and a new task is adopted at once (the cursor is past the bad events)
    with serve(tmp_path) as s:
        s.hub.tick()
        creator = s.client(CREATOR)
        assert set(s.hub.rejected) == set(refused)
        status = creator.call("task.status", {"task": valid})
        assert status["phase"] == "train" and status["round"] == 1
        another = bundle(digits_val, seed=1)
        upload(creator, another.spec.to_bytes())
        task = create(creator, CREATOR, another.spec.to_bytes(), 6_000)
        assert creator.call("task.status", {"task": task})["phase"] == "join"


def test_a_failing_plugin_or_event_never_stops_the_tick(tmp_path, digits_val):
    """Whatever one part raises, the others go on: a plugin that raises is logged, not propagated."""

    class Broken:
        def routes(self) -> dict:
            return {}

        def tick(self, now: int) -> bool:
            raise RuntimeError("boom")

    good = bundle(digits_val)
    with serve(tmp_path) as s:
        s.hub.add_plugin(Broken())
        creator = s.client(CREATOR)
        upload(creator, good.init, good.validation, good.spec.to_bytes())
        task = create(creator, CREATOR, good.spec.to_bytes(), 6_000)
        for p in PROVIDERS:
            s.client(p).submit([(p, Stake(role=DATA, amount=100)), (p, JoinTask(task=task, role=DATA))])
        s.hub.tick()
        s.hub.tick()
        assert creator.call("task.status", {"task": task})["round"] == 1


def test_the_admission_policy_prices_the_worst_case(tmp_path):
    """Budget needed: rounds x (2 jobs x fee x the last escalation's executors + min reward x
    providers). Below it a task is refused; at it, taken; blobs over the hub's limit are refused."""
    from deai.node.hub.admission import TaskRefused
    from deai.protocol.task.spec import TaskSpec

    store = BlobStore(tmp_path)
    init, validation = store.put(b"i" * 10), store.put(b"v" * 10)
    spec = TaskSpec(init=init, validation=validation, in_features=4, num_classes=2, rounds=3, job_fee=7)
    policy = AdmissionPolicy(min_data_reward=5)
    need = 3 * (2 * 7 * (spec.redundancy + 2 * 3) + 5 * spec.min_providers)
    assert policy.required_budget(spec) == need
    policy.check(spec, need, store)
    with pytest.raises(TaskRefused, match="budget"):
        policy.check(spec, need - 1, store)
    with pytest.raises(TaskRefused, match="limit"):
        AdmissionPolicy(min_data_reward=5, max_blob_bytes=9).check(spec, need, store)
