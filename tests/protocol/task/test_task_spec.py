"""Task specs and signed statements: canonical ids, refusals that name the bad field."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deai.core.accounts import Account
from deai.protocol.task.errors import BadStatement, BadTaskSpec
from deai.protocol.task.spec import TaskSpec
from deai.protocol.task.statements import SecAggStatement, UpdateStatement

D = "ab" * 32
TASK = "0x" + "cd" * 32


def spec(**kw):
    return TaskSpec(init=D, validation=D, in_features=8, num_classes=3, **kw)


def test_spec_round_trips_and_hashes_to_its_id():
    s = spec(rounds=4, lr=0.05, dp={"mode": "local", "clip": 0.5, "noise_multiplier": 1.1})
    again = TaskSpec.from_bytes(s.to_bytes(), task_id=s.task_id)
    assert again == s and again.task_id == s.task_id
    with pytest.raises(BadTaskSpec, match="hashes to"):
        TaskSpec.from_bytes(spec(rounds=5).to_bytes(), task_id=s.task_id)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("rounds", 0, "rounds"),
        ("model", "os:system", "model must be one of"),
        ("aggregator", "no_such_thing", "aggregator"),
        ("strategy", "sgd?", "strategy"),
        ("sample_rate", 1.5, "sample_rate"),
        ("min_providers", 0, "min_providers"),
        ("dp", {"mode": "sideways"}, "dp.mode"),
    ],
)
def test_bad_spec_fields_are_named(field, value, message):
    with pytest.raises(BadTaskSpec, match=message):
        spec(**{field: value})


def test_unknown_spec_field_is_refused():
    data = spec().to_json()
    data["surprise"] = 1
    with pytest.raises(BadTaskSpec, match="unknown field"):
        TaskSpec.from_json(data)


def test_update_statement_signature_binds_every_field():
    alice, mallory = Account.from_seed("a", 0), Account.from_seed("m", 0)
    st_ = UpdateStatement.sign(alice, TASK, 2, D, 40)
    assert UpdateStatement.from_json(st_.to_json()) == st_
    forged = {**st_.to_json(), "provider": mallory.address}
    with pytest.raises(BadStatement, match="signed by"):
        UpdateStatement.from_json(forged)


@settings(max_examples=60, deadline=None)
@given(
    field=st.sampled_from(["task", "round", "provider", "update", "samples", "signature"]),
    value=st.one_of(st.none(), st.integers(), st.text(max_size=70), st.lists(st.integers(), max_size=3)),
)
def test_any_tampered_update_statement_is_refused(field, value):
    alice = Account.from_seed("a", 0)
    body = UpdateStatement.sign(alice, TASK, 2, D, 40).to_json()
    if body[field] == value:
        return
    body[field] = value
    with pytest.raises(BadStatement):
        UpdateStatement.from_json(body)


def test_secagg_statement_round_trip_and_limits():
    alice = Account.from_seed("a", 0)
    s = SecAggStatement.sign(alice, TASK, 1, 0, 2, b"\x01\x02")
    assert SecAggStatement.from_json(s.to_json()) == s
    with pytest.raises(BadStatement, match="not hex"):
        SecAggStatement.from_json({**s.to_json(), "data": "zz"})
