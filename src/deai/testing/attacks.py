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
:class:`~deai.node.launch.processes.ProcessNetwork`) and holds the honest and attacking accounts. The
adversarial test suite and ``benchmarks/attacks.py`` run the same :data:`CATALOGUE`::

    with Target.start(tmp_path) as target:
        for attack in CATALOGUE:
            print(run_attack(target, attack))
"""

from __future__ import annotations

import json
import secrets
import select
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from deai.core.accounts import Account
from deai.core.encoding import sha256_hex
from deai.core.envelope import Envelope, now_ms
from deai.ledger import commitments
from deai.ledger.config import COMPUTE, DATA, HOST
from deai.ledger.txs import (
    Commit,
    JoinTask,
    RegisterModel,
    ResolveJob,
    Reveal,
    RevealReplication,
    Stake,
    Transfer,
    Unstake,
)
from deai.node.launch.processes import ProcessNetwork
from deai.testing.classic_attacks import (
    blob_hash_mismatch,
    blob_path_traversal,
    claim_rules,
    commit_reveal_rules,
    forged_signatures,
    forged_transactions,
    funds_rules,
    malformed_requests,
    mutated_envelopes,
    oversized,
    privileged_transactions,
    random_transactions,
    replays,
    stale_timestamps,
    task_rules,
    wrong_network,
)
from deai.testing.target import (
    SLOW_BODY_DEADLINE_S,
    SMALL,
    TASK_BUDGET,
    Answer,
    Outcome,
    Tally,
    Target,
    blob_put,
    blob_stored,
    eligible_computes,
    event_of,
    job_fee,
    rand_hash,
    register_job,
    upload_auth,
)

__all__ = ["CATALOGUE", "Answer", "Attack", "Outcome", "Tally", "Target", "run_attack", "run_catalogue"]

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


# -- finding 1: jobs nobody asked for ----------------------------------------------------------------------


def job_without_fee(t: Target, tally: Tally) -> None:
    """An unfunded outsider registers a job: fee 0, and a fee it cannot pay."""
    _, _, r = register_job(t, t.attacker, fee=0, executors=3)
    tally.tx("unfunded register_job with fee 0", r)
    _, _, r = register_job(t, t.attacker, fee=job_fee(t), executors=3)
    tally.tx("unfunded register_job with a fee it cannot pay", r)


def job_quorum_one(t: Target, tally: Tally) -> None:
    """A paying customer asks a quorum of 1 out of 3 (one Sybil could decide the result)."""
    _, _, r = register_job(t, t.customer, fee=job_fee(t), executors=3, quorum=1)
    tally.tx("register_job with quorum 1 of 3", r)


def job_huge_window(t: Target, tally: Tally) -> None:
    """A paying customer asks 2^40 ms windows (would freeze drawn stakes for ~35 years)."""
    fee = job_fee(t)
    _, _, r = register_job(t, t.customer, fee=fee, executors=3, commit_ms=2**40)
    tally.tx("register_job with a 2^40 ms commit window", r)
    _, _, r = register_job(t, t.customer, fee=fee, executors=3, reveal_ms=2**40)
    tally.tx("register_job with a 2^40 ms reveal window", r)
    if any(t.query("locked", address=a.address, role=COMPUTE) for a in t.honest[COMPUTE]):
        tally.check("huge-window jobs lock honest stakes", False, "an honest compute stake is locked")


def job_data_provider_role(t: Target, tally: Tally) -> None:
    """A paying customer draws data providers (who never execute jobs) as executors."""
    _, _, r = register_job(t, t.customer, fee=job_fee(t), executors=2, role=DATA)
    tally.tx("register_job drawing data providers", r)


def job_host_without_model(t: Target, tally: Tally) -> None:
    """A paying customer draws hosts for a job that serves no registered model."""
    _, _, r = register_job(t, t.customer, fee=job_fee(t), executors=2, role=HOST)
    tally.tx("register_job drawing hosts without a model", r)


def job_slashes_non_committers(t: Target, tally: Tally) -> None:
    """The finding's full attack: a customer registers a short job drawing every compute provider
    (the sybil among them); honest executors never hear of it; the sybil commits and reveals, the
    job is resolved, and whoever stayed silent would be slashed. Refused if no honest stake is lost
    or locked (the ledger may accept the job: drawing alone must endanger nobody)."""
    fee, n = job_fee(t), eligible_computes(t)
    job, salt, r = register_job(t, t.customer, fee=fee, executors=n, commit_ms=3_000, reveal_ms=3_000)
    if not r.get("ok"):
        tally.check("a short job drawing everyone is refused", True)
        return
    data = event_of(r, "job_registered")
    digest, rsalt = rand_hash(), commitments.new_salt()
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
        model=model, task=None, provenance=rand_hash(), document=digest, total_shares=10_000, host_bps=5_000
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
    doc = rand_hash()
    for label, model, on_task in (
        ("the old id scheme (0x + checkpoint digest)", checkpoint, None),
        ("the coordinator's id, outside the task", commitments.model_id(t.hub_address, task, doc), None),
        ("the coordinator's id, naming the task", commitments.model_id(t.hub_address, task, doc), task),
    ):
        tx = RegisterModel(
            model=model, task=on_task, provenance=rand_hash(), document=doc, total_shares=10_000, host_bps=0
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


def unauthenticated_upload(t: Target, tally: Tally) -> None:
    """Blob uploads by nobody in particular: no identity, no quota (200 MB in 3 s)."""
    data = secrets.token_bytes(256 << 10)
    answer = blob_put(t, data)
    tally.check("an anonymous upload", answer.refused and not blob_stored(t, data), answer)


def unfunded_upload(t: Target, tally: Tally) -> None:
    """Uploads signed by an identity with no funds and no stake (a free, endless Sybil supply),
    and a funded upload larger than the size its authorization declared."""
    data = secrets.token_bytes(256 << 10)
    answer = blob_put(t, data, upload_auth(t, t.attacker, sha256_hex(data), len(data)))
    tally.check(
        "an upload signed by an unfunded identity", answer.refused and not blob_stored(t, data), answer
    )
    data = secrets.token_bytes(1000)  # a funded uploader is held to the size it signed for
    answer = blob_put(t, data, upload_auth(t, t.customer, sha256_hex(data), 10))
    tally.check("an upload larger than it declared", answer.refused and not blob_stored(t, data), answer)


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
