"""The GPT-style decoder language model ("gpt") and the export of models to folders that load
outside deai (Hugging Face for the GPT, deai's own format for the other registry models)."""

import json
import os

import pytest
import torch
from torch.nn import functional as F

from deai.learn.errors import ModelError
from deai.learn.export import ExportSpec, export_model, load_exported
from deai.learn.models import GPT, build_model, count_params

os.environ["HF_HUB_OFFLINE"] = "1"

T, V = 32, 64
TEXT = (
    b"To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer "
    b"the slings and arrows of outrageous fortune, or to take arms against a sea of troubles. "
) * 4


def _windows(t: int = 16):
    ids = torch.tensor(list(TEXT), dtype=torch.int64)
    starts = torch.arange(0, len(ids) - t - 1, 7)
    x = torch.stack([ids[s : s + t] for s in starts])
    y = torch.stack([ids[s + 1 : s + t + 1] for s in starts])
    return x, y


def _lm_loss(model, x, y):
    return F.cross_entropy(model(x).flatten(0, 1), y.flatten())


def test_gpt_shapes_and_meta_count():
    model = build_model("gpt", T, V, seed=0, n_embd=32, n_layer=2, n_head=4)
    assert isinstance(model, GPT)
    x = torch.randint(0, V, (3, T))
    assert model(x).shape == (3, T, V)
    assert model(x[:, :10]).shape == (3, 10, V)  # a shorter context
    n = sum(p.numel() for p in model.parameters())
    assert count_params("gpt", T, V, n_embd=32, n_layer=2, n_head=4) == n
    # Tied embeddings: the head is the token embedding, counted once.
    assert model.net.lm_head.weight is model.net.transformer.wte.weight
    # Defaults: 4 layers of width 128; per layer 12 d^2 + 13 d, plus embeddings and final norm.
    d = 128
    assert count_params("gpt", 256, 256) == 4 * (12 * d * d + 13 * d) + (256 + 256) * d + 2 * d
    assert not list(model.buffers())  # nothing but weights travels


def test_gpt_refuses_bad_arguments_and_inputs():
    with pytest.raises(ModelError, match="multiple of n_head"):
        build_model("gpt", T, V, n_embd=30, n_head=4)
    with pytest.raises(ModelError, match="dropout"):
        build_model("gpt", T, V, dropout=1.5)
    model = build_model("gpt", T, V, seed=0, n_embd=32, n_layer=1, n_head=2)
    with pytest.raises(ModelError, match="T <= 32"):
        model(torch.zeros(1, T + 1, dtype=torch.int64))


def test_gpt_seeded_init_and_deterministic_steps():
    a = build_model("gpt", T, V, seed=3, n_embd=32, n_layer=2, n_head=4)
    b = build_model("gpt", T, V, seed=3, n_embd=32, n_layer=2, n_head=4)
    c = build_model("gpt", T, V, seed=4, n_embd=32, n_layer=2, n_head=4)
    for (ka, pa), (kb, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(pa, pb)
    assert not torch.equal(a.net.transformer.wte.weight, c.net.transformer.wte.weight)
    x, y = (t % V for t in _windows())
    prev = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        grads = []
        for m in (a, b):
            _lm_loss(m, x, y).backward()
            grads.append(torch.cat([p.grad.flatten() for p in m.parameters()]))
    finally:
        torch.use_deterministic_algorithms(prev)
    assert torch.equal(grads[0], grads[1])


def test_gpt_learns_a_tiny_text():
    x, y = _windows()
    torch.manual_seed(0)
    model = build_model("gpt", 16, 256, seed=0, n_embd=64, n_layer=2, n_head=4)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    model.train()
    first = _lm_loss(model, x, y).item()
    for _ in range(40):
        opt.zero_grad()
        loss = _lm_loss(model, x, y)
        loss.backward()
        opt.step()
    last = _lm_loss(model, x, y).item()
    assert first > 5.0  # about ln(256): an untrained model
    assert last < 0.6 * first, (first, last)


def test_gpt_export_loads_with_transformers(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

    model = build_model("gpt", T, V, seed=0, n_embd=32, n_layer=2, n_head=4).eval()
    vocab = {chr(ord("a") + i) if i < 26 else f"<{i}>": i for i in range(V)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<63>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    out = export_model(model, tmp_path / "gpt", tokenizer=tok)
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in out.iterdir()}
    loaded = AutoModelForCausalLM.from_pretrained(out).eval()
    x = torch.randint(0, V, (2, T))
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=x).logits, model(x))
    again = AutoTokenizer.from_pretrained(out)
    assert isinstance(again, PreTrainedTokenizerFast)
    assert again("abc")["input_ids"] == [0, 1, 2]


def test_deai_tokenizers_export_with_the_same_ids(tmp_path):
    from transformers import AutoTokenizer

    from deai.learn.text import ByteTokenizer, train_bpe

    text = "Héllo wörld,\n\tthe slings and arrows of outrageous fortune ✓"
    bpe = train_bpe([TEXT.decode()] * 3, 300)
    for i, tok in enumerate((ByteTokenizer(), bpe)):
        model = build_model("gpt", T, tok.vocab_size, seed=0, n_embd=16, n_layer=1, n_head=2)
        out = export_model(model, tmp_path / str(i), tokenizer=tok)
        outside = AutoTokenizer.from_pretrained(out)
        ids = outside(text, add_special_tokens=False)["input_ids"]
        assert ids == tok.encode(text)
        assert outside.decode(ids) == text


def test_registry_model_export_round_trip(tmp_path):
    spec = ExportSpec("resnet", 64, 10, {"widths": [4, 8], "blocks": 1})
    model = build_model(spec.model, spec.in_features, spec.num_classes, seed=1, **spec.model_kwargs)
    model.train()
    model(torch.randn(8, 64))  # batch-norm statistics move away from their initial values
    model.eval()
    out = export_model(model, tmp_path / "resnet", spec=spec)
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "resnet" and config["model_kwargs"] == {"widths": [4, 8], "blocks": 1}
    back = load_exported(out)
    for (k, v), (k2, v2) in zip(model.state_dict().items(), back.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2)
    x = torch.randn(4, 64)
    with torch.no_grad():
        assert torch.equal(back(x), model(x))
    with pytest.raises(ModelError, match="needs spec"):
        export_model(model, tmp_path / "nospec")


def test_load_exported_refuses_foreign_folders(tmp_path):
    spec = ExportSpec("mlp", 8, 3, {"hidden": [4]})
    out = export_model(build_model("mlp", 8, 3, seed=0, hidden=[4]), tmp_path / "m", spec=spec)
    config = json.loads((out / "config.json").read_text())

    def rewrite(**changes):
        (out / "config.json").write_text(json.dumps({**config, **changes}))

    rewrite(model="os:system")
    with pytest.raises(ModelError, match="import path"):
        load_exported(out)
    rewrite(model_kwargs={"hidden": [5]})  # another layout than the weights
    with pytest.raises(ModelError, match="does not fit"):
        load_exported(out)
    rewrite()
    (out / "model.safetensors").write_bytes(b"\0" * 3_000_000)  # far more than the model's weights
    with pytest.raises(ModelError, match="larger than the weights"):
        load_exported(out)
    rewrite(format="something-else")
    with pytest.raises(ModelError, match="not a deai export"):
        load_exported(out)
    (out / "config.json").write_text(" " * ((1 << 20) + 1))
    with pytest.raises(ModelError, match="larger than"):
        load_exported(out)
