"""The transition rules, one module per area. Importing this package registers every handler."""

from deai.ledger.rules import funds, jobs, models, tasks
from deai.ledger.rules.base import HANDLERS, Call, Context, Event

__all__ = ["HANDLERS", "Call", "Context", "Event", "funds", "jobs", "models", "tasks"]
