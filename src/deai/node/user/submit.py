"""Creating a task: build its blobs (spec, initial checkpoint, validation data), upload, escrow.

:func:`make_task` turns a recipe, a public validation set and optional hidden scoring sets into a
:class:`~deai.protocol.task.spec.TaskSpec` plus the blobs it names; :func:`submit_task` uploads the
public blobs to the hub, signs ``create_task`` (escrowing the budget) with the hub as the task's
coordinator, then hands the hidden scoring sets to the hub sealed (``task.seal``: never served
until their round's updates are committed, the hub's sealed store). The hub picks the task up
from the ledger event, checks the spec against the id, and starts the join phase.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from deai.core.accounts import Account
from deai.core.encoding import sha256_hex
from deai.learn.data import Dataset
from deai.ledger.txs import CreateTask
from deai.node.participant.client import HubClient
from deai.protocol.task.model import build, checkpoint_bytes, data_bytes
from deai.protocol.task.spec import TaskSpec

__all__ = ["TaskBundle", "make_task", "submit_task"]


@dataclass(frozen=True)
class TaskBundle:
    spec: TaskSpec
    init: bytes
    validation: bytes
    scoring: tuple[bytes, ...] = ()  # the hidden scoring sets, in the spec's order

    @property
    def task_id(self) -> str:
        return self.spec.task_id


def make_task(
    validation: Dataset, *, model_seed: int = 0, scoring_sets: Sequence[Dataset] = (), **recipe: Any
) -> TaskBundle:
    """A task over ``validation``'s features and classes; ``recipe`` holds the other spec fields.

    ``scoring_sets``: held-back sets the rounds are scored on (round r on set ``(r - 1) mod k``), kept
    from the providers until their round; none: rounds are scored on the public ``validation`` data,
    which providers can train on (docs/incentives.md)."""
    probe = TaskSpec(
        init="0" * 64,
        validation="0" * 64,
        in_features=validation.in_features,
        num_classes=validation.num_classes,
        **{k: v for k, v in recipe.items() if k in ("model", "model_kwargs")},
    )
    init = checkpoint_bytes(build(probe, seed=model_seed))
    val = data_bytes(validation)
    hidden = tuple(data_bytes(d) for d in scoring_sets)
    spec = TaskSpec(
        init=sha256_hex(init),
        validation=sha256_hex(val),
        in_features=validation.in_features,
        num_classes=validation.num_classes,
        scoring_sets=[sha256_hex(h) for h in hidden],
        **recipe,
    )
    return TaskBundle(spec, init, val, hidden)


def submit_task(
    client: HubClient, creator: Account, bundle: TaskBundle, *, coordinator: str | None = None
) -> str:
    """Upload the bundle's blobs and create the task on the ledger; returns the task id."""
    spec = bundle.spec
    client.put_blob(bundle.init, expected=spec.init)
    client.put_blob(bundle.validation, expected=spec.validation)
    client.put_blob(spec.to_bytes(), expected=spec.digest)
    coordinator = coordinator or client.info()["coordinator"]
    tx = CreateTask(
        task=spec.task_id,
        budget=spec.budget,
        params=spec.task_id,
        provider_stake=spec.provider_stake,
        coordinator=coordinator,
    )
    if client.query("task", task_id=spec.task_id) is None:
        client.send_tx(creator, tx)
    for data in bundle.scoring:  # after the task exists: the hub seals only its committed digests
        client.seal(spec.task_id, data, account=creator)
    return spec.task_id
