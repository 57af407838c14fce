"""Real workloads through the round engine: a CNN on Fashion-MNIST, a GPT on Shakespeare, LoRA on SmolLM2.

Every figure is compared with a baseline measured in the same run (never a bare time):

- ``fashion``: a small ResNet (batch norm) on Fashion-MNIST, 20 providers. Federated test accuracy
  against **centralized training of the same model for the same total epochs** (same recipe), IID
  and Dirichlet(0.5) (and, for reference, centralized with the federation's effective batch); then
  25% Byzantine providers (sign flip, ALIE, IPM) under the default defense
  (``root_gate+centered_clipping``, as the network runs it: no provider momentum, which lags
  batch-norm models with a few long rounds) against the same defense's clean run. Goals: IID within
  1 point (and >= 90%), Dirichlet within 3, attacks within 3 of clean.
- ``shakespeare``: a GPT-2-style decoder (byte-level tokens) on Shakespeare, 8 providers holding
  different plays. Federated validation perplexity against centralized at equal tokens (goal:
  within 10%) -- against the better of two centralized runs: the providers' batch size for as many
  steps as all providers took together, and the federation's effective batch (providers x batch)
  for as many steps as one provider took.
- ``lora``: SmolLM2-135M-Instruct with LoRA adapters, 8 providers holding different plays.
  Held-out perplexity after federated fine-tuning against the base model's (goal: at least 20%
  lower) and the bytes of one update against the full model's (goal: under 1%).
- ``round``: wall time of one full-protocol round of the CNN task (``deai simulate`` path: signed
  envelopes, ledger, verified aggregation and scoring jobs), in memory and over HTTP, as a ratio of
  a plain PyTorch federated round (the same local training and a mean, no protocol) in the same run.
  Goals 1.2x in memory, 1.5x over HTTP.

The federated runs use :func:`deai.learn.federated.run_federated`, whose rounds are the steps the
network's roles call (``local_step`` → ``ProviderPool.train``, ``aggregate_updates`` → the
``aggregate`` job kind, ``server_step`` → ``TaskCoordinator._finish_round``); ``round`` runs the
network itself. Each section writes ``docs/results/workloads/<section>.json``; the page
``docs/results/workloads.md`` is rebuilt from the sections present.

    python benchmarks/workloads.py fashion            # ~25 min on 2 cores
    python benchmarks/workloads.py shakespeare        # ~6 min
    python benchmarks/workloads.py lora               # ~10 min (converts the GGUF once)
    python benchmarks/workloads.py round              # ~3 min
    python benchmarks/workloads.py all --small        # every section in small form (what CI runs)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deai.learn.data import Dataset
from deai.learn.federated import run_federated
from deai.learn.models import build_model
from deai.learn.objectives import evaluate
from deai.learn.partition import partition
from deai.learn.training import TrainConfig, deterministic, local_train

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results" / "workloads"
PAGE = ROOT / "docs" / "results" / "workloads.md"
DEFAULT_DEFENSE = "root_gate+centered_clipping"
SECTIONS = ("fashion", "shakespeare", "lora", "round")


def _threads() -> int:
    return max(1, min(os.cpu_count() or 1, 16))


# -- Fashion-MNIST CNN ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FashionSetup:
    providers: int = 20
    byzantine: int = 5
    train_samples: int = 60_000
    test_samples: int = 10_000
    epochs: float = 3.0  # total passes over the training data, centralized and federated alike
    rounds: int = 15
    batch_size: int = 32
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    widths: tuple[int, ...] = (16, 32, 64)


def _fashion_data(setup: FashionSetup, seed: int) -> tuple[Dataset, Dataset, Dataset]:
    from deai.learn.images import fashion_mnist

    train, test = fashion_mnist("train"), fashion_mnist("test")
    gen = np.random.default_rng(seed)
    pick = gen.permutation(len(train))
    root = train.subset(pick[:100])  # the server's clean root data (root gate, FLTrust)
    train = train.subset(np.sort(pick[100 : 100 + setup.train_samples]))
    test = test.subset(np.arange(min(setup.test_samples, len(test))))
    return train, test, root


def fashion(setup: FashionSetup, seed: int = 0) -> dict[str, Any]:
    train, test, root = _fashion_data(setup, seed)
    model_kwargs = {"input_shape": [1, 28, 28], "widths": list(setup.widths)}
    recipe = dict(
        batch_size=setup.batch_size, lr=setup.lr, momentum=setup.momentum, weight_decay=setup.weight_decay
    )
    out: dict[str, Any] = {"setup": asdict(setup), "seed": seed, "runs": {}}

    # Two centralized baselines at the same epochs: the providers' batch size, and the federation's
    # effective batch (providers x batch: as many sequential steps as a federated run takes).
    for name, batch in (
        ("centralized", setup.batch_size),
        ("centralized_large_batch", setup.batch_size * setup.providers),
    ):
        t = time.perf_counter()
        with deterministic(_threads()):
            net = build_model("resnet", 784, 10, seed=seed, **model_kwargs)
            local_train(
                net, train, TrainConfig(epochs=setup.epochs, **{**recipe, "batch_size": batch}), seed=seed
            )
            central = evaluate(net, test)
        out["runs"][name] = {"accuracy": central["accuracy"], "seconds": time.perf_counter() - t}
        print(json.dumps({"fashion": name, **out["runs"][name]}), file=sys.stderr)

    local = TrainConfig(epochs=setup.epochs / setup.rounds, **recipe)
    n = setup.providers
    byz = list(range(n - setup.byzantine, n))
    runs: list[tuple[str, str, dict, str | None, str, float]] = [
        ("iid", "iid", {}, None, "mean", 0.0),
        ("dirichlet", "dirichlet", {"alpha": 0.5}, None, "mean", 0.0),
        ("defense_clean", "iid", {}, None, DEFAULT_DEFENSE, 0.0),
        ("sign_flip", "iid", {}, "sign_flip", DEFAULT_DEFENSE, 0.0),
        ("alie", "iid", {}, "alie", DEFAULT_DEFENSE, 0.0),
        ("ipm", "iid", {}, "ipm", DEFAULT_DEFENSE, 0.0),
    ]
    for name, kind, options, attack, aggregator, beta in runs:
        idx = partition(train.y.numpy(), n, kind, seed=seed, **options)
        parts = [train.subset(i) for i in idx]
        t = time.perf_counter()
        with deterministic(_threads()):
            res = run_federated(
                parts,
                test,
                model="resnet",
                model_kwargs=model_kwargs,
                rounds=setup.rounds,
                local=local,
                aggregator=aggregator,
                f=setup.byzantine if aggregator != "mean" else 0,
                byzantine=byz if attack else [],
                attack=attack,
                client_momentum=beta,
                root_data=root,
                seed=seed,
            )
        out["runs"][name] = {
            "accuracy": res.accuracy,
            "refused": res.refused,
            "seconds": time.perf_counter() - t,
        }
        print(json.dumps({"fashion": name, **out["runs"][name]}), file=sys.stderr)
    r = out["runs"]
    pts = lambda a, b: round(100 * (r[a]["accuracy"] - r[b]["accuracy"]), 2)  # noqa: E731
    out["figures"] = {
        "centralized_accuracy": round(100 * r["centralized"]["accuracy"], 2),
        "centralized_large_batch_accuracy": round(100 * r["centralized_large_batch"]["accuracy"], 2),
        "iid_accuracy": round(100 * r["iid"]["accuracy"], 2),
        "iid_gap_points": pts("centralized", "iid"),
        "dirichlet_gap_points": pts("centralized", "dirichlet"),
        "defense_clean_accuracy": round(100 * r["defense_clean"]["accuracy"], 2),
        **{f"{a}_drop_points": pts("defense_clean", a) for a in ("sign_flip", "alie", "ipm")},
    }
    f = out["figures"]
    out["goals"] = {
        "iid_within_1_point_and_90": f["iid_gap_points"] <= 1.0 and f["iid_accuracy"] >= 90.0,
        "dirichlet_within_3_points": f["dirichlet_gap_points"] <= 3.0,
        "attacks_within_3_points_of_clean": all(
            f[f"{a}_drop_points"] <= 3.0 for a in ("sign_flip", "alie", "ipm")
        ),
    }
    return out


# -- Shakespeare GPT -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShakespeareSetup:
    providers: int = 8
    seq_len: int = 64
    n_embd: int = 96
    n_layer: int = 2
    n_head: int = 4
    rounds: int = 10
    local_steps: int = 10  # per provider per round
    batch_size: int = 16
    lr: float = 3e-3
    val_windows: int = 256


def _lm_recipe(setup: Any, steps: int) -> TrainConfig:
    return TrainConfig(
        steps=steps,
        batch_size=setup.batch_size,
        lr=setup.lr,
        optimizer="adamw",
        weight_decay=0.01,
        grad_clip=1.0,
    )


def shakespeare(setup: ShakespeareSetup, seed: int = 0) -> dict[str, Any]:
    from deai.learn.text import ByteTokenizer, load_corpus, partition_documents, split_corpus, token_windows

    corpus = load_corpus("shakespeare")
    splits = split_corpus(corpus, val=0.05, test=0.05)
    tok = ByteTokenizer()
    parts = [
        token_windows(c, tok, setup.seq_len) for c in partition_documents(splits.train, setup.providers, seed)
    ]
    val = token_windows(splits.val, tok, setup.seq_len, max_windows=setup.val_windows)
    everything = Dataset(
        torch.cat([p.x for p in parts]),
        torch.cat([p.y for p in parts]),
        tok.vocab_size,
        (setup.seq_len,),
        "train",
    )
    kwargs = {"n_embd": setup.n_embd, "n_layer": setup.n_layer, "n_head": setup.n_head}
    total_steps = setup.rounds * setup.local_steps * setup.providers
    tokens = total_steps * setup.batch_size * setup.seq_len
    out: dict[str, Any] = {"setup": asdict(setup), "seed": seed, "tokens": tokens, "runs": {}}

    # Two centralized baselines at the same tokens: the provider's batch for every step (as many
    # sequential steps as all providers' local steps together), and the federation's effective
    # batch (providers x batch, as many steps as one provider's local steps over all rounds).
    for name, batch, steps in (
        ("centralized", setup.batch_size, total_steps),
        ("centralized_large_batch", setup.batch_size * setup.providers, setup.rounds * setup.local_steps),
    ):
        t = time.perf_counter()
        with deterministic(_threads()):
            net = build_model("gpt", setup.seq_len, tok.vocab_size, seed=seed, **kwargs)
            base = evaluate(net, val)
            recipe = _lm_recipe(setup, steps)
            local_train(net, everything, TrainConfig(**{**recipe.__dict__, "batch_size": batch}), seed=seed)
            got = evaluate(net, val)
        out["runs"]["initial"] = {"perplexity": base["perplexity"]}
        out["runs"][name] = {"perplexity": got["perplexity"], "seconds": time.perf_counter() - t}
        print(json.dumps({"shakespeare": name, **out["runs"][name]}), file=sys.stderr)
    central = min(
        (out["runs"][k] for k in ("centralized", "centralized_large_batch")), key=lambda r: r["perplexity"]
    )

    # FedAvg, and DiLoCo (the same rounds with Nesterov momentum as the server's outer optimizer,
    # Douillard et al. 2023: the strategy made for language models trained with many local steps)
    # and FedAvg with the local learning rate scaled by sqrt(providers): averaging n providers'
    # AdamW steps is a step of an n-times larger batch, which takes a larger rate (square-root
    # scaling for Adam-type optimizers)
    scaled = TrainConfig(
        **{**_lm_recipe(setup, setup.local_steps).__dict__, "lr": setup.lr * setup.providers**0.5}
    )
    for name, strategy, recipe in (
        ("federated", "fedavg", _lm_recipe(setup, setup.local_steps)),
        ("federated_diloco", "diloco", _lm_recipe(setup, setup.local_steps)),
        ("federated_scaled_lr", "fedavg", scaled),
    ):
        t = time.perf_counter()
        with deterministic(_threads()):
            res = run_federated(
                parts,
                val,
                model="gpt",
                model_kwargs=kwargs,
                rounds=setup.rounds,
                local=recipe,
                strategy=strategy,
                aggregator="mean",
                seed=seed,
            )
        out["runs"][name] = {"perplexity": math.exp(res.loss), "seconds": time.perf_counter() - t}
        print(json.dumps({"shakespeare": name, **out["runs"][name]}), file=sys.stderr)
    fed_ppl = min(
        out["runs"][k]["perplexity"] for k in ("federated", "federated_diloco", "federated_scaled_lr")
    )
    ratio = fed_ppl / central["perplexity"]
    out["figures"] = {
        "initial_perplexity": round(out["runs"]["initial"]["perplexity"], 2),
        "centralized_perplexity": round(out["runs"]["centralized"]["perplexity"], 3),
        "centralized_large_batch_perplexity": round(out["runs"]["centralized_large_batch"]["perplexity"], 3),
        "best_centralized_perplexity": round(central["perplexity"], 3),
        "fedavg_perplexity": round(out["runs"]["federated"]["perplexity"], 3),
        "diloco_perplexity": round(out["runs"]["federated_diloco"]["perplexity"], 3),
        "fedavg_scaled_lr_perplexity": round(out["runs"]["federated_scaled_lr"]["perplexity"], 3),
        "federated_over_centralized": round(ratio, 4),
    }
    out["goals"] = {"federated_within_10_percent": ratio <= 1.10}
    return out


# -- SmolLM2 + LoRA ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoraSetup:
    providers: int = 8
    seq_len: int = 128
    rounds: int = 3
    local_steps: int = 4
    batch_size: int = 2
    lr: float = 1e-3
    r: int = 8
    alpha: int = 16
    eval_windows: int = 24


def lora(setup: LoraSetup, seed: int = 0) -> dict[str, Any]:
    from deai.learn.pretrained import base_digest, load_tokenizer
    from deai.learn.text import HFTokenizer, load_corpus, partition_documents, split_corpus, token_windows
    from deai.learn.training import get_flat

    base = "smollm2-135m-instruct"
    tok = HFTokenizer(load_tokenizer(base))
    corpus = load_corpus("shakespeare")
    splits = split_corpus(corpus, val=0.02, test=0.02)
    per = max(8, setup.rounds * setup.local_steps * setup.batch_size)
    parts = [
        token_windows(c, tok, setup.seq_len, max_windows=per)
        for c in partition_documents(splits.train, setup.providers, seed)
    ]
    held_out = token_windows(splits.test, tok, setup.seq_len, max_windows=setup.eval_windows)
    kwargs = {
        "base": base,
        "r": setup.r,
        "alpha": setup.alpha,
        "digest": base_digest(base).removeprefix("0x"),
    }
    out: dict[str, Any] = {"setup": asdict(setup), "seed": seed, "runs": {}}
    t = time.perf_counter()
    with deterministic(_threads()):
        net = build_model("lora", setup.seq_len, tok.vocab_size, seed=seed, **kwargs)
        before = evaluate(net, held_out, batch_size=4)
        full_bytes = 4 * sum(p.numel() for p in net.parameters())
        update_bytes = 4 * get_flat(net).numel()
        res = run_federated(
            parts,
            held_out,
            model="lora",
            model_kwargs=kwargs,
            rounds=setup.rounds,
            local=TrainConfig(
                steps=setup.local_steps, batch_size=setup.batch_size, lr=setup.lr, optimizer="adamw"
            ),
            aggregator="mean",
            seed=seed,
        )
    after_ppl = math.exp(res.loss)
    out["runs"]["federated"] = {"seconds": time.perf_counter() - t}
    out["figures"] = {
        "base_perplexity": round(before["perplexity"], 3),
        "lora_perplexity": round(after_ppl, 3),
        "perplexity_reduction": round(1 - after_ppl / before["perplexity"], 4),
        "update_bytes": update_bytes,
        "full_model_bytes": full_bytes,
        "update_fraction": round(update_bytes / full_bytes, 5),
    }
    f = out["figures"]
    out["goals"] = {
        "perplexity_at_least_20_percent_lower": f["perplexity_reduction"] >= 0.20,
        "update_under_1_percent": f["update_fraction"] < 0.01,
    }
    return out


# -- one full-protocol round ---------------------------------------------------------------------------


def _round_scenario(rounds: int, small: bool) -> dict[str, Any]:
    import yaml

    doc = yaml.safe_load((ROOT / "scenarios" / "fashion_cnn.yaml").read_text())
    doc.pop("small")
    doc["adversaries"] = []
    doc["dataset"].update(max_train_samples=800 if small else 6000, max_test_samples=200)
    doc["model"]["options"]["widths"] = [4, 8] if small else [8, 16, 32]
    doc["network"].update(data_providers=4 if small else 10)
    doc["task"].update(rounds=rounds, aggregator="mean", score_samples=32 if small else 64)
    doc["inference"]["requests"] = 0
    return doc


def round_section(small: bool, seed: int = 0) -> dict[str, Any]:
    """Seconds per round of the network (``deai simulate``, both transports) against a plain
    PyTorch round of the same providers, data and recipe (local training + a mean)."""
    import tempfile

    from deai.learn.aggregators import get_aggregator
    from deai.learn.federated import aggregate_updates, local_step
    from deai.learn.training import get_flat
    from deai.sim.plan import NetworkPlan
    from deai.sim.runner import run_scenario
    from deai.sim.scenario import parse_scenario

    lo, hi = 1, 3
    per_round: dict[str, float] = {}
    for transport in ("memory", "http"):
        times = {}
        for rounds in (lo, hi):
            scenario = parse_scenario(_round_scenario(rounds, small))
            with tempfile.TemporaryDirectory() as tmp:
                t = time.perf_counter()
                report = run_scenario(scenario, tmp, transport=transport)
                times[rounds] = time.perf_counter() - t
            assert report["rounds_completed"] == rounds
        per_round[transport] = (times[hi] - times[lo]) / (hi - lo)
        print(json.dumps({"round": transport, "seconds_per_round": per_round[transport]}), file=sys.stderr)
    # the baseline: the same providers' local training and a mean, in one process, no protocol
    plan = NetworkPlan.from_scenario(parse_scenario(_round_scenario(hi, small)))
    spec = plan.bundle.spec
    from deai.protocol.task.model import build

    model = build(spec, seed=seed)
    parts = [plan.datasets[a.address] for a in plan.providers]
    vec = get_flat(model)
    t = time.perf_counter()
    with deterministic(1):
        for r in range(hi - lo):
            sent = local_step(model, vec, parts, spec.train_config(), list(range(r, r + len(parts)))).sent
            vec = vec + aggregate_updates(get_aggregator("mean"), sent)
    plain = (time.perf_counter() - t) / (hi - lo)
    ratio = {k: v / plain for k, v in per_round.items()}
    return {
        "runs": {"plain_seconds_per_round": plain, "network_seconds_per_round": per_round},
        "figures": {
            "plain_round_seconds": round(plain, 2),
            "memory_round_seconds": round(per_round["memory"], 2),
            "http_round_seconds": round(per_round["http"], 2),
            "memory_over_plain": round(ratio["memory"], 3),
            "http_over_plain": round(ratio["http"], 3),
        },
        "goals": {"memory_within_1_2x": ratio["memory"] <= 1.2, "http_within_1_5x": ratio["http"] <= 1.5},
    }


# -- page ----------------------------------------------------------------------------------------------


def write_page() -> None:
    lines = [
        "# Workloads: real deep learning through the round engine",
        "",
        "Measured by `benchmarks/workloads.py` (see its docstring for what each section runs and the",
        "code path: `run_federated` = the round steps the network's roles call; `round` = the network).",
        "Every figure is against a baseline measured in the same run.",
        "",
    ]
    for section in SECTIONS:
        path = RESULTS / f"{section}.json"
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        lines += [f"## {section}", "", f"Reproduce: `{data['command']}` ({data['wall_seconds']:.0f} s).", ""]
        lines += ["| figure | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in data["figures"].items()]
        lines += ["", "| goal | met |", "|---|---|"]
        lines += [f"| {k} | {'yes' if v else 'no'} |" for k, v in data["goals"].items()]
        lines += ["", f"Setup: `{json.dumps(data.get('setup', {}))}`", ""]
    PAGE.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("section", choices=[*SECTIONS, "all"])
    ap.add_argument("--small", action="store_true", help="tiny sizes (seconds): what CI runs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/results alone")
    args = ap.parse_args(argv)
    small = args.small or os.environ.get("DEAI_SMALL") == "1"
    chosen = SECTIONS if args.section == "all" else (args.section,)
    results: dict[str, Any] = {}
    for section in chosen:
        t = time.perf_counter()
        if section == "fashion":
            setup = (
                FashionSetup(
                    providers=4,
                    byzantine=1,
                    train_samples=800,
                    test_samples=400,
                    epochs=1,
                    rounds=2,
                    widths=(4, 8),
                )
                if small
                else FashionSetup()
            )
            res = fashion(setup, args.seed)
        elif section == "shakespeare":
            s = (
                ShakespeareSetup(providers=3, rounds=2, local_steps=2, n_embd=32, n_layer=1, val_windows=32)
                if small
                else ShakespeareSetup()
            )
            res = shakespeare(s, args.seed)
        elif section == "lora":
            ls = (
                LoraSetup(providers=2, seq_len=32, rounds=1, local_steps=1, batch_size=1, eval_windows=2)
                if small
                else LoraSetup()
            )
            res = lora(ls, args.seed)
        else:
            res = round_section(small, args.seed)
        res["wall_seconds"] = time.perf_counter() - t
        res["command"] = "python benchmarks/workloads.py " + section + (" --small" if small else "")
        res["small"] = small
        results[section] = res
        if not args.no_write and not small:
            RESULTS.mkdir(parents=True, exist_ok=True)
            (RESULTS / f"{section}.json").write_text(json.dumps(res, indent=1))
    if not args.no_write and not small:
        write_page()
    print(
        json.dumps({k: {"figures": v["figures"], "goals": v["goals"]} for k, v in results.items()}, indent=1)
    )
    return results


if __name__ == "__main__":
    main()
