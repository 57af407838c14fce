"""Verified inference over the in-memory network: host daemons, hub plugin, paying user."""

import pytest
import torch

from deai.core.accounts import Account
from deai.core.encoding import sha256_hex
from deai.core.tensorio import to_safetensors
from deai.learn.models import build_model
from deai.ledger.config import HOST
from deai.net.transport import RemoteError
from deai.node.launch.inprocess import LocalNetwork
from deai.node.participant.served import publish_model, resolve_model
from deai.node.user.infer import request_inference, submit_inference
from deai.protocol.task.model import checkpoint_bytes

PARAMS = {"model": "mlp", "in_features": 64, "num_classes": 10, "model_kwargs": {}}


class Served:
    def __init__(self, tmp_path, digits, *, hosts=3, wrong=1, tag="inf"):
        self.net = LocalNetwork(tmp_path, network=f"deai-{tag}", seed=1)
        self.owner = Account.from_seed(f"{tag}owner", 0)
        self.user = Account.from_seed(f"{tag}user", 0)
        self.contributors = [Account.from_seed(f"{tag}contrib", i) for i in range(2)]
        self.hosts = [Account.from_seed(f"{tag}host", i) for i in range(hosts)]
        self.wrong = {h.address for h in self.hosts[hosts - wrong :]}
        self.net.fund([self.owner, self.user, *self.hosts], 100_000)
        self.model = build_model("mlp", 64, 10, seed=3).eval()
        client = self.net.client(self.owner)
        shares = {self.contributors[0].address: 3.0, self.contributors[1].address: 1.0}
        self.model_id = publish_model(client, self.owner, checkpoint_bytes(self.model), PARAMS, shares)
        self.net.add_daemon(
            "hosts",
            {"host": self.hosts},
            behaviours={a: "wrong_answer" for a in self.wrong},
            options={"host_stake": 50_000},
        )
        self.client = self.net.client(self.user)
        self.x = digits.test.x

    def ask(self, x, **kw):
        kw.setdefault("max_hosts", len(self.hosts))
        return request_inference(self.client, self.user, self.model_id, x, pump=self.net.step, **kw)


@pytest.fixture
def served(tmp_path, digits):
    return Served(tmp_path, digits)


def test_model_resolves_from_the_ledger(served):
    m = resolve_model(served.net.ledger, served.net.store, served.model_id)
    assert m.checkpoint == sha256_hex(checkpoint_bytes(served.model)) and dict(m.params) == PARAMS
    assert m.model_id != "0x" + m.checkpoint  # the id is bound to its registrant, not public bytes
    listed = served.client.call("infer.models")["models"]
    assert listed[served.model_id]["params"] == PARAMS


def test_answers_equal_the_model_and_the_wrong_host_is_slashed(served):
    ledger = served.net.ledger
    stakes = {h.address: ledger.stake(h.address, HOST) for h in served.hosts}
    user_before = ledger.balance(served.user.address)
    for i in range(4):
        x = served.x[i * 7 : i * 7 + 5 + i]
        answer = served.ask(x, fee=10, r=3, p=1.0)
        with torch.no_grad():
            assert torch.equal(answer["labels"], served.model(x).argmax(dim=1))
        assert answer["replicated"] and len(answer["hosts"]) == 3
        assert not set(answer["accepted"]) & served.wrong
        assert set(answer["faulted"]) == served.wrong
    after = {h.address: ledger.stake(h.address, HOST) for h in served.hosts}
    for h in served.hosts:
        if h.address in served.wrong:
            assert after[h.address] < stakes[h.address]
        else:
            assert after[h.address] == stakes[h.address]
            assert ledger.balance(h.address) > 100_000 - 50_000  # paid fees and a slash reward
    model = ledger.model(served.model_id)
    assert model.pool > 0  # royalties: 70 % of each paid fee (host_bps 3,000)
    assert ledger.balance(served.user.address) == user_before - 4 * 2 * 10  # 2 accepted hosts per job
    assert ledger.verify()


def test_unreplicated_request_is_answered_by_one_host(tmp_path, digits):
    # p = 0: only the primary runs the job; the other drawn hosts commit decoys and are not due.
    s = Served(tmp_path, digits, wrong=0, tag="inf1")
    x = s.x[:6]
    answer = s.ask(x, fee=10, r=3, p=0.0)
    assert not answer["replicated"] and len(answer["accepted"]) == 1 and answer["faulted"] == []
    with torch.no_grad():
        assert torch.equal(answer["labels"], s.model(x).argmax(dim=1))


def _refused(s, x, status, words, **kw):
    with pytest.raises(RemoteError) as err:
        submit_inference(s.client, s.user, kw.pop("model", s.model_id), x, **kw)
    assert err.value.status == status, err.value
    assert all(w in str(err.value) for w in words), str(err.value)


def test_bad_requests_are_refused_and_the_hub_keeps_serving(served):
    s = served
    served_model = resolve_model(s.net.ledger, s.net.store, s.model_id)
    unknown = "0x" + "ab" * 32
    with pytest.raises(Exception, match="no model"):
        submit_inference(s.client, s.user, unknown, s.x[:2])
    _refused(s, s.x[:2, :10], 400, ["10 features", "takes 64"], served=served_model)
    bad = s.x[:3].clone()
    bad[1, 2] = float("nan")
    _refused(s, bad, 400, ["non-finite"], served=served_model)
    _refused(s, torch.zeros(5000, 64), 400, ["1..4096 rows"], served=served_model)
    poor = Account.from_seed("infpoor", 0)
    with pytest.raises(RemoteError) as err:
        submit_inference(s.net.client(poor), poor, s.model_id, s.x[:2], served=served_model)
    # an account with nothing may not even upload its batch (issue 12, finding 7: no free disk)
    assert err.value.status == 403 and "may not upload" in str(err.value)
    # a request whose signed job names another resolver or model is refused before money moves
    raw = {"model": unknown, "batch": "00" * 32, "attempts": []}
    with pytest.raises(RemoteError, match="no model"):
        s.client.call("infer.request", raw, account=s.user)
    batch = s.client.put_blob(to_safetensors({"x": s.x[:2].contiguous()}))
    for body, words in [
        ({"model": s.model_id, "batch": batch, "attempts": []}, "attempts"),
        ({"model": s.model_id, "batch": batch, "attempts": [{"register": "zz", "reveal": "00"}]}, "hex"),
        ({"model": s.model_id, "batch": "11" * 32, "attempts": []}, "11111111"),
        ({"model": s.model_id, "batch": batch, "nonce": -1, "attempts": []}, "nonce"),
    ]:
        with pytest.raises(RemoteError, match=words):
            s.client.call("infer.request", body, account=s.user)
    with pytest.raises(RemoteError, match="no inference request"):
        s.client.call("infer.result", {"request": "0x" + "00" * 32}, account=s.user)
    # still serving, and nothing was charged for the refusals
    before = s.net.ledger.balance(s.user.address)
    answer = s.ask(s.x[:4], fee=10, r=3)
    with torch.no_grad():
        assert torch.equal(answer["labels"], s.model(s.x[:4]).argmax(dim=1))
    assert s.net.ledger.balance(s.user.address) == before - 20


def test_a_tampered_request_cannot_redirect_the_fee(served):
    """The hub checks the user's signed job against the request: another resolver is refused."""
    from deai.ledger.tx import SignedTx
    from deai.node.user.infer import sign_attempts
    from deai.protocol.jobs.spec import JobSpec

    s = served
    m = resolve_model(s.net.ledger, s.net.store, s.model_id)
    batch = s.client.put_blob(to_safetensors({"x": s.x[:2].contiguous()}))
    spec = JobSpec("infer", (m.checkpoint, batch), dict(m.params), seed=0, nonce=5)
    signed = sign_attempts(s.client, s.user, spec, s.model_id, fee=10, r=3, p=1.0, escalations=0)
    other = Account.from_seed("infother", 0)
    stx = SignedTx.from_bytes(bytes.fromhex(signed[0]["register"]))
    from dataclasses import replace

    forged = SignedTx.create(
        s.user, replace(stx.tx, resolver=other.address), nonce=stx.nonce, network=s.client.network
    )
    body = {
        "model": s.model_id,
        "batch": batch,
        "nonce": 5,
        "attempts": [{**signed[0], "register": forged.to_bytes().hex()}],
    }
    with pytest.raises(RemoteError, match="resolver"):
        s.client.call("infer.request", body, account=s.user)
    # signed by someone else than the requester
    body = {"model": s.model_id, "batch": batch, "nonce": 5, "attempts": signed}
    with pytest.raises(RemoteError, match="the user pays"):
        s.client.call("infer.request", body, account=other)
