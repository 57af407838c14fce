"""Verified text generation over the in-memory network: a primary host answers, drawn verifiers
check it with one prefill, the hub resolves from the verdicts, the ledger pays and slashes."""

from __future__ import annotations

import pytest
import torch

from deai.core.accounts import Account
from deai.learn.models import build_model
from deai.learn.pretrained import register_base, unregister_base
from deai.net.transport import RemoteError
from deai.node.launch.inprocess import LocalNetwork
from deai.node.participant.served import publish_model
from deai.node.user.infer import InferenceFailed
from deai.node.user.llm import request_generation
from deai.protocol.inference.llm import GenerationRequest, Sampling, calibrate
from deai.protocol.inference.llm.calibrate import VARIATIONS, make_requests
from deai.protocol.inference.llm.jobs import causal_lm
from deai.protocol.inference.llm.tiny import byte_tokenizer, tiny_llama
from deai.protocol.task.model import checkpoint_bytes

BASE = "tiny-llm-net"
PARAMS = {"model": "lora", "in_features": 256, "num_classes": 259, "model_kwargs": {"base": BASE, "r": 2}}
PROMPTS = [tuple(b"hello there"), tuple(b"count: 1 2 3"), tuple(b"the quick brown fox")]


@pytest.fixture(scope="module")
def base_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tinybase")
    tiny_llama(0).save_pretrained(folder, safe_serialization=True)
    byte_tokenizer().save_pretrained(folder)
    register_base(BASE, folder)
    yield folder
    unregister_base(BASE)


@pytest.fixture(scope="module")
def thresholds(base_folder):
    """Calibrated on the served model itself (few requests: the fast test form)."""
    model = causal_lm(build_model("lora", 256, 259, seed=0, base=BASE, r=2)).float().eval()
    requests = make_requests(PROMPTS, 6, max_new_tokens=12, seed=5)
    th, _ = calibrate(model, requests, dtypes=("float32",), variations=VARIATIONS[:3])
    return th.for_dtype("float32")


class Net:
    def __init__(self, tmp_path, *, cheats: dict[int, str] | None = None, hosts: int = 4, tag: str = "llm"):
        self.net = LocalNetwork(tmp_path, network=f"deai-{tag}", seed=1)
        self.owner = Account.from_seed(f"{tag}owner", 0)
        self.user = Account.from_seed(f"{tag}user", 0)
        self.contrib = Account.from_seed(f"{tag}contrib", 0)
        self.hosts = [Account.from_seed(f"{tag}host", i) for i in range(hosts)]
        self.net.fund([self.owner, self.user, *self.hosts], 100_000)
        model = build_model("lora", 256, 259, seed=0, base=BASE, r=2)
        client = self.net.client(self.owner)
        self.model_id = publish_model(
            client, self.owner, checkpoint_bytes(model), PARAMS, {self.contrib.address: 1}
        )
        behaviours = {self.hosts[i].address: f"llm_{b}" for i, b in (cheats or {}).items()}
        self.net.add_daemon(
            "hosts", {"host": self.hosts}, behaviours=behaviours, options={"host_stake": 50_000}
        )
        self.client = self.net.client(self.user)
        self.ledger = self.net.ledger

    def ask(self, request, thresholds, **kw):
        return request_generation(
            self.client, self.user, self.model_id, request, thresholds, pump=self.net.step, **kw
        )


def test_generation_is_paid_verified_and_equals_local_generation(tmp_path, base_folder, thresholds):
    from deai.protocol.inference.llm import generate

    net = Net(tmp_path)
    user_before = net.ledger.balance(net.user.address)
    request = GenerationRequest(PROMPTS[0], 10, seed=7, sampling=Sampling(temperature=0.8, top_p=0.95))
    got = net.ask(request, thresholds, p=1.0, verifiers=2)
    model = causal_lm(build_model("lora", 256, 259, seed=0, base=BASE, r=2)).float().eval()
    assert got.tokens == generate(model, request).tokens
    assert got.replicated and len(got.verifiers) == 2 and set(got.accepted_by) == set(got.verifiers)
    assert not got.faulted and "verified by 2 of 2" in got.verification
    fee = len(request.prompt) + request.max_new_tokens  # 1 per token, per accepted host
    assert got.fee == fee
    assert net.ledger.balance(net.user.address) == user_before - 3 * fee
    assert net.ledger.model(net.model_id).pool > 0  # royalties to the model's contributors


def test_sampled_out_request_is_served_by_the_primary_alone(tmp_path, base_folder, thresholds):
    net = Net(tmp_path, tag="llm0")
    request = GenerationRequest(PROMPTS[1], 8, seed=3)
    got = net.ask(request, thresholds, p=0.0, verifiers=2)
    assert not got.replicated and got.verifiers == () and got.primary in got.hosts
    assert "sampled out" in got.verification


FAST_CHEATS = ["quantized_4bit", "other_model", "wrong_seed"]
SLOW_CHEATS = ["quantized_int8", "finetuned", "tampered_prompt", "truncated", "edited", "cached"]


@pytest.mark.parametrize(
    "cheat", FAST_CHEATS + [pytest.param(c, marks=pytest.mark.slow) for c in SLOW_CHEATS]
)
def test_a_cheating_primary_is_slashed(tmp_path, base_folder, thresholds, cheat):
    """Four of six hosts cheat when they are the primary (they verify honestly). Requests run until
    a cheater was drawn as a primary; every such job must end with it slashed, and every answer the
    user gets comes from an honest primary."""
    net = Net(tmp_path, cheats={i: cheat for i in range(4)}, hosts=6, tag=f"llmc{cheat[:5]}")
    cheaters = {h.address for h in net.hosts[:4]}
    caught = 0
    for i in range(6):
        request = GenerationRequest(PROMPTS[i % 3], 12, seed=11 + i, sampling=Sampling(temperature=1.0))
        try:
            got = net.ask(request, thresholds, p=1.0, verifiers=2, escalations=2)
        except InferenceFailed:  # every attempt drew a cheating primary: no answer, but slashes
            got = None
        if got is not None:
            assert got.primary not in cheaters
        for e in net.ledger.events(0, 100_000):
            if e.kind != "job_resolved":
                continue
            job = net.ledger.job(e.data["job"])
            primary = job.executors[job.primary]
            if primary in cheaters:
                assert primary in job.faulted and primary not in job.accepted, (cheat, e.data)
        caught = sum(
            1
            for e in net.ledger.events(0, 100_000)
            if e.kind == "slashed" and e.data["account"] in cheaters and e.data["reason"] == "wrong result"
        )
        if caught:
            break
    assert caught, f"no {cheat} host was drawn as a primary in 6 requests"
    slashes = [e for e in net.ledger.events(0, 100_000) if e.kind == "slashed"]
    assert all(e.data["account"] in cheaters for e in slashes)  # no honest host slashed


def test_bad_requests_are_refused_before_money_moves(tmp_path, base_folder, thresholds):
    net = Net(tmp_path, tag="llmbad")
    before = net.ledger.balance(net.user.address)
    with pytest.raises(RemoteError, match="fee must be at least"):
        net.ask(GenerationRequest(PROMPTS[0], 8, seed=1), thresholds, price_per_token=0)
    bad = {"model": net.model_id, "prompt": "00" * 32, "generation": {}, "thresholds": {}, "seed": 1}
    with pytest.raises(RemoteError):
        net.client.call("llm.request", bad, account=net.user)
    with pytest.raises(RemoteError, match="no open generation job"):
        net.client.call("llm.answer", {"job": "0x" + "11" * 32, "answer": "22" * 32}, account=net.user)
    assert net.ledger.balance(net.user.address) == before
    assert torch.isfinite(torch.tensor(float(before)))
