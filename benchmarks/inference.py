"""Verified inference: throughput and latency at r = 1 and r = 3, as ratios of calling the model
directly in the same process and run.

A verified request registers a paid ``infer`` job on the ledger (fee escrow, executor draw), the
drawn hosts compute, upload and commit, reveal, and the majority answer is accepted and paid —
every signature, hash check and ledger transaction included (in-memory ledger, one process; the
hosts are in-process executors, so this measures the protocol's cost, not the network's).

    python benchmarks/inference.py [--small]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.core.tensorio import to_safetensors
from deai.learn.models import build_model
from deai.ledger import HOST, ManualClock, MemoryLedger, NetworkConfig, txs
from deai.protocol.incentives import Provenance
from deai.protocol.inference import ServedModel, VerifiedInference, make_host


def setup(root: Path, hosts: int):
    minter = Account.from_seed("bench-inf", 0)
    clock = ManualClock(1_000)
    ledger = MemoryLedger(NetworkConfig(minter=minter.address, network="bench-inf"), clock=clock)
    store = BlobStore(root / "blobs", fsync=False)
    user, owner = Account.from_seed("bench-inf", 1), Account.from_seed("bench-inf", 2)
    for a in (user, owner):
        ledger.send(minter, txs.Mint(to=a.address, amount=10**12))
    model = build_model("mlp", 64, 10, seed=1).eval()
    checkpoint = store.put(to_safetensors(model.state_dict()))
    model_id = "0x" + checkpoint
    Provenance.from_scores(model_id, None, {owner.address: 1.0}).register(ledger, owner)
    pool = {}
    for i in range(hosts):
        acct = Account.from_seed("bench-inf-host", i)
        ledger.send(minter, txs.Mint(to=acct.address, amount=10**9))
        ledger.send(acct, txs.Stake(role=HOST, amount=10**8))
        pool[acct.address] = make_host("honest", acct, store)
    params = {"model": "mlp", "in_features": 64, "num_classes": 10}
    return ledger, clock, store, user, model, ServedModel(model_id, checkpoint, params), pool


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", action="store_true", default=os.environ.get("DEAI_SMALL") == "1")
    args = parser.parse_args()
    torch.set_num_threads(1)
    requests, batch = (10, 8) if args.small else (100, 32)
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(batch, 64, generator=gen) for _ in range(requests)]
    out = {"benchmark": "inference", "small": args.small, "requests": requests, "batch": batch}
    with tempfile.TemporaryDirectory() as d:
        ledger, clock, store, user, model, served, pool = setup(Path(d), hosts=5)
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
        for r, p in ((1, 0.0), (3, 1.0)):
            service = VerifiedInference(ledger, clock, store, served, pool, fee=10, r=r, p=p, seed=r)
            lat, correct = [], 0
            for x in xs:
                t = time.perf_counter()
                answer = service.infer(user, x)
                lat.append(time.perf_counter() - t)
                with torch.no_grad():
                    correct += int(torch.equal(answer.labels, model(x).argmax(1)))
            med, total = statistics.median(lat), sum(lat)
            out[f"r{r}"] = {
                "replication_p": p,
                "median_latency_ms": round(med * 1e3, 2),
                "requests_per_s": round(requests / total, 1),
                "latency_ratio_vs_direct": round(med / base_latency, 1),
                "throughput_ratio_vs_direct": round((requests / total) / (requests / base_total), 5),
                "answers_equal_direct": correct,
            }
        ledger.check_invariants()
        out["ledger_verified"] = ledger.verify().ok
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
