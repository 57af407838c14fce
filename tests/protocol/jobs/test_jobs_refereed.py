import pytest
import torch

from deai.learn.models import build_model
from deai.learn.training import deterministic
from deai.protocol.jobs.errors import DisputeError
from deai.protocol.jobs.kinds import StepProgram
from deai.protocol.jobs.merkle import StepTree, verify_step
from deai.protocol.jobs.refereed import Dispute, Trainer, expected_rounds, referee, state_hash

P = {"model": "logreg", "in_features": 5, "num_classes": 3}


def program(steps=64):
    g = torch.Generator().manual_seed(0)
    ck = {k: v.clone() for k, v in build_model("logreg", 5, 3, seed=2).state_dict().items()}
    data = {"x": torch.randn(40, 5, generator=g), "y": torch.randint(0, 3, (40,), generator=g)}
    return StepProgram.from_job([ck, data], {**P, "steps": steps, "lr": 0.1, "batch_size": 8}, 3)


class Diverger(Trainer):
    """Honest until step ``at``, where it skips the work (returns the state unchanged)."""

    def __init__(self, prog, at, **kw):
        self.at = at
        super().__init__(prog, **kw)

    def next_state(self, state, t):
        return state if t == self.at else super().next_state(state, t)


class FinalLiar(Trainer):
    """Commits honest intermediate hashes but a doctored final state."""

    def next_state(self, state, t):
        out = super().next_state(state, t)
        return {k: v + 1.0 for k, v in out.items()} if t == self.program.steps - 1 else out


def test_merkle_proofs_bind_positions():
    hashes = ["0x" + f"{i:064x}" for i in range(11)]
    tree = StepTree(hashes)
    for i in range(11):
        assert verify_step(tree.root, 11, i, hashes[i], tree.proof(i))
    assert not verify_step(tree.root, 11, 3, hashes[4], tree.proof(4))  # right leaf, wrong position
    assert not verify_step(tree.root, 11, 3, hashes[3], tree.proof(3)[:-1])
    assert not verify_step(tree.root, 11, 3, hashes[3], [*tree.proof(3), hashes[0]])
    assert not verify_step(tree.root, 11, 11, hashes[3], tree.proof(3))


@pytest.mark.parametrize("at", [0, 1, 31, 32, 62, 63])
def test_bisection_finds_the_divergent_step(at):
    with deterministic(1):
        prog = program(64)
        outcome = referee(
            {"honest": Trainer(prog, keep_every=8), "liar": Diverger(prog, at, keep_every=8)}, prog
        )
    assert outcome.winners == ["honest"] and outcome.liars == ["liar"]
    assert outcome.step == at and outcome.steps_reexecuted == 1
    assert outcome.rounds == expected_rounds(64) == 6


def test_liar_on_the_final_state_only():
    with deterministic(1):
        prog = program(50)
        outcome = referee({"a": FinalLiar(prog), "b": Trainer(prog)}, prog)
    assert outcome.liars == ["a"] and outcome.step == 49 and outcome.rounds == expected_rounds(50)


def test_honest_pair_has_no_dispute():
    with deterministic(1):
        prog = program(16)
        a, b = Trainer(prog), Trainer(prog, keep_every=3)
    assert a.root == b.root
    outcome = referee({"a": a, "b": b}, prog)
    assert outcome.liars == [] and outcome.rounds == 0 and outcome.steps_reexecuted == 0


def test_bad_proofs_wrong_start_and_timeouts_lose():
    with deterministic(1):
        prog = program(16)
        h, liar = Trainer(prog), Diverger(prog, 5)
    roots = {"h": h.root, "l": liar.root}
    d = Dispute(16, state_hash(prog.initial), roots)
    assert d.query() == (0, 16)
    d.answer("h", [h.open(0), h.open(16)])
    forged = liar.open(16)
    d.answer("l", [liar.open(0), type(forged)(16, h.hashes[16], forged.proof)])  # claims the honest final
    assert d.outcome.liars == ["l"] and "proof" in d.outcome.reason
    with pytest.raises(DisputeError, match="no query"):
        d.answer("h", [h.open(0)])

    d = Dispute(16, "0x" + "00" * 32, roots)  # neither starts from this checkpoint
    d.answer("h", [h.open(0), h.open(16)])
    d.answer("l", [liar.open(0), liar.open(16)])
    assert sorted(d.outcome.liars) == ["h", "l"]

    d = Dispute(16, state_hash(prog.initial), roots)
    d.answer("h", [h.open(0), h.open(16)])
    d.timeout()
    assert d.outcome.liars == ["l"] and d.outcome.winners == ["h"]


def test_referee_refuses_a_state_with_the_wrong_hash():
    with deterministic(1):
        prog = program(16)
        h, liar = Trainer(prog), Diverger(prog, 9)
    d = Dispute(16, state_hash(prog.initial), {"h": h.root, "l": liar.root})
    while not d.needs_state:
        q = d.query()
        d.answer("h", [h.open(i) for i in q])
        d.answer("l", [liar.open(i) for i in q])
    assert d.lo == 9
    with pytest.raises(DisputeError, match="does not hash"):
        d.resolve(prog.initial, prog.step)
    with deterministic(1):
        assert d.resolve(h.state_at(9), prog.step).liars == ["l"]
