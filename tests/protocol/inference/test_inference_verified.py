"""Verified inference on the network path (the hub plugin and the user's client over an in-memory
:class:`~deai.node.launch.inprocess.LocalNetwork`): majority answer, wrong hosts slashed, fees and royalties.

The same assertions as when an in-process ``VerifiedInference`` existed; a malformed request is now
refused by the hub (a ``RemoteError``) instead of raising ``TensorError`` in-process."""

import pytest
import torch

from deai.core.accounts import Account
from deai.core.encoding import sha256_hex
from deai.learn.models import build_model
from deai.ledger import HOST
from deai.net.transport import RemoteError
from deai.node.launch.inprocess import LocalNetwork
from deai.node.participant.served import publish_model, remote_model
from deai.node.user.infer import request_inference, submit_inference
from deai.protocol.inference import ServedModel
from deai.protocol.task.model import checkpoint_bytes

PARAMS = {"model": "mlp", "in_features": 64, "num_classes": 10, "model_kwargs": {}}


class World:
    def __init__(self, tmp_path, behaviours, tag):
        torch.set_num_threads(1)
        self.net = LocalNetwork(tmp_path, network=f"inf-{tag}", seed=1)
        self.user, owner = Account.from_seed(f"inf{tag}", 1), Account.from_seed(f"inf{tag}", 2)
        contributors = [Account.from_seed(f"inf{tag}", 10 + i) for i in range(2)]
        hosts = [Account.from_seed(f"inf{tag}-host", i) for i in range(len(behaviours))]
        self.net.fund([self.user, owner, *hosts], 1_000_000)
        self.model = build_model("mlp", 64, 10, seed=3).eval()
        shares = {c.address: 1.0 for c in contributors}
        self.model_id = publish_model(
            self.net.client(owner), owner, checkpoint_bytes(self.model), PARAMS, shares, host_bps=3_000
        )
        self.behaviour = {h.address: b for h, b in zip(hosts, behaviours, strict=True)}
        self.net.add_daemon(
            "hosts",
            {"host": hosts},
            behaviours={a: b for a, b in self.behaviour.items() if b != "honest"},
            options={"host_stake": 50_000},
        )
        self.client = self.net.client(self.user)
        self.ledger = self.net.ledger

    def ask(self, x, **kw):
        return request_inference(self.client, self.user, self.model_id, x, pump=self.net.step, **kw)

    def expected(self, x):
        with torch.no_grad():
            return self.model(x).argmax(dim=1)


def test_honest_hosts_answer_like_the_model_and_royalties_accrue(tmp_path):
    w = World(tmp_path, ["honest"] * 3, "h")
    x = torch.randn(5, 64, generator=torch.Generator().manual_seed(0))
    before = w.ledger.balance(w.user.address)
    answer = w.ask(x, fee=100, r=3, p=1.0)
    assert answer["replicated"] and not answer["faulted"]
    assert torch.equal(answer["labels"], w.expected(x))
    assert len(answer["accepted"]) == 3
    assert w.ledger.balance(w.user.address) == before - 300  # three accepted hosts, fee 100 each
    assert w.ledger.model(w.model_id).pool > 0  # 70% of each fee went to the royalty pool
    w.ledger.check_invariants()  # raises InvariantViolation unless the supply is conserved


def test_wrong_answer_host_is_outvoted_and_slashed(tmp_path):
    w = World(tmp_path, ["honest", "honest", "wrong_answer", "honest"], "w")
    liars = {a for a, b in w.behaviour.items() if b == "wrong_answer"}
    stakes = {a: w.ledger.stake(a, HOST) for a in w.behaviour}
    caught = 0
    for i in range(6):
        x = torch.randn(4, 64, generator=torch.Generator().manual_seed(i))
        answer = w.ask(x, fee=50, r=3, p=1.0)
        assert torch.equal(answer["labels"], w.expected(x))
        drawn_liars = liars & set(answer["hosts"])  # the hosts of the answering attempt
        if drawn_liars:
            caught += 1
            assert set(answer["faulted"]) == drawn_liars
            assert not drawn_liars & set(answer["accepted"])
        assert not set(answer["faulted"]) - liars  # no honest host is ever slashed
    assert caught >= 1
    for a, before in stakes.items():
        assert (w.ledger.stake(a, HOST) < before) == (a in liars)


@pytest.mark.parametrize(
    "x",
    [torch.zeros(3, 5), torch.zeros(0, 64), torch.full((2, 64), float("nan")), torch.zeros(64)],
)
def test_malformed_requests_are_refused_before_any_job(tmp_path, x):
    w = World(tmp_path, ["honest"] * 3, "m")
    served = remote_model(w.client, w.model_id)
    height = w.ledger.head().height
    with pytest.raises(RemoteError) as err:
        submit_inference(w.client, w.user, w.model_id, x, served=served)
    assert err.value.status == 400
    assert w.ledger.head().height == height


def test_model_params_are_checked():
    with pytest.raises(Exception, match=r"params\.model"):
        ServedModel(
            "0x" + sha256_hex(b"m"),
            sha256_hex(b"c"),
            {"model": "os:system", "in_features": 1, "num_classes": 2},
        )
