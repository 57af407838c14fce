"""Refereed delegation: resolve a dispute over T training steps by bisection and one re-executed step.

Two trainers run the same :class:`~deai.protocol.jobs.kinds.train_steps.StepProgram` (same checkpoint,
same seeded data order) on one thread, where a step is bit-reproducible on CPU. Each records the state
hash ``h_t`` (:func:`~deai.core.tensorio.tensor_digest`) after every step, ``h_0`` being the input
checkpoint, and commits the root of a positional Merkle tree over ``h_0 .. h_T``
(:class:`~deai.protocol.jobs.merkle.StepTree`).

:class:`Dispute` is the referee's sans-IO state machine (no I/O, no clock; the caller moves messages
and enforces deadlines with :meth:`Dispute.timeout`):

1. Equal roots: no dispute. Otherwise each party opens leaves ``0`` and ``T`` with proofs. A party
   whose ``h_0`` is not the checkpoint's hash loses; equal ``h_T`` means equal outputs: no dispute.
2. Bisection: with ``lo`` agreed and ``hi`` disputed (initially ``0`` and ``T``) the referee asks
   both for leaf ``mid = (lo + hi) // 2``; agreement moves ``lo`` up, disagreement moves ``hi`` down.
   A bad proof or a missed deadline loses at once. ``ceil(log2 T)`` rounds reach ``hi = lo + 1``.
3. The referee obtains the state with the agreed hash ``h_lo`` (the input checkpoint when ``lo = 0``;
   otherwise either party uploads it and the referee checks its hash), re-executes step ``lo`` alone,
   and compares the result's hash with both claims at ``hi``. Whoever matches wins; a party that
   does not is a liar and is slashed (both, if neither matches).

Since the honest party's answers are the true states, the agreed ``h_lo`` is true and the referee's
one step decides correctly whatever the liar answers: cost ``O(log T)`` rounds plus one step.

**A library piece, not a network feature.** Nothing ``deai simulate``, ``deai demo`` or ``deai up``
runs reaches this module: the network verifies jobs by replication and majority
(:mod:`deai.protocol.jobs.run`), and providers' local training is not a verified job. Wiring it
would take ledger transactions for the dispute moves (commit root, open leaf, upload state) with
deadlines, a referee role (the hub or a resolver) stepping :class:`Dispute` from ledger events, and
``train_steps`` jobs that record step hashes; ``tests/protocol/jobs/test_jobs_refereed.py`` drives
it in process.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from deai.core.tensorio import tensor_digest
from deai.protocol.jobs.errors import DisputeError
from deai.protocol.jobs.kinds.base import Tensors
from deai.protocol.jobs.kinds.train_steps import StepProgram
from deai.protocol.jobs.merkle import StepTree, verify_step

__all__ = ["Dispute", "LeafOpening", "Outcome", "Trainer", "expected_rounds", "referee", "state_hash"]


def state_hash(state: Tensors) -> str:
    return "0x" + tensor_digest(state)


def expected_rounds(steps: int) -> int:
    """Bisection rounds to isolate one step among ``steps``: ``ceil(log2 T)``."""
    return math.ceil(math.log2(steps)) if steps > 1 else 0


@dataclass(frozen=True)
class LeafOpening:
    """A party's claim "the state after step ``index`` hashes to ``state_hash``", with its proof."""

    index: int
    state_hash: str
    proof: tuple[str, ...]


class Trainer:
    """An honest trainer: runs every step, keeps all state hashes and a snapshot every ``keep_every``
    steps (so it can rebuild any intermediate state for the referee without holding all T)."""

    def __init__(self, program: StepProgram, *, keep_every: int = 32) -> None:
        self.program = program
        self.keep_every = max(1, keep_every)
        self.snapshots: dict[int, Tensors] = {}
        self.hashes: list[str] = []
        self.final = self._train()
        self.tree = StepTree(self.hashes)

    def next_state(self, state: Tensors, t: int) -> Tensors:
        """The state after step ``t``; cheaters override this."""
        return self.program.step(state, t)

    def _train(self) -> Tensors:
        state = self.program.initial
        self.snapshots[0] = state
        self.hashes.append(state_hash(state))
        for t in range(self.program.steps):
            state = self.next_state(state, t)
            if (t + 1) % self.keep_every == 0:
                self.snapshots[t + 1] = state
            self.hashes.append(state_hash(state))
        return state

    @property
    def root(self) -> str:
        return self.tree.root

    def open(self, index: int) -> LeafOpening:
        return LeafOpening(index, self.hashes[index], tuple(self.tree.proof(index)))

    def state_at(self, index: int) -> Tensors:
        base = max(k for k in self.snapshots if k <= index)
        state = self.snapshots[base]
        for t in range(base, index):
            state = self.next_state(state, t)
        return state


@dataclass
class Outcome:
    """How a dispute ended: ``winners`` and ``liars`` (party names), ``rounds`` of bisection queries,
    ``steps_reexecuted`` by the referee, ``step`` the divergent step index (None without dispute)."""

    winners: list[str]
    liars: list[str]
    rounds: int
    steps_reexecuted: int
    step: int | None
    reason: str


@dataclass
class Dispute:
    """The referee between two parties over ``steps`` steps; see the module doc for the protocol."""

    steps: int
    initial_hash: str
    roots: dict[str, str]
    lo: int = 0
    hi: int = 0
    rounds: int = 0
    agreed: str = ""
    outcome: Outcome | None = None
    _pending: dict[str, dict[int, LeafOpening]] = field(default_factory=dict)
    _query: tuple[int, ...] = ()
    _claims_hi: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.roots) != 2:
            raise DisputeError("a dispute has exactly two parties")
        if self.steps < 1:
            raise DisputeError("a dispute needs at least one step")
        self.hi = self.steps
        if len(set(self.roots.values())) == 1:
            self.outcome = Outcome(sorted(self.roots), [], 0, 0, None, "equal roots: no dispute")
        else:
            self._query = (0, self.steps)

    @property
    def parties(self) -> list[str]:
        return sorted(self.roots)

    def query(self) -> tuple[int, ...]:
        """Leaf indices both parties must open now (empty when a state upload or nothing is due)."""
        return () if self.outcome else self._query

    @property
    def needs_state(self) -> bool:
        """True when the bisection is done and the referee needs the state after step ``lo``."""
        return self.outcome is None and not self._query

    def answer(self, party: str, openings: Sequence[LeafOpening]) -> None:
        """A party's openings for the current query; a bad or missing proof loses the dispute."""
        if self.outcome is not None or not self._query:
            raise DisputeError("no query is open")
        if party not in self.roots or party in self._pending:
            raise DisputeError(f"{party!r} is not a party awaiting this query")
        got = {o.index: o for o in openings}
        for index in self._query:
            o = got.get(index)
            if o is None or not verify_step(self.roots[party], self.steps + 1, index, o.state_hash, o.proof):
                self._lose([party], f"{party} gave no valid proof for leaf {index}")
                return
        self._pending[party] = got
        if len(self._pending) == 2:
            self._advance()

    def timeout(self) -> None:
        """The caller's deadline passed: every party that has not answered loses."""
        if self.outcome is not None:
            return
        if self._query:
            silent = [p for p in self.parties if p not in self._pending]
            self._lose(silent, f"no answer from {', '.join(silent)} before the deadline")
        else:
            self._lose(self.parties, "nobody provided the agreed state before the deadline")

    def _lose(self, losers: list[str], reason: str) -> None:
        winners = [p for p in self.parties if p not in losers]
        self.outcome = Outcome(winners, sorted(losers), self.rounds, 0, None, reason)

    def _advance(self) -> None:
        a, b = self.parties
        ans = self._pending
        self._pending = {}
        if self._query == (0, self.steps):
            bad = [p for p in (a, b) if ans[p][0].state_hash != self.initial_hash]
            if bad:
                self._lose(bad, "leaf 0 is not the job's input checkpoint")
                return
            if ans[a][self.steps].state_hash == ans[b][self.steps].state_hash:
                self.outcome = Outcome([a, b], [], 0, 0, None, "equal final states: outputs agree")
                return
            self._claims_hi = {p: ans[p][self.steps].state_hash for p in (a, b)}
        else:
            self.rounds += 1
            mid = self._query[0]
            if ans[a][mid].state_hash == ans[b][mid].state_hash:
                self.lo, self.agreed = mid, ans[a][mid].state_hash
            else:
                self.hi = mid
                self._claims_hi = {p: ans[p][mid].state_hash for p in (a, b)}
        self._query = ((self.lo + self.hi) // 2,) if self.hi - self.lo > 1 else ()

    def agreed_hash(self) -> str:
        return self.initial_hash if self.lo == 0 else self.agreed

    def resolve(self, state: Tensors, step: Callable[[Tensors, int], Tensors]) -> Outcome:
        """Check ``state`` hashes to the agreed ``h_lo``, re-execute step ``lo``, decide the liar."""
        if not self.needs_state:
            raise DisputeError("the dispute is not waiting for a state")
        if state_hash(state) != self.agreed_hash():
            raise DisputeError(f"the uploaded state does not hash to the agreed state after step {self.lo}")
        truth = state_hash(step(state, self.lo))
        winners = [p for p in self.parties if self._claims_hi[p] == truth]
        liars = [p for p in self.parties if p not in winners]
        self.outcome = Outcome(winners, liars, self.rounds, 1, self.lo, f"referee re-executed step {self.lo}")
        return self.outcome


def referee(trainers: dict[str, Trainer], program: StepProgram) -> Outcome:
    """Run a whole dispute in process (tests, benchmark): query, answer, upload, re-execute."""
    dispute = Dispute(program.steps, state_hash(program.initial), {p: t.root for p, t in trainers.items()})
    while dispute.outcome is None:
        if dispute.needs_state:
            state = program.initial if dispute.lo == 0 else None
            for trainer in trainers.values():  # the first upload that hashes right is used
                if state is not None:
                    break
                candidate = trainer.state_at(dispute.lo)
                if state_hash(candidate) == dispute.agreed_hash():
                    state = candidate
            if state is None:
                dispute.timeout()
                break
            return dispute.resolve(state, program.step)
        indices = dispute.query()
        for party, trainer in trainers.items():
            if dispute.outcome is None:
                dispute.answer(party, [trainer.open(i) for i in indices])
    assert dispute.outcome is not None  # the loop ends once the dispute has one
    return dispute.outcome
