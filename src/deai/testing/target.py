"""The network under attack: a hub process on loopback with honest and attacking accounts.

:class:`Target` builds it (reusing :class:`~deai.node.launch.processes.ProcessNetwork`) and holds the
accounts the attacks play: the ``attacker`` (no funds, no stake: it can sign anything and send any
bytes), a ``customer`` (a funded stranger with no role, who may upload blobs and pay fees) and a
``sybil`` (the minimum compute and data stakes). Honest participants are staked accounts that run no
daemon. :class:`Answer`, :class:`Tally` and :class:`Outcome` are what an attack reports; the helpers
at the end are how attacks reach the network (job registration, blob uploads and their signed
authorization). The catalogue itself is :mod:`deai.testing.attacks`.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from deai.core.accounts import Account
from deai.core.encoding import canonical, sha256_hex, to_hex
from deai.core.envelope import Envelope
from deai.ledger import commitments
from deai.ledger.config import COMPUTE, DATA, HOST
from deai.ledger.merkle import payout_tree
from deai.ledger.tx import SignedTx, Tx
from deai.ledger.txs import (
    CreateTask,
    Mint,
    PostPayoutRoot,
    RegisterJob,
    Stake,
    Transfer,
)
from deai.node.launch.processes import ProcessNetwork

__all__ = [
    "SLOW_BODY_DEADLINE_S",
    "SMALL",
    "TASK_BUDGET",
    "Answer",
    "Outcome",
    "Tally",
    "Target",
    "blob_put",
    "blob_stored",
    "eligible_computes",
    "event_of",
    "job_fee",
    "rand_hash",
    "register_job",
    "tx_refused",
    "upload_auth",
]

SMALL = os.environ.get("DEAI_SMALL") == "1"
# Stakes of the honest participants, and what everyone starts with.
HONEST_STAKE = {DATA: 500, COMPUTE: 20_000, HOST: 20_000}
HONEST_COUNT = {DATA: 3, COMPUTE: 4, HOST: 2}
TASK_BUDGET = 1_000_000
FILLER_ENTRIES = 300  # log entries made at setup so that `ledger.entries` replies are large
# How long a hub may take to cut off an upload whose body stalls (a body deadline), before the
# slow-body attack counts the connection as held.
SLOW_BODY_DEADLINE_S = float(os.environ.get("DEAI_SLOW_BODY_DEADLINE_S", "40"))


def rand_hash() -> str:
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
        self.claim_task = rand_hash()
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
        from deai.node.user.submit import make_task
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
        from deai.node.user.submit import submit_task

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


# -- helpers shared by the job attacks ---------------------------------------------------------------------


def job_fee(t: Target) -> int:
    """A fee that a paying customer may offer and that the sybil's minimum stake may take."""
    config = t.call("hub.info")["config"]
    return max(int(config.get("min_job_fee", 1)), 10)


def register_job(
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
    job, salt = rand_hash(), commitments.new_salt()
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


def event_of(result: dict, kind: str) -> dict:
    for e in result.get("events", []):
        if e["kind"] == kind:
            return e["data"]
    raise KeyError(f"no {kind} event in {result}")


def eligible_computes(t: Target) -> int:
    return len(t.honest[COMPUTE]) + 1  # the honest ones and the sybil


def blob_put(t: Target, data: bytes, headers: dict[str, str] | None = None) -> Answer:
    try:
        r = t.http.put(f"{t.url}/v1/blobs/{sha256_hex(data)}", content=data, headers=headers or {})
    except httpx.HTTPError as exc:
        return Answer(None, str(exc))
    try:
        return Answer(r.status_code, r.json())
    except ValueError:
        return Answer(r.status_code, r.text[:200])


def blob_stored(t: Target, data: bytes) -> bool:
    return t.http.get(f"{t.url}/v1/blobs/{sha256_hex(data)}").status_code == 200


def upload_auth(t: Target, account: Account, digest: str, size: int) -> dict[str, str]:
    """The header that authorizes an upload: a ``blob.put`` envelope ``{digest, size}`` signed by
    ``account`` (its wire bytes), sealed here without checking what it says."""
    env = Envelope.seal(account, "blob.put", {"digest": digest, "size": size}, t.network)
    return {"X-Deai-Envelope": env.to_bytes().decode()}
