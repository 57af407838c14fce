"""Incentives benchmark: contribution scoring, novelty checks and settlement on digits.

20 providers on an IID split of digits' training set, listed in commit order:

- 10 honest;
- 3 mislabeled: 30% of their labels replaced by a random other class;
- 3 duplicates: each holds a copy of an honest provider's data (providers 0, 1, 2) and joined after it;
- 2 free riders: send a zero update;
- 2 noise: send Gaussian noise with the honest updates' per-coordinate spread.

Each round every provider trains locally (``train_many``, MLP), the novelty checks run
(:func:`deai.learn.scoring.check_updates`, with the public update, the previous global update and
the windowed sketch history, as the ``contribution_score`` job runs them), the round is scored by
each method (LOO, GTG-Shapley, RONI) on a held-out *scoring* split -- not the public validation split,
which is the public root data -- and the global model moves by the mean of the updates scored
positive.

**Adversary scenarios**: for each adversary kind (sign flip, ALIE, IPM, zero and near-zero free
riders, copies of this round's honest updates, replays of earlier rounds' honest updates,
public-data trainers), 15 honest providers and 5 (25%) of that kind, every method: the share of
the data budget paid to honest providers (goal >= 97%) and the kind's mean payout over the median
honest payout (goal < 10%). **Copies at scale**: 1,000 IID providers on Fashion-MNIST (logistic
regression, one local epoch), only the checks: how many honest providers are flagged (goal 0).

**Graded quality**: 20 providers whose true quality is an ordered quantity set by construction
(label noise 0% .. 90%, sample count 8 .. 80, feature noise 0 .. 3 standard deviations), the same
checks and scorers with the score job's unweighted game: Spearman(accumulated score, quality) per
scorer (goal >= 0.9), with diagnostics that separate the scorer from the data (per round, a re-run
with another seed, a larger scoring set, each provider's standalone value, the realized label noise,
the sample-weighted game, twice the rounds, an equal-norm game).

After the last round the accumulated scores settle the data budget
(:func:`deai.protocol.incentives.allocate`); GTG-Shapley's settlement also runs on a ledger
(slash unrewarded members, one Merkle root, every claim, invariants checked).

Figures per method: the share of the data budget paid to honest providers; Spearman's rank
correlation between total score and hand-set quality labels (honest 1, mislabeled 0.7, duplicate
and free rider 0, noise -1: a judgement, see the graded section for measured quality); detection
of free riders and duplicates (they earn nothing); scoring time as a ratio of the same round's
training time; test accuracy of the final model.

    python benchmarks/incentives.py              # 10 rounds, writes docs/results/incentives.md
    python benchmarks/incentives.py --quick      # 3 rounds (also what DEAI_SMALL=1 runs)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from scipy.stats import spearmanr

from deai.core.accounts import Account
from deai.core.encoding import sha256_hex
from deai.learn.attacks import get_attack
from deai.learn.data import Dataset, prepare
from deai.learn.federated import root_update
from deai.learn.models import build_model
from deai.learn.partition import partition
from deai.learn.scoring import (
    HISTORY_WINDOW,
    SKETCH_DIM,
    Flag,
    NoveltyConfig,
    RoundUpdates,
    ValidationUtility,
    check_updates,
    get_scorer,
)
from deai.learn.training import TrainConfig, evaluate, get_flat, set_flat, train_many
from deai.ledger.base import ManualClock
from deai.ledger.config import DATA, NetworkConfig
from deai.ledger.memory import MemoryLedger
from deai.ledger.txs import CreateTask, JoinTask, Mint, Stake
from deai.protocol.incentives import ScoreBook, SplitRule, allocate, settle_task, slash_unrewarded

ROOT = Path(__file__).resolve().parents[1]
KINDS = ["honest"] * 10 + ["mislabeled"] * 3 + ["duplicate"] * 3 + ["free_rider"] * 2 + ["noise"] * 2
QUALITY = {"honest": 1.0, "mislabeled": 0.7, "duplicate": 0.0, "free_rider": 0.0, "noise": -1.0}
METHODS = {
    "loo": {},
    "gtg_shapley": {},
    "roni": {},
}
ADVERSARIES = [
    "sign_flip",
    "alie",
    "ipm",
    "zero",
    "near_zero",
    "copy",
    "replay",
    "public",
    "scaled_x2",
    "scaled_x10",
]
N_HONEST, N_ADV = 15, 5


@dataclass
class World:
    """One scenario: the splits (public root data and the held-out scoring data apart), the
    providers' kinds and data, and the local recipe."""

    kinds: list[str]
    data: list[Dataset]
    public: Dataset
    scoring: Dataset
    test: Dataset
    cfg: TrainConfig


def world(kinds: list[str], seed: int) -> World:
    sp = prepare("digits", val=0.3, test=0.2, seed=seed)
    half = len(sp.val) // 2
    public, scoring = sp.val.subset(list(range(half))), sp.val.subset(list(range(half, len(sp.val))))
    parts = partition(sp.train.y, len(kinds), "iid", seed=seed)
    data = [sp.train.subset(p) for p in parts]
    g = torch.Generator().manual_seed(seed + 1)
    for i, kind in enumerate(kinds):
        if kind == "mislabeled":
            d = data[i]
            flip = torch.rand(len(d), generator=g) < 0.3
            other = (d.y + torch.randint(1, d.num_classes, (len(d),), generator=g)) % d.num_classes
            data[i] = d.replace(y=torch.where(flip, other, d.y))
        elif kind == "public":
            data[i] = public
    dups = [i for i, k in enumerate(kinds) if k == "duplicate"]
    for j, i in enumerate(dups):
        data[i] = data[j]  # a copy of honest provider j, committed after it
    return World(kinds, data, public, scoring, sp.test, TrainConfig(epochs=2, batch_size=16, lr=0.05))


def craft(kinds: list[str], deltas: torch.Tensor, earlier: list[torch.Tensor], g: torch.Generator) -> None:
    """Replace the adversaries' rows of ``deltas`` (in place) by what they send."""
    honest = deltas[[i for i, k in enumerate(kinds) if k in ("honest", "mislabeled")]]
    sd = honest.std(0)
    for i, k in enumerate(kinds):
        if k in ("free_rider", "zero"):
            deltas[i] = 0.0
        elif k == "near_zero":
            deltas[i] = 1e-3 * torch.randn(deltas.shape[1], generator=g) * sd
        elif k == "noise":
            deltas[i] = torch.randn(deltas.shape[1], generator=g) * sd
        elif k == "sign_flip":
            deltas[i] = -deltas[i]
        elif k in ("alie", "ipm"):
            deltas[i] = get_attack(k).craft(honest, None, 1, g)[0]
        elif k == "copy":
            deltas[i] = deltas[i % N_HONEST]  # an honest provider's update of this round
        elif k == "replay":  # an honest provider's update of the previous round (public)
            deltas[i] = earlier[-1][i % N_HONEST] if earlier else 0.0
        elif k.startswith("scaled_x"):  # its own honest update (own data), sent s times longer
            deltas[i] *= float(k.removeprefix("scaled_x"))


def run_method(
    method: str,
    rounds: int,
    seed: int,
    options: dict,
    kinds: list[str] = KINDS,
    w: World | None = None,
    weighted_game: bool = False,
) -> dict:
    """Run ``rounds`` network rounds of ``w`` (default: :func:`world` of ``kinds``) scored by ``method``.

    ``weighted_game``: the coalition game weights updates by sample count (a diagnostic: the
    network's score job sends no weights, so the default False is the network's game). The update
    lengths in the game are the scorer's option (``options["lengths"]``, default ``"equal"`` as
    the network); the checks and the global model use the updates as sent."""
    torch.manual_seed(seed)
    w = w if w is not None else world(kinds, seed)
    kinds = w.kinds
    net = build_model("mlp", w.scoring.in_features, w.scoring.num_classes, seed=seed)
    util = ValidationUtility(net, w.scoring)
    scorer = get_scorer(method, **options)
    base = get_flat(net)
    n = len(kinds)
    total = torch.zeros(n, dtype=torch.float64)
    weights = torch.tensor([float(len(d)) for d in w.data])
    ratios, train_s, score_s, check_s, evals = [], [], [], [], []
    dup_flagged = torch.zeros(n, dtype=torch.long)
    flagged = torch.zeros(n, dtype=torch.long)
    book = ScoreBook(method=method)
    addrs = [Account.from_seed("bench-data", i).address for i in range(n)]
    g = torch.Generator().manual_seed(seed + 2)
    earlier: list[torch.Tensor] = []
    rounds_scores: list[list[float]] = []
    history, ages, previous = None, torch.zeros(0, dtype=torch.long), None
    for rnd in range(rounds):
        seeds = [seed * 1_000 + rnd * n + i for i in range(n)]
        t0 = time.perf_counter()
        deltas, _ = train_many(net, base, w.data, w.cfg, seeds)
        t_train = time.perf_counter() - t0
        public = root_update(net, base, w.public, w.cfg, seed * 7 + rnd)  # what each executor trains
        craft(kinds, deltas, earlier, g)
        earlier.append(deltas.clone())
        t0 = time.perf_counter()
        novelty = check_updates(deltas, public=public, previous=previous, history=history)
        t_check = time.perf_counter() - t0
        t0 = time.perf_counter()
        game_w = weights if weighted_game else None
        res = scorer(RoundUpdates(base, deltas, game_w), util, seed=seed * 7_919 + rnd, novelty=novelty)
        t_score = time.perf_counter() - t0
        if rnd > 0 or rounds == 1:  # round 0 includes one-off warm-up of the kernels
            ratios.append((t_score + t_check) / t_train)
        train_s.append(t_train)
        score_s.append(t_score)
        check_s.append(t_check)
        evals.append(res.evaluations)
        total += res.scores
        rounds_scores.append([float(x) for x in res.scores])
        dup_flagged += (res.duplicate_of >= 0).long()
        flagged += (novelty.flags != 0).long()
        book.add(rnd + 1, addrs, res.scores, duplicate_of=res.duplicate_of, flags=novelty.flags)
        # the next round's references: this round's sketches first, then the window's older rows
        keep = ages + 1 < HISTORY_WINDOW
        old = history[keep] if history is not None else torch.zeros(0, SKETCH_DIM)
        history = torch.cat([novelty.sketches.float(), old])
        ages = torch.cat([torch.zeros(n, dtype=torch.long), ages[keep] + 1])
        keep_pos = res.scores > 0
        if bool(keep_pos.any()):
            ww = weights * keep_pos
            previous = (ww[:, None] * deltas).sum(0) / ww.sum()
            base = base + previous
    set_flat(net, base)
    acc = evaluate(net, w.test)["accuracy"]
    budget = 1_000_000
    alloc = allocate(budget, SplitRule(compute_bps=0), dict(zip(addrs, total.tolist(), strict=True)), {})
    paid = [alloc.data.get(a, 0) for a in addrs]
    kinds_seen = list(dict.fromkeys(kinds))
    by_kind = {k: sum(p for p, kk in zip(paid, kinds, strict=True) if kk == k) for k in kinds_seen}
    honest_paid = [p for p, k in zip(paid, kinds, strict=True) if k == "honest"]
    median_honest = statistics.median(honest_paid)
    out = {
        "honest_share": by_kind["honest"] / max(1, sum(paid)),
        "paid_by_kind": by_kind,
        "mean_paid_over_median_honest": {
            k: statistics.mean(p for p, kk in zip(paid, kinds, strict=True) if kk == k)
            / max(1, median_honest)
            for k in kinds_seen
            if k != "honest"
        },
        "honest_unpaid": sum(1 for p in honest_paid if p == 0),
        "honest_flagged_rounds": int(flagged[[i for i, k in enumerate(kinds) if k == "honest"]].sum()),
        "scoring_over_training_time": statistics.median(ratios) if ratios else float("nan"),
        "train_s_per_round": statistics.median(train_s),
        "score_s_per_round": statistics.median(score_s),
        "check_s_per_round": statistics.median(check_s),
        "evaluations_per_round": statistics.mean(evals),
        "test_accuracy": acc,
        "book": book,
        "addresses": addrs,
        "total_scores": [round(float(x), 6) for x in total],
        "paid": paid,
        "round_scores": rounds_scores,
    }
    if kinds is KINDS:
        fr = [i for i, k in enumerate(kinds) if k == "free_rider"]
        dup = [i for i, k in enumerate(kinds) if k == "duplicate"]
        out |= {
            "spearman": float(spearmanr(total.numpy(), [QUALITY[k] for k in kinds]).statistic),
            "zero_scores": int((total == 0).sum()),
            "mislabeled_negative": int(
                (total[[i for i, k in enumerate(kinds) if k == "mislabeled"]] < 0).sum()
            ),
            "free_riders_detected": sum(paid[i] == 0 for i in fr) / len(fr),
            "duplicates_detected": sum(paid[i] == 0 and int(dup_flagged[i]) == rounds for i in dup)
            / len(dup),
            "noise_unpaid": all(paid[i] == 0 for i, k in enumerate(kinds) if k == "noise"),
            "mislabeled_mean_score_vs_honest": float(
                total[[i for i, k in enumerate(kinds) if k == "mislabeled"]].mean()
                / total[[i for i, k in enumerate(kinds) if k == "honest"]].mean()
            ),
        }
    return out


def adversary_scenarios(rounds: int, seed: int, kinds_run: list[str] | None = None, **options: str) -> dict:
    """Per adversary kind and method: honest share and the kind's payout vs the median honest.

    ``"none"`` is the baseline: 20 honest providers, the last 5 in the adversaries' places (what
    the ratio is when those providers send what they trained, in the same run's conditions).
    ``kinds_run``: the kinds (default: the baseline and every adversary); ``options``: extra scorer
    options (``lengths="raw"``: the game before update lengths were equalized)."""
    out: dict = {}
    for kind in kinds_run if kinds_run is not None else ["none", *ADVERSARIES]:
        kinds = ["honest"] * (N_HONEST + N_ADV) if kind == "none" else ["honest"] * N_HONEST + [kind] * N_ADV
        out[kind] = {}
        for m, opts in METHODS.items():
            r = run_method(m, rounds, seed, {**opts, **options}, kinds)
            paid = r["paid"]
            median_honest = statistics.median(paid[:N_HONEST])
            out[kind][m] = {
                "honest_share": sum(paid[:N_HONEST]) / max(1, sum(paid)),
                "adversary_over_median_honest": statistics.mean(paid[N_HONEST:]) / max(1, median_honest),
                "honest_unpaid": sum(1 for p in paid[:N_HONEST] if p == 0),
                "honest_flagged_rounds": r["honest_flagged_rounds"],
                "test_accuracy": r["test_accuracy"],
            }
    return out


def copies_at_scale(providers: int, seed: int) -> dict:
    """The checks alone over ``providers`` honest IID providers: how many are flagged."""
    from deai.learn.images import fashion_mnist

    data = fashion_mnist("train")
    data = data.replace(x=data.x.reshape(len(data), -1).float())
    held = 1_000  # the public root data: held out from the providers
    public_data = data.subset(list(range(held)))
    data = data.subset(list(range(held, len(data))))
    parts = partition(data.y, providers, "iid", seed=seed)
    net = build_model("logreg", data.x.shape[1], data.num_classes, seed=seed)
    base = get_flat(net)
    t0 = time.perf_counter()
    deltas, _ = train_many(
        net,
        base,
        [data.subset(p) for p in parts],
        TrainConfig(epochs=1, batch_size=16, lr=0.01),
        [seed * 10_000 + i for i in range(providers)],
    )
    t_train = time.perf_counter() - t0
    public = root_update(net, base, public_data, TrainConfig(epochs=1, batch_size=16, lr=0.01), seed)
    t0 = time.perf_counter()
    res = check_updates(deltas, public=public)
    t_check = time.perf_counter() - t0
    return {
        "providers": providers,
        "samples_per_provider": len(data) // providers,
        "dim": int(deltas.shape[1]),
        "flagged_as_copies": int((res.flags == int(Flag.COPY)).sum()),
        "flagged_any": int((res.flags != 0).sum()),
        "min_copy_statistic": float(res.copy_ratio[1:].min()),
        "copy_threshold": NoveltyConfig().copy,
        "min_public_statistic": float(res.public_ratio.min()),
        "public_threshold": NoveltyConfig().public,
        "check_over_training_time": t_check / t_train,
    }


GRADED = {
    "label_noise": "IID shares; provider i's labels flipped to another class at rate 0.9 i / 19 "
    "(0% .. 90%); quality = 1 - rate",
    "sample_count": "clean IID samples, provider i holds round(8 + 72 i / 19) of them (8 .. 80); "
    "quality = sample count",
    "feature_noise": "IID shares; Gaussian noise of standard deviation 3 i / 19 (0 .. 3, features are "
    "standardized) added to provider i's features; quality = - noise level",
}
N_GRADED = 20
STANDALONE_EPOCHS = 20


@dataclass
class Graded:
    """A graded-quality population: the world, the quality the construction sets for each provider
    (higher is better), and the clean fraction each provider really holds (the label noise's
    realized rate; the nominal quality otherwise)."""

    world: World
    quality: list[float]
    realized: list[float]


def graded_world(variant: str, seed: int, n: int = N_GRADED) -> Graded:
    """One of :data:`GRADED`'s populations of ``n`` providers, all "honest" (nothing crafted)."""
    sp = prepare("digits", val=0.3, test=0.2, seed=seed)
    half = len(sp.val) // 2
    public, scoring = sp.val.subset(list(range(half))), sp.val.subset(list(range(half, len(sp.val))))
    g = torch.Generator().manual_seed(seed + 1)
    level = torch.arange(n, dtype=torch.float64) / (n - 1)  # 0 .. 1 over the providers
    if variant == "sample_count":
        sizes = (8 + 72 * level).round().long()
        if int(sizes.sum()) > len(sp.train):
            raise ValueError(f"sample_count: {int(sizes.sum())} samples needed, {len(sp.train)} held")
        perm = torch.randperm(len(sp.train), generator=g)
        cuts = torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)]).tolist()
        data = [sp.train.subset(perm[cuts[i] : cuts[i + 1]]) for i in range(n)]
        quality = sizes.double().tolist()
        realized = quality
    else:
        parts = partition(sp.train.y, n, "iid", seed=seed)
        data = [sp.train.subset(p) for p in parts]
        realized = []
        for i in range(n):
            d = data[i]
            if variant == "label_noise":
                flip = torch.rand(len(d), generator=g) < 0.9 * float(level[i])
                other = (d.y + torch.randint(1, d.num_classes, (len(d),), generator=g)) % d.num_classes
                data[i] = d.replace(y=torch.where(flip, other, d.y))
                realized.append(1.0 - float(flip.double().mean()))
            elif variant == "feature_noise":
                noise = torch.randn(d.x.shape, generator=g, dtype=d.x.dtype)
                data[i] = d.replace(x=d.x + 3.0 * float(level[i]) * noise)
            else:
                raise ValueError(f"unknown graded variant {variant!r}")
        quality = (1.0 - 0.9 * level).tolist() if variant == "label_noise" else (-3.0 * level).tolist()
        realized = realized or quality
    cfg = TrainConfig(epochs=2, batch_size=16, lr=0.05)
    return Graded(World(["honest"] * n, data, public, scoring, sp.test, cfg), quality, realized)


def standalone(w: World, seed: int) -> tuple[list[float], list[float]]:
    """Each provider's data on its own: ``STANDALONE_EPOCHS`` epochs from the initial model, then
    minus the cross-entropy on the test split (which no scorer sees), and each provider's first-round
    update norm (the 2-epoch recipe from the same start)."""
    net = build_model("mlp", w.test.in_features, w.test.num_classes, seed=seed)
    base = get_flat(net)
    seeds = [seed * 10_000 + i for i in range(len(w.data))]
    cfg = TrainConfig(epochs=STANDALONE_EPOCHS, batch_size=w.cfg.batch_size, lr=w.cfg.lr)
    deltas, _ = train_many(net, base, w.data, cfg, seeds)
    first, _ = train_many(net, base, w.data, w.cfg, seeds)
    values = ValidationUtility(net, w.test)(base + deltas)
    return [float(v) for v in values], [float(v) for v in first.norm(dim=1)]


def rho(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation (ties get their mean rank)."""
    return float(spearmanr(a, b).statistic)


def graded_scenarios(rounds: int, seed: int) -> dict:
    """Spearman(accumulated score, quality) per graded population and scorer, with diagnostics.

    The game is the score job's (no weights: :func:`deai.protocol.task.jobspecs.score_job` sends
    none), the global model moves by the sample-weighted mean of the positively scored updates.
    Diagnostics: the Spearman of each round's scores and of the scores accumulated up to each round;
    the same population re-run with another seed (initialization, local training, scorer sampling);
    the scoring split replaced by the scoring and test splits together (2.3x the samples); the rank
    correlation with each provider's standalone value (its data alone, on the test split); and per
    variant, the game with raw and with clipped update lengths (the scorers' ``lengths``; the
    network's is ``"equal"``), the realized label noise, the sample-weighted game
    (``sample_count``) and twice the rounds with raw lengths (``feature_noise``)."""
    out: dict = {}
    for variant in GRADED:
        gw = graded_world(variant, seed)
        w, q = gw.world, gw.quality
        ref, norms = standalone(w, seed)
        s = w.scoring
        big = s.replace(x=torch.cat([s.x, w.test.x]), y=torch.cat([s.y, w.test.y]))
        w_big = World(w.kinds, w.data, w.public, big, w.test, w.cfg)
        methods: dict = {}
        for m, opts in METHODS.items():
            r = run_method(m, rounds, seed, opts, w=w, weighted_game=False)
            again = run_method(m, rounds, seed + 1, opts, w=w, weighted_game=False)
            larger = run_method(m, rounds, seed, opts, w=w_big, weighted_game=False)
            raw = run_method(m, rounds, seed, {**opts, "lengths": "raw"}, w=w)
            clip = run_method(m, rounds, seed, {**opts, "lengths": "clip"}, w=w)
            per_round = torch.tensor(r["round_scores"], dtype=torch.float64)
            total = r["total_scores"]
            rec = {
                "spearman": rho(total, q),
                "spearman_per_round": [rho(x.tolist(), q) for x in per_round],
                "spearman_accumulated_by_round": [rho(x.tolist(), q) for x in per_round.cumsum(0)],
                "retest_spearman": rho(total, again["total_scores"]),
                "spearman_other_seed": rho(again["total_scores"], q),
                "spearman_larger_scoring_set": rho(larger["total_scores"], q),
                "spearman_vs_standalone": rho(total, ref),
                "spearman_vs_realized": rho(total, gw.realized),
                "spearman_raw_lengths": rho(raw["total_scores"], q),
                "spearman_raw_lengths_per_round": [rho(x, q) for x in raw["round_scores"]],
                "spearman_clipped_lengths": rho(clip["total_scores"], q),
                "zero_scores": sum(1 for x in total if x == 0.0),
                "flagged_rounds": r["honest_flagged_rounds"],
                "total_scores": total,
            }
            if variant == "sample_count":
                wg = run_method(m, rounds, seed, opts, w=w, weighted_game=True)
                lowest = min(range(len(q)), key=lambda i: wg["total_scores"][i])
                rec |= {
                    "spearman_weighted_game": rho(wg["total_scores"], q),
                    "weighted_game_lowest_size": q[lowest],
                    "weighted_game_negative": sum(1 for x in wg["total_scores"] if x < 0),
                }
            if variant == "feature_noise":
                long = run_method(m, 2 * rounds, seed, {**opts, "lengths": "raw"}, w=w)
                rec |= {"spearman_raw_lengths_twice_the_rounds": rho(long["total_scores"], q)}
            methods[m] = rec
        out[variant] = {
            "population": GRADED[variant],
            "quality": q,
            "standalone_vs_quality": rho(ref, q),
            "first_update_norm_vs_quality": rho(norms, q),
            "realized_vs_quality": rho(gw.realized, q),
            "methods": methods,
        }
    return out


def ledger_settlement(book: ScoreBook, addrs: list[str]) -> dict:
    """Settle on a ledger: slash unrewarded members, post the root, every payee claims."""
    minter = Account.from_seed("bench-minter", 0)
    led = MemoryLedger(NetworkConfig(minter=minter.address), clock=ManualClock(0))
    coord = Account.from_seed("bench-coord", 0)
    led.send(minter, Mint(to=coord.address, amount=10**9))
    task = "0x" + sha256_hex(b"bench-task")
    budget, stake = 1_000_000, 1_000
    led.send(coord, CreateTask(task=task, budget=budget, params="0x" + "00" * 32, provider_stake=stake))
    accounts = [Account.from_seed("bench-data", i) for i in range(len(addrs))]
    for a in accounts:
        led.send(minter, Mint(to=a.address, amount=10_000))
        led.send(a, Stake(role=DATA, amount=100))
        led.send(a, JoinTask(task=task, role=DATA))
    slashed = slash_unrewarded(led, coord, task, book)
    s = settle_task(led, coord, task, SplitRule(compute_bps=0), book)
    claims = 0
    for a in accounts:
        if a.address in s.tree.amounts:
            s.claim(led, a)
            claims += 1
    led.check_invariants()
    payout = led.payout(task, 0)
    return {
        "members_slashed": len(slashed),
        "stake_moved_to_budget": len(slashed) * stake,
        "posted": payout.total,
        "claimed": payout.claimed,
        "claims": claims,
        "conserved": payout.claimed == payout.total == budget + len(slashed) * stake,
        "ledger_txs": led.head().height,
    }


COLUMNS = [
    "method",
    "honest share of data budget (goal >= 90%)",
    "Spearman(score, quality)",
    "free riders unpaid",
    "duplicates merged and unpaid",
    "noise unpaid",
    "mislabeled / honest mean score",
    "evaluations per round",
    "scoring / training time per round",
    "test accuracy",
]
HEADER = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS)


def _span(xs: list[float]) -> str:
    return f"{min(xs):.2f}..{max(xs):.2f}"


def graded_markdown(result: dict) -> str:
    """The graded-quality section of the results page."""
    g, rounds = result["graded"], result["rounds"]
    head = "| population | " + " | ".join(METHODS) + " |\n|---|" + "---|" * len(METHODS)
    rows = "\n".join(
        f"| {v} | " + " | ".join(f"{x['methods'][m]['spearman']:.3f}" for m in METHODS) + " |"
        for v, x in g.items()
    )
    pops = "\n".join(f"- `{v}`: {x['population']}." for v, x in g.items())
    lengths = "\n".join(
        f"| {v} | "
        + " | ".join(
            f"{x['methods'][m]['spearman']:.3f} / {x['methods'][m]['spearman_clipped_lengths']:.3f}"
            f" / {x['methods'][m]['spearman_raw_lengths']:.3f}"
            for m in METHODS
        )
        + " |"
        for v, x in g.items()
    )
    diag = "\n".join(
        f"| {v} | {m} | {_span(r['spearman_per_round'])} | {r['retest_spearman']:.3f} | "
        f"{r['spearman_other_seed']:.3f} | {r['spearman_larger_scoring_set']:.3f} | "
        f"{r['spearman_vs_standalone']:.3f} | {r['zero_scores']} / {r['flagged_rounds']} |"
        for v, x in g.items()
        for m, r in x["methods"].items()
    )
    ln, sc, fn = g["label_noise"], g["sample_count"], g["feature_noise"]

    def per(x: dict, key: str, fmt: str = ".3f") -> str:
        return ", ".join(f"{m} {x['methods'][m][key]:{fmt}}" for m in METHODS)

    def seq(xs: list[float]) -> str:
        return ", ".join(f"{x:.2f}" for x in xs)

    cols = "re-run vs this run | re-run vs quality | larger scoring set | vs standalone"
    raw_rounds = seq(fn["methods"]["loo"]["spearman_raw_lengths_per_round"])
    eq_rounds = seq(fn["methods"]["loo"]["spearman_per_round"])

    return f"""
## Graded quality: does the score track true data quality?

The mixed population's labels are a judgement; here the true quality is an ordered, objective
quantity set by construction. 20 providers on digits (MLP, the same local recipe), {rounds} rounds of
the network's scoring path: the novelty checks with the same references, then each scorer on the
held-out scoring split, with the score job's game (no weights: the `contribution_score` job
the network registers sends none; update lengths equal, the scorers' default); the global model
moves by the sample-weighted mean of the positively scored updates. Figure: Spearman's rank
correlation between each provider's accumulated score and its quality (goal >= 0.9).

{pops}

{head}
{rows}

Diagnostics (per population and scorer): the range of the per-round Spearman; the rank correlation
between this run's accumulated scores and a re-run with another seed (initialization, local training,
scorer sampling), and that re-run's own Spearman with quality; Spearman when the scoring split is
replaced by the scoring and test splits together (2.3x the samples); the rank correlation with each
provider's *standalone* value (its data alone, {STANDALONE_EPOCHS} epochs from the initial model,
minus the cross-entropy on the test split, which no scorer sees); providers whose accumulated score
is exactly 0 / provider-rounds flagged by the novelty checks.

| population | scorer | per round | {cols} | zero scores / flagged |
|---|---|---|---|---|---|---|---|
{diag}

**Label noise.** The nominal rate is not the rate each provider holds: the realized clean fraction
(flips are drawn per sample, about 45 samples each) ranks the providers with Spearman
{ln["realized_vs_quality"]:.3f} against the nominal one, and the scores track it at
{per(ln, "spearman_vs_realized")}. Against the standalone value of each provider's data the
scores reach {per(ln, "spearman_vs_standalone")} (standalone value vs nominal
quality: {ln["standalone_vs_quality"]:.3f}); with the larger scoring set the Spearman with nominal
quality is {per(ln, "spearman_larger_scoring_set")}. What separates the scores from a perfect rank
is mostly the data each provider actually holds, not the scorer.

**Update lengths.** The game rescales every update to the round's median norm before valuing
coalitions (the scorers' `lengths="equal"`, the network's default; see `deai.learn.scoring.base`),
so it pays for where an update points, not for its length, which a provider can set at will (the
`scaled` adversaries above). Spearman with quality per scorer, equal lengths (the figure above) /
longer rows clipped to the median norm (`lengths="clip"`) / raw lengths (`lengths="raw"`, what
the game did before), same seeds:

| population | {" | ".join(METHODS)} |
|---|{"---|" * len(METHODS)}
{lengths}

**Sample count.** Every provider runs 2 local epochs, so a larger share is more local steps and a
longer update (first-round update norm vs sample count: Spearman {sc["first_update_norm_vs_quality"]:.3f}).
With raw lengths the game ranks by size almost perfectly ({per(sc, "spearman_raw_lengths")}), but
mostly through that length, which cannot be told from a scaled update; with equal lengths only the
direction is paid, and a larger share still points better: {per(sc, "spearman")}. The price of
not paying for length is this gap; a clip at the median keeps part of the length signal
({per(sc, "spearman_clipped_lengths")}) but pays a shorter update for being sent longer, up to the
median. The sample-weighted game (a diagnostic: the score job sends no weights) gives
{per(sc, "spearman_weighted_game")} (lowest accumulated score at
{per(sc, "weighted_game_lowest_size", ".0f")} samples; negative totals:
{per(sc, "weighted_game_negative", "d")} of 20): adding provider `i` to a coalition with weighted
mean `M` and weight `W` moves the mean by `s_i (u_i - M) / (W + s_i)`, which weights the
providers' directions by sample count a second time.

**Feature noise.** Input noise lengthens the update (the first-layer gradient grows with the
input's scale: first-round update norm vs quality, Spearman {fn["first_update_norm_vs_quality"]:.3f}),
and while the model is under-trained a longer step in a roughly right direction improves the
scoring loss more. With raw lengths the game credited the noisier providers' step length in the
first rounds (per-round Spearman of LOO: {raw_rounds}; accumulated {per(fn, "spearman_raw_lengths")},
and {per(fn, "spearman_raw_lengths_twice_the_rounds")} with twice the rounds as the direction's
quality comes to dominate). With equal lengths the noisier providers' directions are what is
judged: per-round Spearman of LOO {eq_rounds}, accumulated {per(fn, "spearman")}.
"""


def write_markdown(result: dict, path: Path) -> None:
    rows = []
    for m, r in result["methods"].items():
        rows.append(
            f"| {m} | {r['honest_share']:.1%} | {r['spearman']:.3f} | {r['free_riders_detected']:.0%} | "
            f"{r['duplicates_detected']:.0%} | {'yes' if r['noise_unpaid'] else 'no'} | "
            f"{r['mislabeled_mean_score_vs_honest']:.2f} | {r['evaluations_per_round']:.0f} | "
            f"{r['scoring_over_training_time']:.2f}x | {r['test_accuracy']:.3f} |"
        )
    paid = "\n".join(
        f"| {m} | " + " | ".join(str(r["paid_by_kind"][k]) for k in QUALITY) + " |"
        for m, r in result["methods"].items()
    )
    s = result["ledger_settlement"]
    times = ", ".join(
        f"{m} {r['train_s_per_round']:.3f} / {r['score_s_per_round']:.3f}"
        for m, r in result["methods"].items()
    )
    adv_rows = "\n".join(
        f"| {k} | "
        + " | ".join(
            f"{v[m]['honest_share']:.1%} / {v[m]['adversary_over_median_honest']:.1%}"
            f" / {v[m]['honest_unpaid']}"
            for m in METHODS
        )
        + " |"
        for k, v in result["adversaries"].items()
    )
    c = result["copies_at_scale"]
    adv = result["adversaries"]
    scaled_kinds = [k for k in adv if k.startswith("scaled_")]
    scaled_gtg = ", ".join(
        f"{adv[k]['gtg_shapley']['adversary_over_median_honest']:.0%} ({k})" for k in scaled_kinds
    )
    none_gtg = f"{adv['none']['gtg_shapley']['adversary_over_median_honest']:.0%}"
    scaled_lr = "; ".join(
        f"{m}: "
        + ", ".join(f"{k} {adv[k][m]['adversary_over_median_honest']:.0%}" for k in scaled_kinds)
        + f", none {adv['none'][m]['adversary_over_median_honest']:.0%}"
        for m in ("loo", "roni")
    )
    acc_scaled = ", ".join(f"{adv[k]['gtg_shapley']['test_accuracy']:.3f} ({k})" for k in scaled_kinds)
    acc_none = f"{adv['none']['gtg_shapley']['test_accuracy']:.3f}"
    raw_scaled = "; ".join(
        f"{k} " + ", ".join(f"{m} {x:.0%}" for m, x in v.items())
        for k, v in result["scaled_raw_lengths"].items()
    )
    mixed = result["methods"]
    mislabeled_neg = ", ".join(f"{m} {r['mislabeled_negative']} of 3" for m, r in mixed.items())
    zeros = ", ".join(f"{m} {r['zero_scores']}" for m, r in mixed.items())
    text = f"""# Incentives: contribution scoring, novelty checks and settlement

Generated by `python benchmarks/incentives.py{" --quick" if result["quick"] else ""}` on {result["machine"]}
(torch {result["torch"]}, {result["threads"]} thread). Digits, MLP (64 hidden), 20 providers in commit order:
10 honest, 3 mislabeled (30% of labels flipped to another class), 3 duplicates (copies of honest
providers 0-2, committed after them), 2 free riders (zero updates), 2 noise (Gaussian with the honest
updates' per-coordinate spread). {result["rounds"]} rounds of 2 local epochs; the novelty checks run
(public update, previous global update, sketch history), each round is scored on a held-out scoring
split (half of the validation split; the other half is the public root data) with the score job's
game (no sample weights, every update rescaled to the round's median norm) and the global model
moves by the mean of the positively scored updates. The data budget (1,000,000 units) is split in
proportion to positive accumulated scores.

{HEADER}
{chr(10).join(rows)}

Quality for the rank correlation: honest 1, mislabeled 0.7, duplicate and free rider 0, noise -1.
These labels are set by hand, not measured. They assume that data with 30% of its labels flipped is
worth 0.7 of clean data -- more than nothing -- and that noise is worth less than nothing. The
scorers disagree with the first assumption: mislabeled providers with a negative accumulated score
(their updates made the round's model worse on the scoring set): {mislabeled_neg}, below the copies and
free riders, which are left out of the game and score exactly 0 (providers at exactly 0:
{zeros}). The rank correlation is then set by the order of the kinds, not by how well each provider
is valued, which is why the three scorers can share one figure. It measures agreement with these
labels, not whether the score tracks data quality; the graded section at the end measures that.
Scoring time is the median over rounds 2+ of (scoring time / the same round's local training time
of all 20 providers, vectorized with `train_many`); the evaluation count is the number of candidate
models evaluated on the validation set. Median seconds per round (training / scoring): {times}.

Paid by kind (units of the 1,000,000 data budget):

| method | {" | ".join(QUALITY)} |
|---|{"---|" * len(QUALITY)}
{paid}

On a ledger (GTG-Shapley scores): {s["members_slashed"]} unrewarded members slashed
({s["stake_moved_to_budget"]} units of task stake moved into the budget), one payout root of
{s["posted"]} posted, {s["claims"]} claims paid {s["claimed"]}; conservation held after every
transaction ({s["ledger_txs"]} transactions).

## Adversaries: 25% of each kind

15 honest providers and 5 adversaries of one kind, {result["adversary_rounds"]} rounds, same scenario
otherwise. Each cell: share of the data budget paid to honest providers (goal >= 97%) / the kind's
mean payout over the median honest payout (goal < 10%) / honest providers paid nothing (of 15).
Replayers send the previous round's update of an honest provider (a zero update in round 1);
copiers this round's update of an honest provider committed before them; public-data trainers
train on the public root data with their own seeds; near-zero free riders send noise at 0.1% of
the honest spread; ALIE uses the paper's z for n=20, f=5; IPM epsilon 0.1. `scaled_xS` providers
hold honest data and send their own honest update times S: they are owed what an honest provider
is, so the honest share is not the figure there (about 75% is fair) and their goal is to earn no
more than the median honest provider (at most 100%). `none` is the baseline: 20 honest providers,
the last 5 in the adversaries' places, so its middle figure is what those 5 earn sending what they
trained. The game is the score job's: no sample weights, update lengths equal (the scaled kinds'
payout with raw lengths, before this rule: {raw_scaled}).

| adversary | {" | ".join(METHODS)} |
|---|{"---|" * len(METHODS)}
{adv_rows}

Scaled providers. In the game a row sent `s` times longer is the same row (equal lengths; per
round this is a test, `tests/learn/scoring/test_scoring_lengths.py`: the only effect is a move of
the common length by one order statistic, shared by every player). Under GTG-Shapley the scaled
kinds earn {scaled_gtg} of the median honest provider, against {none_gtg} for the same providers
sending what they trained (`none`). LOO's and RONI's figures move away from their baseline in both
directions ({scaled_lr}) for two reasons outside the game: the benchmark's global model moves by
the plain mean of the positively scored updates *as sent*, so scaled rows change every later round
(test accuracy {acc_scaled} against {acc_none} in `none`, GTG-Shapley), and LOO and RONI leave 6-7
of 15 honest providers at 0, so the median honest payout they are compared with is small and noisy.

## Copies at scale: {c["providers"]} honest IID providers

Fashion-MNIST, logistic regression (d = {c["dim"]}), {c["samples_per_provider"]} samples per provider,
one local epoch from the same start; only the checks run. Honest providers flagged as copies:
**{c["flagged_as_copies"]}** (flagged at all: {c["flagged_any"]}). The copy statistic (1 - cos^2 of
the mean-orthogonal residuals) is at least {c["min_copy_statistic"]:.3f} over all
{c["providers"] * (c["providers"] - 1) // 2:,} pairs, against a threshold of {c["copy_threshold"]}
(copies score 0, a re-training of the same data with another batch order 0.03-0.08 on digits).
Against the public update (trained on 1,000 held-out samples) the honest providers' statistic is at
least {c["min_public_statistic"]:.3f}, against the public threshold of {c["public_threshold"]}.
Checks over training time: {c["check_over_training_time"]:.2f}x.

Notes. Copies (including re-trainings of the same data) merge into the player of the first
committer, whose value it keeps; flagged providers (zero, copy, replay, stale global, public,
consensus) are not players, so they neither earn nor change the others' values. LOO and RONI pay
some honest IID providers nothing: with many interchangeable providers one more honest update
changes a large coalition by less than the scoring set's noise (the known weakness of LOO on
redundant data); GTG-Shapley, which averages over small coalitions too, pays every honest provider.
Splitting one dataset across k identities (disjoint parts) earns no more than one identity under
LOO, but more under GTG-Shapley (Shapley values reward replication; the join stake is the defense:
`docs/incentives.md`, Sybil economics; checked both ways in the test suite).
{graded_markdown(result)}"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 rounds (what DEAI_SMALL=1 runs)")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "incentives.md")
    args = ap.parse_args(argv)
    quick = args.quick or os.environ.get("DEAI_SMALL") == "1"
    rounds = args.rounds or (3 if quick else 10)
    torch.set_num_threads(1)
    methods = {}
    for m, opts in METHODS.items():
        methods[m] = run_method(m, rounds, args.seed, opts)
    book, addrs = methods["gtg_shapley"]["book"], methods["gtg_shapley"]["addresses"]
    adv_rounds = max(2, rounds - 1) if quick else rounds
    adversaries = adversary_scenarios(adv_rounds, args.seed)
    scaled = [k for k in ADVERSARIES if k.startswith("scaled_")]
    scaled_raw = adversary_scenarios(adv_rounds, args.seed, scaled, lengths="raw")
    copies = copies_at_scale(1000, args.seed)
    graded = graded_scenarios(rounds, args.seed)
    result = {
        "quick": quick,
        "rounds": rounds,
        "seed": args.seed,
        "machine": f"{platform.machine()} {platform.processor() or platform.system()}",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "methods": {
            m: {k: v for k, v in r.items() if k not in ("book", "addresses", "round_scores")}
            for m, r in methods.items()
        },
        "ledger_settlement": ledger_settlement(book, addrs),
        "adversaries": adversaries,
        "adversary_rounds": adv_rounds,
        "scaled_raw_lengths": {
            k: {m: r["adversary_over_median_honest"] for m, r in v.items()} for k, v in scaled_raw.items()
        },
        "copies_at_scale": copies,
        "graded": graded,
    }
    write_markdown(result, args.out)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
