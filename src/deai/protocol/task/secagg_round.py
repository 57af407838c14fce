"""The coordinator's side of a round's bucketed secure aggregation, message by message.

The round's roster is split into seeded random buckets
(:func:`deai.protocol.secagg.bucketed.assign_buckets`, recomputable by anyone); each bucket runs a
SecAgg+ round (:class:`~deai.protocol.secagg.server.SecAggServer`) whose messages travel as signed
:class:`~deai.protocol.task.statements.SecAggStatement` objects. A phase closes when every live
provider of every live bucket answered or at its deadline; providers that stay silent are dropouts
and the protocol recovers without them. A bucket whose round aborts (too few survivors) is left out.
The result is each completed bucket's mean update, which the task aggregates robustly.

The server state is kept in memory only. If the coordinator restarts in the middle, the round's
secure aggregation starts again as a new ``attempt`` (a new tag, hence fresh keys and masks on
every side, so nothing learned in the abandoned attempt helps in the new one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from deai.core.errors import DeaiError
from deai.protocol.secagg.bucketed import assign_buckets
from deai.protocol.secagg.config import SecAggConfig
from deai.protocol.secagg.errors import RoundAborted
from deai.protocol.secagg.messages import decode, encode
from deai.protocol.secagg.server import SecAggServer
from deai.protocol.task.errors import BadStatement, WrongPhase
from deai.protocol.task.statements import SecAggStatement

__all__ = ["PHASES", "SecAggRound", "bucket_members_scores", "secagg_config"]

PHASES = ("advertise", "share", "masked", "consistency", "unmask")


def secagg_config(view: dict[str, Any], bucket: int) -> SecAggConfig:
    """The SecAgg config of ``bucket`` as every party derives it from the public round view."""
    b = view["buckets"][bucket]
    return SecAggConfig(tuple(b), view["dim"], clip=view["clip"], tag=f"{view['tag']}:b{bucket}")


@dataclass
class SecAggRound:
    task: str
    round: int
    attempt: int
    roster: list[str]
    dim: int
    clip: float
    bucket_size: int
    deadline: int
    phase: int = 0
    buckets: list[list[str]] = field(default_factory=list)
    aborted: dict[int, str] = field(default_factory=dict)
    outbox: dict[int, dict[int, bytes]] = field(default_factory=dict)
    means: dict[int, torch.Tensor] = field(default_factory=dict)
    included: dict[int, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        seed = f"{self.task}:{self.round}:{self.attempt}".encode()
        size = min(self.bucket_size, len(self.roster))
        idx = assign_buckets(len(self.roster), size, seed)
        self.buckets = [[self.roster[i] for i in b] for b in idx]
        view = self.view()
        self.configs = [secagg_config(view, b) for b in range(len(self.buckets))]
        self.servers = [SecAggServer(c) for c in self.configs]
        self.expected = [set(range(len(b))) for b in self.buckets]
        self.answered: list[set[int]] = [set() for _ in self.buckets]

    @property
    def tag(self) -> str:
        return f"{self.task}:{self.round}:{self.attempt}"

    @property
    def done(self) -> bool:
        return self.phase >= len(PHASES)

    def view(self) -> dict[str, Any]:
        """What every provider needs to join: the buckets, the dimension, clip, tag and phase."""
        return {
            "attempt": self.attempt,
            "buckets": self.buckets,
            "dim": self.dim,
            "clip": self.clip,
            "tag": self.tag,
            "phase": PHASES[self.phase] if not self.done else "done",
            "deadline": self.deadline,
            "aborted": sorted(self.aborted),
        }

    def inbox(self, provider: str) -> dict[str, Any] | None:
        """The server's message of the last closed phase for ``provider`` (hex wire bytes)."""
        for b, members in enumerate(self.buckets):
            if provider in members and b in self.outbox:
                data = self.outbox[b].get(members.index(provider))
                if data is not None:
                    return {"bucket": b, "phase": PHASES[self.phase - 1], "data": data.hex()}
        return None

    def receive(self, st: SecAggStatement) -> None:
        if st.attempt != self.attempt or self.done:
            raise WrongPhase(f"secure aggregation attempt {self.attempt} is in phase {self.view()['phase']}")
        if not 0 <= st.bucket < len(self.buckets) or st.provider not in self.buckets[st.bucket]:
            raise BadStatement(f"{st.provider} is not in bucket {st.bucket}")
        if st.bucket in self.aborted:
            raise WrongPhase(f"bucket {st.bucket} aborted: {self.aborted[st.bucket]}")
        u = self.buckets[st.bucket].index(st.provider)
        if u in self.answered[st.bucket]:
            return  # a retry of a message already taken
        try:
            msg = decode(st.data, self.configs[st.bucket])
            if msg.party != u:
                raise BadStatement(f"message is for party {msg.party}, the provider is party {u}")
            self.servers[st.bucket].receive(msg)
        except BadStatement:
            raise
        except DeaiError as exc:
            raise BadStatement(f"secure aggregation refused the message: {exc}") from exc
        self.answered[st.bucket].add(u)

    def ready(self, now: int) -> bool:
        live = [b for b in range(len(self.buckets)) if b not in self.aborted]
        return now >= self.deadline or all(self.expected[b] <= self.answered[b] for b in live)

    def close(self, now: int, phase_ms: int) -> None:
        """Close the current phase of every live bucket."""
        for b, server in enumerate(self.servers):
            if b in self.aborted:
                continue
            try:
                out = server.close_phase()
            except (RoundAborted, DeaiError) as exc:
                self.aborted[b] = str(exc)
                self.outbox.pop(b, None)
                continue
            self.outbox[b] = {u: encode(m, self.configs[b]) for u, m in out.items()}
            self.expected[b] = set(out)
            self.answered[b] = set()
            if server.result is not None:
                res = server.result
                self.means[b] = torch.from_numpy(np.asarray(res.total / len(res.included))).float()
                self.included[b] = [self.buckets[b][u] for u in res.included]
        self.phase += 1
        self.deadline = now + phase_ms


def bucket_members_scores(
    updates: dict[str, dict[str, Any]], scores: list[float]
) -> tuple[list[str], list[float]]:
    """Contributors and their scores when the scored updates are bucket sums (``bucket0``, ...):
    a bucket's score is shared equally by its members."""
    people, per = [], []
    for (_, info), sc in zip(sorted(updates.items(), key=lambda kv: int(kv[0][6:])), scores, strict=True):
        for a in info["members"]:
            people.append(a)
            per.append(sc / len(info["members"]))
    return people, per
