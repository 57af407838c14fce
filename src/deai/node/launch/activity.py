"""A daemon's activity log: what it did for its accounts, one line per action (:mod:`deai.core.logs`).

``deai node`` runs its daemon on a :class:`LoggedClient`, a :class:`HubClient` that writes a line
for every transaction it submits -- named by its kind: ``join_task``, ``commit``, ``reveal``,
``claim``, ``leave_task``, ``stake``... with the sender, the task or job, and ``ok`` or the
ledger's reason for refusing it -- and for every update it delivers (``update task= round=``).
Requests the hub refuses are one warning line (the error and its reason; the same refusal again
at most every 10 s); reads are logged only at ``debug``. Nothing secret is logged: no keys, no
request bodies, no data.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from deai.core.accounts import Account
from deai.core.logs import Throttle, event
from deai.ledger.tx import SignedTx
from deai.net.transport import RemoteError
from deai.node.participant.client import HubClient

__all__ = ["LoggedClient"]

log = logging.getLogger("deai.node")
_REFUSALS = Throttle(10.0)  # a refusal repeated by a polling loop: one line per kind every 10 s
_KEYS = ("task", "job", "role", "amount", "round", "epoch", "model", "to")  # tx fields worth a line


class LoggedClient(HubClient):
    """A :class:`HubClient` that logs the daemon's actions (see the module docstring)."""

    def call(self, type: str, body: dict[str, Any] | None = None, *, account: Account | None = None) -> dict:
        try:
            reply = super().call(type, body, account=account)
        except RemoteError as exc:
            write, held = _REFUSALS.allow(f"{type}:{exc.error}")
            if write:
                reason = str(exc.reason)[:200]
                event(
                    log, "refused", logging.WARNING, type=type, error=exc.error, reason=reason, held_back=held
                )
            raise
        if type == "task.updates":
            self._updates(body or {}, reply)
        else:
            event(log, "request", logging.DEBUG, type=type)
        return reply

    def submit_signed(self, txs: Iterable[SignedTx]) -> list[dict]:
        txs = list(txs)
        results = super().submit_signed(txs)
        for stx, r in zip(txs, results, strict=False):
            fields = {k: v for k, v in stx.tx.to_body().items() if k in _KEYS}
            if r.get("ok"):
                event(log, stx.kind, account=stx.sender, ok=True, **fields)
            else:
                reason = f"{r.get('error', '')}: {r.get('reason', '')}"[:200]
                event(log, stx.kind, logging.WARNING, account=stx.sender, ok=False, reason=reason, **fields)
        return results

    def _updates(self, body: dict[str, Any], reply: dict) -> None:
        statements = body.get("statements") or []
        results = reply.get("results")
        if not isinstance(results, list):
            return
        for st, r in zip(statements, results, strict=False):
            if not isinstance(st, dict) or not isinstance(r, dict):
                continue
            ok = bool(r.get("accepted"))
            event(
                log,
                "update",
                logging.INFO if ok else logging.WARNING,
                task=st.get("task"),
                round=st.get("round"),
                account=st.get("provider"),
                accepted=ok,
                **({} if ok else {"reason": str(r.get("reason", ""))[:200]}),
            )
