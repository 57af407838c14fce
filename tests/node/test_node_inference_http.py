"""Verified inference over real processes on 127.0.0.1: a hub and three host daemons (slow; ~40 s,
``DEAI_SMALL=1`` asks 2 requests instead of 4)."""

import os
import time

import pytest
import torch

from deai.core.accounts import Account
from deai.learn.models import build_model
from deai.ledger.config import HOST
from deai.net.transport import RemoteError
from deai.node.launch.processes import ProcessNetwork
from deai.node.participant.host import ensure_hosts
from deai.node.participant.served import publish_model
from deai.node.user.infer import request_inference
from deai.protocol.task.model import checkpoint_bytes

SMALL = os.environ.get("DEAI_SMALL") == "1"
PARAMS = {"model": "mlp", "in_features": 64, "num_classes": 10, "model_kwargs": {}}


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_verified_inference_over_http(tmp_path, digits):
    tag = "ih"
    hosts = [Account.from_seed(f"{tag}h", i) for i in range(3)]
    wrong = hosts[2].address
    owner, user = Account.from_seed(f"{tag}owner", 0), Account.from_seed(f"{tag}user", 0)
    model = build_model("mlp", 64, 10, seed=5).eval()
    with ProcessNetwork(tmp_path, network="deai-ih", seed=2) as net:
        net.start_hub()
        net.fund([owner.address, user.address, *[h.address for h in hosts]], 200_000)
        client = net.client(owner)
        model_id = publish_model(client, owner, checkpoint_bytes(model), PARAMS, {owner.address: 1.0})
        ensure_hosts(net, hosts, tag=tag, behaviours={wrong: "wrong_answer"}, stake=50_000)
        uc = net.client(user)
        deadline = time.monotonic() + 60
        while uc.call("infer.hosts", {"fee": 10})["eligible"] < 3:  # daemons start and stake
            assert time.monotonic() < deadline, "host daemons did not come up"
            time.sleep(0.2)
        with pytest.raises(RemoteError, match="features"):
            request_inference(uc, user, model_id, digits.test.x[:2, :5])
        stakes = {h.address: uc.query("stake", address=h.address, role=HOST) for h in hosts}
        pool0 = uc.query("model", model_id=model_id).pool
        n = 2 if SMALL else 4
        for i in range(n):
            x = digits.test.x[i * 8 : i * 8 + 8]
            answer = request_inference(uc, user, model_id, x, fee=10, r=3, p=1.0, timeout=60)
            with torch.no_grad():
                assert torch.equal(answer["labels"], model(x).argmax(dim=1))
            assert answer["faulted"] == [wrong] and wrong not in answer["accepted"]
        after = {h.address: uc.query("stake", address=h.address, role=HOST) for h in hosts}
        assert after[wrong] < stakes[wrong]
        assert all(after[h.address] == stakes[h.address] for h in hosts[:2])
        assert uc.query("model", model_id=model_id).pool > pool0
