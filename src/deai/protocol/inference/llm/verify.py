"""Verification of a generation by one prefill pass, against calibrated thresholds.

:func:`measure` bounds the answer and its proof, checks termination (an answer shorter than
``max_new_tokens`` must end with a stop id, and no stop id may come earlier), then runs the model
once over ``prompt + tokens[:-1]`` (teacher forcing) in the request's precision. From that pass it
takes, for every generated token, the last hidden state and the logits at the position that
produced it, and computes the :class:`Statistics`:

- the proof comparison per chunk (:func:`~deai.protocol.inference.llm.proof.compare`): worst
  overlap, worst mean and worst median relative error;
- the token check: for greedy requests the largest logit gap ``max - logit[token]`` (0 when every
  token is the recomputed arg-max); for sampled requests the largest distance of the request's
  seeded uniform ``u_t`` from the claimed token's CDF interval under the recomputed distribution
  (0 when the seeded sampler draws exactly the claimed tokens).

:func:`verify` accepts when every statistic is within the :class:`Thresholds` of the request's
precision (fitted by :mod:`~deai.protocol.inference.llm.calibrate`, loaded from JSON with
:meth:`ThresholdSet.load`) and returns a :class:`Verdict` with the statistics either way. A
malformed proof or a wrong termination is a rejection with a reason and no statistics.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from deai.protocol.inference.llm.errors import BadProof, BadRequest, LLMError
from deai.protocol.inference.llm.generate import model_dtype, model_limits
from deai.protocol.inference.llm.proof import Proof, compare
from deai.protocol.inference.llm.request import DTYPES, Generation, GenerationRequest
from deai.protocol.inference.llm.sampling import interval_distance, uniforms

__all__ = [
    "Recomputed",
    "Statistics",
    "ThresholdSet",
    "Thresholds",
    "Verdict",
    "measure",
    "recompute",
    "statistics_of",
    "verify",
]

_MAX_THRESHOLD_FILE = 64 * 1024


@dataclass(frozen=True)
class Recomputed:
    """The verifier's prefill: last hidden states ``[n, hidden]`` and logits ``[n, V]`` (float32)
    at the positions that produced the ``n`` generated tokens."""

    hidden: torch.Tensor
    logits: torch.Tensor


@dataclass(frozen=True)
class Statistics:
    """An answer's comparison statistics (worst case over its chunks and tokens)."""

    overlap: float
    err_mean: float
    err_median: float
    greedy_gap: float
    sample_dist: float
    n_tokens: int


@dataclass(frozen=True)
class Thresholds:
    """Acceptance bounds for one precision: ``overlap >= min_overlap``, ``err_mean <=
    max_err_mean``, ``err_median <= max_err_median``, ``greedy_gap <= max_greedy_gap`` (logits),
    ``sample_dist <= max_sample_dist`` (probability)."""

    min_overlap: float
    max_err_mean: float
    max_err_median: float
    max_greedy_gap: float
    max_sample_dist: float

    def __post_init__(self) -> None:
        vals = asdict(self).values()
        if not all(isinstance(v, float | int) and math.isfinite(v) and v >= 0 for v in vals):
            raise LLMError("thresholds must be finite and non-negative")
        if not 0 < self.min_overlap <= 1 or self.max_err_mean >= 1 or self.max_err_median >= 1:
            raise LLMError("min_overlap must be in (0, 1], error bounds below 1")

    def violations(self, s: Statistics) -> list[str]:
        """The statistics of ``s`` out of bounds, in words (empty: accepted)."""
        out = []
        if s.overlap < self.min_overlap:
            out.append(f"overlap {s.overlap:.4f} < {self.min_overlap:.4f}")
        if s.err_mean > self.max_err_mean:
            out.append(f"mean error {s.err_mean:.3g} > {self.max_err_mean:.3g}")
        if s.err_median > self.max_err_median:
            out.append(f"median error {s.err_median:.3g} > {self.max_err_median:.3g}")
        if s.greedy_gap > self.max_greedy_gap:
            out.append(f"greedy logit gap {s.greedy_gap:.3g} > {self.max_greedy_gap:.3g}")
        if s.sample_dist > self.max_sample_dist:
            out.append(f"sampler distance {s.sample_dist:.3g} > {self.max_sample_dist:.3g}")
        return out


@dataclass(frozen=True)
class ThresholdSet:
    """Thresholds per precision for one model, with how they were fitted (``provenance``: honest
    sample counts, margin, false-positive bound, variations) -- the JSON the verifier loads."""

    model: str
    by_dtype: dict[str, Thresholds]
    provenance: dict[str, object] = field(default_factory=dict)

    def for_dtype(self, dtype: str) -> Thresholds:
        if dtype not in self.by_dtype:
            raise LLMError(f"no calibrated thresholds for {dtype!r} (have {sorted(self.by_dtype)})")
        return self.by_dtype[dtype]

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": 1,
                "model": self.model,
                "thresholds": {d: asdict(t) for d, t in self.by_dtype.items()},
                "provenance": self.provenance,
            },
            indent=2,
            sort_keys=True,
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def from_json(cls, text: str) -> ThresholdSet:
        if len(text) > _MAX_THRESHOLD_FILE:
            raise LLMError(f"threshold file larger than {_MAX_THRESHOLD_FILE} bytes")
        try:
            raw = json.loads(text)
        except ValueError as e:
            raise LLMError(f"threshold file is not JSON: {e}") from None
        if not isinstance(raw, dict) or raw.get("version") != 1:
            raise LLMError("threshold file: expected version 1")
        if not isinstance(raw.get("thresholds"), dict):
            raise LLMError("threshold file: expected version 1 with a 'thresholds' object")
        keys = set(Thresholds.__dataclass_fields__)
        by: dict[str, Thresholds] = {}
        for d, t in raw["thresholds"].items():
            if d not in DTYPES or not isinstance(t, dict) or set(t) != keys:
                raise LLMError(f"threshold file: bad entry for {d!r}")
            by[d] = Thresholds(**{k: float(t[k]) for k in keys})
        prov = raw.get("provenance", {})
        return cls(str(raw.get("model", ""))[:200], by, prov if isinstance(prov, dict) else {})

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ThresholdSet:
        p = Path(path)
        if p.stat().st_size > _MAX_THRESHOLD_FILE:
            raise LLMError(f"threshold file larger than {_MAX_THRESHOLD_FILE} bytes")
        return cls.from_json(p.read_text())


@dataclass(frozen=True)
class Verdict:
    """Accepted or not, why (empty when accepted), and the statistics (None if the answer was
    refused before the prefill: malformed proof, bad tokens, wrong termination)."""

    accepted: bool
    reason: str
    stats: Statistics | None


def recompute(model: torch.nn.Module, request: GenerationRequest, tokens: tuple[int, ...]) -> Recomputed:
    """One prefill pass over ``prompt + tokens[:-1]``: hidden states and logits per generated token."""
    n, p = len(tokens), len(request.prompt)
    dev = next(model.parameters()).device
    ids = torch.tensor([*request.prompt, *tokens[:-1]], dtype=torch.int64, device=dev).unsqueeze(0)
    with torch.no_grad():
        out = model(input_ids=ids, use_cache=False, output_hidden_states=True, logits_to_keep=n)
    hidden = out.hidden_states[-1][0, p - 1 :].float().cpu()
    return Recomputed(hidden, out.logits[0, -n:].float().cpu())


def _check_answer(model: torch.nn.Module, request: GenerationRequest, answer: Generation) -> Proof:
    vocab, max_pos = model_limits(model)
    request.check(vocab, max_pos)
    if model_dtype(model) != request.dtype:
        raise BadRequest(f"the verifier's model runs in {model_dtype(model)}, the request in {request.dtype}")
    answer.check(request, vocab)
    toks = answer.tokens
    if request.stop:
        stops = torch.tensor(request.stop)
        is_stop = torch.isin(torch.tensor(toks), stops)
        if bool(is_stop[:-1].any()):
            raise BadRequest("the answer continues after a stop token")
        if len(toks) < request.max_new_tokens and not bool(is_stop[-1]):
            raise BadRequest("the answer stops early without a stop token (truncated)")
    elif len(toks) != request.max_new_tokens:
        raise BadRequest("without stop ids an answer has exactly max_new_tokens tokens (truncated)")
    hidden_size = int(model.get_output_embeddings().weight.shape[1])  # type: ignore[operator]
    proof = Proof.from_bytes(answer.proof, n_tokens=len(toks), hidden_size=hidden_size)
    if proof.dtype != request.dtype:
        raise BadProof(f"the proof is for {proof.dtype}, the request pins {request.dtype}")
    return proof


def statistics_of(
    proof: Proof, request: GenerationRequest, tokens: tuple[int, ...], rec: Recomputed
) -> Statistics:
    """The :class:`Statistics` of an answer against a recomputation."""
    chunks = compare(proof, rec.hidden)
    tok = torch.tensor(tokens, dtype=torch.int64)
    u = uniforms(request.seed, len(tokens))
    dist = interval_distance(rec.logits, request.sampling, tok, u)
    worst = float(dist.max())
    return Statistics(
        overlap=min(c.overlap for c in chunks),
        err_mean=max(c.err_mean for c in chunks),
        err_median=max(c.err_median for c in chunks),
        greedy_gap=worst if request.sampling.greedy else 0.0,
        sample_dist=0.0 if request.sampling.greedy else worst,
        n_tokens=len(tokens),
    )


def measure(model: torch.nn.Module, request: GenerationRequest, answer: Generation) -> Statistics:
    """Bound the answer, run the prefill and return its statistics. Raises :class:`BadRequest` or
    :class:`BadProof` for an answer refused before the prefill."""
    proof = _check_answer(model, request, answer)
    return statistics_of(proof, request, answer.tokens, recompute(model, request, answer.tokens))


def verify(
    model: torch.nn.Module, request: GenerationRequest, answer: Generation, thresholds: ThresholdSet
) -> Verdict:
    """Accept or reject ``answer`` to ``request`` (``model`` in the request's precision)."""
    bounds = thresholds.for_dtype(request.dtype)
    vocab, max_pos = model_limits(model)
    request.check(vocab, max_pos)  # a bad request is the caller's error, not the host's
    try:
        stats = measure(model, request, answer)
    except (BadRequest, BadProof) as e:
        return Verdict(False, str(e), None)
    bad = bounds.violations(stats)
    return Verdict(not bad, "; ".join(bad), stats)
