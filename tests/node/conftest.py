import os

import pytest

from deai.core.accounts import Account
from deai.learn.partition import partition
from deai.node.user.submit import make_task
from deai.protocol.task.spec import Windows

SMALL = os.environ.get("DEAI_SMALL") == "1"


class Parties:
    """Providers, compute providers and a creator with deterministic keys and iid digits shards."""

    def __init__(self, splits, n=4, m=4, tag="h"):
        self.n, self.m, self.tag = n, m, tag
        self.providers = [Account.from_seed(f"{tag}p", i) for i in range(n)]
        self.computes = [Account.from_seed(f"{tag}c", i) for i in range(m)]
        self.creator = Account.from_seed(f"{tag}creator", 0)
        parts = partition(splits.train.y, n, "iid", seed=0)
        self.datasets = {p.address: splits.train.subset(parts[i]) for i, p in enumerate(self.providers)}
        self.splits = splits

    @property
    def provider_spec(self):
        return f"seed:{self.tag}p:0-{self.n - 1}"

    @property
    def compute_spec(self):
        return f"seed:{self.tag}c:0-{self.m - 1}"

    def everyone(self, hub):
        return [a.address for a in [*self.providers, *self.computes, self.creator]] + [hub.address]

    def bundle(self, **kw):
        windows = Windows(
            join_ms=60_000, train_ms=60_000, commit_ms=15_000, reveal_ms=15_000, secagg_ms=15_000
        )
        recipe = dict(rounds=2, budget=6_000, min_providers=2, max_providers=self.n, windows=windows)
        return make_task(self.splits.val, **{**recipe, **kw})


@pytest.fixture
def parties(digits):
    return Parties(digits)
