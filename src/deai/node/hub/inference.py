"""Verified inference on a network: the hub routes paid user requests to staked hosts.

Who pays and who can do what -- **the user is the job's creator**:

1. The user uploads its batch (``{"x": float32 [B, F]}``) and signs, with its own ledger nonces,
   one ``register_job`` per attempt (kind ``infer`` over ``[checkpoint, batch]``, role ``host``,
   ``model`` = the model id so royalties flow, ``resolver`` = the hub, ``quorum`` 0: a strict
   majority) followed by its ``reveal_replication`` (the hidden-sampling choice it drew). Attempt
   0 is the request; further attempts are pre-authorised escalations (replicated, more hosts),
   used only when the first has no majority.
2. ``infer.request`` hands those signed transactions to the hub. The hub refuses anything wrong
   *before* money moves (unknown model, wrong features, non-finite or oversized batch, transactions
   not matching the request) and then submits the user's ``register_job``: the ledger escrows the
   fee from the user (refused if unfunded) and draws the hosts.
3. The hub drives the job as a :class:`~deai.protocol.jobs.run.JobRun` (role ``host``): it tells
   the drawn hosts (``job.assignments``) whether they are active -- it learns the choice from the
   user's signed reveal -- submits that reveal when commits are in, checks the uploads, and as the
   resolver sends ``accept_result`` naming the majority. The ledger pays each accepted host its fee
   less the model's royalty share and slashes the others that committed (a drawn host that never
   committed -- not running yet, say -- is only reported ``missed``).
4. ``infer.result`` answers the status, the accepted output digest, labels and the job ids.

Why this is sound: the fee sits in the ledger's escrow, payable only to hosts the ledger drew, or
back to the user; the hub never holds it. A hub that stalls after registering makes the job
``abandoned`` (hosts that revealed paid, the rest refunded) or resolvable by anyone after the
grace period; a hub accepting a minority acts on public reveals and blobs, so the user's client
(:func:`~deai.node.user.infer.request_inference`) rechecks the answer against the ledger.
Limits: one request in flight per user account (its transactions use consecutive nonces).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.core.envelope import Envelope
from deai.core.errors import DeaiError
from deai.ledger.base import Ledger
from deai.ledger.commitments import replication_commitment
from deai.ledger.config import HOST
from deai.ledger.errors import LedgerError
from deai.ledger.tx import SignedTx, Tx
from deai.ledger.txs import RegisterJob, RevealReplication
from deai.net.endpoint import ServiceError
from deai.node.participant.served import UnknownServedModel, check_batch, resolve_model
from deai.protocol.jobs.run import Attempt, JobRun
from deai.protocol.jobs.sampling import ReplicationChoice
from deai.protocol.jobs.spec import JobSpec

__all__ = ["MAX_ATTEMPTS", "InferenceRun", "InferenceService", "parse_attempts", "plugin", "tx_of"]

log = logging.getLogger(__name__)
_TxT = TypeVar("_TxT", bound=Tx)
MAX_ATTEMPTS = 3


@dataclass
class InferenceRun(JobRun):
    """A :class:`JobRun` whose creator is the paying user: registrations and the replication reveal
    are the user's pre-signed transactions (``signed[i]`` = ``{"register", "reveal"}`` hex)."""

    signed: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "signed": self.signed}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        run = super().from_json(data)
        run.signed = list(data["signed"])
        return run

    def status_fields(self) -> dict[str, Any]:
        """What a subclass adds to the request's status (``infer.result``)."""
        return {}

    def _index(self, job_id: str) -> int:
        return next(i for i, a in enumerate(self.attempts) if a.job == job_id)

    def _reveal_tx(self, index: int) -> RevealReplication:
        return tx_of(self.signed[index]["reveal"], RevealReplication)

    def choice(self, creator: Account, attempt: Attempt) -> ReplicationChoice:
        tx = self._reveal_tx(self._index(attempt.job))
        return ReplicationChoice(attempt.job, tx.replicated, tx.primary, tx.salt)

    def _register(self, ledger: Ledger, store: BlobStore, creator: Account, att: Attempt) -> bool:
        store.put(self.spec_of(att).to_bytes())  # hosts fetch the spec by the job id
        ledger.submit(bytes.fromhex(self.signed[self._index(att.job)]["register"]))
        self.status = "running"
        return True

    def _reveal_choice(self, ledger: Ledger, creator: Account, att: Attempt) -> None:
        ledger.submit(bytes.fromhex(self.signed[self._index(att.job)]["reveal"]))

    def _escalate(self) -> bool:
        i = len(self.attempts)
        if i >= len(self.signed):
            self.status = "failed"
            return True
        register = tx_of(self.signed[i]["register"], RegisterJob)
        self._new_attempt(self.spec.nonce + i, register.executors, 1.0)
        return True


def tx_of(signed_hex: str, kind: type[_TxT]) -> _TxT:
    """The transaction inside a signed one this service stored (its kind checked on the request)."""
    tx = SignedTx.from_bytes(bytes.fromhex(signed_hex)).tx
    if not isinstance(tx, kind):
        raise ServiceError(f"a stored transaction is a {tx.kind}, not a {kind.__name__}")
    return tx


def _parse(raw: Any, kind: type, sender: str, what: str) -> SignedTx:
    if not isinstance(raw, str) or len(raw) > 16_384:
        raise ServiceError(f"{what} must be the hex of a signed transaction")
    try:
        stx = SignedTx.from_bytes(bytes.fromhex(raw))
    except (ValueError, DeaiError) as exc:
        raise ServiceError(f"{what}: {exc}") from None
    if not isinstance(stx.tx, kind):
        raise ServiceError(f"{what} must be a {kind.__name__}, got {stx.kind}")
    if stx.sender != sender:
        raise ServiceError(f"{what} is signed by {stx.sender}, the request by {sender}: the user pays")
    return stx


def parse_attempts(service: InferenceService, env: Envelope, body: dict, spec: JobSpec, model: str) -> list:
    """The request's signed ``{"register", "reveal"}`` pairs (hex), each checked against ``spec``
    (:meth:`InferenceService.check_attempt`); refused with a :class:`ServiceError` naming the fault."""
    attempts = body.get("attempts")
    if not isinstance(attempts, list) or not 1 <= len(attempts) <= MAX_ATTEMPTS:
        raise ServiceError(f"attempts must be a list of 1 to {MAX_ATTEMPTS} signed pairs")
    signed, last_nonce = [], None
    for i, pair in enumerate(attempts):
        if not isinstance(pair, dict):
            raise ServiceError(f"attempt {i} must be an object with register and reveal")
        reg = _parse(pair.get("register"), RegisterJob, env.sender, f"attempt {i} register")
        rev = _parse(pair.get("reveal"), RevealReplication, env.sender, f"attempt {i} reveal")
        service.check_attempt(i, spec, model, reg, rev, last_nonce)
        last_nonce = rev.nonce
        signed.append({"register": pair["register"], "reveal": pair["reveal"]})
    return signed


class InferenceService:
    """The hub plugin: ``infer.request``, ``infer.result``, ``infer.models``, ``infer.hosts``;
    drives the runs."""

    def __init__(self, hub: Any) -> None:
        self.hub, self.ledger, self.store = hub, hub.ledger, hub.store
        self.account: Account = hub.account
        self.run_types: dict[str, type[InferenceRun]] = {"infer": InferenceRun}
        self.runs: dict[str, InferenceRun] = {}
        self.live: set[str] = set()
        # Runs of kinds another plugin serves (``adopt``), kept as saved until it is installed.
        self.pending: dict[str, dict[str, Any]] = dict(hub.kv.items("infer:"))
        self.adopt("infer", InferenceRun)

    def adopt(self, kind: str, run_type: type[InferenceRun]) -> None:
        """Serve requests of job ``kind`` with runs of ``run_type`` (e.g. ``llm_generate``:
        :mod:`deai.node.hub.llm`), loading the saved ones."""
        self.run_types[kind] = run_type
        for key, value in list(self.pending.items()):
            if value["spec"]["kind"] == kind:
                rid = key[len("infer:") :]
                self.runs[rid] = run_type.from_json(self.pending.pop(key))
                # Requests still moving (open, or with a failed attempt to resolve): the loop and
                # the assignment queries look at these only, however many requests were served.
                if not self.runs[rid].done or self.runs[rid].stale:
                    self.live.add(rid)

    def routes(self) -> dict[str, Any]:
        return {
            "infer.request": self._request,
            "infer.result": self._result,
            "infer.models": self._models,
            "infer.hosts": self._hosts,
        }

    # -- handlers ----------------------------------------------------------------------------------------

    def _request(self, env: Envelope, body: dict) -> dict:
        try:
            served = resolve_model(self.ledger, self.store, body["model"])
        except UnknownServedModel as exc:
            raise ServiceError(str(exc), 404) from None
        batch, seed, nonce = body["batch"], body.get("seed", 0), body.get("nonce", 0)
        if not isinstance(batch, str) or len(batch.removeprefix("0x")) != 64:
            raise ServiceError("batch must be the digest of the uploaded batch blob")
        batch = batch.removeprefix("0x").lower()
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (seed, nonce)):
            raise ServiceError("seed and nonce must be integers")
        if not 0 <= nonce < 2**31 - MAX_ATTEMPTS:
            raise ServiceError(f"nonce must lie in [0, 2**31 - {MAX_ATTEMPTS})")
        check_batch(self.store.get(batch), served.params["in_features"], served.params["num_classes"])  # 404
        spec = JobSpec("infer", (served.checkpoint, batch), dict(served.params), seed=seed, nonce=nonce)
        if spec.job_id in self.runs:  # the same request again: its answer
            return self.status(spec.job_id)
        signed = parse_attempts(self, env, body, spec, served.model_id)
        first = tx_of(signed[0]["register"], RegisterJob)  # attempts holds 1 to MAX_ATTEMPTS pairs
        run = InferenceRun(
            spec,
            "infer",
            r=first.executors,
            p=1.0,
            fee=first.fee,
            role=HOST,
            model=served.model_id,
            max_attempts=len(signed),
            signed=signed,
        )
        run._new_attempt(spec.nonce, first.executors, 1.0)
        try:
            run.step(self.ledger, self.store, self.account, self.hub.clock())
        except LedgerError as exc:
            raise ServiceError(f"the ledger refused the request: {type(exc).__name__}: {exc}") from None
        self.add_run(spec.job_id, run)
        return self.status(spec.job_id)

    def add_run(self, rid: str, run: InferenceRun) -> None:
        self.runs[rid] = run
        self.live.add(rid)
        self.save(rid)

    def check_attempt(
        self, i: int, spec: JobSpec, model: str, reg: SignedTx, rev: SignedTx, last: int | None
    ) -> None:
        """Attempt ``i``'s pre-signed pair must register exactly ``spec`` (nonce + i) for ``model``
        with this hub as resolver, and open its commitment; escalations replicated; nonces in order."""
        r, v = reg.tx, rev.tx
        assert isinstance(r, RegisterJob) and isinstance(v, RevealReplication)  # _parse checked the kinds
        job = JobSpec(spec.kind, spec.inputs, spec.params, spec.seed, spec.nonce + i).job_id
        want = {
            "job": job,
            "job_type": spec.kind,
            "task": None,
            "inputs": (job,),
            "role": HOST,
            "model": model,
            "resolver": self.account.address,
            "quorum": 0,
        }
        got = {k: getattr(r, k) for k in want}
        bad = sorted(k for k in want if got[k] != want[k])
        if bad:
            raise ServiceError(f"attempt {i} register_job: wrong {', '.join(f'{k}={got[k]!r}' for k in bad)}")
        if v.job != job:
            raise ServiceError(f"attempt {i} reveal names job {v.job}, not {job}")
        try:
            ok = replication_commitment(job, v.replicated, v.primary, v.salt) == r.replication
        except (ValueError, DeaiError):
            ok = False
        if not ok or v.primary >= r.executors:
            raise ServiceError(f"attempt {i}: the reveal does not open the registered replication commitment")
        if i > 0 and not v.replicated:
            raise ServiceError(f"attempt {i} is an escalation and must be replicated")
        if (last is not None and reg.nonce != last + 1) or rev.nonce != reg.nonce + 1:
            raise ServiceError("the attempts' transactions must use consecutive nonces in order")

    def _result(self, env: Envelope, body: dict) -> dict:
        rid = body["request"]
        if not isinstance(rid, str) or rid.lower() not in self.runs:
            raise ServiceError(f"no inference request {str(rid)[:80]!r}", 404)
        return self.status(rid.lower())

    def _models(self, env: Envelope, body: dict) -> dict:
        served = {}
        for ev in self.ledger.events(0, 100_000):
            if ev.kind == "model_registered":
                try:
                    m = resolve_model(self.ledger, self.store, ev.data["model"])
                    served[m.model_id] = {"checkpoint": m.checkpoint, "params": dict(m.params)}
                except DeaiError:  # a model that cannot be served is left out; the list still answers
                    continue
        return {"models": served}

    def _hosts(self, env: Envelope, body: dict) -> dict:
        """How many hosts may be drawn for a job paying ``fee`` created by the sender (a slashed
        host may fall below the stake the fee requires)."""
        fee = body["fee"]
        if not isinstance(fee, int) or isinstance(fee, bool) or fee < 0:
            raise ServiceError("fee must be a non-negative integer")
        return {"eligible": len(self.ledger.eligible_executors(HOST, fee, exclude=env.sender))}

    def status(self, rid: str) -> dict:
        """Request ``rid``'s status as ``infer.result`` answers it."""
        run = self.runs[rid]
        return {
            **run.status_fields(),
            "request": rid,
            "status": run.status,
            "jobs": [a.job for a in run.attempts],
            "job": run.output_job or (run.attempts[-1].job if run.attempts else None),
            "output": run.output,
            "accepted": run.accepted,
            "faulted": run.faulted,
            "refusals": run.refusals,
        }

    # -- the loop ------------------------------------------------------------------------------------------

    def tick(self, now: int) -> bool:
        changed = False
        for rid in sorted(self.live):
            run = self.runs[rid]
            try:
                did = run.step(self.ledger, self.store, self.account, now) if not run.done else False
                did |= run.resolve_stale(self.ledger, self.account, now)
            except DeaiError as exc:  # e.g. a reveal refused after its deadline: the run fails
                log.warning("inference %s: %s: %s", rid, type(exc).__name__, exc)
                run.status, did = "failed", True
            if did:
                self.save(rid)
                changed = True
            if run.done and not run.stale:
                self.live.discard(rid)
        return changed

    def next_deadline(self) -> int | None:
        times = []
        for run in (self.runs[rid] for rid in self.live):
            for att in run.attempts:
                job = self.ledger.job(att.job)
                if job is None or job.status != "open":
                    continue
                times += [job.commit_deadline, job.reveal_deadline]
                if att.job in run.stale:
                    times.append(job.reveal_deadline + self.ledger.config.resolve_grace_ms)
        return min(times) if times else None

    def assignments(self, executor: str) -> list[dict[str, Any]]:
        out = []
        for run in (self.runs[rid] for rid in sorted(self.live)):
            for att in run.attempts:
                job = self.ledger.job(att.job)
                if job is None or job.status != "open" or executor not in job.executors:
                    continue
                index = job.executors.index(executor)
                extra = run.assignment_fields(att.job, index) if hasattr(run, "assignment_fields") else {}
                out.append(
                    {
                        "job": att.job,
                        "task": None,
                        "executors": list(job.executors),
                        "active": index in run.active(self.account, att.job),
                        "commit_deadline": job.commit_deadline,
                        "reveal_deadline": job.reveal_deadline,
                        "commits": job.commits,
                        **extra,
                    }
                )
        return out

    def save(self, rid: str) -> None:
        self.hub.kv.put("infer:" + rid, self.runs[rid].to_json())


def plugin(hub: Any) -> InferenceService:
    """The factory :class:`~deai.node.hub.server.Hub` calls (``DEFAULT_PLUGINS``)."""
    return InferenceService(hub)
