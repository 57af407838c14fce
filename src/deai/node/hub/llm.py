"""Verified text generation on a network: the hub's part (routes of the inference plugin).

A paid generation is a ledger job of kind ``llm_generate`` (:mod:`deai.protocol.inference.llm.jobs`)
whose drawn hosts are one **primary** and ``k`` **verifiers**; the user is the job's creator and
pays, with pre-signed transactions exactly as for ``infer`` (:mod:`deai.node.hub.inference`):

1. ``llm.request`` carries the served model id, the prompt blob's digest, the generation settings,
   the thresholds, the seed and nonce, and the user's signed ``register_job`` /
   ``reveal_replication`` pairs (attempt 0, then replicated escalations). The hub rebuilds the job
   spec from them, checks the transactions (kind, model, resolver, fee = ``price_per_token`` x
   (prompt + max new tokens) at least, consecutive nonces) and submits the first.
2. ``job.assignments`` tells the primary to ``publish``; it generates, uploads its answer, commits,
   and sends ``llm.answer`` (signed by itself: the hub checks it is the job's primary and that the
   blob is here). The verifiers (``verifier``) wait for that digest (``answer`` in their
   assignment), run one prefill over it and commit their verdict; when the job is not replicated
   they are inactive and commit a decoy after the answer appears, so the primary cannot tell
   whether it is checked.
3. After the reveals the hub resolves from the revealed blobs alone (:meth:`LLMRun._decide`): the
   primary's answer is accepted when its upload is well formed and a strict majority of the valid
   verdicts (those naming that answer's digest) accept it; ``accept_result`` names the primary and
   the verifiers who agreed (the ledger slashes the other committed executors). When a majority
   rejects, the rejecting verifiers are accepted -- the primary is slashed -- and the next
   pre-signed attempt runs; a tie escalates too.
4. ``infer.result`` answers the status with ``verification``: replicated or not, the verifiers,
   who accepted and who rejected. The user's client rechecks it on the ledger
   (:func:`deai.node.user.llm.verify_generation`).

Fees go to the accepted executors less the model's royalty share (its contributors by provenance).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Self

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.core.envelope import Envelope
from deai.core.errors import DeaiError
from deai.core.tensorio import from_safetensors
from deai.ledger.base import Ledger
from deai.ledger.errors import LedgerError
from deai.ledger.rules.jobs import required_executors
from deai.ledger.txs import AcceptResult, RegisterJob
from deai.net.endpoint import ServiceError
from deai.node.hub.inference import MAX_ATTEMPTS, InferenceRun, InferenceService, parse_attempts, tx_of
from deai.node.participant.served import UnknownServedModel, resolve_model
from deai.protocol.inference.llm.errors import LLMError
from deai.protocol.inference.llm.jobs import (
    LLM_MODELS,
    answer_layout,
    llm_params,
    parse_answer,
    request_of,
    verdict_layout,
)
from deai.protocol.inference.llm.request import GenerationRequest, Sampling
from deai.protocol.inference.llm.verify import Thresholds
from deai.protocol.jobs.commit_reveal import check_upload
from deai.protocol.jobs.errors import JobError
from deai.protocol.jobs.spec import JobSpec

__all__ = ["LLMRun", "LLMService", "generation_request", "handle_answer", "handle_request", "plugin"]


@dataclass
class LLMRun(InferenceRun):
    """An :class:`InferenceRun` of kind ``llm_generate``: one primary, verifiers, and the primary's
    published answer per attempt (``answers``: job id -> digest)."""

    answers: dict[str, str] = field(default_factory=dict)
    verdicts: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "answers": self.answers, "verdicts": self.verdicts}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        run = super().from_json(data)
        run.answers = dict(data.get("answers", {}))
        run.verdicts = dict(data.get("verdicts", {}))
        return run

    def primary(self, job_id: str) -> int:
        """Index of the primary among the drawn hosts (from the user's signed reveal)."""
        return self._reveal_tx(self._index(job_id)).primary

    def _answer(self, store: BlobStore, digest: str | None) -> bool:
        """The primary's revealed upload is a well-formed answer (tokens and proof are the verifiers')."""
        if digest is None:
            return False
        try:
            parse_answer(check_upload(store, digest, answer_layout(self.spec.params)))
        except (DeaiError, KeyError):
            return False
        return True

    def _verdict(self, store: BlobStore, digest: str | None, answer: str | None) -> bool | None:
        """A verifier's verdict on ``answer`` (None: missing, malformed, or about another answer)."""
        if digest is None or answer is None:
            return None
        try:
            out = check_upload(store, digest, verdict_layout())
        except DeaiError:
            return None
        if bytes(out["answer"].numpy().tobytes()).hex() != answer.removeprefix("0x"):
            return None
        return int(out["verdict"][0]) == 1

    def _decide(self, ledger: Ledger, store: BlobStore, creator: Account) -> bool:
        att = self.attempts[-1]
        job = ledger.job(att.job)
        if job is None or job.replicated is None or job.primary is None:
            return False
        primary = job.executors[job.primary]
        if job.status != "open":  # resolved before a restart, or by anyone after the grace
            return self._settled(ledger, att.job, list(job.accepted), list(job.faulted), primary)
        answer = ledger.revealed(att.job, primary)
        verifiers = [e for e in required_executors(job) if e != primary]
        votes = {e: self._verdict(store, ledger.revealed(att.job, e), answer) for e in verifiers}
        yes = [e for e, v in votes.items() if v is True]
        no = [e for e, v in votes.items() if v is False]
        self.verdicts[att.job] = {"accepted": yes, "rejected": no}
        good = self._answer(store, answer)
        if good and (not verifiers or len(yes) > len(no)):
            names = [primary, *yes]
        elif len(no) > len(yes) or (no and not good):
            names = no
        else:  # nobody to accept (no valid answer, no verdict) or a tie: the next attempt decides
            if att.job not in self.stale:
                self.stale.append(att.job)
            return self._escalate()
        resolved = ledger.send(creator, AcceptResult(job=att.job, accepted=tuple(names)))
        data = resolved.event("job_resolved").data
        return self._settled(ledger, att.job, list(data["accepted"]), list(data["faulted"]), primary)

    def _settled(self, ledger: Ledger, job_id: str, names: list[str], bad: list[str], primary: str) -> bool:
        self.accepted += [a for a in names if a not in self.accepted]
        self.faulted += [f for f in bad if f not in self.faulted]
        self.paid += len(names)
        if primary in names:
            digest = ledger.revealed(job_id, primary)
            self.output = None if digest is None else digest.removeprefix("0x")
            self.output_job = job_id
            self.status = "accepted"
            return True
        return self._escalate()

    def status_fields(self) -> dict[str, Any]:
        job = self.output_job or (self.attempts[-1].job if self.attempts else None)
        verdicts = self.verdicts.get(job or "", {"accepted": [], "rejected": []})
        return {"answers": dict(self.answers), "verification": {"job": job, **verdicts}}

    def assignment_fields(self, job_id: str, index: int) -> dict[str, Any]:
        """What a drawn host at ``index`` must know beyond an ``infer`` assignment."""
        primary = self.primary(job_id)
        return {"publish": index == primary, "verifier": index != primary, "answer": self.answers.get(job_id)}


# -- the routes ---------------------------------------------------------------------------------------------


def _int(body: dict, key: str, lo: int, hi: int) -> int:
    v = body.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ServiceError(f"{key} must be an integer in [{lo}, {hi}]")
    return v


def _num(body: dict, key: str) -> float:
    v = body.get(key)
    if not isinstance(v, int | float) or isinstance(v, bool):
        raise ServiceError(f"{key} must be a number")
    return float(v)


def generation_request(body: dict, prompt: tuple[int, ...]) -> tuple[GenerationRequest, Thresholds]:
    """The request and thresholds an ``llm.request`` body describes (bounded here; the model's
    vocabulary and positions are checked by the job's kind)."""
    gen, th = body.get("generation"), body.get("thresholds")
    if not isinstance(gen, dict) or not isinstance(th, dict) or len(gen) > 8 or len(th) > 8:
        raise ServiceError("generation and thresholds must be objects")
    stop = gen.get("stop", [])
    if not isinstance(stop, list) or len(stop) > 16 or not all(isinstance(i, int) for i in stop):
        raise ServiceError("generation.stop must be a list of at most 16 token ids")
    try:
        request = GenerationRequest(
            prompt,
            _int(gen, "max_new_tokens", 1, 1024),
            _int(body, "seed", 0, 2**53 - 1),
            Sampling(_num(gen, "temperature"), _num(gen, "top_p"), _int(gen, "top_k", 0, 1 << 20)),
            str(gen.get("dtype", "float32")),
            tuple(stop),
        )
        request.check(1 << 20)
        bounds = Thresholds(**{k: _num(th, k) for k in Thresholds.__dataclass_fields__})
    except (LLMError, TypeError) as exc:
        raise ServiceError(f"bad generation request: {exc}") from None
    return request, bounds


def handle_request(service: InferenceService, env: Envelope, body: dict, price: int = 1) -> dict:
    """``llm.request``: check everything, then submit the user's first registration."""
    try:
        served = resolve_model(service.ledger, service.store, body["model"])
    except UnknownServedModel as exc:
        raise ServiceError(str(exc), 404) from None
    if served.params.get("model") not in LLM_MODELS:
        raise ServiceError(f"model {served.model_id} is not a language model ({', '.join(LLM_MODELS)})")
    digest = body.get("prompt")
    if not isinstance(digest, str) or len(digest.removeprefix("0x")) != 64:
        raise ServiceError("prompt must be the digest of the uploaded prompt blob")
    digest = digest.removeprefix("0x").lower()
    try:
        prompt_t = from_safetensors(service.store.get(digest), max_bytes=1 << 20)["prompt"]
        request, bounds = generation_request(body, tuple(int(i) for i in prompt_t.tolist()))
        params = llm_params(served.params, request, bounds)
        request_of(prompt_t, params, request.seed)
    except (DeaiError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ServiceError):
            raise
        raise ServiceError(f"bad prompt blob: {exc}") from None
    nonce = _int(body, "nonce", 0, 2**31 - 1 - MAX_ATTEMPTS)
    spec = JobSpec("llm_generate", (served.checkpoint, digest), params, seed=request.seed, nonce=nonce)
    if spec.job_id in service.runs:
        return service.status(spec.job_id)
    signed = parse_attempts(service, env, body, spec, served.model_id)
    first = tx_of(signed[0]["register"], RegisterJob)
    tokens = len(request.prompt) + request.max_new_tokens
    if first.fee < price * tokens:
        raise ServiceError(f"the fee must be at least {price} per token x {tokens} tokens = {price * tokens}")
    if first.executors < 1:
        raise ServiceError("at least one host")
    run = LLMRun(
        spec, "llm", r=first.executors, p=1.0, fee=first.fee, role=first.role, model=served.model_id,
        max_attempts=len(signed), signed=signed,
    )  # fmt: skip
    run._new_attempt(spec.nonce, first.executors, 1.0)
    try:
        run.step(service.ledger, service.store, service.account, service.hub.clock())
    except (LedgerError, JobError) as exc:
        raise ServiceError(f"the ledger refused the request: {type(exc).__name__}: {exc}") from None
    service.add_run(spec.job_id, run)
    return service.status(spec.job_id)


def handle_answer(service: InferenceService, env: Envelope, body: dict) -> dict:
    """``llm.answer``: the primary of an open ``llm_generate`` job names its uploaded answer."""
    job_id, answer = body.get("job"), body.get("answer")
    if not isinstance(job_id, str) or not isinstance(answer, str) or len(answer.removeprefix("0x")) != 64:
        raise ServiceError("job and answer (a blob digest) are required")
    job_id, answer = job_id.lower(), answer.removeprefix("0x").lower()
    run = next(
        (service.runs[r] for r in service.live if job_id in [a.job for a in service.runs[r].attempts]), None
    )
    if not isinstance(run, LLMRun):
        raise ServiceError(f"no open generation job {job_id[:80]!r}", 404)
    job = service.ledger.job(job_id)
    if job is None or job.status != "open" or job.executors[run.primary(job_id)] != env.sender:
        raise ServiceError("only the job's primary host names its answer, while the job is open", 403)
    if job_id in run.answers:
        return {"job": job_id, "answer": run.answers[job_id]}
    try:
        parse_answer(check_upload(service.store, answer, answer_layout(run.spec.params)))
    except (DeaiError, KeyError) as exc:
        raise ServiceError(f"the answer blob is missing or malformed: {exc}") from None
    run.answers[job_id] = answer
    service.save(next(r for r, v in service.runs.items() if v is run))
    return {"job": job_id, "answer": answer}


class LLMService:
    """The hub plugin serving generations: ``llm.request`` and ``llm.answer``. Its runs live in the
    hub's :class:`InferenceService` (one engine: the same loop, assignments, persistence and
    ``infer.result``), which must be installed first (``DEFAULT_PLUGINS`` order)."""

    def __init__(self, hub: Any) -> None:
        services = [p for p in hub.plugins if isinstance(p, InferenceService)]
        if not services:
            raise RuntimeError("deai.node.hub.llm needs deai.node.hub.inference installed before it")
        self.service = services[0]
        self.price_per_token = 1  # the least fee per token (prompt + max new tokens) of a generation
        self.service.adopt("llm_generate", LLMRun)

    def routes(self) -> dict[str, Any]:
        return {
            "llm.request": lambda env, body: handle_request(self.service, env, body, self.price_per_token),
            "llm.answer": lambda env, body: handle_answer(self.service, env, body),
        }


def plugin(hub: Any) -> LLMService:
    """The factory :class:`~deai.node.hub.server.Hub` calls (``DEFAULT_PLUGINS``)."""
    return LLMService(hub)
