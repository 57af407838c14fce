"""A round's contribution scoring as the coordinator runs it: which data the round is scored on,
and how the accepted ``contribution_score`` output enters the task's score book.

- :func:`reveal_scoring_set`: round ``r``'s hidden scoring set (:meth:`TaskSpec.scoring_data`)
  moves from the coordinator's sealed store into the public one once the round's updates are
  committed; a set the creator never handed in falls back to the public validation data.
- :func:`record_scores`: the job's scores, merged copies and novelty flags (with what each replay
  replayed, resolved against the previous round's score output) go into the
  :class:`~deai.protocol.incentives.ScoreBook`, in commit order. Under secure aggregation the
  scores are per bucket and shared by its members; no flag is recorded (the checks saw sums).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from deai.core.blobs import BlobStore
from deai.learn.scoring import Flag
from deai.protocol.incentives.settlement import ScoreBook
from deai.protocol.task.records import RoundRecord
from deai.protocol.task.secagg_round import bucket_members_scores
from deai.protocol.task.spec import TaskSpec

__all__ = ["record_scores", "replay_sources", "reveal_scoring_set"]


def reveal_scoring_set(spec: TaskSpec, store: BlobStore, sealed: BlobStore | None, round: int) -> str:
    """The digest of round ``round``'s scoring data, public from now on (call it only once the
    round's updates are committed)."""
    digest = spec.scoring_data(round)
    if digest == spec.validation or digest in store:
        return digest
    if sealed is not None and digest in sealed:
        store.put(sealed.get(digest), expected=digest)
        return digest
    return spec.validation  # withheld by the creator: the round record's scored_on says so


def replay_sources(
    out: Mapping[str, torch.Tensor],
    history: Mapping[str, torch.Tensor] | None,
    round: int,
    rounds: Sequence[RoundRecord],
) -> list[tuple[int, str] | None]:
    """For each update flagged a replay, the ``(round, address)`` whose update it replays: the row
    of the previous score output's history (``sketch_age``, ``sketch_index``) it matched."""
    flags, source = out["flags"].tolist(), out["source"].tolist()
    if Flag.REPLAY not in flags or history is None:
        return [None] * len(flags)
    ages, index = history["sketch_age"].tolist(), history["sketch_index"].tolist()
    by_round = {r.round: r.contributors for r in rounds}
    found: list[tuple[int, str] | None] = []
    for f, src in zip(flags, source, strict=True):
        hit = None
        if f == Flag.REPLAY and 0 <= src < len(ages):
            r = round - 1 - int(ages[src])
            who = by_round.get(r, [])
            if 0 <= index[src] < len(who):
                hit = (r, who[index[src]])
        found.append(hit)
    return found


def record_scores(
    book: ScoreBook,
    round: int,
    updates: dict[str, dict[str, Any]],
    out: Mapping[str, torch.Tensor],
    *,
    job: str,
    secure_aggregation: bool,
    history: Mapping[str, torch.Tensor] | None,
    rounds: Sequence[RoundRecord],
) -> tuple[list[str], list[float]]:
    """Add round ``round``'s accepted score output to ``book`` (once: a re-run after a crash adds
    nothing) and return the contributors in the jobs' order (by address) with their scores.
    ``updates``: the round's committed statements by provider (or buckets under secure aggregation)."""
    scores = out["scores"].tolist()
    if secure_aggregation:  # scores are per bucket: its members share it
        contributors, per = bucket_members_scores(updates, scores)
    else:
        contributors, per = sorted(updates), scores  # the jobs' order (coordinator._on_train)
    if round not in book.rounds:
        if secure_aggregation:
            book.add(round, contributors, per, job=job)
        else:
            book.add(
                round,
                contributors,
                per,
                duplicate_of=out["duplicate_of"],
                flags=out["flags"],
                replay_of=replay_sources(out, history, round, rounds),
                job=job,
            )
    return contributors, per
