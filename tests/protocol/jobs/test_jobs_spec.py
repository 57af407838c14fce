import pytest
from hypothesis import given
from hypothesis import strategies as st

from deai.protocol.jobs.errors import BadJobSpec
from deai.protocol.jobs.spec import JobSpec

D = "ab" * 32


def test_job_id_is_the_hash_of_the_canonical_spec():
    spec = JobSpec("aggregate", (D,), {"aggregator": "mean", "f": 0}, seed=3)
    again = JobSpec("aggregate", ["0x" + D], {"f": 0, "aggregator": "mean"}, seed=3)
    assert spec.job_id == again.job_id == "0x" + spec.digest
    assert JobSpec.from_bytes(spec.to_bytes(), job_id=spec.job_id) == spec
    assert JobSpec("aggregate", (D,), {"aggregator": "mean", "f": 0}, seed=4).job_id != spec.job_id
    assert JobSpec("aggregate", (D,), {"aggregator": "mean", "f": 0}, seed=3, nonce=1).job_id != spec.job_id


@given(
    seed=st.integers(0, 2**53 - 1),
    params=st.dictionaries(
        st.text(max_size=5), st.integers(-(2**40), 2**40) | st.text(max_size=5), max_size=4
    ),
)
def test_spec_roundtrips(seed, params):
    spec = JobSpec("score", (D, "cd" * 32), params, seed=seed)
    assert JobSpec.from_bytes(spec.to_bytes()) == spec


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kind": ""}, "kind"),
        ({"inputs": ("zz",)}, "digest"),
        ({"inputs": D}, "sequence"),
        ({"params": {"x": float("nan")}}, "canonical"),
        ({"seed": -1}, "seed"),
        ({"seed": True}, "seed"),
    ],
)
def test_bad_specs_are_refused(kwargs, match):
    base = {"kind": "aggregate", "inputs": (D,), "params": {}, "seed": 0} | kwargs
    with pytest.raises(BadJobSpec, match=match):
        JobSpec(**base)


def test_spec_bytes_must_be_canonical_and_match_the_id():
    spec = JobSpec("aggregate", (D,), {}, seed=1)
    with pytest.raises(BadJobSpec, match="canonical"):
        JobSpec.from_bytes(spec.to_bytes().replace(b",", b", "))
    with pytest.raises(BadJobSpec, match="not the job id"):
        JobSpec.from_bytes(spec.to_bytes(), job_id="0x" + "00" * 32)
    with pytest.raises(BadJobSpec, match="fields"):
        JobSpec.from_bytes(b'{"kind":"a"}')
