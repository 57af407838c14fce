"""Refereed delegation: resolve a dispute over T training steps by bisection and one re-executed step.

Two trainers run the same :class:`~deai.protocol.jobs.kinds.train_steps.StepProgram` (same checkpoint,
same seeded data order) on one thread, where a step is bit-reproducible on a given CPU and library
build whatever the executor's thread settings. Each records the state hash ``h_i`` after every
leaf step (every ``k`` steps, :mod:`deai.protocol.jobs.trajectory`; ``h_0`` is the input checkpoint)
and commits the root of a positional Merkle tree over them
(:class:`~deai.protocol.jobs.merkle.StepTree`) inside its job output.

:class:`Dispute` is the referee's sans-IO state machine (no I/O, no clock; the caller moves messages
and enforces deadlines with :meth:`Dispute.timeout`):

1. Equal roots: no dispute. Otherwise each party opens leaves ``0`` and ``L - 1`` with proofs. A party
   whose ``h_0`` is not the checkpoint's hash loses; equal final hashes mean equal outputs: no dispute.
2. Bisection: with ``lo`` agreed and ``hi`` disputed (initially ``0`` and ``L - 1``) both open leaf
   ``mid = (lo + hi) // 2``; agreement moves ``lo`` up, disagreement moves ``hi`` down. A bad proof
   or a missed deadline loses at once. ``ceil(log2 (L - 1))`` rounds reach ``hi = lo + 1``.
3. The referee obtains the state with the agreed hash ``h_lo`` (the input checkpoint when ``lo = 0``;
   otherwise a party uploads it and its hash is checked), re-executes the steps of the one segment
   ``[lo, hi)`` (one step when ``k = 1``) and :meth:`Dispute.judge` compares its result with each
   party's claim at ``hi``: an equal hash wins; otherwise the party's uploaded state at ``hi`` (hash
   checked against its claim) wins if it is within the calibrated tolerance of the referee's, so an
   honest party on another CPU or library build is not a liar. Whoever matches wins; a party that
   does not is a liar and is slashed (both, if neither matches).

Since the honest party's answers are the true states, the agreed ``h_lo`` is true and the referee's
one segment decides correctly whatever the liar answers: cost ``O(log L)`` rounds plus ``k`` steps.
:mod:`deai.protocol.jobs.delegated` runs it as the decision of a refereed ``train_steps`` job on the
ledger (the task coordinator of a delegated-training task does, :mod:`deai.protocol.task.delegated_round`);
:func:`referee` drives it alone, in process, for tests and benchmarks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from deai.protocol.jobs.compare import CompareRule, agrees
from deai.protocol.jobs.errors import DisputeError
from deai.protocol.jobs.kinds.base import Tensors
from deai.protocol.jobs.kinds.train_steps import StepProgram
from deai.protocol.jobs.merkle import verify_step
from deai.protocol.jobs.trajectory import LeafOpening, Trainer, leaf_steps, state_hash

__all__ = [
    "Dispute",
    "LeafOpening",
    "Outcome",
    "Trainer",
    "expected_rounds",
    "open_leaf",
    "referee",
    "state_hash",
]


def expected_rounds(steps: int) -> int:
    """Bisection rounds to isolate one step among ``steps``: ``ceil(log2 T)``."""
    return math.ceil(math.log2(steps)) if steps > 1 else 0


def open_leaf(trainer: Trainer, index: int) -> LeafOpening:
    """``trainer``'s opening of leaf ``index`` (its committed hash and the proof)."""
    return trainer.open(index)


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
    """The referee between two parties over ``steps`` steps with a leaf every ``every`` steps; see
    the module doc for the protocol. Indices in queries and openings are leaf indices."""

    steps: int
    initial_hash: str
    roots: dict[str, str]
    every: int = 1
    lo: int = 0
    hi: int = 0
    rounds: int = 0
    agreed: str = ""
    outcome: Outcome | None = None
    leaves: list[int] = field(default_factory=list)
    _pending: dict[str, dict[int, LeafOpening]] = field(default_factory=dict)
    _query: tuple[int, ...] = ()
    _claims_hi: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.roots) != 2:
            raise DisputeError("a dispute has exactly two parties")
        if self.steps < 1 or self.every < 1:
            raise DisputeError("a dispute needs at least one step and a leaf every k >= 1 steps")
        self.leaves = leaf_steps(self.steps, self.every)
        self.hi = self.last
        if len(set(self.roots.values())) == 1:
            self.outcome = Outcome(sorted(self.roots), [], 0, 0, None, "equal roots: no dispute")
        else:
            self._query = (0, self.last)

    @property
    def last(self) -> int:
        return len(self.leaves) - 1

    @property
    def parties(self) -> list[str]:
        return sorted(self.roots)

    def query(self) -> tuple[int, ...]:
        """Leaf indices both parties must open now (empty when a state upload or nothing is due)."""
        return () if self.outcome else self._query

    @property
    def needs_state(self) -> bool:
        """True when the bisection is done and the referee needs the state at leaf ``lo``."""
        return self.outcome is None and not self._query

    @property
    def segment(self) -> tuple[int, int]:
        """The steps ``[start, stop)`` the referee re-executes (leaf ``lo`` to leaf ``hi``)."""
        return self.leaves[self.lo], self.leaves[self.hi]

    def claim(self, party: str) -> str:
        """``party``'s claimed state hash at leaf ``hi`` (once the bisection is done)."""
        return self._claims_hi[party]

    def answer(self, party: str, openings: Sequence[LeafOpening]) -> None:
        """A party's openings for the current query; a bad or missing proof loses the dispute."""
        if self.outcome is not None or not self._query:
            raise DisputeError("no query is open")
        if party not in self.roots or party in self._pending:
            raise DisputeError(f"{party!r} is not a party awaiting this query")
        got = {o.index: o for o in openings}
        for index in self._query:
            o = got.get(index)
            if o is None or not verify_step(self.roots[party], self.last + 1, index, o.state_hash, o.proof):
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
        if self._query == (0, self.last):
            bad = [p for p in (a, b) if ans[p][0].state_hash != self.initial_hash]
            if bad:
                self._lose(bad, "leaf 0 is not the job's input checkpoint")
                return
            if ans[a][self.last].state_hash == ans[b][self.last].state_hash:
                self.outcome = Outcome([a, b], [], 0, 0, None, "equal final states: outputs agree")
                return
            self._claims_hi = {p: ans[p][self.last].state_hash for p in (a, b)}
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

    def check_state(self, state: Tensors) -> None:
        """Refuse an uploaded state that does not hash to the agreed state at leaf ``lo``."""
        if not self.needs_state:
            raise DisputeError("the dispute is not waiting for a state")
        if state_hash(state) != self.agreed_hash():
            raise DisputeError(f"the uploaded state does not hash to the agreed state at leaf {self.lo}")

    def judge(
        self,
        truth: Tensors,
        claims: Mapping[str, Tensors | None] | None = None,
        rule: CompareRule | None = None,
    ) -> Outcome:
        """Decide from the referee's re-executed state ``truth`` at leaf ``hi``: a party wins with an
        equal hash, or with a claimed state (``claims``, already hash-checked against its leaf) within
        ``rule`` of ``truth``; every other party is a liar."""
        if not self.needs_state:
            raise DisputeError("the dispute is not waiting for the referee")
        truth_hash = state_hash(truth)
        claims = claims or {}
        winners = []
        for p in self.parties:
            mine = claims.get(p)
            if self._claims_hi[p] == truth_hash or (
                rule is not None and mine is not None and agrees(mine, truth, rule)
            ):
                winners.append(p)
        liars = [p for p in self.parties if p not in winners]
        start, stop = self.segment
        where = f"step {start}" if stop - start == 1 else f"steps {start}..{stop - 1}"
        reason = f"referee re-executed {where} after {self.rounds} bisection rounds"
        self.outcome = Outcome(winners, liars, self.rounds, stop - start, start, reason)
        return self.outcome

    def resolve(self, state: Tensors, step: Callable[[Tensors, int], Tensors]) -> Outcome:
        """Check ``state`` hashes to the agreed ``h_lo``, re-execute the segment, decide by hashes."""
        self.check_state(state)
        start, stop = self.segment
        for t in range(start, stop):
            state = step(state, t)
        return self.judge(state)


def referee(trainers: dict[str, Trainer], program: StepProgram) -> Outcome:
    """Run a whole dispute in process (tests, benchmark): query, answer, upload, re-execute."""
    every = next(iter(trainers.values())).every
    roots = {p: t.root for p, t in trainers.items()}
    dispute = Dispute(program.steps, state_hash(program.initial), roots, every=every)
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
                dispute.answer(party, [open_leaf(trainer, i) for i in indices])
    assert dispute.outcome is not None  # the loop ends once the dispute has one
    return dispute.outcome
