"""The user's side of verified inference: sign, submit, wait, and recheck the answer.

:func:`request_inference` does it all for one batch: it finds the served model from the ledger
(through the hub, every blob re-hashed), uploads the batch, signs the paid job's transactions
(:func:`sign_attempts`: the user is the job's creator and pays; see :mod:`deai.node.hub.inference`),
sends ``infer.request``, polls ``infer.result`` and checks the answer with :func:`verify_answer`:
the ledger must show the job accepted with the user as creator, the request's model and hosts; the
output blob must hash to a digest an accepted host revealed, parse as ``float32 [B, C]`` logits and
be finite. Labels are the argmax of those logits, computed here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from deai.core.accounts import Account
from deai.core.encoding import sha256_hex
from deai.core.errors import DeaiError
from deai.core.tensorio import from_safetensors, to_safetensors
from deai.ledger.config import HOST
from deai.ledger.tx import SignedTx
from deai.ledger.txs import RegisterJob, RevealReplication
from deai.node.participant.served import remote_model
from deai.protocol.inference.service import ServedModel
from deai.protocol.jobs.run import replication_choice
from deai.protocol.jobs.spec import JobSpec

__all__ = [
    "InferenceFailed",
    "await_inference",
    "poll_result",
    "request_inference",
    "sign_attempts",
    "submit_inference",
    "verify_answer",
]


class InferenceFailed(DeaiError):
    """The request ran but produced no verified answer (no majority, timeout, or a bad answer)."""


def sign_attempts(
    client: Any,
    user: Account,
    spec: JobSpec,
    model_id: str,
    *,
    fee: int,
    r: int,
    p: float,
    escalations: int = 1,
    max_hosts: int | None = None,
    commit_ms: int = 10_000,
    reveal_ms: int = 10_000,
) -> list[dict[str, str]]:
    """The user's signed ``register_job`` + ``reveal_replication`` pairs: attempt 0 with ``r``
    hosts and hidden sampling rate ``p``, then ``escalations`` replicated attempts with 2 more hosts
    each (at most ``max_hosts``). The choices derive from the user's own signature of each job id."""
    hub = client.info()["coordinator"]
    nonce = client.query("nonce", address=user.address)
    out = []
    for i in range(1 + escalations):
        job = JobSpec(spec.kind, spec.inputs, spec.params, spec.seed, spec.nonce + i).job_id
        k = r if i == 0 else min(r + 2 * i, max_hosts or r + 2 * i)
        choice = replication_choice(user, job, p if i == 0 else 1.0, k)
        register = RegisterJob(
            job=job, task=None, job_type=spec.kind, inputs=(job,), fee=fee, executors=k,
            replication=choice.commitment, commit_window_ms=commit_ms, reveal_window_ms=reveal_ms,
            role=HOST, resolver=hub, quorum=0, model=model_id,
        )  # fmt: skip
        reveal = RevealReplication(
            job=job, replicated=choice.replicated, primary=choice.primary, salt=choice.salt
        )
        pair = [
            SignedTx.create(user, tx, nonce=nonce + 2 * i + j, network=client.network)
            for j, tx in enumerate((register, reveal))
        ]
        out.append({"register": pair[0].to_bytes().hex(), "reveal": pair[1].to_bytes().hex()})
    return out


def submit_inference(
    client: Any,
    user: Account,
    model_id: str,
    x: torch.Tensor,
    *,
    fee: int = 10,
    r: int = 3,
    p: float = 1.0,
    seed: int = 0,
    nonce: int | None = None,
    escalations: int = 1,
    max_hosts: int | None = None,
    served: ServedModel | None = None,
    windows_ms: tuple[int, int] = (10_000, 10_000),
) -> dict[str, Any]:
    """Upload the batch and send ``infer.request``; returns the hub's first status plus what
    :func:`verify_answer` needs (``served``, ``batch``, ``jobs``). Refusals raise
    :class:`~deai.net.transport.RemoteError` with the hub's reason."""
    served = served or remote_model(client, model_id)
    eligible = client.call("infer.hosts", {"fee": fee}, account=user)["eligible"]
    if eligible:  # ask for no more hosts than may be drawn (else the ledger refuses the job)
        r, max_hosts = min(r, eligible), min(max_hosts or eligible, eligible)
    x = torch.as_tensor(x)
    x = (x if x.dtype == torch.int64 else x.to(torch.float32)).contiguous()  # token ids stay int64
    batch = client.put_blob(to_safetensors({"x": x})).removeprefix("0x")
    if nonce is None:  # distinct requests for the same batch are distinct jobs (nonce < 2**31)
        salt = int(sha256_hex(user.sign(bytes.fromhex(batch)))[:5], 16) % (1 << 19)
        nonce = (salt << 12) + ((client.query("nonce", address=user.address) % 1024) << 2)
    spec = JobSpec("infer", (served.checkpoint, batch), dict(served.params), seed=seed, nonce=nonce)
    signed = sign_attempts(
        client, user, spec, served.model_id, fee=fee, r=r, p=p, escalations=escalations,
        max_hosts=max_hosts, commit_ms=windows_ms[0], reveal_ms=windows_ms[1],
    )  # fmt: skip
    body = {"model": served.model_id, "batch": batch, "seed": seed, "nonce": nonce, "attempts": signed}
    try:
        reply = client.call("infer.request", body, account=user)
    finally:
        client.nonces.pop(user.address, None)  # the hub, not this client, submitted them
    jobs = [JobSpec(spec.kind, spec.inputs, spec.params, seed, nonce + i).job_id for i in range(len(signed))]
    return {**reply, "served": served, "batch": batch, "rows": x.shape[0], "expected_jobs": jobs}


def await_inference(
    client: Any,
    user: Account,
    request: dict[str, Any],
    *,
    timeout: float = 60.0,
    poll: float = 0.02,
    pump: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """Poll ``infer.result`` until accepted or failed (:func:`poll_result`), then verify.
    Raises InferenceFailed."""
    status = poll_result(client, user, request, timeout=timeout, poll=poll, pump=pump)
    return verify_answer(client, user, {**request, **status})


def poll_result(
    client: Any,
    user: Account,
    request: dict[str, Any],
    *,
    timeout: float = 60.0,
    poll: float = 0.02,
    pump: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """Poll ``infer.result`` for ``request`` (an ``infer.request`` or ``llm.request`` reply) until
    accepted (the final status) or failed, or ``timeout`` s (:class:`InferenceFailed`).
    ``pump()`` between polls drives an in-memory network; by default sleep ``poll`` s."""
    end = time.monotonic() + timeout
    status = request
    while status["status"] not in ("accepted", "failed"):
        if time.monotonic() > end:
            raise InferenceFailed(f"request {request['request']} still {status['status']} after {timeout} s")
        if pump is not None:
            pump()
        else:
            time.sleep(poll)
        status = client.call("infer.result", {"request": request["request"]}, account=user)
    if status["status"] != "accepted":
        raise InferenceFailed(f"request {request['request']} failed: {status.get('refusals')}")
    return status


def verify_answer(client: Any, user: Account, answer: dict[str, Any]) -> dict[str, Any]:
    """Recheck an accepted answer against the ledger and the public output blob (module doc)."""
    served: ServedModel = answer["served"]
    job_id = answer["job"]
    if job_id not in answer["expected_jobs"]:
        raise InferenceFailed(f"the answer names job {job_id}, not one this request signed")
    job = client.query("job", job_id=job_id)
    if job is None or job.status != "accepted" or not job.accepted:
        raise InferenceFailed(f"the ledger does not show job {job_id} accepted")
    if job.creator != user.address or job.model != served.model_id or job.job_type != "infer":
        raise InferenceFailed(f"job {job_id} on the ledger is not this user's request for this model")
    if sorted(job.accepted) != sorted(answer["accepted"]):
        raise InferenceFailed("the hub's accepted hosts differ from the ledger's")
    output = "0x" + str(answer["output"]).removeprefix("0x")
    revealed = {client.query("revealed", job_id=job_id, executor=e) for e in job.accepted}
    if output not in revealed:
        raise InferenceFailed(f"output {output[:14]}... was not revealed by an accepted host")
    data = client.get_blob(output[2:])
    if sha256_hex(data) != output[2:]:
        raise InferenceFailed("the output blob does not hash to the accepted digest")
    layout = {"logits": ((answer["rows"], served.params["num_classes"]), torch.float32)}
    logits = from_safetensors(data, expected=layout, require_finite=True)["logits"]
    executors = list(job.executors)
    return {
        "request": answer["request"],
        "job": job_id,
        "jobs": answer["jobs"],
        "model": served.model_id,
        "labels": logits.argmax(dim=1),
        "logits": logits,
        "output": output,
        "hosts": executors,
        "accepted": list(job.accepted),
        "faulted": list(job.faulted),
        "replicated": bool(job.replicated),
        "fee": job.fee,
    }


def request_inference(
    client: Any,
    user: Account,
    model_id: str,
    x: torch.Tensor,
    *,
    fee: int = 10,
    r: int = 3,
    p: float = 1.0,
    timeout: float = 60.0,
    pump: Callable[[], Any] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """One verified, paid inference request for ``user`` (see the module docstring). Extra
    keyword arguments go to :func:`submit_inference` (``seed``, ``escalations``, ``max_hosts``,
    ``served``, ``windows_ms``). Returns ``labels`` and ``logits`` with the ledger's record."""
    start = time.perf_counter()
    request = submit_inference(client, user, model_id, x, fee=fee, r=r, p=p, **kwargs)
    answer = await_inference(client, user, request, timeout=timeout, pump=pump)
    answer["latency_s"] = time.perf_counter() - start
    return answer
