"""Attacks on a running network (issue 12): what is refused, and what a flood of useless requests costs.

Prints JSON with three parts:

- ``attacks``: every class of :data:`deai.testing.attacks.CATALOGUE` run against a hub process on
  loopback (one network, in catalogue order): attempts, how many were refused, and whether the hub
  survived with the supply conserved and every honest stake and balance intact; ``totals`` sums them. The
  small form skips the slow classes (stalled uploads wait out the hub's body deadline; the tampered
  ledger starts two more hubs) and lists them under ``skipped``.
- ``flood``: a bounded flood of valid but useless signed requests (``hub.info`` and
  ``ledger.query``, sealed beforehand by ``--senders`` accounts that hold nothing, sent from
  ``--threads`` threads over loopback): the hub's answers per second to the flood as a **ratio**
  of its answers per second to one such client alone, an honest client's latency (signed queries
  at 20/s) during the flood as a **ratio** of its latency on the idle hub, the answers by status
  (429: turned away by the rate limit) and the hub's peak resident memory against its memory
  before the flood.
- ``rounds``: seconds per federated round of an honest task (data and compute daemons, verified
  jobs; the ``light`` workload of ``benchmarks/network.py``) without and under the same kind of
  flood (``--round-flood`` requests at most, ``--flood-rate`` per second, sent while the task
  runs), and their **ratio** (goal: at most 1.3).

    python benchmarks/attacks.py              # full
    DEAI_SMALL=1 python benchmarks/attacks.py # small form (or --small)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deai.core.accounts import Account
from deai.core.envelope import Envelope
from deai.testing.attacks import CATALOGUE, Target, run_attack
from network import WORKLOADS, _bundle, _parties, _per_round  # the script next door

SMALL = os.environ.get("DEAI_SMALL") == "1" or "--small" in sys.argv


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def sealed_flood(network: str, senders: int, count: int) -> list[bytes]:
    """``count`` signed, useless requests from ``senders`` accounts that hold nothing."""
    accounts = [Account.from_seed("bench-flood", i) for i in range(senders)]
    out = []
    for i in range(count):
        a = accounts[i % senders]
        if i % 2:
            env = Envelope.seal(a, "hub.info", {}, network)
        else:
            env = Envelope.seal(a, "ledger.query", {"q": "balance", "args": {"address": a.address}}, network)
        out.append(env.to_bytes())
    return out


class Flood:
    """Sends pre-sealed requests from ``threads`` threads until they run out, ``stop`` is set or
    ``max_s`` passes, as fast as it can or at ``rate`` requests per second in all; counts the
    answers by status (0: no answer)."""

    def __init__(
        self, url: str, requests: list[bytes], threads: int, max_s: float, rate: float | None = None
    ) -> None:
        self.url, self.requests, self.threads, self.max_s, self.rate = url, requests, threads, max_s, rate
        self.codes: Counter[int] = Counter()
        self.stop = threading.Event()
        self.seconds = 0.0
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._t0 = 0.0

    def _run(self, share: list[bytes]) -> None:
        deadline = self._t0 + self.max_s
        interval = self.threads / self.rate if self.rate else 0.0
        with httpx.Client(timeout=30) as client:
            for i, raw in enumerate(share):
                if self.stop.is_set() or time.perf_counter() > deadline:
                    return
                if interval:  # this thread's next slot
                    self.stop.wait(max(0.0, self._t0 + i * interval - time.perf_counter()))
                try:
                    code = client.post(f"{self.url}/v1/envelope", content=raw).status_code
                except httpx.HTTPError:
                    code = 0
                with self._lock:
                    self.codes[code] += 1

    def start(self) -> Flood:
        self._t0 = time.perf_counter()
        n = self.threads
        self._workers = [
            threading.Thread(target=self._run, args=(self.requests[i::n],), daemon=True) for i in range(n)
        ]
        for w in self._workers:
            w.start()
        return self

    def join(self) -> None:
        for w in self._workers:
            w.join()
        self.seconds = time.perf_counter() - self._t0

    @property
    def running(self) -> bool:
        return any(w.is_alive() for w in self._workers)

    @property
    def sent(self) -> int:
        return sum(self.codes.values())


def honest_latencies(target: Target, keep_going: Callable[[], bool], rate: float = 20.0) -> list[float]:
    """Seconds per signed honest query by the checker, paced at ``rate`` per second (well within
    its rate limit), while ``keep_going()``."""
    out: list[float] = []
    t0 = time.perf_counter()
    while keep_going():
        time.sleep(max(0.0, t0 + len(out) / rate - time.perf_counter()))
        start = time.perf_counter()
        target.query("balance", address=target.checker.address)
        out.append(time.perf_counter() - start)
    return out


def flood_part(target: Target, args: argparse.Namespace) -> dict:
    """The hub's answers per second to one client and to a flood from ``--threads`` clients, an
    honest client's latency idle and during the flood, and the hub's memory."""
    pid = target.hub_pid
    until = time.perf_counter() + args.measure_s
    idle_latency = statistics.median(honest_latencies(target, lambda: time.perf_counter() < until))
    one = Flood(target.url, sealed_flood(target.network, args.senders, args.flood // 4), 1, args.measure_s)
    one.start().join()
    idle_rate = one.sent / one.seconds
    rss0 = _rss_mb(pid)
    flood = Flood(target.url, sealed_flood(target.network, args.senders, args.flood), args.threads, 60.0)
    peak = [rss0]

    def sample() -> None:
        while not flood.stop.is_set():
            peak[0] = max(peak[0], _rss_mb(pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    flood.start()
    sampler.start()
    latencies = honest_latencies(target, lambda: flood.running)
    flood.join()
    flood.stop.set()
    sampler.join()
    answered = flood.sent - flood.codes.get(0, 0)
    flood_latency = statistics.median(latencies) if latencies else float("nan")
    return {
        "senders": args.senders,
        "threads": args.threads,
        "requests": flood.sent,
        "seconds": round(flood.seconds, 2),
        "answers": {str(k): v for k, v in sorted(flood.codes.items())},
        "one_client_answers_per_s": round(idle_rate, 1),
        "flood_answers_per_s": round(answered / flood.seconds, 1),
        "throughput_ratio": round(answered / flood.seconds / idle_rate, 2),
        "honest_ms_idle": round(idle_latency * 1000, 2),
        "honest_ms_under_flood": round(flood_latency * 1000, 2),
        "honest_latency_ratio": round(flood_latency / idle_latency, 2),
        "honest_requests_under_flood": len(latencies),
        "hub_rss_mb_before": round(rss0, 1),
        "hub_peak_rss_mb": round(peak[0], 1),
        "peak_rss_ratio": round(peak[0] / rss0, 3),
    }


def round_seconds(splits, args: argparse.Namespace, tag: str, flood_requests: int) -> tuple[float, dict]:
    """Seconds per round of an honest task over HTTP; with ``flood_requests``, a flood of that many
    useless requests runs while the task does."""
    from deai.node.launch.processes import ProcessNetwork
    from deai.node.user.submit import submit_task

    providers, computes, creator, data = _parties(splits, args.providers, 4, tag)
    bundle = _bundle(splits, args.providers, args.rounds, WORKLOADS["light"])
    with ProcessNetwork(tempfile.mkdtemp(prefix="bench-attacks-")) as net:
        net.start_hub()
        net.fund([a.address for a in [*providers, *computes, creator, net.hub_account]], 10**7)
        net.start_node("data", ["data_provider"], [f"seed:{tag}p:0-{len(providers) - 1}"], data=data)
        net.start_node("compute", ["compute_provider"], [f"seed:{tag}c:0-{len(computes) - 1}"])
        client = net.client(creator)
        flood = None
        if flood_requests:
            requests = sealed_flood(net.network, args.senders, flood_requests)
            flood = Flood(net.url, requests, args.threads, 600.0, rate=args.flood_rate).start()
        t0 = time.perf_counter()
        task = submit_task(client, creator, bundle)
        while (status := client.call("task.status", {"task": task}))["phase"] not in ("done", "failed"):
            time.sleep(0.1)
        info: dict = {"task_seconds": round(time.perf_counter() - t0, 2)}
        if flood is not None:
            running = flood.running  # the flood lasted the whole task
            flood.stop.set()
            flood.join()
            answers = {str(k): v for k, v in sorted(flood.codes.items())}
            info |= {"requests": flood.sent, "answers": answers, "covered_the_task": running}
        if status["phase"] != "done":
            raise RuntimeError(f"the honest task failed: {status.get('reason')}")
        return _per_round(status["history"]), info


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true", help="the small form (also DEAI_SMALL=1)")
    parser.add_argument("--senders", type=int, default=50)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--flood", type=int, default=600 if SMALL else 3_000)
    parser.add_argument("--round-flood", type=int, default=3_000 if SMALL else 6_000)
    parser.add_argument("--flood-rate", type=float, default=100.0, help="requests/s during the task")
    parser.add_argument("--measure-s", type=float, default=2.0 if SMALL else 5.0)
    parser.add_argument("--rounds", type=int, default=4 if SMALL else 8)
    parser.add_argument("--providers", type=int, default=4 if SMALL else 8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    out: dict = {"small": SMALL}
    with tempfile.TemporaryDirectory(prefix="bench-attacks-") as tmp, Target.start(tmp) as target:
        out["flood"] = flood_part(target, args)
        attacks, skipped = {}, []
        for attack in CATALOGUE:
            if SMALL and attack.slow:
                skipped.append(attack.name)
                continue
            outcome = run_attack(target, attack)
            attacks[attack.name] = outcome.to_json()
        out["attacks"] = attacks
        out["skipped"] = skipped
        out["totals"] = {
            "classes": len(attacks),
            "classes_ok": sum(a["ok"] for a in attacks.values()),
            "attempts": sum(a["attempts"] for a in attacks.values()),
            "refused": sum(a["refused"] for a in attacks.values()),
        }
    from deai.learn.data import prepare

    splits = prepare("digits", seed=0)
    quiet, quiet_info = round_seconds(splits, args, "batk0", 0)
    flooded, info = round_seconds(splits, args, "batk1", args.round_flood)
    out["rounds"] = {
        "providers": args.providers,
        "rounds": args.rounds,
        "seconds_per_round": round(quiet, 3),
        "seconds_per_round_under_flood": round(flooded, 3),
        "task_seconds": quiet_info["task_seconds"],
        "flood": info,
        "ratio": round(flooded / quiet, 3),
        "goal": 1.3,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
