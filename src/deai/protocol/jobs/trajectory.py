"""A training job's trajectory: the state hashes an executor commits every ``k`` steps.

A ``train_steps`` job with ``params.commit_every = k`` records the state hash (``0x`` +
:func:`~deai.core.tensorio.tensor_digest`) at the *leaf steps* ``0, k, 2k, ..., T`` (``T`` always a
leaf, so the last segment may be shorter), and its output carries them as the uint8 tensor
``step_hashes [L, 32]`` next to the checkpoint. Their positional Merkle root
(:class:`~deai.protocol.jobs.merkle.StepTree`) is the executor's commitment to the whole trajectory:
it is inside the committed output, so commit-reveal binds it like the result itself, and a dispute
(:mod:`deai.protocol.jobs.refereed`) needs nothing more from the executor than its revealed output
to run the bisection. Only the state at one leaf must be uploaded later, which is why a
:class:`Trainer` keeps a snapshot every ``keep_every`` steps and replays from the nearest one.

Over the network nothing is uploaded later: a job with ``params.keep_states`` also carries the state
at every inner leaf (``leaf/<i>/<name>``, leaves ``1 .. L-2``; leaf 0 is the job's checkpoint and
leaf ``L-1`` the output's checkpoint), at most :data:`MAX_KEPT_LEAVES` leaves, so the resolver reads
the agreed state and each party's claim from the revealed outputs (:func:`leaf_state`).

:class:`Trainer` is the honest trainer; cheating trainers (``protocol/jobs/cheaters/``) override
:meth:`Trainer.next_state` or :meth:`Trainer.start`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from deai.core.tensorio import tensor_digest
from deai.protocol.jobs.errors import InputMismatch
from deai.protocol.jobs.merkle import StepTree

if TYPE_CHECKING:
    from deai.protocol.jobs.kinds.base import Tensors
    from deai.protocol.jobs.kinds.train_steps import StepProgram

__all__ = [
    "HASHES",
    "MAX_KEPT_LEAVES",
    "LeafOpening",
    "Trainer",
    "hashes_of",
    "hashes_tensor",
    "leaf_state",
    "leaf_steps",
    "open_hashes",
    "state_hash",
    "trajectory_root",
]

HASHES = "step_hashes"
"""The output tensor holding the per-leaf state hashes (uint8 ``[L, 32]``)."""

MAX_KEPT_LEAVES = 65
"""The most leaves a ``keep_states`` job may have (its output holds ``L - 2`` states)."""


def state_name(leaf: int, name: str) -> str:
    """The output tensor holding tensor ``name`` of the state at inner leaf ``leaf``."""
    return f"leaf/{leaf}/{name}"


def leaf_state(output: Mapping[str, torch.Tensor], leaf: int, names: Sequence[str]) -> Tensors | None:
    """The state at ``leaf`` carried by a checked ``keep_states`` output: the checkpoint itself
    for the last leaf, ``leaf/<i>/*`` for an inner one; None if it does not carry it."""
    last = len(hashes_of(output)) - 1
    if leaf == last:
        keys = {n: n for n in names}
    elif 0 < leaf < last:
        keys = {n: state_name(leaf, n) for n in names}
    else:
        return None
    if not all(k in output for k in keys.values()):
        return None
    return {n: output[k] for n, k in keys.items()}


@dataclass(frozen=True)
class LeafOpening:
    """A party's claim "the state at leaf ``index`` hashes to ``state_hash``", with its proof."""

    index: int
    state_hash: str
    proof: tuple[str, ...]


def open_hashes(hashes: Sequence[str], index: int, tree: StepTree | None = None) -> LeafOpening:
    """The opening of leaf ``index`` of the trajectory ``hashes`` (e.g. from a revealed output)."""
    tree = tree or StepTree(hashes)
    return LeafOpening(index, hashes[index], tuple(tree.proof(index)))


def state_hash(state: Mapping[str, torch.Tensor]) -> str:
    return "0x" + tensor_digest(state)


def leaf_steps(steps: int, every: int) -> list[int]:
    """The steps after which a state hash is committed: ``0, k, 2k, ...`` and ``steps`` itself."""
    if steps < 1 or every < 1:
        raise InputMismatch(f"a trajectory needs steps >= 1 and commit_every >= 1, got {steps}, {every}")
    out = list(range(0, steps, every))
    return [*out, steps]


def hashes_tensor(hashes: Sequence[str]) -> torch.Tensor:
    """``[L, 32]`` uint8 from 0x-hex hashes."""
    rows = [list(bytes.fromhex(h.removeprefix("0x"))) for h in hashes]
    return torch.tensor(rows, dtype=torch.uint8).reshape(len(hashes), 32)


def hashes_of(output: Mapping[str, torch.Tensor]) -> list[str]:
    """The 0x-hex state hashes carried by a checked output (its :data:`HASHES` tensor)."""
    t = output.get(HASHES)
    if t is None or t.dtype != torch.uint8 or t.dim() != 2 or t.shape[1] != 32:
        raise InputMismatch(f"a refereed training output carries {HASHES} as uint8 [L, 32]")
    return ["0x" + bytes(row.tolist()).hex() for row in t]


def trajectory_root(output: Mapping[str, torch.Tensor]) -> str:
    """The Merkle root over an output's committed state hashes."""
    return StepTree(hashes_of(output)).root


class Trainer:
    """Runs a :class:`StepProgram`, hashing the state at every leaf step (``every``) and keeping a
    snapshot every ``keep_every`` steps, so any leaf's state can be rebuilt for a referee."""

    def __init__(self, program: StepProgram, *, every: int = 1, keep_every: int = 32) -> None:
        self.program = program
        self.every = every
        self.keep_every = max(1, keep_every)
        self.leaves = leaf_steps(program.steps, every)
        self.snapshots: dict[int, Tensors] = {}
        self.hashes: list[str] = []
        self.final = self._train()
        self.tree = StepTree(self.hashes)

    # -- what cheaters override ----------------------------------------------------------------------

    def start(self, initial: Tensors) -> Tensors:
        """The state step 0 starts from (honest: the job's checkpoint)."""
        return initial

    def next_state(self, state: Tensors, t: int) -> Tensors:
        """The state after step ``t``."""
        return self.program.step(state, t)

    # -- the trajectory ------------------------------------------------------------------------------

    def _train(self) -> Tensors:
        # leaf 0 is the job's input checkpoint by definition: the claim of a start from elsewhere
        # (a stale checkpoint) shows up at step 1, where the referee re-executes from the true one
        self.hashes.append(state_hash(self.program.initial))
        state = self.start(self.program.initial)
        self.snapshots[0] = state
        leaves = set(self.leaves)
        for t in range(self.program.steps):
            state = self.next_state(state, t)
            keep = getattr(self.program, "keep_states", False) and t + 1 in leaves
            if keep or (t + 1) % self.keep_every == 0:
                self.snapshots[t + 1] = state
            if t + 1 in leaves:
                self.hashes.append(state_hash(state))
        return state

    @property
    def root(self) -> str:
        return self.tree.root

    def open(self, index: int) -> LeafOpening:
        return open_hashes(self.hashes, index, self.tree)

    def output(self) -> Tensors:
        """The job's output: the final checkpoint and the committed state hashes (and, when the
        program keeps states, the state at every inner leaf)."""
        out = {**self.final, HASHES: hashes_tensor(self.hashes)}
        if getattr(self.program, "keep_states", False):
            for leaf in range(1, len(self.leaves) - 1):
                for name, value in self.state_at(leaf).items():
                    out[state_name(leaf, name)] = value.contiguous()
        return out

    def state_at(self, leaf: int) -> Tensors:
        """The state this trainer claims after leaf step ``leaves[leaf]`` (replayed from a snapshot)."""
        step = self.leaves[leaf]
        if step == 0:
            return self.program.initial
        base = max(k for k in self.snapshots if k <= step)
        state = self.snapshots[base]
        for t in range(base, step):
            state = self.next_state(state, t)
        return state
