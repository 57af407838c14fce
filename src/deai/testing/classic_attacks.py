"""The classic attacks, refused before issue 12 and kept covered: replays, forgery, wrong network,
stale stamps, sizes, path traversal, hash mismatch, privileged transactions, the funds / task /
commit-reveal / claim rules, mutated envelopes, random transactions and malformed requests. Each is
``fn(target, tally)``; the catalogue (:data:`deai.testing.attacks.CATALOGUE`) lists them."""

from __future__ import annotations

import dataclasses
import json
import random
import secrets
import socket
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from deai.core.encoding import canonical, sha256_hex, to_hex
from deai.core.envelope import Envelope, now_ms
from deai.ledger import commitments
from deai.ledger import txs as txs_module
from deai.ledger.config import COMPUTE, DATA, HOST
from deai.ledger.tx import SignedTx
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
from deai.testing.target import (
    SMALL,
    Tally,
    Target,
    eligible_computes,
    event_of,
    job_fee,
    rand_hash,
    register_job,
    tx_refused,
    upload_auth,
)

__all__ = [
    "blob_hash_mismatch",
    "blob_path_traversal",
    "claim_rules",
    "commit_reveal_rules",
    "forged_signatures",
    "forged_transactions",
    "funds_rules",
    "malformed_requests",
    "mutated_envelopes",
    "oversized",
    "privileged_transactions",
    "random_transactions",
    "replays",
    "stale_timestamps",
    "task_rules",
    "wrong_network",
]

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
    auth = upload_auth(t, t.customer, sha256_hex(b"huge"), 1 << 40)["X-Deai-Envelope"]
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
    headers = upload_auth(t, t.customer, "../../hub.url", 11)
    r = t.http.put(f"{t.url}/v1/blobs/..%2F..%2Fhub.url", content=b"http://evil", headers=headers)
    tally.check("a signed PUT over the hub's url file", 400 <= r.status_code < 500, r.status_code)


def blob_hash_mismatch(t: Target, tally: Tally) -> None:
    """An upload whose bytes do not hash to the digest it claims: never stored, never served."""
    wrong, data = sha256_hex(secrets.token_bytes(16)), b"not what the digest says"
    r = t.http.put(f"{t.url}/v1/blobs/{wrong}", content=data)
    tally.check("a hash-mismatched anonymous upload", 400 <= r.status_code < 500, r.status_code)
    headers = upload_auth(t, t.customer, wrong, len(data))  # past the upload gate: the hash rules
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
    h = rand_hash()
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
    fee, n = job_fee(t), eligible_computes(t)
    # Windows long enough for the attempts before each deadline on a busy machine.
    job, salt, r = register_job(t, t.customer, fee=fee, executors=n, commit_ms=6_000, reveal_ms=4_000)
    if not r.get("ok"):
        tally.notes.append(f"(cannot register the job to attack: {r})")
        tally.check("a job to attack", False, r)
        return
    data = event_of(r, "job_registered")
    s, digest, rsalt = t.sybil, rand_hash(), commitments.new_salt()
    commitment = commitments.result_commitment(job, s.address, digest, rsalt)
    tally.tx("commit by an executor not drawn", t.submit(t.attacker, Commit(job=job, commitment=commitment)))
    tally.tx("reveal without a commit", t.submit(s, Reveal(job=job, digest=digest, salt=rsalt)))
    t.submit(s, Commit(job=job, commitment=commitment))
    tally.tx("a second commit", t.submit(s, Commit(job=job, commitment=rand_hash())))
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
        t.submit(s, Reveal(job=job, digest=rand_hash(), salt=rsalt)),
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
    royalty = ClaimRoyalty(model=rand_hash(), shares=10_000, proof=())
    tally.tx("a royalty claim on no model", t.submit(t.attacker, royalty))
    fee = PayInferenceFee(model=rand_hash(), amount=10, hosts=(t.attacker.address,))
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
    hashes = [t.task.task_id, t.claim_task, "0x" + t.task.spec.init, rand_hash()]
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
    tally.http("an unknown task's status", t.send(t.attacker, "task.status", {"task": rand_hash()}))
