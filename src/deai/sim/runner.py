"""Run a scenario end to end and build its report.

1. **Plan** (:class:`deai.sim.plan.NetworkPlan`): data splits and partition, accounts, who cheats,
   the task bundle — all fixed by the scenario's seed.
2. **Train**: the task runs through the full protocol — signed envelopes, the ledger, verified
   aggregation and scoring jobs, robust aggregation, privacy, settlement, model registration —
   either in one process (``memory``) or as a hub and daemons on loopback (``http``).
3. **Serve**: the registered model's checkpoint is fetched by hash and verified; each inference
   request is a paid, verified ``infer`` job over the staked hosts (majority answer, wrong hosts
   slashed, fees split with the model's contributors).
4. **Report**: accuracy on the held-out test set, per-round history, who earned and who was
   slashed (read back from the ledger's events), the privacy budget, the ledger replayed from
   genesis (:meth:`~deai.ledger.base.Ledger.verify`), and the ``traffic`` of each role
   (:class:`TrafficLog`): bytes sent and received by the data providers, compute providers, hosts,
   the task's creator and the hub, counted on the transport (the memory transport's counters; over
   HTTP each daemon's client counters, which it writes to ``traffic.json``), in total, as a mean
   per round and round by round.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from deai.core.tensorio import from_safetensors
from deai.learn.objectives import evaluate, logits_of
from deai.ledger.base import Ledger
from deai.net.links import Link, Traffic
from deai.node.participant.daemon import DaemonTraffic
from deai.protocol.jobs.kinds.model import load_model
from deai.protocol.task.jobspecs import defense
from deai.protocol.task.records import Phase, TaskView
from deai.sim.accounting import Earnings, earnings
from deai.sim.plan import NetworkPlan
from deai.sim.scenario import Scenario

__all__ = ["Progress", "TrafficLog", "run_scenario"]

Progress = Callable[[str, int, int], None]  # (stage, done, total)

HOST_STAKE = 50_000


class TrafficLog:
    """Every client's byte counters, summed per role, snapshot when the task's round changes.

    ``read()`` lists the clients' :class:`~deai.node.participant.daemon.DaemonTraffic` (a daemon's
    role is its roles joined by ``+``; a bare client is the ``creator`` if it signs as the task's
    creator, else the ``operator`` funding and staking the network); ``busy()`` (optional) the wall
    seconds each daemon spent in its steps. The hub's traffic is the mirror of everyone else's: it
    receives what they send and sends what they receive. Over HTTP the daemons' counters are read
    from files written at most once a second, so round-by-round figures there are approximate;
    totals are exact once the daemons have stopped.
    """

    def __init__(
        self,
        creator: str,
        read: Callable[[], list[DaemonTraffic]],
        busy: Callable[[], dict[str, float]] | None = None,
    ) -> None:
        self.creator, self.read, self.busy = creator, read, busy
        self.marks: list[tuple[int, dict[str, Traffic], dict[str, float]]] = []

    def role_of(self, entry: DaemonTraffic) -> str:
        if entry.roles:
            return "+".join(sorted(entry.roles))
        return "creator" if entry.name == self.creator else "operator"

    def by_role(self, entries: list[DaemonTraffic]) -> dict[str, Traffic]:
        roles: dict[str, Traffic] = {}
        for e in entries:
            role = self.role_of(e)
            roles[role] = roles.get(role, Traffic()).add(e.traffic)
        everyone = Traffic()
        for t in roles.values():
            everyone = everyone.add(t)
        roles["hub"] = Traffic(
            sent=everyone.received,
            received=everyone.sent,
            blob_sent=everyone.blob_received,
            blob_received=everyone.blob_sent,
            requests=everyone.requests,
        )
        return roles

    def _busy_by_role(self, entries: list[DaemonTraffic]) -> dict[str, float]:
        busy = self.busy() if self.busy is not None else {}
        out: dict[str, float] = {}
        for e in entries:
            if e.name in busy:
                role = self.role_of(e)
                out[role] = out.get(role, 0.0) + busy[e.name]
        return out

    def mark(self, round_: int) -> None:
        """Snapshot the counters if ``round_`` differs from the last snapshot's round."""
        if self.marks and self.marks[-1][0] == round_:
            return
        entries = self.read()
        self.marks.append((round_, self.by_role(entries), self._busy_by_role(entries)))

    def report(self, rounds: int, *, end_round: int, link: Link | None = None) -> dict[str, Any]:
        """The report's ``traffic``: per role the totals (and the mean per completed round), the
        clients and accounts behind it; ``per_round``: what each role moved (and, in one process,
        its daemons' busy seconds) from the moment the task showed a round to the next change."""
        entries = self.read()
        totals = self.by_role(entries)
        counts: dict[str, tuple[int, int]] = {}
        for e in entries:
            role = self.role_of(e)
            k, n = counts.get(role, (0, 0))
            counts[role] = (k + 1, n + (sum(e.roles.values()) if e.roles else 1))
        roles = {}
        for role, t in sorted(totals.items()):
            clients, accounts = counts.get(role, (1, 1))
            roles[role] = {
                "clients": clients,
                "accounts": accounts,
                **t.to_json(),
                "sent_per_round": t.sent / rounds if rounds else 0.0,
                "received_per_round": t.received / rounds if rounds else 0.0,
            }
        self.mark(end_round)
        per_round = []
        for (r, before, busy0), (_, after, busy1) in zip(self.marks, self.marks[1:], strict=False):
            row = {}
            for role, t in after.items():
                d = t.minus(before.get(role, Traffic()))
                row[role] = {
                    "sent": d.sent,
                    "received": d.received,
                    "blob_sent": d.blob_sent,
                    "blob_received": d.blob_received,
                    "requests": d.requests,
                    "link_seconds": d.link_seconds,
                    "busy_seconds": busy1.get(role, 0.0) - busy0.get(role, 0.0),
                }
            per_round.append({"round": r, "roles": row})
        return {
            "rounds": rounds,
            "link": None
            if link is None
            else {"up_mbit": link.up_mbit, "down_mbit": link.down_mbit, "latency_ms": link.latency_ms},
            "roles": roles,
            "per_round": per_round,
        }


def _model_params(plan: NetworkPlan) -> dict[str, Any]:
    spec = plan.bundle.spec
    return {
        "model": spec.model,
        "in_features": spec.in_features,
        "num_classes": spec.num_classes,
        "model_kwargs": dict(spec.model_kwargs),
    }


def _load_model(params: dict[str, Any], data: bytes) -> torch.nn.Module:
    """The registered checkpoint, refused unless its names, shapes and dtypes are the model's."""
    return load_model(params, from_safetensors(data)).eval()


def _serve(
    scenario: Scenario,
    plan: NetworkPlan,
    net: Any,
    model_id: str,
    model: torch.nn.Module,
    progress: Progress,
    *,
    pump: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """Verified inference through the hub: host daemons fetch and verify the registered model and
    serve ``infer`` jobs; the creator pays for each request and checks every answer it gets."""
    from deai.node.participant.host import ensure_hosts
    from deai.node.participant.served import remote_model
    from deai.node.user.infer import request_inference

    inf = scenario.inference
    result: dict[str, Any] = {
        "requests": inf.requests,
        "answered": 0,
        "correct": 0,
        "label_accuracy": None,
        "jobs": [],
    }
    if inf.requests == 0 or not plan.hosts:
        return result
    names = ensure_hosts(
        net, plan.hosts, tag=plan.tag, behaviours=plan.behaviours, stake=HOST_STAKE, policy=plan.policy
    )
    # Requests only once the hosts announced they serve the model: the ledger draws among every
    # staked host, so a request sent while they still start up would find nobody to commit.
    net.wait_ready(model_id, names)
    client = net.client(plan.creator)
    served = remote_model(client, model_id)
    test = plan.splits.test
    gen = torch.Generator().manual_seed(scenario.seed)
    right = seen = 0
    for i in range(inf.requests):
        rows = torch.randint(0, len(test), (inf.batch_size,), generator=gen)
        x = test.x[rows]
        tokens = test.is_tokens
        answer = request_inference(
            client,
            plan.creator,
            model_id,
            x,
            fee=inf.fee,
            r=min(inf.redundancy, len(plan.hosts)),
            p=inf.sample_rate,
            pump=pump,
            served=served,
            seed=scenario.seed,
        )
        labels = torch.as_tensor(answer["labels"])
        result["answered"] += 1
        with torch.no_grad():
            logits = logits_of(model(x))
            # token windows: the served answer is the next token after each window
            expected = (logits[:, -1] if tokens else logits).argmax(dim=-1)
        result["correct"] += int(torch.equal(labels, expected))
        right += int((labels == (test.y[rows][:, -1] if tokens else test.y[rows])).sum())
        seen += len(rows)
        result["jobs"].append(answer["job"])
        progress("inference", i + 1, inf.requests)
    result["label_accuracy"] = right / seen if seen else None
    return result


def _participants(plan: NetworkPlan, ledger: Ledger, scores: dict[str, float]) -> list[dict[str, Any]]:
    money = earnings(ledger)
    rows = []
    for a in [*plan.providers, *plan.computes, *plan.hosts]:
        m = money.get(a.address, Earnings())
        role = plan.roles[a.address]
        rows.append(
            {
                "address": a.address,
                "role": role,
                "behaviour": plan.behaviours.get(a.address, "honest"),
                "earned": m.earned,
                "slashed": m.slashed,
                "missed": m.missed,  # jobs drawn for and never committed to: no stake lost
                "jobs_won": m.jobs_won,
                "earned_by": m.by_source,  # payouts, job_fees, slash_rewards, inference_fees, royalties
                "slash_reasons": m.reasons,
                "score": scores.get(a.address) if role == "data_provider" else None,
            }
        )
    return rows


def _scores(status: TaskView) -> dict[str, float]:
    total: dict[str, float] = {}
    for rnd in (status.scores or {}).get("rounds", {}).values():
        for address, s in rnd.items():
            total[address] = total.get(address, 0.0) + float(s)
    return total


def _rounds(status: TaskView) -> list[dict[str, Any]]:
    return [
        {
            "round": h.round,
            "accuracy": h.val_accuracy,
            "loss": h.val_loss,
            "perplexity": h.val_perplexity,
            "epsilon": h.epsilon,
            "providers": len(h.contributors),
            "checkpoint": h.checkpoint,
            "defense": h.defense,
            "scored_on": h.scored_on,
            **({"disputes": h.disputes} if h.defense == "refereed delegation" else {}),
        }
        for h in status.history
    ]


def _run_memory(
    scenario: Scenario,
    plan: NetworkPlan,
    root: Path,
    progress: Progress,
    link: Link | None,
    ledger: str = "memory",
) -> tuple[Ledger, TaskView, bytes, Callable[[torch.nn.Module], dict[str, Any]], Any, TrafficLog]:
    net = plan.memory(root, ledger=ledger)
    if link is not None:  # every client made from here on (plan.memory's daemons: set below)
        net.link = link
        for t in net.transports:
            t.link = link
    log = TrafficLog(plan.creator.address, net.traffic, lambda: dict(net.busy))
    task = net.submit(plan.creator, plan.bundle)
    rounds = plan.bundle.spec.rounds

    def step() -> None:
        r = net.status(task).round
        log.mark(r)
        progress("training", min(r, rounds), rounds)

    log.mark(net.status(task).round)
    net.run(net.task_done(task), on_step=step)
    status = net.status(task)
    log.mark(-1)  # the end of training: what follows (claims, inference) is in the totals only
    checkpoint = net.store.get(status.checkpoint) if status.checkpoint else b""

    def serve(model: torch.nn.Module) -> dict[str, Any]:
        assert status.model is not None  # check_done ran first
        return _serve(scenario, plan, net, status.model, model, progress, pump=net.step)

    return net.ledger, status, checkpoint, serve, net, log


def _export(plan: NetworkPlan, model: torch.nn.Module, folder: Path) -> Path:
    """The final model as a folder that loads outside deai (``from_pretrained`` for a GPT, a PEFT
    adapter for LoRA, safetensors + config otherwise), with the text tokenizer beside it and the
    task's architecture and preprocessing in ``deai.json``."""
    from deai.learn.export import ExportSpec, export_model

    spec = plan.bundle.spec
    described = ExportSpec(
        spec.model,
        spec.in_features,
        spec.num_classes,
        dict(spec.model_kwargs),
        spec.preprocessing,
        tuple(plan.splits.test.feature_shape),
    )
    return export_model(model, folder, tokenizer=plan.tokenizer, spec=described)


CHANCE_MARGIN = 0.02  # a test accuracy within this of the majority class's share is "at chance"


def _chance(plan: NetworkPlan, accuracy: float) -> tuple[float | None, list[str]]:
    """The accuracy of always answering the test set's most common class (None for text), and
    the run's warnings: a model at chance learned nothing, whatever the task's phase says."""
    test = plan.splits.test
    if test.is_tokens or len(test) == 0:
        return None, []
    chance = float(torch.bincount(test.y, minlength=test.num_classes).max()) / len(test)
    if accuracy > chance + CHANCE_MARGIN:
        return chance, []
    return chance, [
        f"test accuracy {accuracy:.3f} is at chance (the most common class is {chance:.3f} of the test"
        " set): the model learned nothing. Check that the providers' data matches the task's"
        f" preprocessing ({plan.bundle.spec.preprocessing.kind}), its features and its labels."
    ]


def check_done(status: TaskView) -> None:
    if status.phase != Phase.DONE or status.model is None:
        raise RuntimeError(f"the task did not finish: phase {status.phase}, reason {status.reason}")


def run_scenario(
    scenario: Scenario,
    out: str | Path | None = None,
    *,
    transport: str | None = None,
    progress: Progress | None = None,
    link: Link | None = None,
    ledger: str | None = None,
) -> dict[str, Any]:
    """Run ``scenario`` (transport overridden by ``transport``) and return its report dict.

    ``ledger``: ``memory`` (the memory transport's default: the reference state machine in memory),
    ``sqlite`` (the http transport's default: the hub's ledger file) or ``evm`` (the ledger contracts
    on a chain: an in-process py-evm chain with the memory transport, an anvil node over http).

    ``link`` (memory transport only): every participant's simulated connection; each role's
    ``traffic`` then says the seconds its requests would have taken over it (``link_seconds``)."""
    progress = progress or (lambda stage, done, total: None)
    transport = transport or scenario.network.transport
    t0 = time.perf_counter()
    torch.manual_seed(scenario.seed)
    plan = NetworkPlan.from_scenario(scenario)
    root = Path(out) / "network" if out is not None else Path(tempfile.mkdtemp(prefix="deai-sim-"))
    # Every run starts from genesis: a network folder left by an earlier run into the same ``out``
    # would otherwise hand this run its ledger (old mints, stakes, jobs) and mix both in the report.
    if root.exists():
        shutil.rmtree(root)
    if link is not None and transport != "memory":
        raise ValueError("a simulated link needs the memory transport")
    backend = ledger or ("memory" if transport == "memory" else "sqlite")
    if backend not in ({"memory", "evm"} if transport == "memory" else {"sqlite", "evm"}):
        raise ValueError(f"the {transport} transport keeps no ledger in {backend!r}: memory, sqlite or evm")
    if transport == "memory":
        book, status, checkpoint_bytes, serve, net, log = _run_memory(
            scenario, plan, root, progress, link, backend
        )
        release: Callable[[], None] = book.close
        check_done(status)
        model = _load_model(_model_params(plan), checkpoint_bytes)
        inference = serve(model)
        bytes_sent = net.bytes_sent
    elif transport == "http":
        from deai.sim.http_run import run_http

        def serve_http(net: Any, status: TaskView, checkpoint_bytes: bytes) -> tuple[torch.nn.Module, dict]:
            check_done(status)
            assert status.model is not None  # check_done
            model = _load_model(_model_params(plan), checkpoint_bytes)
            return model, _serve(scenario, plan, net, status.model, model, progress)

        book, status, model, inference, bytes_sent, log, release = run_http(
            plan, root, progress, serve_http, ledger=backend
        )
    else:
        raise ValueError(f"unknown transport {transport!r}; use memory or http")
    try:
        model_id = status.model
        test_metrics = evaluate(model, plan.splits.test)
        exported = _export(plan, model, Path(out) / "model") if out is not None else None
        chance, warnings = _chance(plan, test_metrics["accuracy"])
        verified = book.verify()
        book.check_invariants()
        return {
            "scenario": scenario.name,
            "seed": scenario.seed,
            "transport": transport,
            "task": status.task,
            "model": model_id,
            "test_accuracy": test_metrics["accuracy"],  # next-token accuracy for text
            "test_loss": test_metrics["loss"],
            "test_perplexity": test_metrics.get("perplexity"),
            "chance_accuracy": chance,  # always answering the most common class (null for text)
            "warnings": warnings,  # e.g. a test accuracy at chance
            "preprocessing": plan.bundle.spec.preprocessing.kind,
            "exported": str(exported) if exported is not None else None,
            "rounds_completed": len(status.history),
            "defense": status.history[-1].defense
            if status.history
            else defense(plan.bundle.spec, len(plan.providers)),
            "hidden_scoring_sets": len(plan.bundle.spec.scoring_sets),
            "compression": plan.bundle.spec.compression,
            "global_compression": plan.bundle.spec.global_compression,
            "epsilon": status.epsilon,
            "delta": scenario.task.dp.delta if scenario.task.dp else None,
            "rounds": _rounds(status),
            "participants": _participants(plan, book, _scores(status)),
            "inference": inference,
            "bytes_sent": int(bytes_sent),
            "traffic": log.report(len(status.history), end_round=-1, link=link),
            "wall_seconds": time.perf_counter() - t0,
            "ledger": backend,
            "ledger_verified": bool(verified.ok),
            "ledger_problem": verified.problem,
            "ledger_entries": verified.entries,
            "supply": book.supply(),
        }
    finally:
        release()  # the chain the http run left up for this report
