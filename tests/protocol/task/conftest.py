import pytest

from deai.core.accounts import Account
from deai.learn.partition import partition
from deai.node.launch.inprocess import LocalNetwork
from deai.node.user.submit import make_task


class Net:
    """A small in-memory network: n data providers in one daemon, m compute providers in another."""

    def __init__(self, root, splits, *, n=5, m=4, provider_behaviours=None, compute_behaviours=None, seed=0):
        self.net = LocalNetwork(root, seed=seed)
        self.providers = [Account.from_seed(f"p{seed}", i) for i in range(n)]
        self.computes = [Account.from_seed(f"c{seed}", i) for i in range(m)]
        self.creator = Account.from_seed(f"creator{seed}", 0)
        self.net.fund([*self.providers, *self.computes, self.creator, self.net.hub_account], 100_000)
        parts = partition(splits.train.y, n, "iid", seed=seed)
        self.datasets = {p.address: splits.train.subset(parts[i]) for i, p in enumerate(self.providers)}
        pb = {self.providers[i].address: b for i, b in (provider_behaviours or {}).items()}
        cb = {self.computes[i].address: b for i, b in (compute_behaviours or {}).items()}
        self.data_daemon = self.net.add_daemon(
            "data", {"data_provider": self.providers}, behaviours=pb, options={"datasets": self.datasets}
        )
        self.compute_daemon = self.net.add_daemon(
            "compute", {"compute_provider": self.computes}, behaviours=cb
        )
        self.splits = splits

    def bundle(self, **recipe):
        defaults = dict(
            rounds=2, lr=0.1, batch_size=32, budget=6_000, min_providers=2, max_providers=len(self.providers)
        )
        return make_task(self.splits.val, **{**defaults, **recipe})

    def run(self, bundle, **kw):
        task = self.net.submit(self.creator, bundle)
        self.net.run(self.net.task_done(task), **kw)
        return task, self.net.status(task)


@pytest.fixture
def small_net(tmp_path, digits):
    return lambda **kw: Net(tmp_path / f"net{len(list(tmp_path.iterdir()))}", digits, **kw)
