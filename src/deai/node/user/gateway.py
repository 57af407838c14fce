"""An OpenAI-compatible API in front of a deai network, paid by the user's own key.

``deai api --account KEY --hub URL`` runs :func:`make_gateway` on the user's machine: the
``openai`` Python client and curl work against it unchanged::

    client = openai.OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="unused")
    client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "Hi"}])

- ``GET /v1/models``: the network's registered language models (ids are ledger model ids);
- ``POST /v1/chat/completions`` (the model's chat template) and ``POST /v1/completions`` (a
  string, or token ids), with ``max_tokens`` (or ``max_completion_tokens``), ``temperature``,
  ``top_p``, ``seed``, ``stop`` and ``stream`` (server-sent events).

Each request becomes one signed, paid, verified job (:func:`deai.node.user.llm.request_generation`):
the key signs, the ledger escrows the per-token fee, a primary host answers with its proof, drawn
verifiers check it with probability ``p``. Every response says how it was verified: a ``deai``
object in the body (job id, hosts, verifiers and their verdicts, fee) and the
``X-Deai-Verification`` header; streams carry the same in their last chunk. Streaming sends the
**verified** answer in pieces: tokens are not released before the network accepted them.

Without ``seed`` the gateway draws one (returned in ``deai.seed``): every sampled token stays
replayable by a verifier. Errors are OpenAI-style ``{"error": {"message", "type", "param",
"code"}}``; bodies are bounded before they are parsed. One request is in flight at a time per
key (its transactions use consecutive nonces).
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import Request  # at module level: FastAPI resolves the handlers' annotations here

from deai.core.accounts import Account
from deai.core.errors import DeaiError
from deai.net.transport import RemoteError
from deai.node.participant.served import remote_model
from deai.node.user.infer import InferenceFailed
from deai.node.user.llm import Generated, request_generation
from deai.protocol.inference.llm.jobs import LLM_MODELS, MAX_LLM_NEW_TOKENS
from deai.protocol.inference.llm.request import GenerationRequest, Sampling
from deai.protocol.inference.llm.verify import ThresholdSet
from deai.protocol.inference.service import ServedModel

__all__ = ["ApiError", "Gateway", "GatewayConfig", "make_gateway", "tokenizer_for"]

MAX_BODY = 1 << 20
MAX_MESSAGES = 256
MAX_TEXT = 64 * 1024
DEFAULT_MAX_TOKENS = 64


@dataclass
class GatewayConfig:
    """What each request pays and how it is verified: ``thresholds`` per model id (``"*"``: any),
    ``price_per_token`` (fee per token per accepted host), ``verifiers`` drawn when a request is
    checked, ``p`` the probability it is, ``dtype`` the precision hosts must compute in."""

    thresholds: dict[str, ThresholdSet]
    price_per_token: int = 1
    verifiers: int = 2
    p: float = 0.1
    dtype: str = "float32"
    timeout_s: float = 300.0


class ApiError(Exception):
    """A refused request: the HTTP status, the message and the OpenAI error type and param."""

    def __init__(
        self, status: int, message: str, type_: str = "invalid_request_error", param: str | None = None
    ):
        super().__init__(message)
        self.status, self.message, self.type, self.param = status, message, type_, param


class _Bytes:
    """deai's byte tokenizer (:class:`deai.learn.text.ByteTokenizer`) with the calls the gateway makes
    of a Hugging Face tokenizer; no chat template, no end-of-sequence id."""

    eos_token_id = None
    unk_token_id = None

    def __init__(self) -> None:
        from deai.learn.text import ByteTokenizer

        self.tok = ByteTokenizer()

    def __call__(self, text: str) -> dict[str, list[int]]:
        return {"input_ids": self.tok.encode(text)}

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return self.tok.decode(ids)

    def convert_tokens_to_ids(self, token: str) -> None:
        return None


def tokenizer_for(served: ServedModel) -> Any:
    """The tokenizer of a served language model: a LoRA model's base tokenizer (local, by name);
    deai's byte tokenizer for a ``gpt`` over 256 ids (a text task with ``tokenizer: bytes``); None
    for other models (then prompts are token ids)."""
    if served.params.get("model") == "lora":
        from deai.learn.pretrained import load_tokenizer

        return load_tokenizer(str(served.params.get("model_kwargs", {}).get("base")))
    if served.params.get("model") == "gpt" and served.params.get("num_classes") == 256:
        return _Bytes()
    return None


def _stop_ids(tok: Any) -> tuple[int, ...]:
    ids = {tok.eos_token_id} if tok is not None and tok.eos_token_id is not None else set()
    for special in ("<|im_end|>", "<|endoftext|>", "</s>"):
        i = tok.convert_tokens_to_ids(special) if tok is not None else None
        if isinstance(i, int) and i != getattr(tok, "unk_token_id", None):
            ids.add(i)
    return tuple(sorted(ids))[:16]


def _number(body: dict, key: str, default: float, lo: float, hi: float) -> float:
    v = body.get(key, default)
    if v is None:
        v = default
    if not isinstance(v, int | float) or isinstance(v, bool) or not lo <= v <= hi:
        raise ApiError(400, f"{key} must be a number in [{lo}, {hi}]", param=key)
    return float(v)


def _int(body: dict, key: str, default: int | None, lo: int, hi: int) -> int | None:
    v = body.get(key, default)
    if v is None:
        return default
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ApiError(400, f"{key} must be an integer in [{lo}, {hi}]", param=key)
    return v


class Gateway:
    """The request logic behind the HTTP routes (also used by ``deai infer --prompt``):
    :meth:`generate` turns an OpenAI-style body into a paid, verified generation."""

    def __init__(
        self, client: Any, account: Account, config: GatewayConfig, pump: Callable[[], Any] | None
    ) -> None:
        self.client, self.account, self.config, self.pump = client, account, config, pump
        self.lock = threading.Lock()
        self.models: dict[str, tuple[ServedModel, Any]] = {}

    def model(self, model_id: Any) -> tuple[ServedModel, Any]:
        if not isinstance(model_id, str) or len(model_id) > 80:
            raise ApiError(400, "model must be a model id (see GET /v1/models)", param="model")
        if model_id not in self.models:
            try:
                served = remote_model(self.client, model_id)
            except (DeaiError, RemoteError) as exc:
                raise ApiError(
                    404, f"model {model_id!r} not found: {exc}", "not_found_error", "model"
                ) from None
            if served.params.get("model") not in LLM_MODELS:
                raise ApiError(400, f"model {model_id} is not a language model", param="model")
            self.models[model_id] = (served, tokenizer_for(served))
        return self.models[model_id]

    def list_models(self) -> list[dict[str, Any]]:
        listed = self.client.call("infer.models", account=self.account)["models"]
        out = []
        for mid, m in sorted(listed.items()):
            if (
                isinstance(m, dict)
                and isinstance(m.get("params"), dict)
                and m["params"].get("model") in LLM_MODELS
            ):
                out.append({"id": mid, "object": "model", "created": 0, "owned_by": "deai"})
        return out

    def thresholds(self, model_id: str) -> Any:
        th = self.config.thresholds.get(model_id) or self.config.thresholds.get("*")
        if th is None:
            raise ApiError(
                400, f"no calibrated thresholds for model {model_id} (deai api --thresholds)", param="model"
            )
        try:
            return th.for_dtype(self.config.dtype)
        except DeaiError as exc:
            raise ApiError(400, str(exc), param="model") from None

    def prompt(self, body: dict, tok: Any, chat: bool) -> tuple[int, ...]:
        if chat:
            msgs = body.get("messages")
            if not isinstance(msgs, list) or not 1 <= len(msgs) <= MAX_MESSAGES:
                raise ApiError(
                    400, f"messages must be a list of 1 to {MAX_MESSAGES} messages", param="messages"
                )
            clean = []
            for m in msgs:
                if (
                    not isinstance(m, dict)
                    or not isinstance(m.get("content"), str)
                    or len(m["content"]) > MAX_TEXT
                ):
                    raise ApiError(400, "each message needs a string content (bounded)", param="messages")
                role = m.get("role")
                if role not in ("system", "user", "assistant"):
                    raise ApiError(400, f"unknown message role {str(role)[:20]!r}", param="messages")
                clean.append({"role": role, "content": m["content"]})
            if getattr(tok, "chat_template", None) is None:
                raise ApiError(400, "this model has no chat template; use /v1/completions")
            from deai.protocol.inference.llm.request import chat_prompt

            return chat_prompt(tok, clean)
        p = body.get("prompt")
        if isinstance(p, list) and p and all(isinstance(i, int) and not isinstance(i, bool) for i in p):
            if len(p) > 4096:
                raise ApiError(400, "prompt has more than 4096 tokens", param="prompt")
            return tuple(p)
        if not isinstance(p, str) or not p or len(p) > MAX_TEXT:
            raise ApiError(400, "prompt must be a non-empty string or a list of token ids", param="prompt")
        if tok is None:
            raise ApiError(
                400, "this model has no known tokenizer; send the prompt as token ids", param="prompt"
            )
        return tuple(int(i) for i in tok(p)["input_ids"])

    def generate(self, body: dict, chat: bool) -> tuple[Generated, dict[str, Any]]:
        served, tok = self.model(body.get("model"))
        if _int(body, "n", 1, 1, 1) != 1:
            raise ApiError(400, "n must be 1", param="n")
        max_tokens = _int(body, "max_completion_tokens", None, 1, MAX_LLM_NEW_TOKENS)
        max_tokens = max_tokens or _int(body, "max_tokens", DEFAULT_MAX_TOKENS, 1, MAX_LLM_NEW_TOKENS)
        temperature = _number(body, "temperature", 1.0, 0.0, 2.0)
        temperature = 0.0 if temperature < 1e-3 else temperature
        top_p = _number(body, "top_p", 1.0, 1e-6, 1.0)
        seed = _int(body, "seed", None, 0, 2**53 - 1)  # a job seed (JSON-safe integer)
        seed = secrets.randbelow(2**53) if seed is None else seed
        prompt = self.prompt(body, tok, chat)
        sampling = Sampling(temperature, top_p)
        n_new = int(max_tokens or DEFAULT_MAX_TOKENS)
        request = GenerationRequest(prompt, n_new, seed, sampling, self.config.dtype, _stop_ids(tok))
        th = self.thresholds(served.model_id)
        with self.lock:  # one request in flight per key: consecutive nonces
            try:
                got = request_generation(
                    self.client, self.account, served.model_id, request, th,
                    price_per_token=self.config.price_per_token, verifiers=self.config.verifiers,
                    p=self.config.p, pump=self.pump, timeout=self.config.timeout_s, served=served,
                )  # fmt: skip
            except RemoteError as exc:
                status = 402 if "Insufficient" in str(exc) else 400
                raise ApiError(status, f"the network refused the request: {exc}", "deai_error") from None
            except (InferenceFailed, DeaiError) as exc:
                raise ApiError(502, f"no verified answer: {exc}", "deai_error") from None
        stops = set(request.stop)
        finished = "stop" if got.tokens and got.tokens[-1] in stops else "length"
        content_ids = [t for t in got.tokens if t not in stops]
        text = tok.decode(content_ids, skip_special_tokens=True) if tok is not None else ""
        info = {
            "text": text,
            "token_ids": list(got.tokens),
            "finish_reason": finished,
            "usage": {
                "prompt_tokens": len(prompt),
                "completion_tokens": len(got.tokens),
                "total_tokens": len(prompt) + len(got.tokens),
            },
            "deai": {
                "verification": got.verification,
                "verified": got.replicated,
                "job": got.job,
                "request": got.request,
                "primary": got.primary,
                "verifiers": list(got.verifiers),
                "accepted_by": list(got.accepted_by),
                "faulted": list(got.faulted),
                "fee_per_host": got.fee,
                "seed": seed,
            },
        }
        return got, info


def _error(exc: ApiError) -> Any:
    from fastapi.responses import JSONResponse

    body = {"error": {"message": exc.message, "type": exc.type, "param": exc.param, "code": None}}
    return JSONResponse(body, status_code=exc.status)


def make_gateway(
    client: Any, account: Account, config: GatewayConfig, *, pump: Callable[[], Any] | None = None
) -> Any:
    """The FastAPI app of the gateway (module docstring). ``client``: a
    :class:`~deai.node.participant.client.HubClient`; ``account`` signs and pays."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse, StreamingResponse

    gw = Gateway(client, account, config, pump)
    app = FastAPI(title="deai OpenAI-compatible gateway")

    async def body_of(request: Request) -> dict:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
            raise ApiError(413, f"request body over {MAX_BODY} bytes")
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY:
                raise ApiError(413, f"request body over {MAX_BODY} bytes")
        from deai.core.encoding import parse_json

        try:
            body = parse_json(raw, max_bytes=MAX_BODY)
        except (DeaiError, ValueError) as exc:
            raise ApiError(400, f"the body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object")
        return body

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Any:
        return _error(exc)

    @app.get("/v1/models")
    def models() -> dict:
        return {"object": "list", "data": gw.list_models()}

    def respond(body: dict, chat: bool) -> Any:
        got, info = gw.generate(body, chat)
        rid = ("chatcmpl-" if chat else "cmpl-") + got.job.removeprefix("0x")[:24]
        created, model = int(time.time()), got.model
        header = {"X-Deai-Verification": info["deai"]["verification"]}
        if body.get("stream") is True:
            return StreamingResponse(
                _stream(rid, created, model, info, chat), media_type="text/event-stream", headers=header
            )
        if chat:
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": info["text"]},
                "finish_reason": info["finish_reason"],
                "logprobs": None,
            }
        else:
            choice = {
                "index": 0,
                "text": info["text"],
                "finish_reason": info["finish_reason"],
                "logprobs": None,
            }
        out = {
            "id": rid,
            "object": "chat.completion" if chat else "text_completion",
            "created": created,
            "model": model,
            "choices": [choice],
            "usage": info["usage"],
            "deai": {**info["deai"], "token_ids": info["token_ids"]},
        }
        return JSONResponse(out, headers=header)

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        body = await body_of(request)
        import anyio

        return await anyio.to_thread.run_sync(respond, body, True)

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        body = await body_of(request)
        import anyio

        return await anyio.to_thread.run_sync(respond, body, False)

    return app


def _stream(rid: str, created: int, model: str, info: dict, chat: bool) -> Iterator[bytes]:
    """The verified answer as server-sent events: a role chunk (chat), text pieces, the finish
    chunk with usage and the ``deai`` verification, then ``[DONE]``."""
    kind = "chat.completion.chunk" if chat else "text_completion"

    def event(choice: dict, **extra: Any) -> bytes:
        data = {"id": rid, "object": kind, "created": created, "model": model, "choices": [choice], **extra}
        return f"data: {json.dumps(data)}\n\n".encode()

    if chat:
        yield event({"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None})
    text = info["text"]
    for i in range(0, len(text), 16):  # the accepted text, in pieces
        piece = text[i : i + 16]
        yield event(
            {"index": 0, "delta": {"content": piece}, "finish_reason": None}
            if chat
            else {"index": 0, "text": piece, "finish_reason": None}
        )
    last: dict[str, Any] = {"index": 0, "finish_reason": info["finish_reason"]}
    if chat:
        last["delta"] = {}
    else:
        last["text"] = ""
    yield event(last, usage=info["usage"], deai=info["deai"])
    yield b"data: [DONE]\n\n"


def serve_gateway(app: Any, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve ``app`` with uvicorn until interrupted (``deai api``)."""
    import uvicorn

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    uvicorn.run(app, host=host, port=port, log_level="warning")
