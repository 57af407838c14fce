"""The attack catalogue: every known way an outsider tried to slash, rob, stall or crash a network.

Each :class:`Attack` performs one *class* of attack against a running network through its public
interfaces only -- signed transactions relayed by the hub's ``ledger.submit``, envelopes and raw
bytes over HTTP, blob uploads, and (for :data:`tampered ledger <CATALOGUE>`) the files of a stopped
hub -- and counts how many of its attempts were refused. :func:`run_attack` wraps each one with the
checks every attack must pass: the hub still answers and accepts honest transactions (it is
restarted, and the attack counted as not survived, if it died), the supply is conserved (nothing
minted, every bucket adds up), and no honest participant's stake or balance went down.

The threat model: the ``attacker`` holds no funds and no stake but can sign anything and send any
bytes. Some attacks need a little more to reach the rule they test, and say so: a ``customer`` (a
funded stranger with no role, who may upload blobs and pay fees) and a ``sybil`` (an attacker
identity holding the minimum compute and data stakes). Honest participants are staked accounts
that run no daemon: they never hear of the attacker's jobs, so nobody may slash them for those.

:class:`Target` builds the network (a hub process on loopback, reusing
:class:`~deai.node.localnet.ProcessNetwork`) and holds the honest and attacking accounts. The
adversarial test suite and ``benchmarks/attacks.py`` run the same :data:`CATALOGUE`::

    with Target.start(tmp_path) as target:
        for attack in CATALOGUE:
            print(run_attack(target, attack))
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import secrets
import select
import socket
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from deai.core.accounts import Account
from deai.core.encoding import canonical, sha256_hex, to_hex
from deai.core.envelope import Envelope, now_ms
from deai.ledger import commitments
from deai.ledger import txs as txs_module
from deai.ledger.config import COMPUTE, DATA, HOST
from deai.ledger.merkle import payout_tree
from deai.ledger.tx import SignedTx, Tx
from deai.ledger.txs import (
    AcceptResult,
    ClaimPayout,
    ClaimRoyalty,
    CloseTask,
    Commit,
    CreateTask,
    JoinTask,
    LeaveTask,
    Mint,
    PayInferenceFee,
    PostCheckpoint,
    PostPayoutRoot,
    RegisterJob,
    RegisterModel,
    ResolveJob,
    Reveal,
    RevealReplication,
    Slash,
    SlashMember,
    Stake,
    Transfer,
    Unstake,
    UpdateReputation,
    Withdraw,
)
from deai.node.localnet import ProcessNetwork

__all__ = ["CATALOGUE", "Answer", "Attack", "Outcome", "Tally", "Target", "run_attack", "run_catalogue"]

SMALL = os.environ.get("DEAI_SMALL") == "1"
# Stakes of the honest participants, and what everyone starts with.
HONEST_STAKE = {DATA: 500, COMPUTE: 20_000, HOST: 20_000}
HONEST_COUNT = {DATA: 3, COMPUTE: 4, HOST: 2}
TASK_BUDGET = 1_000_000
FILLER_ENTRIES = 300  # log entries made at setup so that `ledger.entries` replies are large
# How long a hub may take to cut off an upload whose body stalls (a body deadline), before the
# slow-body attack counts the connection as held.
SLOW_BODY_DEADLINE_S = float(os.environ.get("DEAI_SLOW_BODY_DEADLINE_S", "40"))


def _rand_hash() -> str:
    return to_hex(secrets.token_bytes(32))


# -- what attacks report ---------------------------------------------------------------------------------


@dataclass
class Answer:
    """An HTTP answer: ``status`` None means no answer at all (refused connection, reset, timeout)."""

    status: int | None
    data: Any = None

    @property
    def refused(self) -> bool:
        """A clean refusal: a 4xx with a reason (never a 5xx, never silence)."""
        return self.status is not None and 400 <= self.status < 500

    def __str__(self) -> str:
        detail = self.data if not isinstance(self.data, dict) else self.data.get("error") or self.data
        return f"HTTP {self.status}: {str(detail)[:160]}"


@dataclass
class Outcome:
    """What one attack class achieved. ``ok`` only if every attempt was refused and the network
    survived it with the supply conserved and every honest stake and balance intact."""

    name: str
    finding: str
    attempts: int = 0
    refused: int = 0
    survived: bool = True
    conserved: bool = True
    honest_intact: bool = True
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            self.attempts > 0
            and self.refused == self.attempts
            and self.survived
            and self.conserved
            and self.honest_intact
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "finding": self.finding,
            "attempts": self.attempts,
            "refused": self.refused,
            "survived": self.survived,
            "conserved": self.conserved,
            "honest_intact": self.honest_intact,
            "ok": self.ok,
            "seconds": round(self.seconds, 2),
            "notes": self.notes,
        }

    def __str__(self) -> str:
        flags = [k for k in ("survived", "conserved", "honest_intact") if not getattr(self, k)]
        bad = f" NOT {', '.join(flags)}" if flags else ""
        notes = "; ".join(self.notes)
        return f"{self.name} [{self.finding}]: {self.refused}/{self.attempts} refused{bad}. {notes}"


class Tally:
    """Counts an attack's attempts; each one not refused leaves a note saying what got through."""

    def __init__(self) -> None:
        self.attempts = self.refused = 0
        self.notes: list[str] = []

    def check(self, label: str, refused: bool, detail: Any = "") -> bool:
        self.attempts += 1
        if refused:
            self.refused += 1
        else:
            self.notes.append(f"{label} got through ({str(detail)[:200]})")
        return refused

    def tx(self, label: str, result: dict) -> bool:
        """A transaction attempt: refused if the ledger refused it with a reason (a 5xx or no
        answer from the hub is not a refusal: the transaction may even have been applied)."""
        return self.check(label, tx_refused(result), result)

    def http(self, label: str, answer: Answer) -> bool:
        return self.check(label, answer.refused, answer)


def tx_refused(result: dict) -> bool:
    """A ledger refusal: ``ok`` false with a typed error, not a failed request (5xx, no answer)."""
    error = str(result.get("error", ""))
    return not result.get("ok") and not error.startswith(("HTTP 5", "HTTP None"))


# -- the network under attack ------------------------------------------------------------------------------


class Target:
    """A hub process on loopback with staked honest participants, an honest task it coordinates, a
    payout to claim from, and the attacking accounts. Use :meth:`start` (a context manager)."""

    def __init__(self, root: str | Path, *, tag: str = "adv") -> None:
        self.root = Path(root)
        self.tag = tag
        self.proc = ProcessNetwork(self.root / "net", network=f"{tag}-net")
        self.network = self.proc.network
        self.hub_address = self.proc.hub_account.address
        seed = f"{tag}-accounts"
        self.attacker = Account.from_seed(f"{seed}:attacker", 0)  # never funded
        self.customer = Account.from_seed(f"{seed}:customer", 0)  # funded, no role
        self.sybil = Account.from_seed(f"{seed}:sybil", 0)  # minimum compute and data stakes
        self.sybil2 = Account.from_seed(f"{seed}:sybil", 1)  # unfunded, in the payout tree
        self.checker = Account.from_seed(f"{seed}:checker", 0)  # asks "are you alive?"
        self.creator = Account.from_seed(f"{seed}:creator", 0)  # honest task creator
        self.organizer = Account.from_seed(f"{seed}:organizer", 0)  # coordinates the payout task
        self.honest = {
            role: [Account.from_seed(f"{seed}:{role}", i) for i in range(n)]
            for role, n in HONEST_COUNT.items()
        }
        self.http = httpx.Client(timeout=60)
        self.url = ""
        self.task: Any = None  # the honest TaskBundle the hub coordinates
        self.claim_task = ""
        self.claim_tree: Any = None
        self.claim_total = 0
        self._seed = 0
        self._validation: Any = None

    # -- building ---------------------------------------------------------------------------------------

    @classmethod
    @contextmanager
    def start(cls, root: str | Path, *, tag: str = "adv") -> Iterator[Target]:
        target = cls(root, tag=tag)
        try:
            target.setup()
            yield target
        finally:
            target.close()

    def setup(self) -> None:
        from deai.learn.data import prepare

        self.url = self.proc.start_hub()
        honest = [a for accts in self.honest.values() for a in accts]
        fund = {a.address: 1_000_000 for a in honest}
        fund |= {self.creator.address: 10**12, self.customer.address: 10**9, self.hub_address: 10**8}
        fund |= {self.organizer.address: 10**6, self.sybil.address: 10_000, self.checker.address: 1_000}
        minter = self.proc.client(self.proc.minter)
        minter.submit([(self.proc.minter, Mint(to=a, amount=n)) for a, n in fund.items()])
        fillers = [Account.from_seed(f"{self.tag}-filler", i).address for i in range(FILLER_ENTRIES)]
        minter.submit([(self.proc.minter, Mint(to=a, amount=1)) for a in fillers])
        stakes = [
            (a, Stake(role=role, amount=HONEST_STAKE[role]))
            for role, accts in self.honest.items()
            for a in accts
        ]
        stakes += [
            (self.sybil, Stake(role=COMPUTE, amount=1_000)),
            (self.sybil, Stake(role=DATA, amount=100)),
        ]
        minter.submit(stakes)
        self._validation = prepare("digits", seed=0).val
        self.task = self.honest_bundle(0)
        self._post_task(self.task)
        # A payout of a task the organizer coordinates (not the hub): 100 each to the two sybils,
        # posted with a total of 150 so that the second claim exhausts the pool.
        self.claim_task = _rand_hash()
        self.claim_tree = payout_tree({self.sybil.address: 100, self.sybil2.address: 100})
        self.claim_total = 150
        org = self.proc.client(self.organizer)
        org.submit(
            [
                (self.organizer, CreateTask(task=self.claim_task, budget=1_000, params=self.claim_task)),
                (
                    self.organizer,
                    PostPayoutRoot(task=self.claim_task, epoch=0, root=self.claim_tree.root, total=150),
                ),
            ]
        )

    def honest_bundle(self, seed: int) -> Any:
        from deai.node.tasks import make_task
        from deai.protocol.task.spec import Windows

        windows = Windows(
            join_ms=600_000, train_ms=60_000, commit_ms=30_000, reveal_ms=30_000, secagg_ms=15_000
        )
        return make_task(
            self._validation,
            rounds=2,
            budget=TASK_BUDGET,
            job_fee=10,
            min_providers=2,
            max_providers=3,
            windows=windows,
            seed=seed,
        )

    def _post_task(self, bundle: Any) -> str:
        from deai.node.tasks import submit_task

        return submit_task(self.proc.client(self.creator), self.creator, bundle, coordinator=self.hub_address)

    def close(self) -> None:
        self.http.close()
        self.proc.stop()

    # -- the hub process -------------------------------------------------------------------------------

    @property
    def hub_pid(self) -> int | None:
        proc = self.proc.hub_proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def hub_rss_mb(self) -> float | None:
        pid = self.hub_pid
        if pid is None:
            return None
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def restart_hub(self) -> str | None:
        """Start the hub again on its folder (after an attack killed it); None once it serves
        again, else why not."""
        proc = self.proc.hub_proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        try:
            self.proc.restart("hub")
        except (RuntimeError, TimeoutError) as exc:
            return f"the hub does not start again: {exc}"
        return self.alive()

    # -- talking to the hub ------------------------------------------------------------------------------

    def post(self, raw: bytes, path: str = "/v1/envelope", *, timeout: float = 60) -> Answer:
        try:
            r = self.http.post(self.url + path, content=raw, timeout=timeout)
        except httpx.HTTPError as exc:
            return Answer(None, f"{type(exc).__name__}: {exc}")
        try:
            return Answer(r.status_code, r.json())
        except ValueError:
            return Answer(r.status_code, r.text[:300])

    def send(
        self,
        account: Account,
        type: str,
        body: dict[str, Any],
        *,
        network: str | None = None,
        nonce: int | None = None,
        timestamp: int | None = None,
    ) -> Answer:
        """Seal and post an envelope. A 429 (rate limit) is waited out and the request sealed
        again, so that the rule an attack aims at is reached (bounded: ~20 s)."""
        for _ in range(40):
            env = Envelope.seal(
                account, type, body, network or self.network, nonce=nonce, timestamp=timestamp
            )
            answer = self.post(env.to_bytes())
            if answer.status != 429 or nonce is not None:
                return answer
            time.sleep(0.5)
        return answer

    def call(self, type: str, body: dict[str, Any] | None = None) -> dict:
        """An honest request by the checker; raises unless answered 200."""
        answer = self.send(self.checker, type, body or {})
        if answer.status != 200:
            raise RuntimeError(f"{type}: {answer}")
        return answer.data

    def query(self, q: str, **args: Any) -> Any:
        return self.call("ledger.query", {"q": q, "args": args})["result"]

    def now(self) -> int:
        """The hub's ledger clock (ms)."""
        return int(self.call("hub.info")["time"])

    def wait_until(self, ledger_ms: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.now() <= ledger_ms:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the ledger clock did not reach {ledger_ms}")
            time.sleep(0.1)

    def sign_tx(
        self, account: Account, tx: Tx, *, nonce: int | None = None, network: str | None = None
    ) -> bytes:
        """Signed transaction bytes *without* the local field checks: the attacker sends what it
        likes and only the ledger decides."""
        nonce = self.query("nonce", address=account.address) if nonce is None else nonce
        payload = SignedTx.payload(tx, account.address, nonce, network or self.network)
        data = canonical(payload)
        return canonical({**payload, "signature": to_hex(account.sign(data))})

    def submit_raw(self, raw: bytes | list[bytes], *, relay: Account | None = None) -> list[dict]:
        items = raw if isinstance(raw, list) else [raw]
        answer = self.send(relay or self.attacker, "ledger.submit", {"txs": [r.hex() for r in items]})
        if answer.status != 200:
            return [{"ok": False, "error": f"HTTP {answer.status}", "reason": str(answer)} for _ in items]
        return answer.data["results"]

    def submit(self, account: Account, tx: Tx, *, relay: Account | None = None, **kw: Any) -> dict:
        """Sign ``tx`` as ``account`` and submit it through the hub; the ledger's result."""
        return self.submit_raw(self.sign_tx(account, tx, **kw), relay=relay or account)[0]

    def upload(self, data: bytes) -> str:
        """Upload a blob the honest way (the library's client, as the customer): its digest."""
        return self.proc.client(self.customer).put_blob(data, expected=sha256_hex(data))

    # -- state the checks compare ----------------------------------------------------------------------

    def supply(self) -> dict[str, int]:
        return self.query("supply")

    def honest_holdings(self) -> dict[str, int]:
        """Each honest participant's role stake and balance (none of them spends during attacks)."""
        out = {}
        for role, accts in self.honest.items():
            for a in accts:
                out[f"{a.address}|{role}"] = self.query("stake", address=a.address, role=role)
                out[f"{a.address}|balance"] = self.query("balance", address=a.address)
        return out

    def alive(self) -> str | None:
        """None if the hub answers a signed request and applies an honest transaction; else why not."""
        try:
            info = self.send(self.checker, "hub.info", {})
            if info.status != 200:
                return f"hub.info: {info}"
            r = self.submit(self.customer, Transfer(to=self.checker.address, amount=1))
            if not r.get("ok"):
                return f"an honest transfer was not applied: {r}"
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    def task_phase(self, task: str) -> str | None:
        """The phase the hub reports for ``task`` (``rejected`` if it refused it; None if unknown)."""
        answer = self.send(self.checker, "task.status", {"task": task})
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise RuntimeError(f"task.status: {answer}")
        return answer.data.get("phase")

    def coordination_works(self, timeout: float = 15) -> str | None:
        """None if an honest task posted now is adopted by the hub (its loop still moves)."""
        try:
            self._seed += 1
            task = self._post_task(self.honest_bundle(self._seed))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                phase = self.task_phase(task)
                if phase == "rejected":
                    return f"an honest task was rejected: {self.call('task.status', {'task': task})}"
                if phase is not None:
                    return None
                time.sleep(0.2)
            return f"an honest task was not adopted within {timeout} s"
        except Exception as exc:
            return f"posting an honest task failed: {type(exc).__name__}: {exc}"

    def crafted_task(self, creator: Account, escrow: int, **changes: Any) -> tuple[str, dict]:
        """An attacker's task: the honest spec with ``changes`` (written as raw JSON, so that no
        local check stops it), uploaded by the customer and created by ``creator`` with the hub as
        coordinator, escrowing ``escrow``. Returns the task id and the create_task result."""
        spec = {**self.task.spec.to_json(), "seed": secrets.randbelow(2**40), **changes}
        raw = canonical(spec)
        digest = sha256_hex(raw)
        try:
            self.upload(raw)
        except Exception as exc:
            note = f"spec upload failed: {exc}"
        else:
            note = ""
        task = "0x" + digest
        tx = CreateTask(task=task, budget=escrow, params=task, provider_stake=0, coordinator=self.hub_address)
        result = self.submit(creator, tx)
        if note:
            result = {**result, "note": note}
        return task, result

    def task_refused(self, task: str, created: dict, settle_s: float = 3.0) -> tuple[bool, str]:
        """Whether a task an attacker created was refused: by the ledger, or by the hub, which
        reports it ``rejected`` (a task the hub neither runs nor rejects is stuck somewhere)."""
        if tx_refused(created):
            return True, f"create_task refused: {created.get('error')}"
        deadline = time.monotonic() + settle_s
        phase = None
        while time.monotonic() < deadline:
            phase = self.task_phase(task)
            if phase is not None:
                break
            time.sleep(0.2)
        return phase == "rejected", f"the hub reports phase {phase}"


# -- running attacks -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    """One attack class: ``fn(target, tally)`` records each attempt in the tally. ``finding`` is the
    issue-12 finding it reproduces (``classic`` for the ones that were always refused); ``slow``
    attacks take tens of seconds; ``fresh`` ones may leave a hub that is stuck on the old code, so
    they get a network of their own in the test suite."""

    name: str
    finding: str
    fn: Callable[[Target, Tally], None]
    doc: str = ""
    slow: bool = False
    fresh: bool = False


def run_attack(target: Target, attack: Attack) -> Outcome:
    """Run one attack with the checks every attack must pass (see the module docstring). Never
    raises: an attack that cannot finish, or a hub that dies, is reported in the outcome (a dead
    hub is restarted, so that the next attack finds one)."""
    t0 = time.perf_counter()
    tally = Tally()
    out = Outcome(attack.name, attack.finding)
    try:
        if target.hub_pid is None:  # an earlier attack killed it
            target.restart_hub()
        before_supply, before = target.supply(), target.honest_holdings()
    except Exception as exc:
        out.survived = out.conserved = out.honest_intact = False
        out.notes = [f"no hub to attack: {type(exc).__name__}: {exc}"]
        return out
    try:
        attack.fn(target, tally)
    except Exception as exc:
        tally.notes.append(f"the attack stopped: {type(exc).__name__}: {exc}")
    problem = target.alive()
    if problem is not None:
        out.survived = False
        tally.notes.append(f"hub not serving after the attack: {problem}")
        if target.hub_pid is None:
            again = target.restart_hub()
            tally.notes.append("the hub had died" + (f"; {again}" if again else " and was restarted"))
    if attack.fresh or attack.finding in ("3", "5", "8"):
        problem = target.coordination_works()
        if problem is not None:
            out.survived = False
            tally.notes.append(f"coordination stalled: {problem}")
    try:
        after_supply, after = target.supply(), target.honest_holdings()
        buckets = sum(v for k, v in after_supply.items() if k != "minted")
        out.conserved = (
            after_supply["minted"] == before_supply["minted"] and buckets == after_supply["minted"]
        )
        if not out.conserved:
            tally.notes.append(f"supply {before_supply} -> {after_supply}")
        lost = {k: (v, after[k]) for k, v in before.items() if after[k] < v}
        out.honest_intact = not lost
        if lost:
            tally.notes.append(f"honest holdings lost (before, after): {lost}")
    except Exception as exc:
        out.conserved = out.honest_intact = False
        tally.notes.append(f"cannot read the ledger after the attack: {exc}")
    out.attempts, out.refused, out.notes = tally.attempts, tally.refused, tally.notes
    out.seconds = time.perf_counter() - t0
    return out


def run_catalogue(target: Target, attacks: list[Attack] | None = None) -> list[Outcome]:
    return [run_attack(target, a) for a in (CATALOGUE if attacks is None else attacks)]


# -- helpers shared by the job attacks ---------------------------------------------------------------------


def _job_fee(t: Target) -> int:
    """A fee that a paying customer may offer and that the sybil's minimum stake may take."""
    config = t.call("hub.info")["config"]
    return max(int(config.get("min_job_fee", 1)), 10)


def _register(
    t: Target,
    creator: Account,
    *,
    fee: int,
    executors: int,
    quorum: int = 0,
    role: str = COMPUTE,
    commit_ms: int = 60_000,
    reveal_ms: int = 60_000,
    task: str | None = None,
    model: str | None = None,
) -> tuple[str, str, dict]:
    """register_job as ``creator``, replicated on every drawn executor; (job id, salt, result)."""
    job, salt = _rand_hash(), commitments.new_salt()
    tx = RegisterJob(
        job=job,
        task=task,
        job_type="aggregate",
        inputs=("0x" + t.task.spec.init,),
        fee=fee,
        executors=executors,
        replication=commitments.replication_commitment(job, True, 0, salt),
        commit_window_ms=commit_ms,
        reveal_window_ms=reveal_ms,
        role=role,
        quorum=quorum,
        model=model,
    )
    return job, salt, t.submit(creator, tx)


def _event(result: dict, kind: str) -> dict:
    for e in result.get("events", []):
        if e["kind"] == kind:
            return e["data"]
    raise KeyError(f"no {kind} event in {result}")


def _eligible_computes(t: Target) -> int:
    return len(t.honest[COMPUTE]) + 1  # the honest ones and the sybil


# -- finding 1: jobs nobody asked for ----------------------------------------------------------------------


def job_without_fee(t: Target, tally: Tally) -> None:
    """An unfunded outsider registers a job: fee 0, and a fee it cannot pay."""
    _, _, r = _register(t, t.attacker, fee=0, executors=3)
    tally.tx("unfunded register_job with fee 0", r)
    _, _, r = _register(t, t.attacker, fee=_job_fee(t), executors=3)
    tally.tx("unfunded register_job with a fee it cannot pay", r)


def job_quorum_one(t: Target, tally: Tally) -> None:
    """A paying customer asks a quorum of 1 out of 3 (one Sybil could decide the result)."""
    _, _, r = _register(t, t.customer, fee=_job_fee(t), executors=3, quorum=1)
    tally.tx("register_job with quorum 1 of 3", r)


def job_huge_window(t: Target, tally: Tally) -> None:
    """A paying customer asks 2^40 ms windows (would freeze drawn stakes for ~35 years)."""
    fee = _job_fee(t)
    _, _, r = _register(t, t.customer, fee=fee, executors=3, commit_ms=2**40)
    tally.tx("register_job with a 2^40 ms commit window", r)
    _, _, r = _register(t, t.customer, fee=fee, executors=3, reveal_ms=2**40)
    tally.tx("register_job with a 2^40 ms reveal window", r)
    if any(t.query("locked", address=a.address, role=COMPUTE) for a in t.honest[COMPUTE]):
        tally.check("huge-window jobs lock honest stakes", False, "an honest compute stake is locked")


def job_data_provider_role(t: Target, tally: Tally) -> None:
    """A paying customer draws data providers (who never execute jobs) as executors."""
    _, _, r = _register(t, t.customer, fee=_job_fee(t), executors=2, role=DATA)
    tally.tx("register_job drawing data providers", r)


def job_host_without_model(t: Target, tally: Tally) -> None:
    """A paying customer draws hosts for a job that serves no registered model."""
    _, _, r = _register(t, t.customer, fee=_job_fee(t), executors=2, role=HOST)
    tally.tx("register_job drawing hosts without a model", r)


def job_slashes_non_committers(t: Target, tally: Tally) -> None:
    """The finding's full attack: a customer registers a short job drawing every compute provider
    (the sybil among them); honest executors never hear of it; the sybil commits and reveals, the
    job is resolved, and whoever stayed silent would be slashed. Refused if no honest stake is lost
    or locked (the ledger may accept the job: drawing alone must endanger nobody)."""
    fee, n = _job_fee(t), _eligible_computes(t)
    job, salt, r = _register(t, t.customer, fee=fee, executors=n, commit_ms=3_000, reveal_ms=3_000)
    if not r.get("ok"):
        tally.check("a short job drawing everyone is refused", True)
        return
    data = _event(r, "job_registered")
    digest, rsalt = _rand_hash(), commitments.new_salt()
    if t.sybil.address in data["executors"]:
        commitment = commitments.result_commitment(job, t.sybil.address, digest, rsalt)
        t.submit(t.sybil, Commit(job=job, commitment=commitment))
    t.wait_until(data["commit_deadline"])
    t.submit(t.customer, RevealReplication(job=job, replicated=True, primary=0, salt=salt))
    if t.sybil.address in data["executors"]:
        t.submit(t.sybil, Reveal(job=job, digest=digest, salt=rsalt))
    t.wait_until(data["reveal_deadline"])
    resolved = t.submit(t.attacker, ResolveJob(job=job))
    honest = [a.address for a in t.honest[COMPUTE]]
    slashed = [
        e["data"]
        for e in resolved.get("events", [])
        if e["kind"] == "slashed" and e["data"]["account"] in honest
    ]
    tally.check("drawn honest executors slashed for a job they never heard of", not slashed, slashed)
    locked = [a for a in honest if t.query("locked", address=a, role=COMPUTE)]
    tally.check("honest stakes still locked after the job", not locked, locked)


# -- finding 2: nesting bombs --------------------------------------------------------------------------------


def deep_json_envelope(t: Target, tally: Tally) -> None:
    """One unsigned ~200 KB request of nested brackets (it overflowed the C stack: SIGSEGV)."""
    tally.http("nested list envelope", t.post(b"[" * 100_000 + b"]" * 100_000))
    inner = b"[" * 100_000 + b"]" * 100_000
    env = b'{"type":"hub.info","body":{"x":' + inner + b'},"sender":"' + t.attacker.address.encode() + b'"}'
    tally.http("nested body inside an envelope", t.post(env))
    tx = b"[" * 30_000 + b"]" * 30_000
    tally.tx("nested transaction bytes", t.submit_raw(tx, relay=t.attacker)[0])


def deep_json_model_document(t: Target, tally: Tally) -> None:
    """A model whose document blob is a nesting bomb; every ``infer.models`` parses documents."""
    doc = b"[" * 100_000 + b"]" * 100_000
    digest = "0x" + sha256_hex(doc)
    try:
        t.upload(doc)
    except Exception as exc:
        tally.notes.append(f"(document upload refused: {exc})")
    model = commitments.model_id(t.attacker.address, None, digest)
    tx = RegisterModel(
        model=model, task=None, provenance=_rand_hash(), document=digest, total_shares=10_000, host_bps=5_000
    )
    t.submit(t.attacker, tx)
    answer = t.send(t.checker, "infer.models", {})
    tally.check("infer.models over a nesting-bomb document", answer.status == 200, answer)


# -- finding 3, 5, 8: tasks that stall, drain or get work for free -------------------------------------------


def bad_model_kwargs_task(t: Target, tally: Tally) -> None:
    """A task whose model cannot be built ({"hidden": [-1]}); adopting it blocked every tick."""
    task, r = t.crafted_task(t.customer, TASK_BUDGET, model_kwargs={"hidden": [-1]})
    tally.check("a task whose model cannot be built", *t.task_refused(task, r))
    task, r = t.crafted_task(t.customer, TASK_BUDGET, model_kwargs={"hidden": [2**20, 2**20]})
    tally.check("a task with a trillion-parameter model", *t.task_refused(task, r))


def budget0_task_huge_fee(t: Target, tally: Tally) -> None:
    """A budget-0 task promising 50,000 per job: the coordinator paid fees from its own balance."""
    hub_before = t.query("balance", address=t.hub_address)
    task, r = t.crafted_task(t.customer, 0, budget=0, job_fee=50_000)
    tally.check("budget 0, job fee 50,000", *t.task_refused(task, r))
    task, r = t.crafted_task(t.customer, 1_000, budget=1_000, job_fee=50_000)
    tally.check("budget 1,000, job fee 50,000", *t.task_refused(task, r))
    hub_after = t.query("balance", address=t.hub_address)
    tally.check("the hub's balance went down", hub_after >= hub_before, f"{hub_before} -> {hub_after}")


def free_task(t: Target, tally: Tally) -> None:
    """An unfunded creator posts a task with budget 0 and fee 0: work for nothing."""
    task, r = t.crafted_task(t.attacker, 0, budget=0, job_fee=0)
    tally.check("budget 0 and fee 0 from an unfunded creator", *t.task_refused(task, r))


# -- finding 4: model-id squatting --------------------------------------------------------------------------


def model_id_squatting(t: Target, tally: Tally) -> None:
    """The attacker registers the id the honest coordinator will need for the task's model."""
    task, checkpoint = t.task.task_id, "0x" + t.task.spec.init  # public blobs
    doc = _rand_hash()
    for label, model, on_task in (
        ("the old id scheme (0x + checkpoint digest)", checkpoint, None),
        ("the coordinator's id, outside the task", commitments.model_id(t.hub_address, task, doc), None),
        ("the coordinator's id, naming the task", commitments.model_id(t.hub_address, task, doc), task),
    ):
        tx = RegisterModel(
            model=model, task=on_task, provenance=_rand_hash(), document=doc, total_shares=10_000, host_bps=0
        )
        tally.tx(f"register_model with {label}", t.submit(t.attacker, tx))


# -- finding 6, 7: the hub's memory and disk -----------------------------------------------------------------


def read_reply_cache(t: Target, tally: Tally) -> None:
    """Many large read replies (``ledger.entries``): the answer cache kept every one."""
    calls = 60 if SMALL else 200
    rss0 = t.hub_rss_mb()
    served = 0
    for _ in range(calls):
        answer = t.send(t.attacker, "ledger.entries", {"since": 0, "limit": 10_000})
        if answer.status == 200:
            served += len(json.dumps(answer.data))
    rss1 = t.hub_rss_mb()
    if rss0 is None or rss1 is None:
        tally.notes.append("(the hub's memory cannot be read here: not measured)")
        tally.check("read replies retained", True)
        return
    grew, mb = rss1 - rss0, served / 2**20
    # Retaining the replies costs at least their size; serving them costs a few MB of allocator slack.
    tally.check(
        "read replies retained by the hub",
        grew < max(mb / 2, 24),
        f"RSS +{grew:.0f} MB after {mb:.0f} MB served",
    )


def _blob_put(t: Target, data: bytes, headers: dict[str, str] | None = None) -> Answer:
    try:
        r = t.http.put(f"{t.url}/v1/blobs/{sha256_hex(data)}", content=data, headers=headers or {})
    except httpx.HTTPError as exc:
        return Answer(None, str(exc))
    try:
        return Answer(r.status_code, r.json())
    except ValueError:
        return Answer(r.status_code, r.text[:200])


def _blob_stored(t: Target, data: bytes) -> bool:
    return t.http.get(f"{t.url}/v1/blobs/{sha256_hex(data)}").status_code == 200


def _upload_auth(t: Target, account: Account, digest: str, size: int) -> dict[str, str]:
    """The header that authorizes an upload: a ``blob.put`` envelope ``{digest, size}`` signed by
    ``account`` (its wire bytes), sealed here without checking what it says."""
    env = Envelope.seal(account, "blob.put", {"digest": digest, "size": size}, t.network)
    return {"X-Deai-Envelope": env.to_bytes().decode()}


def unauthenticated_upload(t: Target, tally: Tally) -> None:
    """Blob uploads by nobody in particular: no identity, no quota (200 MB in 3 s)."""
    data = secrets.token_bytes(256 << 10)
    answer = _blob_put(t, data)
    tally.check("an anonymous upload", answer.refused and not _blob_stored(t, data), answer)


def unfunded_upload(t: Target, tally: Tally) -> None:
    """Uploads signed by an identity with no funds and no stake (a free, endless Sybil supply),
    and a funded upload larger than the size its authorization declared."""
    data = secrets.token_bytes(256 << 10)
    answer = _blob_put(t, data, _upload_auth(t, t.attacker, sha256_hex(data), len(data)))
    tally.check(
        "an upload signed by an unfunded identity", answer.refused and not _blob_stored(t, data), answer
    )
    data = secrets.token_bytes(1000)  # a funded uploader is held to the size it signed for
    answer = _blob_put(t, data, _upload_auth(t, t.customer, sha256_hex(data), 10))
    tally.check("an upload larger than it declared", answer.refused and not _blob_stored(t, data), answer)


# -- finding 9: the ledger at rest ---------------------------------------------------------------------------


def _tampered_start(t: Target, name: str, edit: Callable[[sqlite3.Connection], None]) -> tuple[bool, str]:
    """Build a small ledger in a hub of its own, stop it, ``edit`` its SQLite file as someone with
    disk access would, start it again: True if the hub refused to start."""
    net = ProcessNetwork(t.root / f"tamper-{secrets.token_hex(4)}", network=f"{t.tag}-tamper")
    try:
        net.start_hub()
        net.fund([t.customer.address, t.attacker.address, t.checker.address], 1_000)
        net.stop()
        db = sqlite3.connect(net.hub_dir / "ledger.sqlite")
        try:
            edit(db)
            db.commit()
        finally:
            db.close()
        try:
            net.start_hub()
        except (RuntimeError, TimeoutError) as exc:
            return True, str(exc)
        return False, f"the hub serves at {net.url}"
    finally:
        net.stop()


def tampered_ledger(t: Target, tally: Tally) -> None:
    """A hub started on a ledger file edited at rest must refuse to serve it."""
    attacker = t.attacker.address

    def edit_balance(db: sqlite3.Connection) -> None:
        db.execute("UPDATE state SET value = '999999999' WHERE tbl = 'balances' AND key = ?", (attacker,))

    def truncate(db: sqlite3.Connection) -> None:
        # Forget the last transaction (the mint of 1,000 to the checker) everywhere, consistently:
        # log, events, height, supply and balance, as someone rolling history back would.
        last = db.execute("SELECT MAX(seq) FROM log").fetchone()[0]
        db.execute("DELETE FROM log WHERE seq = ?", (last,))
        db.execute("DELETE FROM events WHERE height = ?", (last,))
        db.execute("UPDATE state SET value = ? WHERE tbl = 'meta' AND key = 'height'", (str(last),))
        db.execute("UPDATE state SET value = value - 1000 WHERE tbl = 'meta' AND key = 'minted'")
        db.execute("DELETE FROM state WHERE tbl = 'balances' AND key = ?", (t.checker.address,))

    for name, edit in (("an edited balance", edit_balance), ("its last transaction cut", truncate)):
        refused, detail = _tampered_start(t, name, edit)
        tally.check(f"a hub on a ledger with {name}", refused, detail)


# -- finding 10: the rest -----------------------------------------------------------------------------------


def big_int_literal(t: Target, tally: Tally) -> None:
    """A 5,000-digit integer literal (Python's int parser raised: 500)."""
    big = b"9" * 5_000
    env = (
        b'{"type":"hub.info","body":{"x":'
        + big
        + b'},"sender":"'
        + t.attacker.address.encode()
        + b'","nonce":1,"timestamp":'
        + str(now_ms()).encode()
        + b',"network":"'
        + t.network.encode()
        + b'","signature":"0x'
        + b"00" * 65
        + b'"}'
    )
    tally.http("a 5,000-digit integer in an envelope", t.post(env))
    env2 = env.replace(b'"nonce":1', b'"nonce":' + big)
    tally.http("a 5,000-digit nonce", t.post(env2))
    tx = b'{"kind":"transfer","body":{"to":"' + t.checker.address.encode() + b'","amount":' + big + b"}}"
    tally.tx("a 5,000-digit amount in a transaction", t.submit_raw(tx, relay=t.attacker)[0])


def future_stamped_envelope(t: Target, tally: Tally) -> None:
    """Envelopes stamped minutes ahead (inside the old +-300 s window) could raise the replay
    cache's horizon above honest clocks; a receiver tolerates only a small forward skew."""
    for ahead in (120_000, 290_000):
        answer = t.send(t.attacker, "hub.info", {}, timestamp=now_ms() + ahead)
        tally.http(f"an envelope stamped {ahead // 1000} s ahead", answer)
    tally.check("an honest envelope after them", t.send(t.checker, "hub.info", {}).status == 200)


def unstake_after_join(t: Target, tally: Tally) -> None:
    """A fresh identity (funded by the customer with just the data minimum) stakes, joins a task
    (its stake is what a task may slash), then unstakes at once."""
    joiner = Account.from_seed(f"{t.tag}-joiner", secrets.randbelow(2**31))
    minimum = t.call("hub.info")["config"]["min_stake"][DATA]
    t.submit(t.customer, Transfer(to=joiner.address, amount=minimum))
    t.submit(joiner, Stake(role=DATA, amount=minimum))
    joined = t.submit(joiner, JoinTask(task=t.task.task_id, role=DATA))
    if not joined.get("ok"):
        tally.notes.append(f"(join refused: {joined})")
    unstake = Unstake(role=DATA, amount=minimum)
    tally.tx("unstake of the role a task member joined with", t.submit(joiner, unstake))


def _flood(t: Target, senders: list[Account], cap: int = 2_000, seconds: float = 20) -> tuple[int, int, list]:
    """Signed ``hub.info`` from ``senders`` in turn, 8 threads, until the hub answers 429 (or
    ``cap`` requests, or ``seconds``), while the checker asks 10 times: (requests, 429s, the
    checker's statuses)."""
    until = time.monotonic() + seconds
    codes: list[int | None] = []
    lock, stop = threading.Lock(), threading.Event()

    def flood() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set() and time.monotonic() < until:
                with lock:
                    sender = senders[len(codes) % len(senders)]
                env = Envelope.seal(sender, "hub.info", {}, t.network)
                try:
                    code: int | None = client.post(f"{t.url}/v1/envelope", content=env.to_bytes()).status_code
                except httpx.HTTPError:
                    code = None
                with lock:
                    codes.append(code)
                    if code == 429 or len(codes) >= cap:
                        stop.set()

    threads = [threading.Thread(target=flood) for _ in range(8)]
    for th in threads:
        th.start()
    honest = [t.send(t.checker, "hub.info", {}).status for _ in range(10)]
    stop.wait(seconds + 5)
    stop.set()
    for th in threads:
        th.join()
    return len(codes), codes.count(429), honest


def rate_flood(t: Target, tally: Tally) -> None:
    """Valid signed requests from 8 threads (up to 2,000 in 20 s, until the hub pushes back), from
    one sender and then from 200 fresh identities (keys are free): the hub must turn both floods
    away (429) while an honest sender is served."""
    sybils = [Account.from_seed(f"{t.tag}-flood", i) for i in range(200)]
    for label, senders in (("a one-sender flood", [t.attacker]), ("a 200-identity flood", sybils)):
        sent, limited, honest = _flood(t, senders)
        tally.check(label, limited > 0, f"{sent} requests, {limited} answered 429")
        tally.check(f"an honest sender during {label}", all(c == 200 for c in honest), honest)


def slow_body_uploads(t: Target, tally: Tally) -> None:
    """Requests that declare 1 MB and then stall: each held a thread and descriptors forever.
    A third are anonymous uploads, a third uploads the customer signed for (so that they pass
    the upload gate), a third envelopes; the hub must cut every one off (a body deadline)."""
    n = 30 if SMALL else 60
    parts = urlsplit(t.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    size = 1_000_000

    def head(i: int) -> bytes:
        if i % 3 == 2:
            return f"POST /v1/envelope HTTP/1.1\r\nHost: {host}\r\nContent-Length: {size}\r\n\r\n".encode()
        digest = sha256_hex(secrets.token_bytes(16))  # bytes that never come
        auth = ""
        if i % 3 == 1:
            env = Envelope.seal(t.customer, "blob.put", {"digest": digest, "size": size}, t.network)
            auth = f"X-Deai-Envelope: {env.to_bytes().decode()}\r\n"
        return (
            f"PUT /v1/blobs/{digest} HTTP/1.1\r\nHost: {host}\r\n{auth}"
            f"Content-Type: application/octet-stream\r\nContent-Length: {size}\r\n\r\n"
        ).encode()

    socks: list[socket.socket] = []
    try:
        for i in range(n):
            try:
                s = socket.create_connection((host, port), timeout=5)
                s.sendall(head(i) + b"x" * 100)
                socks.append(s)
            except OSError:
                pass  # refused at connect: the hub bounds connections
        honest = t.send(t.checker, "hub.info", {})
        tally.check("an honest request during the slow uploads", honest.status == 200, honest)
        open_ = set(socks)
        deadline = time.monotonic() + SLOW_BODY_DEADLINE_S
        while open_ and time.monotonic() < deadline:
            ready, _, _ = select.select(list(open_), [], [], 0.5)
            for s in ready:
                open_.discard(s)  # answered or closed by the hub
        tally.check(
            "stalled requests cut off",
            not open_,
            f"{len(open_)} of {n} still held after {SLOW_BODY_DEADLINE_S:.0f} s",
        )
    finally:
        for s in socks:
            s.close()


# -- classic attacks (refused before issue 12; kept covered) ----------------------------------------------


def replays(t: Target, tally: Tally) -> None:
    """Re-sending envelopes and transactions: applied once, whoever sends them again."""
    before = t.query("balance", address=t.checker.address)
    stx = t.sign_tx(t.customer, Transfer(to=t.checker.address, amount=7))
    env = Envelope.seal(t.customer, "ledger.submit", {"txs": [stx.hex()]}, t.network)
    t.post(env.to_bytes())
    t.post(env.to_bytes())  # an identical retry: the first answer again
    r = t.submit_raw(stx, relay=t.attacker)[0]  # the same signed tx, relayed by the attacker
    r2 = t.submit_raw(stx, relay=t.attacker)[0]
    moved = t.query("balance", address=t.checker.address) - before
    tally.check("a replayed transfer moved funds twice", moved == 7, f"moved {moved}")
    tally.check("a relayed copy of an applied tx", not r.get("ok") or bool(r.get("duplicate")), r)
    tally.check("a second relayed copy", not r2.get("ok") or bool(r2.get("duplicate")), r2)
    other = Envelope.seal(t.customer, "hub.info", {}, t.network, nonce=env.nonce)
    tally.http("a new body under a used nonce", t.post(other.to_bytes()))


def forged_signatures(t: Target, tally: Tally) -> None:
    """Envelopes whose body, signature or sender was changed after signing, or signed by another key."""
    env = Envelope.seal(
        t.customer, "ledger.query", {"q": "balance", "args": {"address": t.customer.address}}, t.network
    )
    altered = env.to_dict() | {"body": {"q": "supply", "args": {}}}
    tally.http("an altered body", t.post(json.dumps(altered).encode()))
    garbage = env.to_dict() | {"signature": "0x" + "11" * 65}
    tally.http("a garbage signature", t.post(json.dumps(garbage).encode()))
    spoof = Envelope.seal(t.attacker, "hub.info", {}, t.network).to_dict() | {"sender": t.customer.address}
    tally.http("a spoofed sender", t.post(json.dumps(spoof).encode()))
    zero_sig = env.to_dict() | {"signature": "0x" + "00" * 65}
    tally.http("an all-zero signature", t.post(json.dumps(zero_sig).encode()))


def forged_transactions(t: Target, tally: Tally) -> None:
    """Transactions in another's name: signed by the attacker, or altered after signing."""
    payload = SignedTx.payload(
        Transfer(to=t.attacker.address, amount=1_000),
        t.customer.address,
        t.query("nonce", address=t.customer.address),
        t.network,
    )
    data = canonical(payload)
    spoofed = canonical({**payload, "signature": to_hex(t.attacker.sign(data))})
    tally.tx("a transfer from the customer signed by the attacker", t.submit_raw(spoofed)[0])
    genuine = json.loads(t.sign_tx(t.customer, Transfer(to=t.checker.address, amount=1)))
    genuine["body"]["to"], genuine["body"]["amount"] = t.attacker.address, 10_000
    tally.tx("a signed transfer altered to pay the attacker", t.submit_raw(canonical(genuine))[0])


def wrong_network(t: Target, tally: Tally) -> None:
    """Envelopes and transactions signed for another network."""
    tally.http("an envelope for another network", t.send(t.attacker, "hub.info", {}, network="elsewhere"))
    raw = t.sign_tx(t.customer, Transfer(to=t.attacker.address, amount=1), network="elsewhere")
    tally.tx("a transaction for another network", t.submit_raw(raw)[0])


def stale_timestamps(t: Target, tally: Tally) -> None:
    """Envelopes from an hour ago or an hour ahead."""
    for delta in (-3_600_000, 3_600_000):
        tally.http(
            f"an envelope stamped {delta // 1000:+d} s",
            t.send(t.attacker, "hub.info", {}, timestamp=now_ms() + delta),
        )


def oversized(t: Target, tally: Tally) -> None:
    """Bodies, transactions, batches and uploads over their limits."""
    body = {"pad": "x" * (17 << 20)}
    tally.http("a 17 MiB envelope", t.send(t.attacker, "hub.info", body))
    big_tx = b'{"kind":"transfer","pad":"' + b"x" * 70_000 + b'"}'
    tally.tx("a 70 KB transaction", t.submit_raw(big_tx)[0])
    tally.http("a batch of 1,025 transactions", t.send(t.attacker, "ledger.submit", {"txs": ["00"] * 1_025}))
    stm = [{"task": t.task.task_id}] * 1_025
    tally.http("1,025 statements", t.send(t.attacker, "task.updates", {"statements": stm}))
    parts = urlsplit(t.url)
    auth = _upload_auth(t, t.customer, sha256_hex(b"huge"), 1 << 40)["X-Deai-Envelope"]
    head = (
        f"PUT /v1/blobs/{sha256_hex(b'huge')} HTTP/1.1\r\nHost: x\r\nX-Deai-Envelope: {auth}\r\n"
        f"Content-Length: {1 << 40}\r\n\r\n"
    ).encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as s:
        s.sendall(head)
        reply = s.recv(200).decode(errors="replace")
    code = int(reply.split()[1]) if reply.startswith("HTTP/") else None
    tally.check("a signed 1 TiB upload announced", code is not None and 400 <= code < 500, reply[:60])


def blob_path_traversal(t: Target, tally: Tally) -> None:
    """Digests that climb out of the blob folder."""
    for path in (
        "..%2Fledger.sqlite",
        "..%2F..%2Fhub%2Fhub.kv",
        "%2e%2e%2f%2e%2e%2fgenesis.json",
        "....//hub.url",
    ):
        r = t.http.get(f"{t.url}/v1/blobs/{path}")
        tally.check(f"GET /v1/blobs/{path}", r.status_code in (400, 404, 422), r.status_code)
    headers = _upload_auth(t, t.customer, "../../hub.url", 11)
    r = t.http.put(f"{t.url}/v1/blobs/..%2F..%2Fhub.url", content=b"http://evil", headers=headers)
    tally.check("a signed PUT over the hub's url file", 400 <= r.status_code < 500, r.status_code)


def blob_hash_mismatch(t: Target, tally: Tally) -> None:
    """An upload whose bytes do not hash to the digest it claims: never stored, never served."""
    wrong, data = sha256_hex(secrets.token_bytes(16)), b"not what the digest says"
    r = t.http.put(f"{t.url}/v1/blobs/{wrong}", content=data)
    tally.check("a hash-mismatched anonymous upload", 400 <= r.status_code < 500, r.status_code)
    headers = _upload_auth(t, t.customer, wrong, len(data))  # past the upload gate: the hash rules
    r = t.http.put(f"{t.url}/v1/blobs/{wrong}", content=data, headers=headers)
    tally.check("a hash-mismatched signed upload", 400 <= r.status_code < 500, r.status_code)
    tally.check("the mismatched blob served", t.http.get(f"{t.url}/v1/blobs/{wrong}").status_code == 404)


def privileged_transactions(t: Target, tally: Tally) -> None:
    """Minting, slashing and reputation by someone who is not the minter, slasher or oracle."""
    honest = t.honest[COMPUTE][0].address
    tally.tx("mint", t.submit(t.attacker, Mint(to=t.attacker.address, amount=10**6)))
    tally.tx("slash an honest host", t.submit(t.attacker, Slash(account=honest, role=COMPUTE, amount=100)))
    tally.tx("reputation", t.submit(t.attacker, UpdateReputation(account=honest, role=COMPUTE, delta=-1_000)))


def funds_rules(t: Target, tally: Tally) -> None:
    """Spending, staking and withdrawing what one does not have; amounts out of range."""
    a = t.attacker
    tally.tx("transfer without funds", t.submit(a, Transfer(to=t.checker.address, amount=1)))
    tally.tx("stake without funds", t.submit(a, Stake(role=COMPUTE, amount=1_000)))
    tally.tx("unstake without stake", t.submit(a, Unstake(role=COMPUTE, amount=1)))
    tally.tx("withdraw nothing", t.submit(a, Withdraw(role=COMPUTE)))
    tally.tx("stake below the minimum", t.submit(t.customer, Stake(role=COMPUTE, amount=1)))
    for label, amount in (("a negative amount", -5), ("a zero amount", 0)):
        tally.tx(f"transfer of {label}", t.submit(t.customer, Transfer(to=t.attacker.address, amount=amount)))
    raw = json.loads(t.sign_tx(t.customer, Transfer(to=t.attacker.address, amount=1)))
    raw["body"]["to"] = "0x" + "zz" * 20
    tally.tx("transfer to a malformed address", t.submit_raw(canonical(raw))[0])


def task_rules(t: Target, tally: Tally) -> None:
    """Acting as the coordinator of a task one does not coordinate, joining without stake."""
    task, a = t.task.task_id, t.attacker
    h = _rand_hash()
    tally.tx("checkpoint", t.submit(a, PostCheckpoint(task=task, round=1, checkpoint=h)))
    tally.tx("payout root", t.submit(a, PostPayoutRoot(task=task, epoch=7, root=h, total=1)))
    member = t.honest[DATA][0].address
    tally.tx("slash a member", t.submit(a, SlashMember(task=task, account=member, amount=1)))
    tally.tx("close another's task", t.submit(a, CloseTask(task=task)))
    tally.tx("join without stake", t.submit(a, JoinTask(task=task, role=DATA)))
    tally.tx("leave an open task", t.submit(a, LeaveTask(task=task)))
    tally.tx(
        "create a task under an existing id",
        t.submit(t.customer, CreateTask(task=task, budget=1, params=task)),
    )
    tally.tx("create a task without funds", t.submit(a, CreateTask(task=h, budget=10**6, params=h)))


def commit_reveal_rules(t: Target, tally: Tally) -> None:
    """Every commit-reveal rule, broken by the sybil (drawn) and the attacker (not drawn)."""
    fee, n = _job_fee(t), _eligible_computes(t)
    # Windows long enough for the attempts before each deadline on a busy machine.
    job, salt, r = _register(t, t.customer, fee=fee, executors=n, commit_ms=6_000, reveal_ms=4_000)
    if not r.get("ok"):
        tally.notes.append(f"(cannot register the job to attack: {r})")
        tally.check("a job to attack", False, r)
        return
    data = _event(r, "job_registered")
    s, digest, rsalt = t.sybil, _rand_hash(), commitments.new_salt()
    commitment = commitments.result_commitment(job, s.address, digest, rsalt)
    tally.tx("commit by an executor not drawn", t.submit(t.attacker, Commit(job=job, commitment=commitment)))
    tally.tx("reveal without a commit", t.submit(s, Reveal(job=job, digest=digest, salt=rsalt)))
    t.submit(s, Commit(job=job, commitment=commitment))
    tally.tx("a second commit", t.submit(s, Commit(job=job, commitment=_rand_hash())))
    tally.tx(
        "reveal before the commit window closed", t.submit(s, Reveal(job=job, digest=digest, salt=rsalt))
    )
    replication = RevealReplication(job=job, replicated=True, primary=0, salt=salt)
    tally.tx("replication revealed by another than the creator", t.submit(t.attacker, replication))
    tally.tx("resolve before the deadline", t.submit(t.attacker, ResolveJob(job=job)))
    tally.tx(
        "accept_result on a job without a resolver",
        t.submit(t.attacker, AcceptResult(job=job, accepted=(s.address,))),
    )
    t.wait_until(data["commit_deadline"])
    late = t.honest[COMPUTE][0]  # drawn (every eligible executor is), never committed
    late_commit = Commit(job=job, commitment=commitments.result_commitment(job, late.address, digest, rsalt))
    tally.tx("a commit after the deadline", t.submit(late, late_commit))
    bad = RevealReplication(job=job, replicated=False, primary=0, salt=salt)
    tally.tx("a replication reveal that does not match", t.submit(t.customer, bad))
    tally.tx(
        "a reveal that does not match the commit",
        t.submit(s, Reveal(job=job, digest=_rand_hash(), salt=rsalt)),
    )
    t.wait_until(data["reveal_deadline"])
    tally.tx("a reveal after the deadline", t.submit(s, Reveal(job=job, digest=digest, salt=rsalt)))


def claim_rules(t: Target, tally: Tally) -> None:
    """Claims with another's proof, a wrong amount, twice, past the pool, on no payout."""
    tree, task = t.claim_tree, t.claim_task
    proof = tuple(tree.proof(t.sybil.address))
    tally.tx(
        "a claim with another's proof",
        t.submit(t.attacker, ClaimPayout(task=task, epoch=0, amount=100, proof=proof)),
    )
    tally.tx(
        "a claim of more than the leaf",
        t.submit(t.sybil, ClaimPayout(task=task, epoch=0, amount=101, proof=proof)),
    )
    first = t.submit(t.sybil, ClaimPayout(task=task, epoch=0, amount=100, proof=proof))
    if not first.get("ok") and first.get("error") != "DoubleClaim":
        tally.notes.append(f"(the sybil's own claim failed: {first})")
    tally.tx("a second claim", t.submit(t.sybil, ClaimPayout(task=task, epoch=0, amount=100, proof=proof)))
    proof2 = tuple(tree.proof(t.sybil2.address))
    tally.tx(
        "a claim past the pool's total",
        t.submit(t.sybil2, ClaimPayout(task=task, epoch=0, amount=100, proof=proof2)),
    )
    tally.tx(
        "a claim on a payout never posted",
        t.submit(t.sybil, ClaimPayout(task=task, epoch=9, amount=100, proof=proof)),
    )
    royalty = ClaimRoyalty(model=_rand_hash(), shares=10_000, proof=())
    tally.tx("a royalty claim on no model", t.submit(t.attacker, royalty))
    fee = PayInferenceFee(model=_rand_hash(), amount=10, hosts=(t.attacker.address,))
    tally.tx("an inference fee to an unstaked host", t.submit(t.customer, fee))


def mutated_envelopes(t: Target, tally: Tally) -> None:
    """A signed transfer's envelope with one byte changed, 40 ways (seeded): never applied, never
    a 5xx -- each one is a clean refusal."""
    rng = random.Random(12)
    before = t.query("balance", address=t.attacker.address)
    stx = t.sign_tx(t.customer, Transfer(to=t.attacker.address, amount=5))
    raw = bytearray(Envelope.seal(t.customer, "ledger.submit", {"txs": [stx.hex()]}, t.network).to_bytes())
    for i in range(40):
        mutated = bytearray(raw)
        pos = rng.randrange(len(mutated))
        mutated[pos] = rng.choice([c for c in b'0123456789abcdefx{}[]":, \\' if c != mutated[pos]])
        answer = t.post(bytes(mutated))
        tally.check(f"mutation {i} at byte {pos}", answer.refused, answer)
    after = t.query("balance", address=t.attacker.address)
    tally.check("a mutated transfer paid the attacker", after == before, f"{before} -> {after}")


def _random_value(t: Target, rng: random.Random, kind: str) -> Any:
    """A value for a transaction field of annotation ``kind``, drawn from what an attacker knows:
    the network's accounts, tasks and jobs, and edge amounts."""
    addresses = [a.address for accts in t.honest.values() for a in accts]
    addresses += [t.attacker.address, t.hub_address, t.proc.minter.address, t.sybil.address]
    hashes = [t.task.task_id, t.claim_task, "0x" + t.task.spec.init, _rand_hash()]
    ints = [0, 1, 3, 100, 10**6, 2**40, 2**53 - 1]
    table: dict[str, Callable[[], Any]] = {
        "Address": lambda: rng.choice(addresses),
        "OptAddress": lambda: rng.choice([None, *addresses]),
        "Hash": lambda: rng.choice(hashes),
        "OptHash": lambda: rng.choice([None, *hashes]),
        "Hashes": lambda: tuple(rng.sample(hashes, rng.randint(0, 2))),
        "Proof": lambda: rng.choice([(), tuple(t.claim_tree.proof(t.sybil.address))]),
        "Addresses": lambda: tuple(rng.sample(addresses, rng.randint(1, 3))),
        "Role": lambda: rng.choice([COMPUTE, DATA, HOST]),
        "Label": lambda: "x",
        "Bool": lambda: rng.random() < 0.5,
    }
    return table[kind]() if kind in table else rng.choice(ints)


def random_transactions(t: Target, tally: Tally) -> None:
    """Seeded random transactions of every kind, fields drawn from the network's own accounts,
    tasks and edge amounts, signed by the unfunded attacker: whatever the ledger applies, the
    attacker gains nothing, and no request fails with a 5xx (harm to anyone else or to the supply
    is caught by the checks around every attack)."""
    rng = random.Random(7)
    kinds = [getattr(txs_module, name) for name in txs_module.__all__]
    applied: Counter[str] = Counter()
    failures = []
    for _ in range(40 if SMALL else 120):
        cls = rng.choice(kinds)
        values = {f.name: _random_value(t, rng, str(f.type)) for f in dataclasses.fields(cls)}
        result = t.submit(t.attacker, cls(**values))
        if result.get("ok"):
            applied[cls.kind] += 1
        elif not tx_refused(result):
            failures.append(result)
    if applied:
        tally.notes.append(f"(applied, harmless unless the checks say otherwise: {dict(applied)})")
    tally.check("a random transaction answered with a 5xx", not failures, failures[:2])
    holdings = t.query("balance", address=t.attacker.address) + sum(
        t.query("stake", address=t.attacker.address, role=r) for r in (COMPUTE, DATA, HOST)
    )
    tally.check("the unfunded attacker gained", holdings == 0, holdings)


def malformed_requests(t: Target, tally: Tally) -> None:
    """Garbage, wrong shapes, unknown types and queries, statements that are not statements."""
    tally.http("garbage bytes", t.post(b"\x00\xff garbage"))
    tally.http("a JSON list", t.post(b"[1, 2, 3]"))
    tally.http("an envelope without fields", t.post(b'{"type": "hub.info"}'))
    tally.http("an unknown message type", t.send(t.attacker, "hub.shutdown", {}))
    tally.http("an unknown query", t.send(t.attacker, "ledger.query", {"q": "private_key", "args": {}}))
    tally.http(
        "a bad address argument", t.send(t.attacker, "ledger.query", {"q": "balance", "args": {"address": 5}})
    )
    tally.http("a negative cursor", t.send(t.attacker, "ledger.events", {"since": -1}))
    tally.http("non-hex transactions", t.send(t.attacker, "ledger.submit", {"txs": ["zz"]}))
    r = t.send(t.attacker, "task.updates", {"statements": [{"task": t.task.task_id, "round": 1}]})
    ok = r.refused or (r.status == 200 and not any(x.get("accepted") for x in r.data["results"]))
    tally.check("a statement that is not signed", ok, r)
    tally.http("an unknown task's status", t.send(t.attacker, "task.status", {"task": _rand_hash()}))


def _attack(fn: Callable[[Target, Tally], None], finding: str, **kw: Any) -> Attack:
    return Attack(fn.__name__, finding, fn, (fn.__doc__ or "").strip(), **kw)


CATALOGUE: list[Attack] = [
    # finding 1
    _attack(job_without_fee, "1"),
    _attack(job_quorum_one, "1"),
    _attack(job_huge_window, "1"),
    _attack(job_data_provider_role, "1"),
    _attack(job_host_without_model, "1"),
    _attack(job_slashes_non_committers, "1"),
    # finding 2
    _attack(deep_json_envelope, "2"),
    # finding 4, 6, 7, 10 (harmless to the shared network when they get through)
    _attack(model_id_squatting, "4"),
    _attack(read_reply_cache, "6"),
    _attack(unauthenticated_upload, "7"),
    _attack(unfunded_upload, "7"),
    _attack(big_int_literal, "10"),
    _attack(future_stamped_envelope, "10"),
    _attack(unstake_after_join, "10"),
    _attack(rate_flood, "10"),
    _attack(slow_body_uploads, "10", slow=True),
    # classic
    _attack(replays, "classic"),
    _attack(forged_signatures, "classic"),
    _attack(forged_transactions, "classic"),
    _attack(wrong_network, "classic"),
    _attack(stale_timestamps, "classic"),
    _attack(oversized, "classic"),
    _attack(blob_path_traversal, "classic"),
    _attack(blob_hash_mismatch, "classic"),
    _attack(privileged_transactions, "classic"),
    _attack(funds_rules, "classic"),
    _attack(task_rules, "classic"),
    _attack(commit_reveal_rules, "classic"),
    _attack(claim_rules, "classic"),
    _attack(malformed_requests, "classic"),
    _attack(mutated_envelopes, "classic"),
    _attack(random_transactions, "classic"),
    # these may leave a hub stuck or crashing on the old code: last, and on a network of their own in tests
    _attack(deep_json_model_document, "2", fresh=True),
    _attack(budget0_task_huge_fee, "5", fresh=True),
    _attack(free_task, "8", fresh=True),
    _attack(bad_model_kwargs_task, "3", fresh=True),
    _attack(tampered_ledger, "9", slow=True),
]
