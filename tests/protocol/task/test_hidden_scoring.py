"""Hidden scoring sets: committed in the spec, sealed at the hub, revealed round by round."""

import pytest

from deai.core.blobs import BlobStore
from deai.core.encoding import sha256_hex
from deai.net.transport import RemoteError
from deai.node.user.submit import make_task
from deai.protocol.task.errors import BadTaskSpec
from deai.protocol.task.model import data_bytes
from deai.protocol.task.records import Phase
from deai.protocol.task.spec import MAX_SCORING_SETS, TaskSpec
from deai.sim.plan import MIN_SCORING_SET, hold_out

D = [f"{i:064x}" for i in range(1, 6)]


def _spec(**kw):
    return TaskSpec(init=D[0], validation=D[1], in_features=64, num_classes=10, **kw)


def test_spec_rounds_cycle_over_the_scoring_sets():
    assert _spec().scoring_data(3) == D[1]  # none: the public validation data
    spec = _spec(scoring_sets=[D[2], D[3]], rounds=5)
    assert [spec.scoring_data(r) for r in range(1, 6)] == [D[2], D[3], D[2], D[3], D[2]]
    assert TaskSpec.from_bytes(spec.to_bytes(), task_id=spec.task_id) == spec


@pytest.mark.parametrize(
    "sets",
    [
        ["nope"],  # not a digest
        [D[2], D[2]],  # twice
        [D[1]],  # the public validation data
        [D[0]],  # the initial checkpoint
        "0" * 64,  # not a list
        [[D[2]]],  # nested
        [f"{i:064x}" for i in range(MAX_SCORING_SETS + 1)],
    ],
)
def test_spec_refuses_bad_scoring_sets(sets):
    with pytest.raises(BadTaskSpec):
        _spec(scoring_sets=sets)


def test_hold_out_splits_the_validation_data(digits):
    val = digits.val
    public, sets = hold_out(val, 0.5, rounds=2, seed=3)
    assert len(sets) == 2 and all(len(s) >= MIN_SCORING_SET for s in sets)
    assert len(public) + sum(len(s) for s in sets) == len(val)
    rows = lambda d: {tuple(r) for r in d.x.tolist()}  # noqa: E731
    assert not rows(public) & rows(sets[0]) and not rows(sets[0]) & rows(sets[1])
    assert hold_out(val, 0.5, rounds=2, seed=3)[1][0].x.equal(sets[0].x)  # seeded
    assert hold_out(val, 0.0, rounds=2, seed=3) == (val, [])  # nothing held back
    few = val.subset(list(range(40)))
    assert hold_out(few, 0.5, rounds=4, seed=0)[1] == []  # too short for one set of 32


def _hidden_task(net, rounds=2):
    val, sets = hold_out(net.splits.val, 0.5, rounds=rounds, seed=0)
    return make_task(
        val, scoring_sets=sets, rounds=rounds, lr=0.1, budget=6_000, min_providers=2, max_providers=5
    )


def test_scoring_set_stays_hidden_until_the_round_is_committed(small_net):
    net = small_net()
    bundle = _hidden_task(net)
    first, second = bundle.spec.scoring_sets
    provider = net.net.client(net.providers[0])
    task = net.net.submit(net.creator, bundle)
    hub = net.net.hub
    coord = hub.coordinators[task]
    assert first in hub.sealed.store and second in hub.sealed.store  # handed in by submit_task
    net.net.run(lambda: coord.state.phase == Phase.TRAIN)
    for digest in (first, second):  # a provider asking during training is refused
        with pytest.raises(RemoteError) as err:
            provider.get_blob(digest)
        assert err.value.status == 404
    net.net.run(lambda: coord.state.phase == Phase.JOBS)  # round 1's updates are committed
    assert provider.get_blob(first) == hub.sealed.store.get(first)  # revealed for the score job
    with pytest.raises(RemoteError):
        provider.get_blob(second)  # round 2's set is still sealed
    net.net.run(net.net.task_done(task))
    status = net.net.status(task)
    assert status.phase == "done"
    assert [h.scored_on for h in status.history] == [first, second]
    assert provider.get_blob(second)


def test_seal_refuses_foreign_and_malformed_sets(small_net):
    net = small_net()
    bundle = _hidden_task(net)
    task = net.net.submit(net.creator, bundle)
    stranger = net.net.client(net.providers[1])
    foreign = data_bytes(net.splits.val.subset([0, 1, 2]))  # valid data the spec does not name
    with pytest.raises(RemoteError) as err:
        stranger.seal(task, foreign)
    assert err.value.status == 403
    with pytest.raises(RemoteError):
        stranger.call("task.seal", {"task": task, "data": "not base64!"})
    with pytest.raises(RemoteError):
        stranger.call("task.seal", {"task": task, "data": 7})
    with pytest.raises(RemoteError) as err:
        stranger.seal("0x" + "ab" * 32, foreign)  # no such task
    assert err.value.status == 404
    # anyone holding the committed bytes may hand them in again (idempotent)
    assert stranger.seal(task, bundle.scoring[0]) == bundle.spec.scoring_sets[0]


def test_a_withheld_scoring_set_falls_back_to_the_public_data(small_net, tmp_path):
    net = small_net()
    bundle = _hidden_task(net)
    hub = net.net.hub
    hub.sealed.store = BlobStore(tmp_path / "elsewhere")  # the creator's sets never reach this hub
    for c in hub.coordinators.values():
        c.sealed = hub.sealed.store
    task = net.net.submit(net.creator, bundle.__class__(bundle.spec, bundle.init, bundle.validation))
    net.net.run(net.net.task_done(task))
    status = net.net.status(task)
    assert status.phase == "done"
    assert [h.scored_on for h in status.history] == [bundle.spec.validation] * 2
    assert sha256_hex(bundle.validation) == bundle.spec.validation
