import numpy as np
import pytest
import torch

from deai.core.accounts import Account
from deai.learn.aggregators import get_aggregator
from deai.protocol.secagg.bucketed import assign_buckets, bucketed_secure_aggregate
from deai.protocol.secagg.phases import Phase

ACCOUNTS = [Account.from_seed("secagg-bucket", i) for i in range(24)]


@pytest.mark.parametrize(("n", "s"), [(24, 3), (24, 5), (7, 2), (10, 10)])
def test_buckets_partition_the_providers_and_are_recomputable(n, s):
    buckets = assign_buckets(n, s, b"seed")
    assert buckets == assign_buckets(n, s, b"seed")
    assert sorted(u for b in buckets for u in b) == list(range(n))
    assert len(buckets) == n // s and all(s <= len(b) <= s + 1 for b in buckets)
    assert buckets != assign_buckets(n, s, b"other") or n == s


def test_bucket_means_are_the_exact_secure_means_and_robust_aggregate_resists_attack():
    n, d = 24, 40
    rng = np.random.default_rng(0)
    x = rng.normal(0.2, 0.05, (n, d))
    x[:3] = -1.0  # three Byzantine providers push the other way
    # 8 buckets of 3: at most 3 spoiled, a minority the median tolerates (2f < b).
    res = bucketed_secure_aggregate(x, ACCOUNTS, 3, get_aggregator("median"), seed=b"r1", tag="t")
    assert res.bucket_means.shape == (8, d)
    for bucket, mean, r in zip(res.buckets, res.bucket_means, res.results, strict=True):
        assert abs(mean.numpy() - np.clip(x[list(bucket)], -1, 1).mean(0)).max() <= r.error_bound / len(
            bucket
        )
    robust_err = float((res.aggregate - 0.2).abs().max())
    mean_err = float(np.abs(x.mean(0) - 0.2).max())
    assert robust_err < mean_err / 2


def test_dropouts_inside_buckets_and_aborted_bucket_is_reported():
    n, d = 12, 8
    x = np.random.default_rng(1).normal(0, 0.1, (n, d))
    buckets = assign_buckets(n, 4, b"r2")
    # One provider drops after sending in bucket 0; all but one drop in bucket 1 (it must abort).
    drop = {buckets[0][0]: Phase.UNMASK} | {u: Phase.ADVERTISE for u in buckets[1][1:]}
    res = bucketed_secure_aggregate(x, ACCOUNTS[:n], 4, "mean", seed=b"r2", tag="d", drop=drop)
    assert res.results[1] is None and res.aborted[0][0] == 1
    assert res.bucket_means.shape == (2, d)
    assert torch.allclose(res.bucket_means[0], torch.from_numpy(x[list(buckets[0])].mean(0)), atol=1e-5)


def test_bucket_size_one_is_refused():
    with pytest.raises(ValueError, match="at least 2"):
        bucketed_secure_aggregate(np.zeros((4, 2)), ACCOUNTS[:4], 1, "mean", seed=b"x")
