"""An in-process federated simulation: the reference loop for the robustness table and the protocol.

Plain PyTorch; no ledger, no network. One call of :func:`run_federated` runs ``rounds`` rounds of:

1. every training provider runs local SGD from the global vector (all at once, via
   :func:`deai.learn.training.train_many`); Byzantine providers train on their poisoned data if
   their attack trains at all;
2. optional provider momentum (Karimireddy et al., 2021): provider i sends
   ``m_i = beta * m_i + (1 - beta) * delta_i`` (``m_i = delta_i`` in the first round) instead of
   ``delta_i``; averaging over rounds shrinks the honest spread that attacks hide in;
3. the attack crafts the Byzantine rows from the honest ones (omniscient) and their own;
4. the aggregator reduces the stacked ``[n, d]`` updates (weights = sample counts, used only by
   the mean; FLTrust also gets the server's update on ``root_data``; FoolsGold gets client ids);
5. the strategy turns the aggregate into the next global vector.

Determinism: every random draw comes from generators seeded by ``seed`` and the round number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from deai.learn.aggregators import Aggregator, get_aggregator, needs_root_update
from deai.learn.attacks import Attack, Backdoor, get_attack
from deai.learn.data import Dataset
from deai.learn.errors import AssumptionViolated
from deai.learn.models import build_model
from deai.learn.strategies import Strategy, get_strategy
from deai.learn.training import TrainConfig, evaluate, get_flat, set_flat, train_many

__all__ = ["FederatedResult", "run_federated"]


@dataclass
class FederatedResult:
    """Final test metrics, per-round history and, for a backdoor attack, its success rate."""

    accuracy: float
    loss: float
    global_vec: torch.Tensor
    history: list[dict] = field(default_factory=list)
    backdoor_success: float | None = None
    refused: str | None = None  # the aggregator's assumption error, if it refused to run


def _round_seeds(seed: int, rnd: int, count: int) -> list[int]:
    gen = torch.Generator().manual_seed(seed * 1_000_003 + rnd)
    return torch.randint(0, 2**31 - 1, (count,), generator=gen).tolist()


def run_federated(
    parts: Sequence[Dataset],
    test: Dataset,
    *,
    model: str = "mlp",
    model_kwargs: dict | None = None,
    rounds: int = 30,
    local: TrainConfig | None = None,
    strategy: Strategy | str = "fedavg",
    aggregator: Aggregator | str = "mean",
    f: int | None = None,
    byzantine: Sequence[int] = (),
    attack: Attack | str | None = None,
    client_momentum: float = 0.0,
    root_data: Dataset | None = None,
    weighted: bool = True,
    eval_every: int = 0,
    seed: int = 0,
) -> FederatedResult:
    """Simulate federated training of ``model`` over ``parts`` (one dataset per provider).

    ``byzantine`` lists the provider indices the ``attack`` controls; ``f`` (default
    ``len(byzantine)``) is what a string ``aggregator`` is built to tolerate. If the aggregator's
    assumption does not hold, the run stops before training and ``refused`` says why.
    """
    local = local or TrainConfig()
    n = len(parts)
    byz = sorted(set(byzantine))
    if any(not 0 <= i < n for i in byz):
        raise ValueError(f"byzantine indices {byz} outside 0..{n - 1}")
    if byz and attack is None:
        raise ValueError("byzantine providers need an attack")
    honest = [i for i in range(n) if i not in byz]
    if not honest:
        raise ValueError("at least one provider must be honest")
    atk = get_attack(attack) if isinstance(attack, str) else attack
    strat = get_strategy(strategy) if isinstance(strategy, str) else strategy
    agg = (
        get_aggregator(aggregator, f=len(byz) if f is None else f)
        if isinstance(aggregator, str)
        else aggregator
    )
    agg.reset()
    strat.reset()
    net = build_model(model, parts[0].in_features, parts[0].num_classes, seed=seed, **(model_kwargs or {}))
    global_vec = get_flat(net)
    try:
        agg.check(n, agg.f)
    except AssumptionViolated as exc:
        set_flat(net, global_vec)
        m = evaluate(net, test)
        return FederatedResult(m["accuracy"], m["loss"], global_vec, refused=str(exc))
    if needs_root_update(agg) and root_data is None:
        raise ValueError(f"{agg!r} compares updates with a root update: pass root_data")

    poison_gen = torch.Generator().manual_seed(seed + 7919)
    data = [atk.poison(p, poison_gen) if (i in byz and atk is not None) else p for i, p in enumerate(parts)]
    trainees = honest + (byz if atk is not None and atk.trains else [])
    trainees.sort()
    row_of = {p: r for r, p in enumerate(trainees)}
    weights = torch.tensor([float(len(p)) for p in parts]) if weighted else None
    local = TrainConfig(**{**local.__dict__, "prox_mu": local.prox_mu or strat.prox_mu})
    momentum: torch.Tensor | None = None
    root_momentum: torch.Tensor | None = None
    beta = client_momentum
    history: list[dict] = []
    ids = torch.arange(n)
    for rnd in range(rounds):
        seeds = _round_seeds(seed, rnd, n + 2)
        deltas, _ = train_many(
            net, global_vec, [data[i] for i in trainees], local, [seeds[i] for i in trainees]
        )
        if client_momentum:
            momentum = deltas if momentum is None else beta * momentum + (1 - beta) * deltas
            deltas = momentum
        sent = torch.empty(n, global_vec.numel())
        hon = deltas[[row_of[i] for i in honest]]
        sent[honest] = hon
        if byz:
            own = deltas[[row_of[i] for i in byz]] if atk.trains else None
            gen = torch.Generator().manual_seed(seeds[n])
            sent[byz] = atk.craft(hon, own, len(byz), gen).to(sent.dtype)
        context = {"client_ids": ids}
        if needs_root_update(agg):
            root, _ = train_many(net, global_vec, [root_data], local, [seeds[n + 1]])
            # the server's root update gets the providers' momentum too: FLTrust compares directions,
            # and a raw one-round update against momentum-averaged rows is a noisier reference
            if client_momentum:
                root_momentum = (
                    root[0] if root_momentum is None else beta * root_momentum + (1 - beta) * root[0]
                )
                context["root_update"] = root_momentum
            else:
                context["root_update"] = root[0]
        global_vec = strat(global_vec, agg(sent, weights, **context))
        if eval_every and ((rnd + 1) % eval_every == 0 or rnd == rounds - 1):
            set_flat(net, global_vec)
            history.append({"round": rnd + 1, **evaluate(net, test)})
    set_flat(net, global_vec)
    final = evaluate(net, test)
    bd = atk.success_rate(net, test) if isinstance(atk, Backdoor) else None
    return FederatedResult(final["accuracy"], final["loss"], global_vec, history, bd)
