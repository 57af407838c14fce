"""The participant's view of a hub: signed requests, ledger submits with nonces, blobs.

:class:`HubClient` works over any :class:`~deai.net.transport.Transport`. It seals every request
as a signed envelope, keeps each account's next ledger nonce, batches transactions (one
``ledger.submit`` per call, chunked at :data:`~deai.node.hub.MAX_BATCH`), and retries safely: the
transport retries identical envelopes (answered once by the hub), and an envelope refused as a
replay after a hub restart is re-sealed and sent again (every hub handler is idempotent).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.core.envelope import Envelope
from deai.ledger.tx import SignedTx, Tx
from deai.net.transport import RemoteError, Transport

__all__ = ["HubClient", "TxFailed"]

CHUNK = 1024


class TxFailed(RemoteError):
    """The ledger refused a transaction submitted through the hub."""


class HubClient:
    def __init__(self, transport: Transport, network: str, signer: Account) -> None:
        self.transport, self.network, self.signer = transport, network, signer
        self.nonces: dict[str, int] = {}

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

    def info(self) -> dict:
        return self.call("hub.info")

    def query(self, q: str, **args: Any) -> Any:
        return self.call("ledger.query", {"q": q, "args": args})["result"]

    def events(self, since: int = 0, limit: int = 1000) -> tuple[list[dict], int]:
        reply = self.call("ledger.events", {"since": since, "limit": limit})
        return reply["events"], reply["next"]

    # -- transactions ---------------------------------------------------------------------------------

    def sign(self, account: Account, tx: Tx) -> SignedTx:
        a = account.address
        if a not in self.nonces:
            self.nonces[a] = self.query("nonce", address=a)
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
                raise TxFailed(400, r["error"], f"{s.kind} from {s.sender}: {r['reason']}")
        return results

    def send_tx(self, account: Account, tx: Tx) -> dict:
        return self.submit([(account, tx)])[0]

    def submit_signed(self, txs: Iterable[SignedTx]) -> list[dict]:
        txs = list(txs)
        out: list[dict] = []
        for i in range(0, len(txs), CHUNK):
            chunk = [t.to_bytes().hex() for t in txs[i : i + CHUNK]]
            out.extend(self.call("ledger.submit", {"txs": chunk})["results"])
        return out

    # -- blobs ------------------------------------------------------------------------------------------

    def put_blob(self, data: bytes, expected: str | None = None) -> str:
        return self.transport.put_blob(data, expected=expected)

    def get_blob(self, digest: str) -> bytes:
        return self.transport.get_blob(digest)

    def fetch_to(self, store: BlobStore, digest: str) -> None:
        """Bring a blob into ``store`` (verified by hash on the way) unless it is already there."""
        if digest not in store:
            store.put_stream(self.transport.iter_blob(digest), expected=digest)
