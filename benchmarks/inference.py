"""Verified inference: throughput and latency at r = 1 and r = 3, as ratios of calling the model
directly in the same process and run.

Code path: the network's -- the user's client (:func:`deai.node.user.infer.request_inference`)
uploads the batch and signs the paid job's transactions, the hub's plugin
(:class:`deai.node.hub.inference.InferenceService`, driving the job engine
:class:`deai.protocol.jobs.run.JobRun`) registers the job, the host daemon's hosts compute,
upload, commit and reveal, and the hub accepts the majority; the client rechecks the answer against
the ledger and the output blob. Everything runs in one process over an in-memory
:class:`~deai.node.launch.inprocess.LocalNetwork` (MemoryTransport, MemoryLedger, manual clock): every
envelope signature, hash check, blob transfer and ledger transaction is included; sockets and HTTP
are not (see ``docs/network.md`` for those).

    python benchmarks/inference.py [--small]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from deai.core.accounts import Account  # noqa: E402
from deai.learn.models import build_model  # noqa: E402
from deai.node.launch.inprocess import LocalNetwork  # noqa: E402
from deai.node.participant.served import publish_model, remote_model  # noqa: E402
from deai.node.user.infer import request_inference  # noqa: E402
from deai.protocol.task.model import checkpoint_bytes  # noqa: E402

PARAMS = {"model": "mlp", "in_features": 64, "num_classes": 10, "model_kwargs": {}}


def setup(root: Path, hosts: int):
    net = LocalNetwork(root, network="bench-inf", seed=0)
    user, owner = Account.from_seed("bench-inf", 1), Account.from_seed("bench-inf", 2)
    pool = [Account.from_seed("bench-inf-host", i) for i in range(hosts)]
    net.fund([user, owner, *pool], 10**9)
    model = build_model("mlp", 64, 10, seed=1).eval()
    model_id = publish_model(net.client(owner), owner, checkpoint_bytes(model), PARAMS, {owner.address: 1.0})
    net.add_daemon("hosts", {"host": pool}, options={"host_stake": 10**8})
    return net, user, model, model_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", action="store_true", default=os.environ.get("DEAI_SMALL") == "1")
    args = parser.parse_args()
    torch.set_num_threads(1)
    requests, batch = (10, 8) if args.small else (100, 32)
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(batch, 64, generator=gen) for _ in range(requests)]
    out = {
        "benchmark": "inference",
        "path": "network (LocalNetwork: hub plugin + host daemon + client, in memory)",
        "small": args.small,
        "requests": requests,
        "batch": batch,
    }
    with tempfile.TemporaryDirectory() as d:
        net, user, model, model_id = setup(Path(d), hosts=5)
        client = net.client(user)
        served = remote_model(client, model_id)
        direct = []
        with torch.no_grad():
            for x in xs:
                t = time.perf_counter()
                model(x).argmax(1)
                direct.append(time.perf_counter() - t)
        base_latency, base_total = statistics.median(direct), sum(direct)
        out["direct"] = {
            "median_latency_ms": round(base_latency * 1e3, 4),
            "requests_per_s": round(requests / base_total),
        }
        request_inference(client, user, model_id, xs[0], r=1, p=0.0, pump=net.step, served=served)  # warm-up
        for r, p in ((1, 0.0), (3, 1.0)):
            lat, correct = [], 0
            for x in xs:
                t = time.perf_counter()
                answer = request_inference(
                    client, user, model_id, x, fee=10, r=r, p=p, pump=net.step, served=served
                )
                lat.append(time.perf_counter() - t)
                with torch.no_grad():
                    correct += int(torch.equal(answer["labels"], model(x).argmax(1)))
            med, total = statistics.median(lat), sum(lat)
            out[f"r{r}"] = {
                "replication_p": p,
                "median_latency_ms": round(med * 1e3, 2),
                "requests_per_s": round(requests / total, 1),
                "latency_ratio_vs_direct": round(med / base_latency, 1),
                "throughput_ratio_vs_direct": round((requests / total) / (requests / base_total), 5),
                "answers_equal_direct": correct,
            }
        net.ledger.check_invariants()
        out["ledger_verified"] = net.ledger.verify().ok
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
