"""Refereed delegated training of LoRA adapters on a pretrained causal LM over token windows: the
job's checkpoint is the adapters, its state hashes cover them, and a cheating trainer is caught on
the real ledger. A tiny random Llama saved to a temporary folder stands in for the base."""

import os

import pytest
import torch
from jobs_helpers import make_net

from deai.core.tensorio import to_safetensors
from deai.learn import pretrained
from deai.learn.models import build_model
from deai.learn.training import deterministic, shared_state
from deai.protocol.jobs import JobConfig, JobSpec
from deai.protocol.jobs.cheaters.forged_state import Forger
from deai.protocol.jobs.delegated import DelegatedDriver
from deai.protocol.jobs.kinds import StepProgram, get_kind
from deai.protocol.jobs.kinds.base import load_inputs
from deai.protocol.jobs.refereed import Trainer, referee
from deai.protocol.jobs.trajectory import HASHES

os.environ["HF_HUB_OFFLINE"] = "1"
V, CTX = 64, 8


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    from transformers import LlamaConfig, LlamaForCausalLM

    monkeypatch.setenv("DEAI_CACHE_DIR", str(tmp_path / "cache"))
    config = LlamaConfig(
        vocab_size=V, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=32, tie_word_embeddings=True,
    )  # fmt: skip
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(tmp_path / "tiny")
    pretrained.register_base("tiny-delegated", tmp_path / "tiny")
    yield "tiny-delegated"
    pretrained.unregister_base("tiny-delegated")


def lora_spec(store, base, seed, steps=12):
    params = {
        "model": "lora", "in_features": CTX, "num_classes": V,
        "model_kwargs": {"base": base, "r": 2, "alpha": 4}, "steps": steps, "lr": 0.5,
        "batch_size": 4, "commit_every": 1,
    }  # fmt: skip
    ck = shared_state(build_model("lora", CTX, V, seed=seed, base=base, r=2, alpha=4))
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, V, (32, CTX + 1), generator=g)
    data = {"x": ids[:, :-1].contiguous(), "y": ids[:, 1:].contiguous()}
    inputs = (store.put(to_safetensors(ck)), store.put(to_safetensors(data)))
    return JobSpec("train_steps", inputs, params, seed=seed)


def test_lora_job_commits_adapter_states_and_a_forged_state_is_found(store, tiny):
    spec = lora_spec(store, tiny, 0)
    out = get_kind("train_steps").execute(load_inputs(store, spec), spec.params, spec.seed)
    assert out[HASHES].shape == (13, 32)
    assert all(".lora_" in k for k in out if k != HASHES)
    with deterministic(1):
        program = StepProgram.from_job(load_inputs(store, spec), spec.params, spec.seed)
        honest, forger = Trainer(program), Forger(program)
        outcome = referee({"honest": honest, "forger": forger}, program)
    assert honest.root == Trainer(program).root
    assert outcome.liars == ["forger"] and outcome.step == 12 // 3 and outcome.steps_reexecuted == 1


def test_lora_cheater_slashed_on_the_ledger(tmp_path, tiny):
    net = make_net(tmp_path, ["honest", "skip_steps", "honest"], r=2)
    cheat = next(a for a, e in net.executors.items() if e.behaviour == "skip_steps")
    d = DelegatedDriver(
        net.ledger, net.clock, net.store, net.creator, net.executors, config=JobConfig(fee=10, r=2, p=1.0)
    )
    for seed in range(6):
        report = d.run(lora_spec(net.store, tiny, seed, steps=8))
        if cheat in report.required:
            (rec,) = report.run.disputes
            assert rec.liars == [cheat] and report.faulted == [cheat] and rec.step == 3
            return
    pytest.fail("the cheater was never drawn")
