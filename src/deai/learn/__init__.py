"""The learning layer: plain PyTorch, tensors in, tensors out; no networking, no ledger.

- :mod:`deai.learn.data`: dataset loaders, standardization, seeded splits.
- :mod:`deai.learn.partition`: split a dataset across providers (IID, Dirichlet, shards, quantity skew).
- :mod:`deai.learn.models`: a model registry plus user modules given as import paths.
- :mod:`deai.learn.training`: deterministic local training returning a flat update (delta).
- :mod:`deai.learn.strategies`: server-side update rules (FedAvg, FedProx, FedAdam, FedYogi, DiLoCo).
- :mod:`deai.learn.aggregators`: robust aggregators over a stacked ``[n, d]`` tensor of updates.
- :mod:`deai.learn.attacks`: the Byzantine attack suite used for evaluation.
- :mod:`deai.learn.federated`: an in-process federated simulation used as the reference loop.

Submodules are imported explicitly (``from deai.learn.aggregators import get_aggregator``) so that
importing the package stays cheap.
"""
