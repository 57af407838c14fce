"""The user's side of verified text generation: sign, pay, wait, and recheck on the ledger.

:func:`request_generation` serves one :class:`~deai.protocol.inference.llm.request.GenerationRequest`
on a network: it uploads the prompt (``{"prompt": int64 [P]}``), signs the paid job's transactions
(:func:`deai.node.user.infer.sign_attempts`: ``1 + verifiers`` hosts, hidden sampling rate ``p``,
replicated escalations), sends ``llm.request`` (:mod:`deai.node.hub.llm`), polls ``infer.result``
and checks the answer with :func:`verify_generation`: the ledger must show the job accepted with the
user as creator, the request's model, its primary host among the accepted, and the output the digest
that host revealed; the blob must hash to it and parse as a bounded answer. The result says how it
was verified: by ``k`` drawn verifiers (replicated) or by the primary's stake alone (sampled out).

The fee is per token: ``price_per_token`` x (prompt + ``max_new_tokens``) per accepted host.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from deai.core.accounts import Account
from deai.core.encoding import sha256_hex
from deai.core.tensorio import to_safetensors
from deai.node.participant.served import remote_model
from deai.node.user.infer import InferenceFailed, poll_result, sign_attempts
from deai.protocol.inference.llm.errors import BadRequest
from deai.protocol.inference.llm.jobs import generation_of, llm_params
from deai.protocol.inference.llm.request import GenerationRequest
from deai.protocol.inference.llm.verify import Thresholds
from deai.protocol.inference.service import ServedModel
from deai.protocol.jobs.spec import JobSpec

__all__ = ["Generated", "request_generation", "submit_generation", "verify_generation"]


@dataclass(frozen=True)
class Generated:
    """A verified answer: its ``tokens``, the ledger job and hosts, and how it was verified
    (``replicated``: ``verifiers`` re-checked it, ``accepted_by`` of them agreeing; otherwise only
    the primary's stake stood behind it), the ``fee`` per accepted host and the latency."""

    tokens: tuple[int, ...]
    request: str
    job: str
    model: str
    primary: str
    hosts: tuple[str, ...]
    replicated: bool
    verifiers: tuple[str, ...]
    accepted_by: tuple[str, ...]
    faulted: tuple[str, ...]
    fee: int
    latency_s: float

    @property
    def verification(self) -> str:
        """In words, for a response header or a report line."""
        if self.replicated:
            return (
                f"verified by {len(self.accepted_by)} of {len(self.verifiers)} drawn verifiers"
                f" (one prefill each, calibrated thresholds); job {self.job}"
            )
        return f"sampled out of verification (the host's stake backs it); job {self.job}"


def submit_generation(
    client: Any,
    user: Account,
    model_id: str,
    request: GenerationRequest,
    thresholds: Thresholds,
    *,
    price_per_token: int = 1,
    verifiers: int = 2,
    p: float = 0.1,
    escalations: int = 1,
    nonce: int | None = None,
    served: ServedModel | None = None,
    windows_ms: tuple[int, int] = (60_000, 30_000),
) -> dict[str, Any]:
    """Upload the prompt and send ``llm.request``; returns the hub's first status plus what
    :func:`verify_generation` needs. Refusals raise :class:`~deai.net.transport.RemoteError`."""
    if not 0 <= request.seed < 2**53:
        raise BadRequest("a network request's seed is a job seed: an integer in [0, 2**53)")
    served = served or remote_model(client, model_id)
    fee = price_per_token * (len(request.prompt) + request.max_new_tokens)
    r, max_hosts = 1 + verifiers, 1 + verifiers + 2 * escalations
    eligible = client.call("infer.hosts", {"fee": fee}, account=user)["eligible"]
    if eligible:
        r, max_hosts = min(r, eligible), min(max_hosts, eligible)
    prompt = client.put_blob(to_safetensors({"prompt": torch.tensor(request.prompt, dtype=torch.int64)}))
    prompt = prompt.removeprefix("0x")
    if nonce is None:  # distinct requests are distinct jobs even for the same prompt
        salt = int(sha256_hex(user.sign(bytes.fromhex(prompt)))[:5], 16) % (1 << 19)
        nonce = (salt << 12) + ((client.query("nonce", address=user.address) % 1024) << 2)
    params = llm_params(served.params, request, thresholds)
    spec = JobSpec("llm_generate", (served.checkpoint, prompt), params, seed=request.seed, nonce=nonce)
    signed = sign_attempts(
        client, user, spec, served.model_id, fee=fee, r=r, p=p, escalations=escalations,
        max_hosts=max_hosts, commit_ms=windows_ms[0], reveal_ms=windows_ms[1],
    )  # fmt: skip
    body = {
        "model": served.model_id,
        "prompt": prompt,
        "generation": params["generation"],
        "thresholds": params["thresholds"],
        "seed": request.seed,
        "nonce": nonce,
        "attempts": signed,
    }
    try:
        reply = client.call("llm.request", body, account=user)
    finally:
        client.nonces.pop(user.address, None)  # the hub, not this client, submitted them
    jobs = [
        JobSpec(spec.kind, spec.inputs, spec.params, spec.seed, nonce + i).job_id for i in range(len(signed))
    ]
    return {**reply, "served": served, "expected_jobs": jobs, "max_new_tokens": request.max_new_tokens}


def verify_generation(client: Any, user: Account, answer: dict[str, Any], started: float) -> Generated:
    """Recheck an accepted generation against the ledger and the public blobs (module doc)."""
    served: ServedModel = answer["served"]
    job_id = answer["job"]
    if job_id not in answer["expected_jobs"]:
        raise InferenceFailed(f"the answer names job {job_id}, not one this request signed")
    job = client.query("job", job_id=job_id)
    if job is None or job.status != "accepted" or job.primary is None:
        raise InferenceFailed(f"the ledger does not show job {job_id} accepted")
    if job.creator != user.address or job.model != served.model_id or job.job_type != "llm_generate":
        raise InferenceFailed(f"job {job_id} on the ledger is not this user's request for this model")
    primary = job.executors[job.primary]
    if primary not in job.accepted:
        raise InferenceFailed(f"the ledger did not accept the primary host of job {job_id}")
    revealed = client.query("revealed", job_id=job_id, executor=primary)
    output = "0x" + str(answer["output"]).removeprefix("0x")
    if revealed != output:
        raise InferenceFailed("the hub's answer is not the digest the primary host revealed")
    data = client.get_blob(output[2:])
    if sha256_hex(data) != output[2:]:
        raise InferenceFailed("the answer blob does not hash to the accepted digest")
    gen = generation_of(data)
    if len(gen.tokens) > answer["max_new_tokens"]:
        raise InferenceFailed("the answer is longer than the request allows")
    verifiers = tuple(e for e in job.executors if e != primary) if job.replicated else ()
    return Generated(
        tokens=gen.tokens,
        request=answer["request"],
        job=job_id,
        model=served.model_id,
        primary=primary,
        hosts=tuple(job.executors),
        replicated=bool(job.replicated),
        verifiers=verifiers,
        accepted_by=tuple(e for e in job.accepted if e in verifiers),
        faulted=tuple(job.faulted),
        fee=job.fee,
        latency_s=time.perf_counter() - started,
    )


def request_generation(
    client: Any,
    user: Account,
    model_id: str,
    request: GenerationRequest,
    thresholds: Thresholds,
    *,
    timeout: float = 300.0,
    poll: float = 0.05,
    pump: Callable[[], Any] | None = None,
    **kwargs: Any,
) -> Generated:
    """One verified, paid generation (module doc). Extra keyword arguments go to
    :func:`submit_generation` (``price_per_token``, ``verifiers``, ``p``, ``escalations``,
    ``windows_ms``). Raises :class:`~deai.node.user.infer.InferenceFailed` without a verified answer."""
    started = time.perf_counter()
    first = submit_generation(client, user, model_id, request, thresholds, **kwargs)
    status = poll_result(client, user, first, timeout=timeout, poll=poll, pump=pump)
    return verify_generation(client, user, {**first, **status}, started)
