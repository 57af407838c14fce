"""Verified text generation end to end over real processes on 127.0.0.1: a hub, three host
daemons serving a local Hugging Face base (``DEAI_BASES``), and ``deai api`` as its own process,
driven by the official ``openai`` client (slow; about a minute)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import httpx
import openai
import pytest

from deai.core.accounts import Account
from deai.learn.models import build_model
from deai.learn.pretrained import register_base, unregister_base
from deai.node.launch.processes import ProcessNetwork
from deai.node.participant.host import ensure_hosts
from deai.node.participant.served import publish_model
from deai.protocol.inference.llm import calibrate
from deai.protocol.inference.llm.calibrate import VARIATIONS, make_requests
from deai.protocol.inference.llm.jobs import causal_lm
from deai.protocol.inference.llm.tiny import byte_tokenizer, tiny_llama
from deai.protocol.task.model import checkpoint_bytes

BASE = "tiny-llm-http"
PARAMS = {"model": "lora", "in_features": 256, "num_classes": 259, "model_kwargs": {"base": BASE, "r": 2}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_openai_client_against_deai_api_and_a_network_of_processes(tmp_path, monkeypatch):
    folder = tmp_path / "base"
    tiny_llama(0).save_pretrained(folder, safe_serialization=True)
    byte_tokenizer().save_pretrained(folder)
    monkeypatch.setenv("DEAI_BASES", f"{BASE}={folder}")  # the daemons and deai api inherit it
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    register_base(BASE, folder)
    try:
        module = build_model("lora", 256, 259, seed=0, base=BASE, r=2)
        th, _ = calibrate(
            causal_lm(build_model("lora", 256, 259, seed=0, base=BASE, r=2)).float().eval(),
            make_requests([tuple(b"hi"), tuple(b"abc")], 4, max_new_tokens=8, seed=1),
            dtypes=("float32",),
            variations=VARIATIONS[:3],
        )
        th.save(tmp_path / "thresholds.json")
        tag = "lh"
        hosts = [Account.from_seed(f"{tag}h", i) for i in range(3)]
        owner, user = Account.from_seed(f"{tag}owner", 0), Account.from_seed(f"{tag}user", 0)
        with ProcessNetwork(tmp_path / "net", network="deai-lh", seed=2) as net:
            url_of_hub = net.start_hub()
            net.fund([owner.address, user.address, *[h.address for h in hosts]], 200_000)
            client = net.client(owner)
            model_id = publish_model(client, owner, checkpoint_bytes(module), PARAMS, {owner.address: 1.0})
            ensure_hosts(net, hosts, tag=tag, stake=50_000)
            uc = net.client(user)
            deadline = time.monotonic() + 90
            while uc.call("infer.hosts", {"fee": 40})["eligible"] < 3:  # daemons start and stake
                assert time.monotonic() < deadline, "host daemons did not come up"
                time.sleep(0.2)
            port = _free_port()
            api = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "deai.cli.main",
                    "api",
                    "--account",
                    f"seed:{tag}user:0",
                    "--hub",
                    url_of_hub,
                    "--thresholds",
                    str(tmp_path / "thresholds.json"),
                    "--port",
                    str(port),
                    "--p",
                    "1.0",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=dict(os.environ),
            )
            try:
                url = f"http://127.0.0.1:{port}/v1"
                deadline = time.monotonic() + 60
                while True:
                    try:
                        if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    assert api.poll() is None, api.stdout.read().decode() if api.stdout else ""
                    assert time.monotonic() < deadline, "deai api did not come up"
                    time.sleep(0.3)
                oa = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=120)
                assert [m.id for m in oa.models.list().data] == [model_id]
                reply = oa.chat.completions.create(
                    model=model_id, messages=[{"role": "user", "content": "hi"}], max_tokens=6, seed=4
                )
                extra = reply.model_extra["deai"]
                assert extra["verified"] and len(extra["accepted_by"]) == 2
                job = uc.query("job", job_id=extra["job"])
                assert job.status == "accepted" and job.creator == user.address
                chunks = list(
                    oa.chat.completions.create(
                        model=model_id,
                        messages=[{"role": "user", "content": "hi"}],
                        max_tokens=6,
                        seed=4,
                        stream=True,
                    )
                )
                assert (
                    "".join(c.choices[0].delta.content or "" for c in chunks)
                    == reply.choices[0].message.content
                )
            finally:
                api.terminate()
                api.wait(timeout=10)
            # the same request from the command line: deai infer --prompt (a new, paid job)
            cli = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "deai.cli.main",
                    "infer",
                    "--prompt",
                    "hi",
                    "--chat",
                    "--model",
                    model_id,
                    "--account",
                    f"seed:{tag}user:0",
                    "--hub",
                    url_of_hub,
                    "--max-tokens",
                    "6",
                    "--seed",
                    "4",
                    "--thresholds",
                    str(tmp_path / "thresholds.json"),
                    "--temperature",
                    "1.0",
                    "--json",
                ],
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert cli.returncode == 0, cli.stderr
            out = json.loads(cli.stdout)
            assert out["text"] == reply.choices[0].message.content and out["deai"]["verified"]
    finally:
        unregister_base(BASE)
