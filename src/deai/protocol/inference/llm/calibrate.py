"""Calibration: fit the verifier's thresholds from honest generations under the variation a
network sees, with a stated false-positive bound.

An honest *pair* is one host run and one verifier run of the same request. The host side varies
over :data:`VARIATIONS` -- thread count (1 or 2), batch (alone, or in a left-padded batch of 3 with
prompts of other lengths), KV cache on or off -- and the verifier's prefill alternates 1 and 2
threads; each precision (float32, bfloat16) is calibrated on its own, because a request pins its
precision (a bfloat16 host differs from a float32 recomputation by as much as an int8-quantized
one does, see ``docs/llm-serving.md``). On a machine with a GPU, :func:`honest_samples` takes a
``device`` for either side. For every pair it records the verifier's :class:`Statistics` and two
raw deviations that bound what a tie-break can flip: the largest logit difference between host
and verifier (a greedy choice flips only if the top two logits are within twice that) and the
largest difference of their sampling CDFs (a seeded draw changes only if ``u`` is that close to an
interval edge).

:func:`fit` sets each threshold to ``margin`` (default 2) times the worst honest value, never
below the statistic's resolution (one top-k position of 128 for the overlap; for the errors
:data:`RESOLUTION`: the rounding of the committed values in float32, one bfloat16 unit in the
last place in bfloat16). Order statistics give the bound: for N exchangeable honest
pairs, a new honest pair exceeds the largest of the N values of one statistic with probability at
most 1/(N+1); with 5 statistics, a union bound gives a false-positive rate of at most 5/(N+1)
before the margin (the margin only lowers it). The fitted :class:`ThresholdSet` is written as JSON
(:meth:`ThresholdSet.save`) and loaded by the verifier.

Command line: ``python -m deai.protocol.inference.llm.calibrate --model smollm2-135m-instruct
--out thresholds.json`` (``--model tiny`` for the in-process test model).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from deai.protocol.inference.llm.generate import decode, model_in, model_limits
from deai.protocol.inference.llm.proof import TOPK, build_proof
from deai.protocol.inference.llm.request import DTYPES, GenerationRequest, Sampling
from deai.protocol.inference.llm.sampling import probabilities
from deai.protocol.inference.llm.verify import (
    Statistics,
    Thresholds,
    ThresholdSet,
    recompute,
    statistics_of,
)

__all__ = [
    "PROMPTS",
    "RESOLUTION",
    "SAMPLINGS",
    "VARIATIONS",
    "HonestSample",
    "Variation",
    "calibrate",
    "fit",
    "honest_samples",
    "main",
    "make_requests",
]

RESOLUTION = {"float32": (2.0**-10, 2.0**-10), "bfloat16": (2.0**-8, 2.0**-7)}
"""The finest (mean, median) relative error the statistics resolve, per precision: the 2^-10
rounding of a committed value (9 mantissa bits) in float32. In bfloat16 an honest reordering moves
values by whole units in the last place (2^-8 to 2^-7 relative, 7 mantissa bits): the median of
such differences is 0 or one unit, nothing between (floor 2^-7); the mean averages them (floor
2^-8, one typical unit)."""


@dataclass(frozen=True)
class Variation:
    """How an honest host runs: ``threads``, ``batch`` (1: alone; n: left-padded with n-1 other
    requests of other prompt lengths), ``use_cache`` (KV cache on or off)."""

    name: str
    threads: int = 1
    batch: int = 1
    use_cache: bool = True


VARIATIONS: tuple[Variation, ...] = (
    Variation("threads1"),
    Variation("threads2", threads=2),
    Variation("padded3", batch=3),
    Variation("no_kv_cache", use_cache=False),
    Variation("threads2_padded3_no_cache", threads=2, batch=3, use_cache=False),
)
"""The host-side variations of a calibration (the verifier alternates 1 and 2 threads)."""

SAMPLINGS: tuple[Sampling, ...] = (
    Sampling(0.0),
    Sampling(0.7, top_p=0.9),
    Sampling(1.0),
    Sampling(1.0, top_p=0.95, top_k=50),
    Sampling(0.3, top_k=20),
)
"""The sampling rules requests cycle through: greedy, and sampled with and without filters."""

PROMPTS: tuple[str, ...] = (
    "Write a short poem about the sea.",
    "Explain what a hash function is in two sentences.",
    "List three uses of copper.",
    "What is the capital of France, and why is it famous?",
    "Give me a recipe for a simple tomato soup.",
    "Translate 'good morning, friends' into Spanish and French.",
    "Summarize the plot of Romeo and Juliet.",
    "Why is the sky blue?",
    "Write a Python function that reverses a string.",
    "Describe a cat to someone who has never seen one.",
    "What are the benefits of regular exercise?",
    "Tell me a joke about computers.",
    "How do plants make their food?",
    "Name five countries in Africa.",
    "What should I pack for a weekend hiking trip?",
    "Explain the difference between weather and climate.",
)
"""Built-in chat prompts for calibrating a real model."""


@dataclass(frozen=True)
class HonestSample:
    """One honest pair: the precision, host variation, verifier threads, the verifier's
    statistics and the raw host-verifier deviations of logits and sampling CDFs."""

    dtype: str
    variation: str
    verifier_threads: int
    stats: Statistics
    logit_dev: float
    cdf_dev: float


@contextmanager
def _threads(n: int) -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def make_requests(
    prompts: Sequence[tuple[int, ...]], n: int, *, max_new_tokens: int, seed: int, stop: tuple[int, ...] = ()
) -> list[GenerationRequest]:
    """``n`` requests cycling through ``prompts`` and :data:`SAMPLINGS`, seeds drawn from ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    seeds = torch.randint(0, 2**62, (n,), generator=gen).tolist()
    return [
        GenerationRequest(
            prompt=prompts[i % len(prompts)],
            max_new_tokens=max_new_tokens,
            seed=int(seeds[i]),
            sampling=SAMPLINGS[(i // len(prompts) + i) % len(SAMPLINGS)],
            stop=stop,
        )
        for i in range(n)
    ]


def _cdf_dev(a: torch.Tensor, b: torch.Tensor, sampling: Sampling) -> float:
    if sampling.greedy:
        return 0.0
    ca = torch.cumsum(probabilities(a, sampling), dim=-1)
    cb = torch.cumsum(probabilities(b, sampling), dim=-1)
    return float((ca - cb).abs().max())


def honest_samples(
    model: torch.nn.Module,
    requests: Sequence[GenerationRequest],
    *,
    dtypes: Sequence[str] = DTYPES,
    variations: Sequence[Variation] = VARIATIONS,
    fillers: Sequence[tuple[int, ...]] = (),
) -> list[HonestSample]:
    """Run every request under every variation and precision, honestly, and measure each pair.

    ``fillers`` are the other prompts of a padded batch (default: the requests' own prompts,
    shifted, so lengths differ)."""
    others = list(fillers) or [r.prompt for r in requests]
    out: list[HonestSample] = []
    for dtype in dtypes:
        m = model_in(model, dtype)
        for i, base in enumerate(requests):
            req = dataclasses.replace(base, dtype=dtype)
            for j, var in enumerate(variations):
                batch = [req]
                for f in range(1, var.batch):
                    filler = others[(i + f * 7 + 1) % len(others)][: max(1, len(req.prompt) - 3 * f)]
                    batch.append(dataclasses.replace(req, prompt=filler, seed=req.seed + f))
                with _threads(var.threads):
                    host = decode(m, batch, use_cache=var.use_cache, keep_logits=True)[0]
                proof = build_proof(host.hidden, dtype)
                vthreads = 1 + (i + j) % 2
                with _threads(vthreads):
                    rec = recompute(m, req, host.tokens)
                stats = statistics_of(proof, req, host.tokens, rec)
                assert host.logits is not None
                out.append(
                    HonestSample(
                        dtype=dtype,
                        variation=var.name,
                        verifier_threads=vthreads,
                        stats=stats,
                        logit_dev=float((host.logits - rec.logits).abs().max()),
                        cdf_dev=_cdf_dev(host.logits, rec.logits, req.sampling),
                    )
                )
    return out


def fit(samples: Sequence[HonestSample], *, margin: float = 2.0, model: str = "") -> ThresholdSet:
    """Thresholds per precision: ``margin`` times the worst honest value of each statistic (for
    the overlap: of its shortfall from 1), floored at the statistic's resolution."""
    if margin < 1:
        raise ValueError("margin must be at least 1")
    by: dict[str, Thresholds] = {}
    counts: dict[str, int] = {}
    for dtype in sorted({s.dtype for s in samples}):
        ss = [s for s in samples if s.dtype == dtype]
        counts[dtype] = len(ss)
        short = max(1.0 - min(s.stats.overlap for s in ss), 1.0 / TOPK)
        err_mean = max(max(s.stats.err_mean for s in ss), RESOLUTION[dtype][0])
        err_median = max(max(s.stats.err_median for s in ss), RESOLUTION[dtype][1])
        gap = max(max(s.stats.greedy_gap for s in ss), 2 * max(s.logit_dev for s in ss))
        dist = max(max(s.stats.sample_dist for s in ss), max(s.cdf_dev for s in ss))
        by[dtype] = Thresholds(
            min_overlap=max(1.0 - margin * short, 1.0 / TOPK),
            max_err_mean=min(margin * err_mean, 0.5),
            max_err_median=min(margin * err_median, 0.5),
            max_greedy_gap=margin * gap,
            max_sample_dist=margin * dist,
        )
    n = min(counts.values()) if counts else 0
    provenance: dict[str, object] = {
        "honest_pairs": counts,
        "margin": margin,
        "variations": sorted({s.variation for s in samples}),
        "verifier_threads": sorted({s.verifier_threads for s in samples}),
        "false_positive_bound": (5.0 / (n + 1)) if n else 1.0,
        "bound": "order statistics: P(new honest pair > max of N) <= 1/(N+1) per statistic; "
        "5 statistics, union bound, before the margin",
    }
    return ThresholdSet(model, by, provenance)


def calibrate(
    model: torch.nn.Module,
    requests: Sequence[GenerationRequest],
    *,
    name: str = "",
    dtypes: Sequence[str] = DTYPES,
    variations: Sequence[Variation] = VARIATIONS,
    margin: float = 2.0,
) -> tuple[ThresholdSet, list[HonestSample]]:
    """:func:`honest_samples` then :func:`fit`; returns the thresholds and the samples."""
    samples = honest_samples(model, requests, dtypes=dtypes, variations=variations)
    return fit(samples, margin=margin, model=name), samples


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: calibrate a named base (or ``tiny``) and write the thresholds JSON."""
    ap = argparse.ArgumentParser(description="Fit verified-generation thresholds from honest runs.")
    ap.add_argument("--model", default="smollm2-135m-instruct", help="a base name, or 'tiny'")
    ap.add_argument("--out", required=True, help="where to write the thresholds JSON")
    ap.add_argument("--requests", type=int, default=16, help="honest requests per precision")
    ap.add_argument("--tokens", type=int, default=32, help="max new tokens per request")
    ap.add_argument("--dtypes", default=",".join(DTYPES))
    ap.add_argument("--margin", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if not 1 <= args.requests <= 100_000 or not 1 <= args.tokens <= 4096:
        ap.error("--requests in [1, 100000], --tokens in [1, 4096]")
    dtypes = [d for d in args.dtypes.split(",") if d]
    if not dtypes or any(d not in DTYPES for d in dtypes):
        ap.error(f"--dtypes: a comma-separated subset of {DTYPES}")
    torch.manual_seed(args.seed)
    if args.model == "tiny":
        from deai.protocol.inference.llm.tiny import byte_tokenizer, tiny_llama

        model: Any = tiny_llama(args.seed)
        tok: Any = byte_tokenizer()
    else:
        from deai.learn.pretrained import load_base, load_tokenizer

        model, tok = load_base(args.model), load_tokenizer(args.model)
    from deai.protocol.inference.llm.request import chat_prompt

    prompts = [chat_prompt(tok, p) for p in PROMPTS]
    vocab, _ = model_limits(model)
    stop = tuple(i for i in {tok.eos_token_id} if isinstance(i, int) and 0 <= i < vocab)
    reqs = make_requests(prompts, args.requests, max_new_tokens=args.tokens, seed=args.seed, stop=stop)
    thresholds, samples = calibrate(model, reqs, name=args.model, dtypes=dtypes, margin=args.margin)
    thresholds.save(args.out)
    json.dump(json.loads(thresholds.to_json()), sys.stdout, indent=2)
    print(f"\n{len(samples)} honest pairs", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
