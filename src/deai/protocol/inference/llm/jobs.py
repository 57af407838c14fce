"""Verified generation as network jobs: ``llm_generate`` (a host's answer) and ``llm_verify`` (a
drawn verifier's verdict on it), plus the cheating hosts as network executors.

One paid request is one ledger job of kind ``llm_generate`` with ``1 + k`` drawn hosts. The
user's hidden choice names the **primary** (it generates) and whether the job is **replicated**
(probability ``p``): then the other ``k`` are **verifiers**, each running ``llm_verify`` over the
primary's answer -- one prefill pass, :func:`~deai.protocol.inference.llm.verify.verify` within the
request's calibrated thresholds. The hub resolves the job with ``accept_result`` from the revealed
outputs alone (no model on the hub): :mod:`deai.node.hub.llm`.

- **Inputs** ``[checkpoint, prompt]``: a registered model's checkpoint (``params`` name it as for
  every model job: ``gpt``, or ``lora`` over a named pretrained base -- a base served as is is a
  ``lora`` checkpoint whose ``B`` matrices are zero) and ``{"prompt": int64 [P]}``;
  ``llm_verify`` adds the answer blob as input 2 and its digest as ``params["answer"]``.
- **Params**: the model's, plus ``generation`` (``max_new_tokens``, ``temperature``, ``top_p``,
  ``top_k``, ``dtype``, ``stop``) and ``thresholds`` (the calibrated bounds of that precision). The
  job seed is the request's seed: every sampled token is replayable.
- **Outputs** (fixed layouts, so the hub checks uploads before reading them): an answer is
  ``{"tokens": int64 [max_new_tokens]`` (padded with -1), ``"count": int64 [1]``, ``"proof": uint8
  [max proof bytes]`` (zero padded), ``"proof_len": int64 [1]}``; a verdict is ``{"verdict": uint8
  [1]`` (1 accepted), ``"answer": uint8 [32]}`` (the SHA-256 of the answer blob it checked: a verdict
  about another answer counts for nothing).

Models are built once per (checkpoint, params, precision) and kept (:data:`MODEL_CACHE` entries):
loading a 135 M-parameter base takes seconds, a job's generation less.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from deai.protocol.inference.llm.cheaters import cheater_names, make_host
from deai.protocol.inference.llm.errors import LLMError
from deai.protocol.inference.llm.generate import model_in
from deai.protocol.inference.llm.proof import CHUNK, HEADER_BYTES, TOPK
from deai.protocol.inference.llm.request import DTYPES, MAX_STOP_IDS, Generation, GenerationRequest, Sampling
from deai.protocol.inference.llm.verify import Thresholds, ThresholdSet, verify
from deai.protocol.jobs.cheaters.base import CHEATERS
from deai.protocol.jobs.compare import CompareRule
from deai.protocol.jobs.errors import BadJobSpec, InputMismatch
from deai.protocol.jobs.executor import Executor, JobView
from deai.protocol.jobs.kinds.base import KINDS, JobKind, Layout, Tensors, tensor_of
from deai.protocol.jobs.kinds.model import check_model_params, load_model
from deai.protocol.jobs.spec import JobSpec

__all__ = [
    "LLM_MODELS",
    "MAX_LLM_NEW_TOKENS",
    "MODEL_CACHE",
    "answer_layout",
    "answer_tensors",
    "causal_lm",
    "generation_of",
    "llm_params",
    "parse_answer",
    "request_of",
    "verdict_layout",
]

LLM_MODELS = ("gpt", "lora")
"""Registry models a host can serve as a language model."""
MAX_LLM_NEW_TOKENS = 1024
"""Most new tokens one network request may ask for (bounds the answer blob and the fee)."""
MAX_PROMPT = 4096
MODEL_CACHE = 2
_GEN_KEYS = {"max_new_tokens", "temperature", "top_p", "top_k", "dtype", "stop"}
_models: OrderedDict[str, torch.nn.Module] = OrderedDict()


# -- params and records ------------------------------------------------------------------------------


def llm_params(model_params: Mapping[str, Any], request: GenerationRequest, thresholds: Thresholds) -> dict:
    """The job params of ``request`` served by a model of ``model_params`` (see the module doc)."""
    s = request.sampling
    return {
        **dict(model_params),
        "generation": {
            "max_new_tokens": request.max_new_tokens,
            "temperature": float(s.temperature),
            "top_p": float(s.top_p),
            "top_k": s.top_k,
            "dtype": request.dtype,
            "stop": list(request.stop),
        },
        "thresholds": {k: float(v) for k, v in thresholds.__dict__.items()},
    }


def _check_llm_params(params: Mapping[str, Any]) -> tuple[dict, Thresholds]:
    check_model_params(params)
    if params["model"] not in LLM_MODELS:
        raise BadJobSpec(f"params.model must be a language model ({', '.join(LLM_MODELS)})")
    gen = params.get("generation")
    if not isinstance(gen, dict) or set(gen) != _GEN_KEYS:
        raise BadJobSpec(f"params.generation must hold exactly {sorted(_GEN_KEYS)}")
    n = gen["max_new_tokens"]
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_LLM_NEW_TOKENS:
        raise BadJobSpec(f"generation.max_new_tokens must be an integer in [1, {MAX_LLM_NEW_TOKENS}]")
    if gen["dtype"] not in DTYPES:
        raise BadJobSpec(f"generation.dtype must be one of {DTYPES}")
    stop = gen["stop"]
    if not isinstance(stop, list) or len(stop) > MAX_STOP_IDS:
        raise BadJobSpec(f"generation.stop must be a list of at most {MAX_STOP_IDS} token ids")
    for key in ("temperature", "top_p"):
        v = gen[key]
        if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
            raise BadJobSpec(f"generation.{key} must be a finite number")
    th = params.get("thresholds")
    if not isinstance(th, dict) or set(th) != set(Thresholds.__dataclass_fields__):
        raise BadJobSpec(f"params.thresholds must hold exactly {sorted(Thresholds.__dataclass_fields__)}")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in th.values()):
        raise BadJobSpec("params.thresholds must be numbers")
    try:
        return gen, Thresholds(**{k: float(v) for k, v in th.items()})
    except LLMError as exc:
        raise BadJobSpec(f"params.thresholds: {exc}") from None


def request_of(prompt: torch.Tensor, params: Mapping[str, Any], seed: int) -> GenerationRequest:
    """The :class:`GenerationRequest` a job describes (its bounds checked by the model later)."""
    gen, _ = _check_llm_params(params)
    if prompt.dtype != torch.int64 or prompt.dim() != 1 or not 1 <= prompt.numel() <= MAX_PROMPT:
        raise InputMismatch(
            f"the prompt must be int64 [1..{MAX_PROMPT}], got {prompt.dtype} {tuple(prompt.shape)}"
        )
    try:
        sampling = Sampling(float(gen["temperature"]), float(gen["top_p"]), gen["top_k"])
        return GenerationRequest(
            tuple(int(i) for i in prompt.tolist()),
            gen["max_new_tokens"],
            seed,
            sampling,
            gen["dtype"],
            tuple(int(i) if isinstance(i, int) else -1 for i in gen["stop"]),
        )
    except (TypeError, ValueError) as exc:
        raise InputMismatch(f"bad generation request: {exc}") from None


def max_proof_bytes(max_new_tokens: int) -> int:
    """The largest proof an answer of at most ``max_new_tokens`` tokens has."""
    return HEADER_BYTES + (-(-max_new_tokens // CHUNK)) * (2 + 2 * TOPK)


def answer_layout(params: Mapping[str, Any]) -> Layout:
    n = params["generation"]["max_new_tokens"]
    return {
        "tokens": ((n,), torch.int64),
        "count": ((1,), torch.int64),
        "proof": ((max_proof_bytes(n),), torch.uint8),
        "proof_len": ((1,), torch.int64),
    }


def verdict_layout() -> Layout:
    return {"verdict": ((1,), torch.uint8), "answer": ((32,), torch.uint8)}


def answer_tensors(answer: Generation, max_new_tokens: int) -> Tensors:
    """A :class:`Generation` in the answer layout (padded)."""
    n, p = len(answer.tokens), len(answer.proof)
    if not 1 <= n <= max_new_tokens or p > max_proof_bytes(max_new_tokens):
        raise LLMError(f"an answer of {n} tokens and {p} proof bytes does not fit {max_new_tokens} tokens")
    tokens = torch.full((max_new_tokens,), -1, dtype=torch.int64)
    tokens[:n] = torch.tensor(answer.tokens, dtype=torch.int64)
    proof = torch.zeros(max_proof_bytes(max_new_tokens), dtype=torch.uint8)
    proof[:p] = torch.frombuffer(bytearray(answer.proof), dtype=torch.uint8)
    return {"tokens": tokens, "count": torch.tensor([n]), "proof": proof, "proof_len": torch.tensor([p])}


def parse_answer(t: Tensors) -> Generation:
    """An answer-layout output back to a :class:`Generation`; :class:`InputMismatch` if its counts
    or padding are inconsistent (the token and proof contents are the verifier's business)."""
    n, p = int(t["count"][0]), int(t["proof_len"][0])
    if not 1 <= n <= t["tokens"].numel() or not 0 <= p <= t["proof"].numel():
        raise InputMismatch("answer counts out of range")
    if bool((t["tokens"][n:] != -1).any()) or bool((t["proof"][p:] != 0).any()):
        raise InputMismatch("answer padding is not clean")
    return Generation(
        tuple(int(i) for i in t["tokens"][:n].tolist()), bytes(t["proof"][:p].numpy().tobytes())
    )


def generation_of(answer_blob: bytes) -> Generation:
    """The :class:`Generation` held by an answer blob (bounded parse, layout from its own header)."""
    from deai.core.tensorio import from_safetensors

    return parse_answer(from_safetensors(answer_blob, max_bytes=4 << 20, require_finite=True))


# -- the served model ----------------------------------------------------------------------------------


def causal_lm(module: torch.nn.Module) -> torch.nn.Module:
    """The ``transformers`` causal LM inside a registry language model: LoRA adapters merged into
    their base (what is served is ``W + (alpha / r) B A``), or the GPT's ``GPT2LMHeadModel``."""
    peft = getattr(module, "peft", None)
    if peft is not None:
        return peft.merge_and_unload()
    net = getattr(module, "net", None)
    if net is None:
        raise BadJobSpec(f"{type(module).__name__} is not a language model")
    return net


def served_model(checkpoint: Tensors, params: Mapping[str, Any], dtype: str) -> torch.nn.Module:
    """The causal LM of ``checkpoint`` in ``dtype``, built once and cached (``MODEL_CACHE``)."""
    h = hashlib.sha256()
    h.update(
        repr(sorted((k, v) for k, v in params.items() if k not in ("generation", "thresholds"))).encode()
    )
    h.update(dtype.encode())
    for name in sorted(checkpoint):
        h.update(name.encode())
        h.update(checkpoint[name].contiguous().view(torch.uint8).numpy().tobytes())
    key = h.hexdigest()
    if key in _models:
        _models.move_to_end(key)
        return _models[key]
    model = model_in(causal_lm(load_model(params, checkpoint)), dtype)
    _models[key] = model
    while len(_models) > MODEL_CACHE:
        _models.popitem(last=False)
    return model


# -- the kinds -------------------------------------------------------------------------------------------


def _prompt(inputs: Sequence[Tensors]) -> torch.Tensor:
    return tensor_of(inputs, 1, "prompt", "the prompt token ids")


@KINDS.register("llm_generate")
class LLMGenerate(JobKind):
    """The primary host's answer: tokens and proof (see the module docstring)."""

    # Outputs are never compared to each other: the verifiers judge the primary's answer
    # (llm_verify) and the hub accepts from their verdicts (deai.node.hub.llm).
    rule = CompareRule.bit_exact()

    def check_params(self, params: Mapping[str, Any]) -> None:
        _check_llm_params(params)

    def verifier_work(self, spec: JobSpec, answer: str) -> JobSpec:
        """A verifier's ``llm_verify`` of the primary's answer blob ``answer``."""
        digest = answer.removeprefix("0x").lower()
        return JobSpec(
            "llm_verify", (*spec.inputs, digest), {**spec.params, "answer": digest}, spec.seed, spec.nonce
        )

    def output_layout(self, inputs: Sequence[Tensors], params: Mapping[str, Any]) -> Layout:
        if len(inputs) != 2:
            raise InputMismatch(f"llm_generate takes [checkpoint, prompt], got {len(inputs)} inputs")
        request_of(_prompt(inputs), params, 0)
        return answer_layout(params)

    def run(
        self, inputs: Sequence[Tensors], params: Mapping[str, Any], seed: int, host: Any = None
    ) -> Tensors:
        request = request_of(_prompt(inputs), params, seed)
        model = served_model(inputs[0], params, request.dtype)
        answer = (host or make_host("honest")).respond(model, request)
        return answer_tensors(answer, request.max_new_tokens)


@KINDS.register("llm_verify")
class LLMVerify(JobKind):
    """A verifier's verdict on the primary's answer (input 2): one prefill pass."""

    rule = CompareRule.bit_exact()

    def check_params(self, params: Mapping[str, Any]) -> None:
        _check_llm_params(params)
        answer = params.get("answer")
        if (
            not isinstance(answer, str)
            or len(answer) != 64
            or any(c not in "0123456789abcdef" for c in answer)
        ):
            raise BadJobSpec("params.answer must be the answer blob's digest (64 lowercase hex digits)")

    def output_layout(self, inputs: Sequence[Tensors], params: Mapping[str, Any]) -> Layout:
        if len(inputs) != 3:
            raise InputMismatch(f"llm_verify takes [checkpoint, prompt, answer], got {len(inputs)} inputs")
        request_of(_prompt(inputs), params, 0)
        return verdict_layout()

    def run(self, inputs: Sequence[Tensors], params: Mapping[str, Any], seed: int) -> Tensors:
        request = request_of(_prompt(inputs), params, seed)
        _, bounds = _check_llm_params(params)
        digest = bytes.fromhex(params["answer"])  # the input's digest (load_inputs re-hashed it)
        try:
            answer = parse_answer(inputs[2])
        except (InputMismatch, KeyError):
            accepted = False
        else:
            model = served_model(inputs[0], params, request.dtype)
            thresholds = ThresholdSet("job", {request.dtype: bounds})
            accepted = verify(model, request, answer, thresholds).accepted
        return {
            "verdict": torch.tensor([1 if accepted else 0], dtype=torch.uint8),
            "answer": torch.frombuffer(bytearray(digest), dtype=torch.uint8).clone(),
        }


# -- cheating hosts on the network --------------------------------------------------------------------------


class LLMCheatingExecutor(Executor):
    """A host executor whose ``llm_generate`` answers come from a cheating LLM host (the library's
    :data:`~deai.protocol.inference.llm.cheaters.LLM_CHEATERS`); every other job it runs honestly.
    Registered as ``llm_<name>`` executor behaviours (e.g. ``llm_quantized_int8``)."""

    llm_behaviour = "honest"
    _host: Any = None

    def produce(self, view: JobView) -> Tensors:
        spec = view.work or view.spec
        if spec.kind != "llm_generate":
            return super().produce(view)
        from deai.protocol.jobs.kinds.base import close_inputs, load_inputs

        inputs = load_inputs(self.store, spec)
        try:
            if self._host is None:  # one host per executor: a cheater's derived model is built once
                self._host = make_host(self.llm_behaviour, seed=int(self.address, 16) % 1000)
            return LLMGenerate().run(inputs, spec.params, spec.seed, host=self._host)
        finally:
            close_inputs(inputs)


for _name in cheater_names():
    CHEATERS.register(f"llm_{_name}")(type(f"LLM_{_name}", (LLMCheatingExecutor,), {"llm_behaviour": _name}))
