"""The network's federated round is learn's round: a task run over the in-memory transport ends each
round on the same bits as :func:`deai.learn.federated.run_federated` configured the same way (same
split, initial model, batch-order seeds, attackers, aggregator and strategy)."""

import pytest
import torch

from deai.learn.federated import run_federated
from deai.learn.training import TrainConfig, deterministic
from deai.protocol.task.model import flat_of
from deai.protocol.task.provider import provider_seed


@pytest.mark.parametrize(
    ("strategy", "attackers"),
    [("fedavg", ()), ("fedadam", (1, 3))],
    ids=["honest-fedavg", "sybil-clones-fedadam"],
)
def test_network_rounds_equal_run_federated_bit_for_bit(small_net, strategy, attackers):
    # sybil_clones poisons (label flip) and crafts jointly (every clone sends the first one's update):
    # both the attack step and the strategy's state round trip through the ledger are compared.
    net = small_net(n=4, provider_behaviours={i: "sybil_clones" for i in attackers})
    bundle = net.bundle(rounds=2, aggregator="mean", strategy=strategy, min_providers=4, max_providers=4)
    task, status = net.run(bundle)
    assert status.phase == "done", status.reason
    spec = bundle.spec
    addresses = sorted(net.datasets)  # the pool trains and the job stacks updates in address order
    assert [h.contributors for h in status.history] == [addresses, addresses]
    byzantine = sorted(addresses.index(net.providers[i].address) for i in attackers)
    local = TrainConfig(
        epochs=spec.local_epochs, batch_size=spec.batch_size, lr=spec.lr, momentum=spec.momentum
    )
    for r, h in enumerate(status.history, 1):
        on_network = flat_of(spec, net.net.store.get(h.checkpoint))
        with deterministic():
            ref = run_federated(
                [net.datasets[a] for a in addresses],
                net.splits.test,
                rounds=r,
                local=local,
                strategy=strategy,
                aggregator="mean",
                f=0,
                byzantine=byzantine,
                attack="sybil_clones" if attackers else None,
                seed=0,  # make_task's model_seed: the same initial model
                round_seeds=lambda rnd: [provider_seed(task, rnd + 1, a) for a in addresses],
            )
        assert torch.equal(on_network, ref.global_vec), f"round {r} differs from run_federated"
