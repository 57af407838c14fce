"""Rules for verified jobs: registration and draw, commit-reveal, hidden sampling, resolution.

Life of a job (times are ledger-clock ms):

1. ``register_job``. Who may create one: for a task's job, only the task's coordinator, and the
   escrow ``fee * executors`` comes out of the task's budget (``InsufficientEscrow`` if it holds
   less); otherwise anyone with the escrow in its balance. The job's ``role`` is
   ``compute_provider`` or ``host`` (data providers never execute jobs); a host job serves a
   registered ``model``. ``fee >= min_job_fee``; each window lies in ``(0, max_job_window_ms]``;
   ``quorum`` is 0 or a strict majority of ``executors`` (or 1 on a refereed ``train_steps`` job
   with a resolver: :data:`REFEREED`); the ``resolver`` is None, the task's
   coordinator (task jobs), or one of the genesis ``resolvers`` (never the creator itself outside
   a task: with a Sybil among the drawn executors it could fault an honest one). The ledger
   draws the executors among the staked providers of ``role`` (stake at least the role minimum and
   ``fee * stake_fee_ratio``, the creator excluded), weighted by stake times reputation factor,
   seeded by the head hash and the job id (:mod:`deai.ledger.draw`). **Being drawn binds nobody**:
   no stake is locked and nobody can be slashed for a job it did not accept. Deadlines: commits
   before ``commit_deadline = now + commit_window_ms``, reveals before
   ``reveal_deadline = commit_deadline + reveal_window_ms``.
2. ``commit``: a drawn executor accepts the duty by committing
   ``result_commitment(job, itself, digest, salt)`` in time. Its role stake must still hold
   ``min_executor_stake``; from then on it is locked (cannot be unstaked) until the job resolves.
3. Reveals open once every drawn executor has committed or the commit deadline has passed (so no
   reveal can be copied into a later commit). ``reveal`` must match the commit.
   ``reveal_replication``: the creator opens its hidden-sampling choice -- ``replicated`` (every drawn
   executor had to run the job) or not (only the executor at index ``primary``).
4. Resolution. The *required* executors are all drawn ones if replicated, else the primary; the
   quorum is ``max(quorum, strict majority of the required)`` (1 when only the primary counts).
   ``resolve_job`` (anyone; once every required executor has revealed or the reveal deadline has
   passed) takes the digest revealed by at least the quorum (a unique one). ``accept_result``
   (only the job's ``resolver``, for outputs compared within a tolerance off the ledger) names the
   accepted executors instead; they must have revealed, and no other executor may have revealed
   the digest of an accepted one (an identical result is never a fault). Winners are paid ``fee``
   each (less the royalty share when the job serves a registered ``model``). Faults, each losing
   ``slash_bps`` of its role stake, are only executors that **committed**: one that revealed a
   losing digest (``wrong result``) or never revealed (``withheld reveal``); ``slash_reward_bps``
   of the slashed total is shared by the winners and the rest burned. A required executor that
   never committed is reported ``missed`` (a liveness fault, no slash, no reputation change).
   With fewer accepted than the quorum (``accept_result`` vindicating an honest minority, or no
   quorum at ``resolve_job``: status ``no_majority``, or ``failed`` when nobody revealed) only
   withheld reveals are faults. A creator that never reveals its replication choice forfeits:
   every executor that revealed is paid, nobody is slashed (status ``abandoned``). The escrow left
   over returns to the task's budget (task jobs; the task's creator if the task was closed) or to
   the creator; the committed executors' locks are released.

Every rule here is O(executors) at most, never O(providers), except the draw itself at
registration, which runs only after the creator's escrow was taken.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from deai.core.encoding import to_hex
from deai.ledger.commitments import replication_commitment, result_commitment
from deai.ledger.config import BPS, COMPUTE, HOST, MAX_AMOUNT
from deai.ledger.draw import draw_executors, draw_seed, draw_weight
from deai.ledger.errors import (
    BadAcceptance,
    CommitAfterDeadline,
    CommitmentMismatch,
    DuplicateCommit,
    DuplicateEntity,
    DuplicateReveal,
    InsufficientEscrow,
    JobError,
    JobNotResolvable,
    NotAnExecutor,
    NotAuthorized,
    NotEnoughExecutors,
    ReplicationMismatch,
    RevealAfterDeadline,
    RevealTooEarly,
    RevealWithoutCommit,
    StakeBelowMinimum,
    UnknownJob,
    UnknownModel,
)
from deai.ledger.records import JobRecord, JobStatus
from deai.ledger.rules.base import Call, credit, debit, handles
from deai.ledger.rules.funds import add_reputation
from deai.ledger.rules.models import accrue_royalty
from deai.ledger.rules.tasks import get_task
from deai.ledger.state import State, key
from deai.ledger.txs import AcceptResult, Commit, RegisterJob, ResolveJob, Reveal, RevealReplication

__all__ = ["eligible_executors", "min_executor_stake", "required_executors"]


def min_executor_stake(state: State, role: str, fee: int) -> int:
    """The least stake an executor of ``role`` needs to be drawn for a job paying ``fee`` each."""
    by_fee = -(-fee * state.config.stake_fee_ratio_bps // BPS)
    return max(state.config.min_stake[role], by_fee, 1)


def eligible_executors(state: State, role: str, fee: int, exclude: str = "") -> list[tuple[str, int]]:
    """(address, draw weight) of every provider that may be drawn for such a job."""
    minimum = min_executor_stake(state, role, fee)
    suffix = "|" + role
    out = []
    for k, staked in state.items("stakes"):
        if staked >= minimum and k.endswith(suffix):
            address = k[: -len(suffix)]
            if address != exclude:
                out.append((address, draw_weight(state.config, staked, state.num("reputation", k))))
    return out


REFEREED = 1
"""``quorum = 1`` on a ``train_steps`` job with a resolver: a refereed job. Its resolver settles a
disagreement by a drawn referee's re-execution of the one divergent step
(:mod:`deai.protocol.jobs.delegated`), not by votes, so one accepted executor faults the others."""


def required_executors(job: JobRecord) -> list[str]:
    """Who had to run the job, once the creator revealed its replication choice."""
    if job.replicated is None or job.primary is None:
        raise JobNotResolvable("the creator has not revealed the replication choice")
    return list(job.executors) if job.replicated else [job.executors[job.primary]]


def _quorum(job: JobRecord, required: list[str]) -> int:
    """Accepted executors needed to fault the others: a strict majority of the required ones at
    least (so a minority -- a Sybil among honest executors -- never decides who is slashed)."""
    if len(required) == 1 or job.quorum == REFEREED:
        return 1
    return max(job.quorum, len(required) // 2 + 1)


def _committed(state: State, job_id: str, executor: str) -> bool:
    return state.get("commits", key(job_id, executor)) is not None


def _check_registration(c: Call, tx: RegisterJob) -> None:
    """The O(1) rules of ``register_job`` that need no funds (see the module docstring)."""
    config = c.config
    if tx.role not in (COMPUTE, HOST):
        raise JobError(f"jobs are executed by compute providers or hosts, not by {tx.role}s")
    if tx.role == HOST and tx.model is None:
        raise JobError("a host job serves a registered model: name it")
    if tx.model is not None and c.state.model(tx.model) is None:
        raise UnknownModel(f"no model {tx.model}")
    if tx.fee < config.min_job_fee:
        raise JobError(f"a job pays at least {config.min_job_fee} per executor, not {tx.fee}")
    for name in ("commit_window_ms", "reveal_window_ms"):
        if getattr(tx, name) > config.max_job_window_ms:
            raise JobError(f"{name} {getattr(tx, name)} exceeds the network's {config.max_job_window_ms}")
    if tx.executors > config.max_executors:
        raise JobError(f"{tx.executors} executors asked, the network allows at most {config.max_executors}")
    refereed = tx.quorum == REFEREED and tx.resolver is not None and tx.job_type == "train_steps"
    if tx.quorum and not refereed and not tx.executors // 2 < tx.quorum <= tx.executors:
        raise JobError(f"quorum {tx.quorum} is not a strict majority of the {tx.executors} executors (or 0)")
    if tx.fee * tx.executors > MAX_AMOUNT:
        raise JobError("fee times executors exceeds the supply cap")


def _check_resolver(c: Call, tx: RegisterJob, coordinator: str | None) -> None:
    """A resolver can fault executors, so only a party the executors can trust may be one: the
    task's coordinator for a task's job, else a genesis ``resolvers`` entry -- never a creator
    that names itself (with a Sybil among the drawn executors it could fault an honest one whose
    tolerance-compared output differs by one bit)."""
    if tx.resolver is None:
        return
    if coordinator is not None:
        if tx.resolver != coordinator:
            raise NotAuthorized(f"the resolver of a task's job is its coordinator {coordinator}")
    elif tx.resolver not in c.config.resolvers:
        raise NotAuthorized(f"resolver {tx.resolver} is not one of the network's resolvers")


def _open_job(state: State, job_id: str) -> JobRecord:
    job = state.job(job_id)
    if job is None:
        raise UnknownJob(f"no job {job_id}")
    if not job.open:
        raise JobNotResolvable(f"job {job_id} is already {job.status.value}")
    return job


def _reveals_open(c: Call, job: JobRecord) -> bool:
    return c.now >= job.commit_deadline or job.commits == len(job.executors)


@handles(RegisterJob)
def register_job(c: Call, tx: RegisterJob) -> None:
    state = c.state
    if state.job(tx.job) is not None:
        raise DuplicateEntity(f"job {tx.job} exists")
    _check_registration(c, tx)
    escrow = tx.fee * tx.executors
    coordinator = None
    if tx.task is not None:
        task = get_task(state, tx.task, open_=True)
        coordinator = task.coordinator
        c.require_sender(coordinator, f"register jobs of task {tx.task} (its coordinator)")
        if task.budget < escrow:
            raise InsufficientEscrow(
                f"task {tx.task} has a budget of {task.budget}, the job escrows {escrow}"
            )
    _check_resolver(c, tx, coordinator)
    # Funds move before the draw, which is the only part that reads every provider: a creator
    # without the escrow is refused at O(1) cost (a refusal rolls everything back).
    if tx.task is not None:
        state.put_task(tx.task, replace(task, budget=task.budget - escrow))
    else:
        debit(state, c.sender, escrow, "escrow the job fee")
    candidates = eligible_executors(state, tx.role, tx.fee, exclude=c.sender)
    if len(candidates) < tx.executors:
        raise NotEnoughExecutors(
            f"{tx.executors} executors asked, {len(candidates)} {tx.role}s hold the stake of "
            f"{min_executor_stake(state, tx.role, tx.fee)} a fee of {tx.fee} requires"
        )
    seed = draw_seed(c.ctx.head, tx.job)
    executors = draw_executors(candidates, seed, tx.executors)
    commit_deadline = c.now + tx.commit_window_ms
    reveal_deadline = commit_deadline + tx.reveal_window_ms
    state.put_job(
        tx.job,
        JobRecord(
            creator=c.sender,
            task=tx.task,
            job_type=tx.job_type,
            inputs=tuple(tx.inputs),
            fee=tx.fee,
            escrow=escrow,
            role=tx.role,
            executors=tuple(executors),
            seed=to_hex(seed),
            replication=tx.replication,
            commit_deadline=commit_deadline,
            reveal_deadline=reveal_deadline,
            resolver=tx.resolver,
            quorum=tx.quorum,
            model=tx.model,
            commits=0,
            reveals=0,
            replicated=None,
            primary=None,
            status=JobStatus.OPEN,
            digest=None,
            accepted=(),
            faulted=(),
            missed=(),
        ),
    )
    c.emit(
        "job_registered",
        job=tx.job,
        creator=c.sender,
        task=tx.task,
        executors=list(executors),
        fee=tx.fee,
        commit_deadline=commit_deadline,
        reveal_deadline=reveal_deadline,
    )


@handles(Commit)
def commit(c: Call, tx: Commit) -> None:
    """The executor's acceptance of the duty: from here on its role stake is locked and at risk."""
    job = _open_job(c.state, tx.job)
    if c.sender not in job.executors:
        raise NotAnExecutor(f"{c.sender} was not drawn for job {tx.job}")
    if c.now >= job.commit_deadline:
        raise CommitAfterDeadline(f"job {tx.job} took commits until {job.commit_deadline}, now {c.now}")
    ck = key(tx.job, c.sender)
    if c.state.get("commits", ck) is not None:
        raise DuplicateCommit(f"{c.sender} already committed to job {tx.job}")
    sk = key(c.sender, job.role)
    staked, minimum = c.state.num("stakes", sk), min_executor_stake(c.state, job.role, job.fee)
    if staked < minimum:
        raise StakeBelowMinimum(
            f"committing to job {tx.job} needs a {job.role} stake of {minimum}, {c.sender} has {staked}"
        )
    c.state.add("locks", sk, 1)
    c.state.put("commits", ck, tx.commitment)
    c.state.put_job(tx.job, replace(job, commits=job.commits + 1))
    c.emit("committed", job=tx.job, executor=c.sender, commitment=tx.commitment)


@handles(Reveal)
def reveal(c: Call, tx: Reveal) -> None:
    job = _open_job(c.state, tx.job)
    ck = key(tx.job, c.sender)
    commitment = c.state.get("commits", ck)
    if commitment is None:
        if c.sender not in job.executors:
            raise NotAnExecutor(f"{c.sender} was not drawn for job {tx.job}")
        raise RevealWithoutCommit(f"{c.sender} has no commitment to reveal for job {tx.job}")
    if c.state.get("reveals", ck) is not None:
        raise DuplicateReveal(f"{c.sender} already revealed for job {tx.job}")
    if not _reveals_open(c, job):
        raise RevealTooEarly(
            f"reveals of job {tx.job} open at {job.commit_deadline} or when all have committed"
        )
    if c.now >= job.reveal_deadline:
        raise RevealAfterDeadline(f"job {tx.job} took reveals until {job.reveal_deadline}, now {c.now}")
    if result_commitment(tx.job, c.sender, tx.digest, tx.salt) != commitment:
        raise CommitmentMismatch(
            f"digest and salt do not match the commitment of {c.sender} for job {tx.job}"
        )
    c.state.put("reveals", ck, tx.digest)
    c.state.put_job(tx.job, replace(job, reveals=job.reveals + 1))
    c.emit("revealed", job=tx.job, executor=c.sender, digest=tx.digest)


@handles(RevealReplication)
def reveal_replication(c: Call, tx: RevealReplication) -> None:
    job = _open_job(c.state, tx.job)
    c.require_sender(job.creator, f"reveal the replication choice of job {tx.job} (its creator)")
    if job.replicated is not None:
        raise DuplicateReveal(f"the replication choice of job {tx.job} is already revealed")
    if not _reveals_open(c, job):
        raise RevealTooEarly(
            f"reveals of job {tx.job} open at {job.commit_deadline} or when all have committed"
        )
    if c.now >= job.reveal_deadline:
        raise RevealAfterDeadline(f"job {tx.job} took reveals until {job.reveal_deadline}, now {c.now}")
    if tx.primary >= len(job.executors):
        raise ReplicationMismatch(f"primary index {tx.primary} is beyond the {len(job.executors)} executors")
    if replication_commitment(tx.job, tx.replicated, tx.primary, tx.salt) != job.replication:
        raise ReplicationMismatch(f"the revealed choice does not match the commitment of job {tx.job}")
    c.state.put_job(tx.job, replace(job, replicated=tx.replicated, primary=tx.primary))
    c.emit("replication_revealed", job=tx.job, replicated=tx.replicated, primary=tx.primary)


def _check_resolvable(c: Call, job_id: str, job: JobRecord, required: list[str]) -> list[str]:
    """The required executors that revealed; refuses while reveals can still come."""
    revealed = [e for e in required if c.state.get("reveals", key(job_id, e)) is not None]
    if len(revealed) < len(required) and c.now < job.reveal_deadline:
        raise JobNotResolvable(
            f"job {job_id}: {len(revealed)} of {len(required)} required reveals;"
            f" wait until {job.reveal_deadline}"
        )
    return revealed


@handles(ResolveJob)
def resolve_job(c: Call, tx: ResolveJob) -> None:
    job = _open_job(c.state, tx.job)
    if job.resolver is not None and c.now < job.reveal_deadline + c.config.resolve_grace_ms:
        raise NotAuthorized(f"job {tx.job} is resolved by its resolver {job.resolver} (accept_result)")
    if job.replicated is None:
        if c.now < job.reveal_deadline:
            raise JobNotResolvable(f"job {tx.job} waits for the creator's replication reveal")
        paid = [e for e in job.executors if c.state.get("reveals", key(tx.job, e)) is not None]
        _settle(c, tx.job, job, paid, "abandoned", None, reputation=False)
        return
    required = required_executors(job)
    revealed = _check_resolvable(c, tx.job, job, required)
    digests = Counter(c.state.get("reveals", key(tx.job, e)) for e in revealed)
    ranked = digests.most_common(2)
    unique_top = ranked and (len(ranked) == 1 or ranked[0][1] > ranked[1][1])
    if unique_top and ranked[0][1] >= _quorum(job, required):
        digest = ranked[0][0]
        winners = [e for e in revealed if c.state.get("reveals", key(tx.job, e)) == digest]
        _settle(c, tx.job, job, winners, "accepted", digest)
    else:
        _settle(c, tx.job, job, [], "no_majority" if revealed else "failed", None)


@handles(AcceptResult)
def accept_result(c: Call, tx: AcceptResult) -> None:
    """The resolver names the accepted executors. With at least the quorum, the other committed
    required executors are faults; with fewer (vindicating an honest minority outvoted in this
    attempt), the accepted are paid and only withheld reveals are faults."""
    job = _open_job(c.state, tx.job)
    if job.resolver is None:
        raise NotAuthorized(f"job {tx.job} has no resolver; it is resolved by exact majority (resolve_job)")
    c.require_sender(job.resolver, f"accept results of job {tx.job} (its resolver)")
    required = required_executors(job)
    revealed = _check_resolvable(c, tx.job, job, required)
    if not tx.accepted:
        raise BadAcceptance("accept at least one executor (resolve_job settles a job without a result)")
    wrong = [a for a in tx.accepted if a not in revealed]
    if wrong:
        raise BadAcceptance(f"accepted executor(s) {wrong} are not required executors that revealed")
    digests = {c.state.get("reveals", key(tx.job, a)) for a in tx.accepted}
    same = [e for e in revealed if e not in tx.accepted and c.state.get("reveals", key(tx.job, e)) in digests]
    if same:
        raise BadAcceptance(
            f"executor(s) {same} revealed the digest of an accepted executor: accept them too"
        )
    _settle(
        c, tx.job, job, list(tx.accepted), "accepted", None, quorum=len(tx.accepted) >= _quorum(job, required)
    )


def _faults(c: Call, job_id: str, job: JobRecord, winners: list[str], quorum: bool) -> dict[str, str]:
    """{executor: reason} of the required executors that committed and are faults. Without a
    quorum of winners a revealed result is never a fault (nothing showed it wrong)."""
    faults: dict[str, str] = {}
    for e in required_executors(job):
        if e in winners or not _committed(c.state, job_id, e):
            continue
        if c.state.get("reveals", key(job_id, e)) is None:
            faults[e] = "withheld reveal"
        elif quorum:
            faults[e] = "wrong result"
    return faults


def _refund(c: Call, job: JobRecord, amount: int) -> None:
    """What a job did not pay goes back where it came from: the task's budget or the creator."""
    if job.task is None:
        credit(c.state, job.creator, amount)
        return
    task = get_task(c.state, job.task)
    if task.open:
        c.state.put_task(job.task, replace(task, budget=task.budget + amount))
    else:  # the task closed (and refunded its budget) while the job was open
        credit(c.state, task.creator, amount)


def _settle(
    c: Call,
    job_id: str,
    job: JobRecord,
    winners: list[str],
    status: str,
    digest: str | None,
    *,
    reputation: bool = True,
    quorum: bool = True,
) -> None:
    """Pay ``winners``, slash the committed faults, report the missed, refund, release locks.
    ``quorum``: the winners reached the job's quorum (else a revealed result is never a fault)."""
    state, config, role = c.state, c.config, job.role
    escrow = job.escrow
    royalty_total = 0
    for w in winners:
        royalty = 0
        if job.model is not None:
            model = state.model(job.model)
            if model is None:  # register_job checked it, and models are never removed
                raise UnknownModel(f"no model {job.model}")
            royalty = job.fee * (BPS - model.host_bps) // BPS
            accrue_royalty(state, job.model, royalty)
        credit(state, w, job.fee - royalty)
        royalty_total += royalty
        escrow -= job.fee
    abandoned = job.replicated is None
    faults = {} if abandoned else _faults(c, job_id, job, winners, quorum and bool(winners))
    required = job.executors if abandoned else required_executors(job)
    missed = [e for e in required if not _committed(state, job_id, e)]
    slashed: dict[str, int] = {}
    for f in faults:
        sk = key(f, role)
        cut = state.num("stakes", sk) * config.slash_bps // BPS
        state.put("stakes", sk, state.num("stakes", sk) - cut)
        slashed[f] = cut
        if reputation:
            add_reputation(c, f, role, config.rep_job_fault)
    pool = sum(slashed.values())
    share = pool * config.slash_reward_bps // BPS // len(winners) if winners else 0
    for w in winners:
        credit(state, w, share)
        if reputation:
            add_reputation(c, w, role, config.rep_job_win)
    burned = pool - share * len(winners)
    state.set_meta("burned", state.meta("burned") + burned)
    _refund(c, job, escrow)
    for e in job.executors:
        if _committed(state, job_id, e):
            state.add("locks", key(e, role), -1)
    faulted = list(faults)
    state.put_job(
        job_id,
        replace(
            job,
            escrow=0,
            status=JobStatus(status),
            digest=digest,
            accepted=tuple(winners),
            faulted=tuple(faulted),
            missed=tuple(missed),
        ),
    )
    for f, cut in slashed.items():
        c.emit("slashed", account=f, role=role, amount=cut, reason=faults[f], job=job_id)
    c.emit(
        "job_resolved",
        job=job_id,
        status=status,
        digest=digest,
        accepted=list(winners),
        faulted=faulted,
        missed=missed,
        paid=job.fee * len(winners) - royalty_total,
        royalty=royalty_total,
        slash_reward=share,
        burned=burned,
        refund=escrow,
    )
