"""The state machine: ``apply(state, signed_tx, ctx) -> events``.

``apply`` is deterministic (same state, transaction and context -> same state and events, on
every machine) and atomic: it either applies every effect of the transaction, advances the
sender's nonce and the height, and returns the events, or raises the :class:`LedgerError` that
names the refusal and leaves the state byte-identical (the undo journal of :class:`State` rolls
back any partial effect). It mutates ``state`` in place -- copying the whole state per transaction
would make every transaction O(state) -- and :func:`apply_pure` gives the copy-on-apply form.

``apply`` trusts that ``stx.sender`` signed the transaction: the ledger checks the signature
before calling it (and ``verify`` checks it again on replay). Everything else -- network id,
nonce, rights, funds, phases -- is checked here.
"""

from __future__ import annotations

from deai.ledger.errors import BadNonce, InvariantViolation, ReplayedNonce, UnknownTxKind, WrongNetwork
from deai.ledger.rules import HANDLERS, Call, Context, Event
from deai.ledger.state import State
from deai.ledger.tx import SignedTx

__all__ = ["Context", "Event", "apply", "apply_pure"]


def apply(state: State, stx: SignedTx, ctx: Context) -> list[Event]:
    """Apply one authenticated transaction at ``ctx``; raise a LedgerError to refuse it."""
    if stx.network != state.config.network:
        raise WrongNetwork(
            f"transaction is for network {stx.network!r}, this ledger is {state.config.network!r}"
        )
    expected = state.num("nonces", stx.sender)
    if stx.nonce != expected:
        if stx.nonce < expected:
            raise ReplayedNonce(f"nonce {stx.nonce} of {stx.sender} was used; the next is {expected}")
        raise BadNonce(f"nonce {stx.nonce} of {stx.sender} is out of order; the next is {expected}")
    handler = HANDLERS.get(stx.tx.kind)
    if handler is None:  # pragma: no cover - every registered kind has a rule
        raise UnknownTxKind(f"no rule for transaction kind {stx.tx.kind!r}")
    if ctx.height != state.meta("height") or ctx.time < state.meta("time"):
        raise InvariantViolation(
            f"context (height {ctx.height}, time {ctx.time}) does not follow the state "
            f"(height {state.meta('height')}, time {state.meta('time')})"
        )
    mark = state.mark()
    call = Call(state, stx.sender, ctx)
    try:
        handler(call, stx.tx)
        state.put("nonces", stx.sender, expected + 1)
        state.set_meta("height", ctx.height + 1)
        state.set_meta("time", ctx.time)
    except BaseException:
        state.rollback(mark)
        raise
    return call.events


def apply_pure(state: State, stx: SignedTx, ctx: Context) -> tuple[State, list[Event]]:
    """Like :func:`apply` but returns a new state and leaves ``state`` untouched (O(state))."""
    new = state.copy()
    events = apply(new, stx, ctx)
    new.forget()
    return new, events
