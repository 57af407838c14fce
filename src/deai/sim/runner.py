"""Run a scenario end to end and build its report.

1. **Plan** (:class:`deai.node.plan.NetworkPlan`): data splits and partition, accounts, who cheats,
   the task bundle — all fixed by the scenario's seed.
2. **Train**: the task runs through the full protocol — signed envelopes, the ledger, verified
   aggregation and scoring jobs, robust aggregation, privacy, settlement, model registration —
   either in one process (``memory``) or as a hub and daemons on loopback (``http``).
3. **Serve**: the registered model's checkpoint is fetched by hash and verified; each inference
   request is a paid, verified ``infer`` job over the staked hosts (majority answer, wrong hosts
   slashed, fees split with the model's contributors).
4. **Report**: accuracy on the held-out test set, per-round history, who earned and who was
   slashed (read back from the ledger's events), the privacy budget, and the ledger replayed from
   genesis (:meth:`~deai.ledger.base.Ledger.verify`).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from deai.core.tensorio import from_safetensors
from deai.learn.models import build_model
from deai.learn.training import evaluate
from deai.ledger.base import Ledger, ManualClock
from deai.ledger.config import HOST
from deai.ledger.txs import Stake
from deai.node.plan import NetworkPlan
from deai.protocol.inference import ServedModel, VerifiedInference, make_host
from deai.sim.accounting import earnings
from deai.sim.scenario import Scenario

__all__ = ["Progress", "run_scenario"]

Progress = Callable[[str, int, int], None]  # (stage, done, total)

HOST_STAKE = 50_000


def _model_params(plan: NetworkPlan) -> dict[str, Any]:
    spec = plan.bundle.spec
    return {
        "model": spec.model,
        "in_features": spec.in_features,
        "num_classes": spec.num_classes,
        "model_kwargs": dict(spec.model_kwargs),
    }


def _load_model(params: dict[str, Any], data: bytes) -> torch.nn.Module:
    model = build_model(
        params["model"], params["in_features"], params["num_classes"], seed=0, **params["model_kwargs"]
    )
    expected = {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}
    model.load_state_dict(from_safetensors(data, expected=expected))
    return model.eval()


def _serve(
    scenario: Scenario,
    plan: NetworkPlan,
    ledger: Ledger,
    clock: ManualClock,
    store,
    model_id: str,
    checkpoint: str,
    model: torch.nn.Module,
    progress: Progress,
) -> dict[str, Any]:
    """Verified inference against the registered model; returns the report's ``inference``."""
    inf = scenario.inference
    hosts = {}
    for a in plan.hosts:
        if ledger.stake(a.address, HOST) < HOST_STAKE:
            ledger.send(a, Stake(role=HOST, amount=HOST_STAKE))
        hosts[a.address] = make_host(plan.behaviours.get(a.address, "honest"), a, store)
    result = {"requests": inf.requests, "answered": 0, "correct": 0, "label_accuracy": None, "jobs": []}
    if inf.requests == 0 or not hosts:
        return result
    service = VerifiedInference(
        ledger,
        clock,
        store,
        ServedModel(model_id, checkpoint, _model_params(plan)),
        hosts,
        fee=inf.fee,
        r=min(inf.redundancy, len(hosts)),
        p=inf.sample_rate,
        seed=scenario.seed,
    )
    test = plan.splits.test
    gen = torch.Generator().manual_seed(scenario.seed)
    right = seen = 0
    for i in range(inf.requests):
        rows = torch.randint(0, len(test), (inf.batch_size,), generator=gen)
        x = test.x[rows]
        answer = service.infer(plan.creator, x)
        if answer.answered:
            result["answered"] += 1
            with torch.no_grad():
                truth = model(x).argmax(dim=1)
            result["correct"] += int(torch.equal(answer.labels, truth))
            right += int((answer.labels == test.y[rows]).sum())
            seen += len(rows)
        result["jobs"].append(answer.job_id)
        progress("inference", i + 1, inf.requests)
    result["label_accuracy"] = right / seen if seen else None
    return result


def _participants(plan: NetworkPlan, ledger: Ledger, scores: dict[str, float]) -> list[dict[str, Any]]:
    money = earnings(ledger)
    rows = []
    for a in [*plan.providers, *plan.computes, *plan.hosts]:
        m = money.get(a.address, {"earned": 0, "slashed": 0, "jobs_won": 0})
        role = plan.roles[a.address]
        rows.append(
            {
                "address": a.address,
                "role": role,
                "behaviour": plan.behaviours.get(a.address, "honest"),
                "earned": m["earned"],
                "slashed": m["slashed"],
                "jobs_won": m["jobs_won"],
                "score": scores.get(a.address) if role == "data_provider" else None,
            }
        )
    return rows


def _scores(status: dict[str, Any]) -> dict[str, float]:
    total: dict[str, float] = {}
    for rnd in (status.get("scores") or {}).get("rounds", {}).values():
        for address, s in rnd.items():
            total[address] = total.get(address, 0.0) + float(s)
    return total


def _rounds(status: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "round": h["round"],
            "accuracy": h.get("val_accuracy"),
            "epsilon": h.get("epsilon"),
            "providers": len(h.get("contributors", [])),
            "checkpoint": h.get("checkpoint"),
        }
        for h in status.get("history", [])
    ]


def _run_memory(plan: NetworkPlan, root: Path, progress: Progress) -> tuple[Any, dict[str, Any]]:
    net = plan.memory(root)
    task = net.submit(plan.creator, plan.bundle)
    rounds = plan.bundle.spec.rounds

    def step() -> None:
        progress("training", min(net.status(task)["round"], rounds), rounds)

    net.run(net.task_done(task), on_step=step)
    return net, net.status(task)


def run_scenario(
    scenario: Scenario,
    out: str | Path | None = None,
    *,
    transport: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run ``scenario`` (transport overridden by ``transport``) and return its report dict."""
    progress = progress or (lambda stage, done, total: None)
    transport = transport or scenario.network.transport
    t0 = time.perf_counter()
    torch.manual_seed(scenario.seed)
    plan = NetworkPlan.from_scenario(scenario)
    root = Path(out) / "network" if out is not None else Path(tempfile.mkdtemp(prefix="deai-sim-"))
    if transport == "memory":
        net, status = _run_memory(plan, root, progress)
        ledger, clock, store, bytes_sent = net.ledger, net.clock, net.store, net.bytes_sent
    elif transport == "http":
        from deai.sim.http_run import run_http

        ledger, clock, store, status, bytes_sent = run_http(plan, root, progress)
    else:
        raise ValueError(f"unknown transport {transport!r}; use memory or http")
    if status["phase"] != "done" or status.get("model") is None:
        raise RuntimeError(f"the task did not finish: phase {status['phase']}, reason {status.get('reason')}")
    model_id = status["model"]
    checkpoint = status["checkpoint"]
    params = _model_params(plan)
    model = _load_model(params, store.get(checkpoint))
    test_accuracy = evaluate(model, plan.splits.test)["accuracy"]
    inference = _serve(scenario, plan, ledger, clock, store, model_id, checkpoint, model, progress)
    verified = ledger.verify()
    ledger.check_invariants()
    return {
        "scenario": scenario.name,
        "seed": scenario.seed,
        "transport": transport,
        "task": status["task"],
        "model": model_id,
        "test_accuracy": test_accuracy,
        "rounds_completed": len(status.get("history", [])),
        "epsilon": status.get("epsilon"),
        "delta": scenario.task.dp.delta if scenario.task.dp else None,
        "rounds": _rounds(status),
        "participants": _participants(plan, ledger, _scores(status)),
        "inference": inference,
        "bytes_sent": int(bytes_sent),
        "wall_seconds": time.perf_counter() - t0,
        "ledger_verified": bool(verified.ok),
        "ledger_problem": verified.problem,
        "ledger_entries": verified.entries,
        "supply": ledger.supply(),
    }
