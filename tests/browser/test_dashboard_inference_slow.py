"""The dashboard of a network that trained a model and served paid inference, in a real browser
(slow: a task, then three host daemons, one answering wrong, and verified requests).

With ``DEAI_SCREENSHOTS=DIR`` it saves a screenshot of every page into DIR (``docs/img`` holds
the ones ``docs/dashboard.md`` shows)."""

import os
import time
from pathlib import Path

import pytest
from PIL import Image
from tests.browser.conftest import start_task_network

from deai.core.accounts import Account
from deai.learn.models import build_model
from deai.node.participant.host import ensure_hosts
from deai.node.participant.served import publish_model
from deai.node.user.infer import request_inference
from deai.protocol.task.model import checkpoint_bytes

SMALL = os.environ.get("DEAI_SMALL") == "1"
PARAMS = {"model": "mlp", "in_features": 64, "num_classes": 10, "model_kwargs": {}}


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_dashboard_of_a_network_serving_inference(tmp_path, digits, browser):
    net, task, _ = start_task_network(tmp_path, digits, tag="di")
    try:
        hosts = [Account.from_seed("dih", i) for i in range(3)]
        wrong = hosts[2].address
        owner, user = Account.from_seed("diowner", 0), Account.from_seed("diuser", 0)
        net.fund([owner.address, user.address, *[h.address for h in hosts]], 200_000)
        model_id = publish_model(
            net.client(owner),
            owner,
            checkpoint_bytes(build_model("mlp", 64, 10, seed=5)),
            PARAMS,
            {owner.address: 1.0},
        )
        ensure_hosts(net, hosts, tag="di", behaviours={wrong: "wrong_answer"}, stake=50_000)
        uc = net.client(user)
        deadline = time.monotonic() + 90
        while uc.call("infer.hosts", {"fee": 10})["eligible"] < 3:
            assert time.monotonic() < deadline, "host daemons did not come up"
            time.sleep(0.2)
        n = 1 if SMALL else 2
        for i in range(n):
            answer = request_inference(
                uc, user, model_id, digits.test.x[i * 8 : i * 8 + 8], fee=10, r=3, p=1.0, timeout=90
            )
            assert answer["faulted"] == [wrong]

        page = browser.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(net.url + "/dashboard/inference")
        rows = page.locator("table#inference tr").all_inner_texts()[1:]
        verified = [r for r in rows if "verified: 2 host(s) agreed" in r]
        assert len(verified) == n and all("2/1/0 of 3" in r for r in verified)  # one row per job (attempt)
        page.goto(net.url + "/dashboard/participants")
        row = page.locator("table#participants tr", has_text=wrong).inner_text()
        assert "host" in row and "(inference)" in row  # an inference slash, with its reason
        honest = page.locator("table#participants tr", has_text=hosts[0].address).inner_text()
        assert "inference_fees" in honest
        page.goto(net.url + "/dashboard/")
        page.wait_for_selector("table#network span.ok", timeout=20_000)
        assert errors == []

        shots = os.environ.get("DEAI_SCREENSHOTS")
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            page.set_viewport_size({"width": 1100, "height": 640})
            for name, path in [
                ("network", "/dashboard/"),
                ("task", f"/dashboard/tasks/{task}"),
                ("participants", "/dashboard/participants"),
                ("ledger", "/dashboard/ledger"),
                ("inference", "/dashboard/inference"),
            ]:
                page.goto(net.url + path)
                if name == "network":
                    page.wait_for_selector("table#network span.ok", timeout=20_000)
                out = Path(shots) / f"dashboard-{name}.png"
                page.screenshot(path=str(out))
                Image.open(out).convert("RGB").quantize(colors=64).save(out, optimize=True)  # small files
        page.close()
    finally:
        net.stop()
