"""The transition rules, one module per area. Each handler is declared where it is defined with
``@handles(TxType)`` into :data:`HANDLERS`; importing this package imports every rule module, so
the table is complete."""

# The member modules, each declaring its handlers in HANDLERS:
from deai.ledger.rules import funds, jobs, models, tasks  # noqa: F401
from deai.ledger.rules.base import HANDLERS, Call, Context, Event

__all__ = ["HANDLERS", "Call", "Context", "Event"]
