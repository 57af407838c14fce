"""The learning layer: plain PyTorch, tensors in, tensors out; no networking, no ledger.

- :mod:`deai.learn.data`: dataset loaders, standardization, seeded splits.
- :mod:`deai.learn.partition`: split a dataset across providers (IID, Dirichlet, shards, quantity skew).
- :mod:`deai.learn.models`: the model registry plus user modules given as import paths.
- :mod:`deai.learn.training`: deterministic local training returning a flat update (delta).
- :mod:`deai.learn.strategies`: server-side update rules (FedAvg, FedProx, FedAdam, FedYogi, DiLoCo).
- :mod:`deai.learn.aggregators`: robust aggregators over a stacked ``[n, d]`` tensor of updates.
- :mod:`deai.learn.attacks`: the Byzantine attack suite used for evaluation.
- :mod:`deai.learn.scoring`: contribution scoring (leave-one-out, GTG-Shapley, RONI).
- :mod:`deai.learn.privacy`: client-level DP and its accountant, DP-SGD, PII scrubbing, audits.
- :mod:`deai.learn.federated`: the steps of one federated round, which the network's roles call,
  and the in-process loop over them.

Every pluggable part (partitioner, model, strategy, aggregator, attack, scorer) is registered by a
decorator on its class, ``@AGGREGATORS.register("name")`` (:mod:`deai.core.registry`), and built by
name (``get_aggregator("nnm+centered_clipping", f=2)``). Submodules are imported explicitly
(``from deai.learn.aggregators import get_aggregator``) so that importing the package stays cheap.
"""

__all__: list[str] = []
