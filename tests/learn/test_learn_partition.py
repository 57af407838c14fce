import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deai.learn.errors import DataError, UnknownName
from deai.learn.partition import partition

KINDS = [
    ("iid", {}),
    ("dirichlet", {"alpha": 0.3}),
    ("shards", {"classes_per_provider": 2}),
    ("quantity", {"alpha": 0.5}),
]


@settings(max_examples=25, deadline=None)
@given(
    n_samples=st.integers(40, 400),
    n_classes=st.integers(2, 10),
    providers=st.integers(1, 12),
    seed=st.integers(0, 2**31),
    kind=st.sampled_from(KINDS),
)
def test_every_sample_exactly_once(n_samples, n_classes, providers, seed, kind):
    name, kw = kind
    labels = np.random.default_rng(seed).integers(0, n_classes, n_samples)
    parts = partition(labels, providers, name, seed=seed, **kw)
    assert len(parts) == providers
    allidx = np.concatenate(parts)
    assert allidx.dtype == np.int64
    assert np.array_equal(np.sort(allidx), np.arange(n_samples))
    assert min(len(p) for p in parts) >= 1


@pytest.mark.parametrize(("name", "kw"), KINDS)
def test_same_seed_same_partition(name, kw):
    labels = np.random.default_rng(0).integers(0, 10, 500)
    a = partition(labels, 7, name, seed=11, **kw)
    b = partition(labels, 7, name, seed=11, **kw)
    c = partition(labels, 7, name, seed=12, **kw)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_skew_properties():
    labels = np.repeat(np.arange(10), 100)
    iid = partition(labels, 10, "iid", seed=0)
    assert {len(p) for p in iid} == {100}
    skew = partition(labels, 10, "dirichlet", seed=0, alpha=0.1)
    # Strong label skew: a typical provider's most frequent class dominates.
    top = np.median([np.bincount(labels[p], minlength=10).max() / len(p) for p in skew])
    assert top > 0.5
    shards = partition(labels, 10, "shards", seed=0, classes_per_provider=2)
    assert all(len(np.unique(labels[p])) <= 2 for p in shards)
    sizes = [len(p) for p in partition(labels, 10, "quantity", seed=0, alpha=0.3)]
    assert max(sizes) > 3 * min(sizes)


def test_partition_errors():
    with pytest.raises(DataError, match="cannot give"):
        partition(np.zeros(5), 6, "iid")
    with pytest.raises(DataError, match="alpha"):
        partition(np.zeros(50), 2, "dirichlet", alpha=0)
    with pytest.raises(UnknownName, match="unknown partitioner"):
        partition(np.zeros(50), 2, "pathological")
    with pytest.raises(DataError, match="does not take"):
        partition(np.zeros(50), 2, "iid", alpha=1.0)
