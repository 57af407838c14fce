"""One federated round as pure functions, and :func:`run_federated`, the in-process loop over them.

A round is split the way the network splits it across roles; the network's roles call these very
functions, so the in-process loop behind the robustness table and ``deai simulate``/``demo``/``up``
share one implementation of each step:

1. :func:`local_step` -- what the data providers do (``deai.protocol.task.provider.ProviderPool.train``
   calls it for the providers one process hosts): local SGD from the global vector for every
   provider at once (:func:`deai.learn.training.train_many`), optional provider momentum on the
   parameters' part of the update (buffers such as batch-norm statistics are estimates, not
   gradients: they pass through as trained; :func:`momentum_step`)
   (Karimireddy et al., 2021: ``m_i = beta * m_i + (1 - beta) * delta_i``, ``m_i = delta_i`` in the
   first round), then the attack step: each :class:`Collusion` of Byzantine rows crafts its updates
   from the honest rows it can see and its own trained rows (``Attack.craft``). Byzantine datasets
   are poisoned by the caller (``Attack.poison``) before they are passed in.
2. :func:`aggregate_updates` -- what the aggregation job does (the ``aggregate`` job kind calls it):
   the aggregator reduces the stacked ``[n, d]`` updates (weights = sample counts, used by the mean;
   ``root_update`` for FLTrust and the root gate, from :func:`root_update`; ``client_ids`` for
   FoolsGold).
3. :func:`server_step` -- what the task coordinator does at the end of a round
   (``TaskCoordinator._finish_round``): the strategy turns the aggregate into the next global
   vector, its optimizer state passed in and handed back as plain tensors.

Differences between :func:`run_federated` and the network (both documented in ``docs/learn.md``):
the network poisons and crafts per process (a colluding pool sees only the honest providers it
hosts, not every honest row), rebuilds the aggregator for every round's job (FoolsGold's history
and other aggregator state do not carry over), runs no provider momentum (the task spec has no
field for it), and may add client DP or secure aggregation after the attack step. Configured the
same way (honest or pool-local attackers, a stateless aggregator, no momentum, no DP/SecAgg), the
two agree bit for bit (``tests/protocol/task/test_task_round_matches_learn.py``).

Determinism: every random draw comes from generators seeded by ``seed`` and the round number (or
by ``round_seeds``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from deai.learn.aggregators import Aggregator, Rows, get_aggregator, needs_root_update
from deai.learn.attacks import Attack, Backdoor, get_attack
from deai.learn.data import Dataset
from deai.learn.errors import AssumptionViolated
from deai.learn.models import build_model
from deai.learn.strategies import Strategy, get_strategy
from deai.learn.training import TrainConfig, evaluate, get_flat, set_flat, train_many

__all__ = [
    "Collusion",
    "FederatedResult",
    "LocalStep",
    "ServerStep",
    "aggregate_updates",
    "local_step",
    "momentum_step",
    "parameter_size",
    "root_update",
    "run_federated",
    "server_step",
]


@dataclass(frozen=True)
class Collusion:
    """Byzantine providers (row indices) that run one ``attack`` together in a round.

    ``generator`` is the only randomness ``Attack.craft`` may draw from (seed it per round).
    """

    attack: Attack
    members: Sequence[int]
    generator: torch.Generator


@dataclass(frozen=True)
class LocalStep:
    """What the providers send (``sent [n, d]``, row i = provider i) and the momentum to keep."""

    sent: torch.Tensor
    momentum: torch.Tensor | None


@dataclass(frozen=True)
class ServerStep:
    """The next global vector and the strategy's optimizer state (empty for stateless ones)."""

    global_vec: torch.Tensor
    state: dict[str, torch.Tensor]


def local_step(
    model: nn.Module,
    start: torch.Tensor,
    datasets: Sequence[Dataset],
    config: TrainConfig,
    seeds: Sequence[int],
    *,
    collusions: Sequence[Collusion] = (),
    momentum: torch.Tensor | None = None,
    beta: float = 0.0,
) -> LocalStep:
    """The providers' part of a round: train, apply momentum, run the attacks.

    ``datasets[i]`` / ``seeds[i]`` are provider i's training data (already poisoned for a data
    attack) and batch-order seed. Providers in no collusion are honest. Members of a collusion whose
    attack does not train skip training. ``momentum`` is the previous :attr:`LocalStep.momentum`
    (``None`` in the first round); ``beta = 0`` disables it. Each collusion crafts from the honest
    rows (its own trained rows when there are none; zeros when it trains neither). Run under
    :func:`deai.learn.training.deterministic` for reproducible bits.
    """
    n = len(datasets)
    if n != len(seeds) or n == 0:
        raise ValueError("local_step needs one seed per dataset and at least one dataset")
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"momentum beta must be in [0, 1), got {beta}")
    byzantine = [i for c in collusions for i in c.members]
    if len(set(byzantine)) != len(byzantine) or any(not 0 <= i < n for i in byzantine):
        raise ValueError(f"collusion members {byzantine} must be distinct rows in 0..{n - 1}")
    idle = {i for c in collusions if not c.attack.trains for i in c.members}
    trainees = [i for i in range(n) if i not in idle]
    d = start.numel()
    trained = torch.zeros(0, d)
    if trainees:
        chosen = [datasets[i] for i in trainees]
        trained, _ = train_many(model, start, chosen, config, [seeds[i] for i in trainees])
        if beta:
            momentum = momentum_step(momentum, trained, beta, parameter_size(model))
            trained = momentum
    row_of = {p: r for r, p in enumerate(trainees)}
    sent = torch.zeros(n, d)
    honest = [i for i in range(n) if i not in set(byzantine)]
    hon = trained[[row_of[i] for i in honest]]
    sent[honest] = hon
    for c in collusions:
        members = list(c.members)
        own = trained[[row_of[i] for i in members]] if c.attack.trains else None
        ref = hon if honest else (own if own is not None else torch.zeros(1, d))
        sent[members] = c.attack.craft(ref, own, len(members), c.generator).to(sent.dtype)
    return LocalStep(sent, momentum if beta else None)


def parameter_size(model: nn.Module) -> int:
    """How many leading coordinates of the state vector are trainable parameters (the rest are
    buffers; :func:`deai.learn.training.state_names`)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def momentum_step(
    momentum: torch.Tensor | None, delta: torch.Tensor, beta: float, params: int
) -> torch.Tensor:
    """Provider momentum ``beta * m + (1 - beta) * delta`` (``delta`` in the first round) on the
    first ``params`` coordinates (the parameters); the buffers' part is ``delta``'s own: a running
    mean or variance is an estimate to replace, and momentum on it would lag the statistics behind
    the weights they normalize."""
    if momentum is None:
        return delta
    out = delta.clone()
    out[..., :params] = beta * momentum[..., :params] + (1 - beta) * delta[..., :params]
    return out


def root_update(
    model: nn.Module, start: torch.Tensor, data: Dataset, config: TrainConfig, seed: int
) -> torch.Tensor:
    """The server's own update on clean ``data`` (FLTrust, the root gate): one provider's local step."""
    deltas, _ = train_many(model, start, [data], config, [seed])
    return deltas[0]


def aggregate_updates(
    aggregator: Aggregator,
    updates: torch.Tensor | Rows,
    weights: torch.Tensor | None = None,
    *,
    root_update: torch.Tensor | None = None,
    client_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """The aggregation step: ``aggregator`` over the stacked ``[n, d]`` updates, or over a row
    source such as :class:`~deai.learn.aggregators.rows.FileRows` (the ``aggregate`` job's update
    files, read block by block: same engine, same bits as the stacked tensor).

    Raises the aggregator's :class:`~deai.learn.errors.LearnError` (e.g. ``AssumptionViolated``)
    when it refuses the rows.
    """
    context: dict[str, torch.Tensor] = {}
    if root_update is not None:
        context["root_update"] = root_update
    if client_ids is not None:
        context["client_ids"] = client_ids
    return aggregator(updates, weights, **context)


def server_step(
    strategy: Strategy,
    global_vec: torch.Tensor,
    aggregate: torch.Tensor,
    state: dict[str, torch.Tensor] | None = None,
) -> ServerStep:
    """The end of a round: the strategy applied to ``aggregate`` from ``global_vec``.

    ``strategy`` is used as a recipe: its optimizer state is replaced by ``state`` (the previous
    :attr:`ServerStep.state`; ``None``/empty in the first round), so the result depends only on the
    arguments. The returned state is a copy the caller may store as plain tensors.
    """
    strategy.reset()
    if state:
        strategy.load_state(state)
    new = strategy(global_vec, aggregate)
    return ServerStep(new, {k: v.clone() for k, v in strategy.state().items()})


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
    round_seeds: Callable[[int], Sequence[int]] | None = None,
) -> FederatedResult:
    """Simulate federated training of ``model`` over ``parts`` (one dataset per provider).

    Each round is :func:`local_step` (all providers; the Byzantines form one collusion),
    :func:`aggregate_updates` and :func:`server_step`. ``byzantine`` lists the provider indices the
    ``attack`` controls; ``f`` (default ``len(byzantine)``) is what a string ``aggregator`` is built
    to tolerate. If the aggregator's assumption does not hold, the run stops before training and
    ``refused`` says why. The initial model is ``build_model(model, ..., seed=seed)``;
    ``round_seeds(r)`` (r from 0) may give the providers' batch-order seeds of round r (e.g. the
    network's ``provider_seed`` values, to replay a network task); by default they come from ``seed``.
    """
    local = local or TrainConfig()
    n = len(parts)
    byz = sorted(set(byzantine))
    if any(not 0 <= i < n for i in byz):
        raise ValueError(f"byzantine indices {byz} outside 0..{n - 1}")
    if byz and attack is None:
        raise ValueError("byzantine providers need an attack")
    if not [i for i in range(n) if i not in byz]:
        raise ValueError("at least one provider must be honest")
    atk = get_attack(attack) if isinstance(attack, str) else attack
    strat = get_strategy(strategy) if isinstance(strategy, str) else strategy
    agg = (
        get_aggregator(aggregator, f=len(byz) if f is None else f)
        if isinstance(aggregator, str)
        else aggregator
    )
    agg.reset()
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
    weights = torch.tensor([float(len(p)) for p in parts]) if weighted else None
    local = TrainConfig(**{**local.__dict__, "prox_mu": local.prox_mu or strat.prox_mu})
    momentum: torch.Tensor | None = None
    root_momentum: torch.Tensor | None = None
    beta = client_momentum
    strategy_state: dict[str, torch.Tensor] = {}
    history: list[dict] = []
    ids = torch.arange(n)
    for rnd in range(rounds):
        seeds = _round_seeds(seed, rnd, n + 2)
        batch_seeds = list(round_seeds(rnd)) if round_seeds is not None else seeds[:n]
        if len(batch_seeds) != n:
            raise ValueError(f"round_seeds({rnd}) gave {len(batch_seeds)} seeds for {n} providers")
        collusions = (
            [Collusion(atk, byz, torch.Generator().manual_seed(seeds[n]))] if byz and atk is not None else []
        )
        step = local_step(
            net, global_vec, data, local, batch_seeds, collusions=collusions, momentum=momentum, beta=beta
        )
        momentum = step.momentum
        root = None
        if needs_root_update(agg):
            assert root_data is not None  # checked before the first round
            root = root_update(net, global_vec, root_data, local, seeds[n + 1])
            # the server's root update gets the providers' momentum too: FLTrust compares directions,
            # and a raw one-round update against momentum-averaged rows is a noisier reference
            if client_momentum:
                root_momentum = momentum_step(root_momentum, root, beta, parameter_size(net))
                root = root_momentum
        aggregate = aggregate_updates(agg, step.sent, weights, root_update=root, client_ids=ids)
        server = server_step(strat, global_vec, aggregate, strategy_state)
        global_vec, strategy_state = server.global_vec, server.state
        if eval_every and ((rnd + 1) % eval_every == 0 or rnd == rounds - 1):
            set_flat(net, global_vec)
            history.append({"round": rnd + 1, **evaluate(net, test)})
    set_flat(net, global_vec)
    final = evaluate(net, test)
    bd = atk.success_rate(net, test) if isinstance(atk, Backdoor) else None
    return FederatedResult(final["accuracy"], final["loss"], global_vec, history, bd)
