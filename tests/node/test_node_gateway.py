"""The OpenAI-compatible gateway over real HTTP, driven by the official ``openai`` client: each
request a signed, paid, verified generation on a (in-process) deai network."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import httpx
import openai
import pytest
import uvicorn
from tests.node.test_node_llm import Net, base_folder, thresholds  # noqa: F401 - fixtures

from deai.node.user.gateway import GatewayConfig, make_gateway
from deai.protocol.inference.llm.verify import ThresholdSet


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(app):
    """``app`` on a free loopback port (real HTTP), its /v1 URL."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, base_folder, thresholds):  # noqa: F811 - fixtures
    net = Net(tmp_path_factory.mktemp("gw"), tag="llmgw")
    config = GatewayConfig({"*": ThresholdSet("tiny", {"float32": thresholds})}, p=1.0, verifiers=2)
    with serving(make_gateway(net.client, net.user, config, pump=net.net.step)) as url:
        yield net, url


def test_models_and_chat_through_the_openai_client(gateway):
    net, url = gateway
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
    assert [m.id for m in client.models.list().data] == [net.model_id]
    raw = client.chat.completions.with_raw_response.create(
        model=net.model_id,
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=6,
        seed=3,
        temperature=0.7,
    )
    reply = raw.parse()
    assert reply.object == "chat.completion" and reply.choices[0].message.role == "assistant"
    assert reply.usage.completion_tokens <= 6 and reply.choices[0].finish_reason in ("stop", "length")
    extra = reply.model_extra["deai"]
    assert extra["verified"] and len(extra["accepted_by"]) == 2 and extra["seed"] == 3
    assert "verified by 2 of 2" in raw.headers["x-deai-verification"]
    job = net.ledger.job(extra["job"])
    assert job.status == "accepted" and job.creator == net.user.address  # the user's key paid
    # the same seed gives the same answer (a new, separately paid job)
    again = client.chat.completions.create(
        model=net.model_id,
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=6,
        seed=3,
        temperature=0.7,
    )
    assert again.choices[0].message.content == reply.choices[0].message.content
    assert again.model_extra["deai"]["job"] != extra["job"]


def test_streaming_chat_and_completions(gateway):
    net, url = gateway
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
    stream = client.chat.completions.create(
        model=net.model_id,
        messages=[{"role": "user", "content": "stream"}],
        max_tokens=8,
        seed=5,
        stream=True,
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    whole = client.chat.completions.create(
        model=net.model_id, messages=[{"role": "user", "content": "stream"}], max_tokens=8, seed=5
    )
    assert text == whole.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason in ("stop", "length") and chunks[-1].model_extra["deai"]["job"]
    done = client.completions.create(model=net.model_id, prompt="abc", max_tokens=5, seed=1, temperature=0)
    assert done.object == "text_completion" and done.usage.prompt_tokens == 3
    ids = client.completions.create(
        model=net.model_id, prompt=[97, 98, 99], max_tokens=5, seed=1, temperature=0
    )
    assert ids.choices[0].text == done.choices[0].text


def test_malformed_and_oversized_requests_get_openai_errors(gateway):
    net, url = gateway
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
    balance = net.ledger.balance(net.user.address)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="0x" + "ab" * 32, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        client.chat.completions.create(
            model=net.model_id, messages=[{"role": "user", "content": "x"}], max_tokens=10**6
        )
    with pytest.raises(openai.BadRequestError, match="role"):
        client.chat.completions.create(model=net.model_id, messages=[{"role": "wizard", "content": "x"}])
    bad = httpx.post(
        f"{url}/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    big = httpx.post(
        f"{url}/completions", content=b"x" * (2 << 20), headers={"content-type": "application/json"}
    )
    assert big.status_code == 413 and "error" in big.json()
    assert net.ledger.balance(net.user.address) == balance  # nothing was paid for refused requests


def test_a_gpt_trained_on_bytes_is_served_as_text(tmp_path, base_folder):  # noqa: F811 - fixture
    """A deai ``gpt`` over 256 byte ids (a text task with the byte tokenizer): completions from
    text, calibrated thresholds keyed by its model id; chat refused (no chat template)."""
    from deai.learn.models import build_model
    from deai.node.participant.served import publish_model
    from deai.protocol.inference.llm import calibrate
    from deai.protocol.inference.llm.calibrate import VARIATIONS, make_requests
    from deai.protocol.inference.llm.jobs import causal_lm
    from deai.protocol.task.model import checkpoint_bytes

    net = Net(tmp_path, tag="llmgpt")
    kwargs = {"n_embd": 32, "n_layer": 2, "n_head": 2}
    params = {"model": "gpt", "in_features": 64, "num_classes": 256, "model_kwargs": kwargs}
    module = build_model("gpt", 64, 256, seed=4, **kwargs)
    gpt_id = publish_model(
        net.net.client(net.owner), net.owner, checkpoint_bytes(module), params, {net.owner.address: 1}
    )
    reqs = make_requests([tuple(b"hello"), tuple(b"abc d")], 4, max_new_tokens=8, seed=0)
    th, _ = calibrate(causal_lm(module).eval(), reqs, dtypes=("float32",), variations=VARIATIONS[:3])
    config = GatewayConfig({gpt_id: th}, p=1.0, verifiers=2)
    with serving(make_gateway(net.client, net.user, config, pump=net.net.step)) as url:
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        assert gpt_id in [m.id for m in client.models.list().data]
        done = client.completions.create(model=gpt_id, prompt="to be", max_tokens=8, seed=2, temperature=0)
        assert done.usage.prompt_tokens == 5 and done.usage.completion_tokens == 8
        assert done.model_extra["deai"]["verified"]
        with pytest.raises(openai.BadRequestError, match="chat template"):
            client.chat.completions.create(model=gpt_id, messages=[{"role": "user", "content": "x"}])
        with pytest.raises(openai.BadRequestError, match="thresholds"):
            client.completions.create(model=net.model_id, prompt="x", max_tokens=2)  # none for it
