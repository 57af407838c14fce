"""The participant's view of a hub: signed requests, ledger submits with nonces, blobs.

:class:`HubClient` works over any :class:`~deai.net.transport.Transport`. It seals every request
as a signed envelope, keeps each account's next ledger nonce, batches transactions (one
``ledger.submit`` per call, chunked at :data:`~deai.node.hub.server.MAX_BATCH`), and retries safely: the
transport retries identical envelopes (answered once by the hub), and an envelope refused as a
replay after a hub restart is re-sealed and sent again (every hub handler is idempotent).

The hub is another party: its answers are parsed as foreign bytes by the transport, and the fields
this client relies on are type-checked here; a malformed answer is a :class:`RemoteError`
``MalformedAnswer``, never a KeyError or TypeError in a daemon's loop.

Where the ledger is a chain, a client made with ``chain=`` (its own view of the ledger contract,
e.g. :class:`~deai.ledger.evm.backend.EvmLedger` on the participant's RPC URL) reads every ledger
query, its nonces and the event log from that view and never from the hub: the hub then only relays
signed transactions (it can refuse or delay one, not forge or alter it; a refused one shows as a
nonce that did not move) and the off-chain coordination messages.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.core.envelope import Envelope
from deai.ledger.base import Ledger
from deai.ledger.errors import LedgerError, MalformedRecord
from deai.ledger.queries import answer_query
from deai.ledger.records import (
    JobRecord,
    MemberRecord,
    ModelRecord,
    PayoutRecord,
    Record,
    TaskRecord,
    UnbondingRecord,
)
from deai.ledger.tx import SignedTx, Tx
from deai.net.transport import RemoteError, Transport
from deai.protocol.task.records import MalformedView, RoundView, TaskView

__all__ = ["RECORD_QUERIES", "SEAL", "HubClient", "TxFailed", "parse_record"]

SEAL = "task.seal"  # hand a hidden scoring set to the hub: {"task": id, "data": base64 bytes}

CHUNK = 1024
# ledger queries whose answer is a record: parsed here, at the edge, so daemons read attributes
RECORD_QUERIES: dict[str, type[Record]] = {
    "task": TaskRecord,
    "member": MemberRecord,
    "unbonding": UnbondingRecord,
    "payout": PayoutRecord,
    "job": JobRecord,
    "model": ModelRecord,
}
PARALLEL = 4  # blob transfers at once (put_blobs, fetch_many) over a concurrent transport


class TxFailed(RemoteError):
    """The ledger refused a transaction submitted through the hub."""


def _field(reply: Any, key: str, kind: type | tuple[type, ...], what: str) -> Any:
    """``reply[key]`` if the answer is an object holding it with the protocol's type, else a
    RemoteError ``MalformedAnswer`` naming what was wrong."""
    value = reply.get(key, _field) if isinstance(reply, dict) else _field
    if value is _field or not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise RemoteError(200, "MalformedAnswer", f"the hub's {what} answer has no valid {key!r}")
    return value


def parse_record(q: str, result: Any) -> Any:
    """The hub's answer to query ``q`` as its record (None stays None; other queries unchanged);
    a malformed record is a RemoteError ``MalformedAnswer`` naming the fault."""
    cls = RECORD_QUERIES.get(q)
    if cls is None or result is None:
        return result
    try:
        return cls.from_json(result)
    except MalformedRecord as exc:
        raise RemoteError(200, "MalformedAnswer", f"the hub's {q} record: {exc}") from None


class HubClient:
    """Signed requests to a hub over ``transport``; ``chain``: the participant's own view of an
    on-chain ledger, from which ledger reads come instead of the hub (see the module docstring)."""

    def __init__(
        self, transport: Transport, network: str, signer: Account, *, chain: Ledger | None = None
    ) -> None:
        self.transport, self.network, self.signer = transport, network, signer
        self.chain = chain
        self.nonces: dict[str, int] = {}
        self._pool: ThreadPoolExecutor | None = None

    # -- requests ------------------------------------------------------------------------------------

    def call(self, type: str, body: dict[str, Any] | None = None, *, account: Account | None = None) -> dict:
        acct = account or self.signer
        env = Envelope.seal(acct, type, body or {}, self.network)
        try:
            return self.transport.send(env)
        except RemoteError as exc:
            if exc.status != 409:
                raise
            return self.transport.send(Envelope.seal(acct, type, body or {}, self.network))

    def call_many(self, requests: Sequence[tuple[str, dict[str, Any] | None, Account | None]]) -> list[dict]:
        """Several :meth:`call` ``(type, body, account)`` at once (over a network transport);
        answers in order."""
        return self._map(lambda r: self.call(r[0], r[1], account=r[2]), requests)

    def info(self) -> dict:
        return self.call("hub.info")

    def query(self, q: str, **args: Any) -> Any:
        """The answer to ledger query ``q``; a record query (:data:`RECORD_QUERIES`) answers its
        record or None, a malformed one raising RemoteError ``MalformedAnswer``."""
        if self.chain is not None:  # the chain itself, not the hub's word
            try:
                return parse_record(q, answer_query(self.chain, q, args))
            except LedgerError as exc:
                raise RemoteError(400, type(exc).__name__, str(exc)) from None
        result = _field(self.call("ledger.query", {"q": q, "args": args}), "result", object, "ledger.query")
        return parse_record(q, result)

    def query_many(self, queries: Sequence[tuple[str, dict[str, Any]]]) -> list[Any]:
        """Several :meth:`query` ``(q, args)`` at once (over a network transport); answers in order."""
        if self.chain is not None:
            return [self.query(q, **args) for q, args in queries]
        replies = self.call_many([("ledger.query", {"q": q, "args": args}, None) for q, args in queries])
        return [
            parse_record(q, _field(r, "result", object, "ledger.query"))
            for (q, _), r in zip(queries, replies, strict=True)
        ]

    def job(self, job_id: str) -> JobRecord | None:
        return self.query("job", job_id=job_id)

    def task(self, task_id: str) -> TaskRecord | None:
        return self.query("task", task_id=task_id)

    def model(self, model_id: str) -> ModelRecord | None:
        return self.query("model", model_id=model_id)

    def member(self, task_id: str, address: str) -> MemberRecord | None:
        return self.query("member", task_id=task_id, address=address)

    def task_status(self, task: str) -> TaskView:
        """The hub's ``task.status`` answer, parsed here (a malformed one: ``MalformedAnswer``)."""
        reply = self.call("task.status", {"task": task})
        try:
            return TaskView.from_json(reply)
        except MalformedView as exc:
            raise RemoteError(200, "MalformedAnswer", f"the hub's task.status answer: {exc}") from None

    def task_round(self, task: str) -> RoundView:
        """The hub's ``task.round`` answer, parsed here (a malformed one: ``MalformedAnswer``)."""
        reply = self.call("task.round", {"task": task})
        try:
            return RoundView.from_json(reply)
        except MalformedView as exc:
            raise RemoteError(200, "MalformedAnswer", f"the hub's task.round answer: {exc}") from None

    def events(self, since: int = 0, limit: int = 1000) -> tuple[list[dict], int]:
        """A page of the ledger's events from ``since`` and the cursor after it."""
        if self.chain is not None:
            events = self.chain.events(since, limit)
            page = [{"seq": e.seq, "height": e.height, "kind": e.kind, "data": e.data} for e in events]
            return page, events[-1].seq + 1 if events else since
        reply = self.call("ledger.events", {"since": since, "limit": limit})
        return _field(reply, "events", list, "ledger.events"), _field(reply, "next", int, "ledger.events")

    # -- transactions ---------------------------------------------------------------------------------

    def sign(self, account: Account, tx: Tx) -> SignedTx:
        a = account.address
        if a not in self.nonces:
            nonce = self.query("nonce", address=a)
            if not isinstance(nonce, int) or isinstance(nonce, bool) or nonce < 0:
                raise RemoteError(200, "MalformedAnswer", f"the hub's nonce for {a} is {str(nonce)[:40]}")
            self.nonces[a] = nonce
        stx = SignedTx.create(account, tx, nonce=self.nonces[a], network=self.network)
        self.nonces[a] += 1
        return stx

    def submit(self, items: Sequence[tuple[Account, Tx]], *, check: bool = True) -> list[dict]:
        """Sign and submit ``(account, tx)`` pairs in order; with ``check``, raise on a refusal."""
        signed = [self.sign(acct, tx) for acct, tx in items]
        results = self.submit_signed(signed)
        failed = [(s, r) for s, r in zip(signed, results, strict=True) if not r["ok"]]
        if failed:
            for s, _ in failed:
                self.nonces.pop(s.sender, None)  # re-read the nonce next time
            for s in signed:
                self.nonces.pop(s.sender, None)
            if check:
                s, r = failed[0]
                error, reason = str(r.get("error", ""))[:200], str(r.get("reason", ""))[:2000]
                raise TxFailed(400, error, f"{s.kind} from {s.sender}: {reason}")
        return results

    def send_tx(self, account: Account, tx: Tx) -> dict:
        return self.submit([(account, tx)])[0]

    def submit_signed(self, txs: Iterable[SignedTx]) -> list[dict]:
        txs = list(txs)
        out: list[dict] = []
        for i in range(0, len(txs), CHUNK):
            chunk = [t.to_bytes().hex() for t in txs[i : i + CHUNK]]
            results = _field(self.call("ledger.submit", {"txs": chunk}), "results", list, "ledger.submit")
            if len(results) != len(chunk) or not all(isinstance(r, dict) and "ok" in r for r in results):
                raise RemoteError(
                    200, "MalformedAnswer", "the hub's ledger.submit answer has no result per tx"
                )
            out.extend(results)
        if self.chain is not None:  # read what the hub relayed from the chain, not an older block
            self.chain.refresh()
        return out

    # -- blobs ------------------------------------------------------------------------------------------

    def put_blob(self, data: bytes, expected: str | None = None, *, account: Account | None = None) -> str:
        """Upload ``data`` as ``account`` (default: the signer), which the hub charges for it until
        something refers to the blob; it needs stake in some role or a balance there."""
        return self.transport.put_blob(
            data, expected=expected, account=account or self.signer, network=self.network
        )

    def seal(self, task: str, data: bytes, *, account: Account | None = None) -> str:
        """Hand one of ``task``'s hidden scoring sets to the hub, which keeps it sealed (never
        served) until the coordinator reveals it at its round; returns its digest."""
        body = {"task": task, "data": base64.b64encode(data).decode("ascii")}
        return self.call(SEAL, body, account=account)["sealed"]

    def put_blobs(self, blobs: Sequence[tuple[bytes, str]]) -> list[str]:
        """Upload ``(data, expected digest)`` pairs, several at once over a network transport."""
        return self._map(lambda item: self.put_blob(*item), blobs)

    def get_blob(self, digest: str) -> bytes:
        return self.transport.get_blob(digest)

    def fetch_to(self, store: BlobStore, digest: str) -> None:
        """Bring a blob into ``store`` (verified by hash on the way) unless it is already there."""
        if digest not in store:
            store.put_stream(self.transport.iter_blob(digest), expected=digest)

    def fetch_many(self, store: BlobStore, digests: Iterable[str]) -> None:
        """:meth:`fetch_to` for several blobs, several at once over a network transport."""
        missing = [d for d in dict.fromkeys(digests) if d not in store]
        self._map(lambda d: self.fetch_to(store, d), missing)

    def _map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        """``fn`` over ``items`` in order; on a concurrent transport (HTTP) on a few threads, so
        transfers overlap (hashing and socket I/O release the GIL). Errors are raised as usual."""
        if len(items) < 2 or not self.transport.concurrent:
            return [fn(x) for x in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(PARALLEL, thread_name_prefix="deai-transfer")
        return list(self._pool.map(fn, items))
