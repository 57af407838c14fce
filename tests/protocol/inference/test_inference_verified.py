"""Verified inference on a real ledger: majority answer, wrong hosts slashed, fees and royalties."""

import pytest
import torch

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.core.encoding import sha256_hex
from deai.core.errors import TensorError
from deai.core.tensorio import to_safetensors
from deai.learn.models import build_model
from deai.ledger import HOST, ManualClock, MemoryLedger, NetworkConfig, txs
from deai.protocol.incentives import Provenance
from deai.protocol.inference import ServedModel, VerifiedInference, make_host

PARAMS = {"model": "mlp", "in_features": 64, "num_classes": 10}


@pytest.fixture
def world(tmp_path):
    torch.set_num_threads(1)
    minter = Account.from_seed("inf", 0)
    clock = ManualClock(1_000)
    ledger = MemoryLedger(NetworkConfig(minter=minter.address, network="inf-test"), clock=clock)
    store = BlobStore(tmp_path / "blobs")
    user, owner = Account.from_seed("inf", 1), Account.from_seed("inf", 2)
    contributors = [Account.from_seed("inf", 10 + i) for i in range(2)]
    for a in (user, owner):
        ledger.send(minter, txs.Mint(to=a.address, amount=1_000_000))
    model = build_model("mlp", 64, 10, seed=3)
    checkpoint = store.put(to_safetensors(model.state_dict()))
    prov = Provenance.from_scores(
        owner.address, "0x" + checkpoint, None, {c.address: 1.0 for c in contributors}
    )
    prov.register(ledger, owner, host_bps=3_000)
    model_id = prov.model  # bound to its registrant by the ledger

    def hosts(behaviours):
        out = {}
        for i, b in enumerate(behaviours):
            acct = Account.from_seed("inf-host", i)
            ledger.send(minter, txs.Mint(to=acct.address, amount=100_000))
            ledger.send(acct, txs.Stake(role=HOST, amount=50_000))
            out[acct.address] = make_host(b, acct, store)
        return out

    served = ServedModel(model_id, checkpoint, PARAMS)
    return ledger, clock, store, user, model, served, hosts, prov


def test_honest_hosts_answer_like_the_model_and_royalties_accrue(world):
    ledger, clock, store, user, model, served, hosts, _prov = world
    service = VerifiedInference(ledger, clock, store, served, hosts(["honest"] * 3), fee=100, r=3, p=1.0)
    x = torch.randn(5, 64, generator=torch.Generator().manual_seed(0))
    before = ledger.balance(user.address)
    answer = service.infer(user, x)
    assert answer.answered and answer.replicated and not answer.slashed
    assert torch.equal(answer.labels, model(x).argmax(dim=1))
    assert len(answer.accepted) == 3
    assert ledger.balance(user.address) == before - 300  # three accepted hosts, fee 100 each
    assert ledger.model(served.model_id)["pool"] > 0  # 70% of each fee went to the royalty pool
    ledger.check_invariants()  # raises InvariantViolation unless the supply is conserved


def test_wrong_answer_host_is_outvoted_and_slashed(world):
    ledger, clock, store, user, model, served, hosts, _prov = world
    pool = hosts(["honest", "honest", "wrong_answer", "honest"])
    service = VerifiedInference(ledger, clock, store, served, pool, fee=50, r=3, p=1.0, seed=1)
    x = torch.randn(4, 64, generator=torch.Generator().manual_seed(1))
    expected = model(x).argmax(dim=1)
    liars = {a for a, h in pool.items() if h.behaviour == "wrong_answer"}
    caught = 0
    for _ in range(6):
        answer = service.infer(user, x)
        assert torch.equal(answer.labels, expected)
        drawn_liars = liars & set(answer.hosts)
        if drawn_liars:
            caught += 1
            assert set(answer.slashed) == drawn_liars
            assert not drawn_liars & set(answer.accepted)
        assert not set(answer.slashed) - liars  # no honest host is ever slashed
    assert caught >= 1


@pytest.mark.parametrize(
    "x",
    [torch.zeros(3, 5), torch.zeros(0, 64), torch.full((2, 64), float("nan")), torch.zeros(64)],
)
def test_malformed_requests_are_refused_before_any_job(world, x):
    ledger, clock, store, user, _model, served, hosts, _prov = world
    service = VerifiedInference(ledger, clock, store, served, hosts(["honest"] * 3))
    height = ledger.head().height
    with pytest.raises(TensorError):
        service.infer(user, x)
    assert ledger.head().height == height


def test_model_params_are_checked():
    with pytest.raises(Exception, match=r"params\.model"):
        ServedModel(
            "0x" + sha256_hex(b"m"),
            sha256_hex(b"c"),
            {"model": "os:system", "in_features": 1, "num_classes": 2},
        )
