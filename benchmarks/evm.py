"""The EVM ledger's costs: gas per training round and per payout claim, and throughput vs SQLite.

Prints JSON. A round on chain is two transactions whatever the number of providers: the
coordinator's ``checkpoint`` and its ``post_payout_root`` (one Merkle root over the round's
payees); each payee then claims its own leaf with a proof of ``ceil(log2 n)`` hashes. The run
measures, for ``n`` payees (10, 100, 1,000; ``--small``: 10, 100):

- ``round_gas``: gas of checkpoint + payout root (the goal: the same for every n);
- ``claim_gas``: mean gas of a claim (grows with the proof length, log2 n);
- throughput: signed transfers per second submitted one by one through ``EvmLedger`` on anvil
  (simulate, send, wait for the receipt, follow the log) and through ``SqliteLedger`` in the same
  run; ``ratio_to_sqlite`` = anvil rate / SQLite rate;
- ``typed_signature``: the cost ``SignedTx.create`` pays for the EIP-712 signature, as a fraction
  of the whole create;
- ``jobs``: gas of one verified job with r = 3 replicated executors (register with the draw, the
  3 commits, the creator's replication reveal, the 3 reveals, resolve) among ``providers`` staked
  compute providers (10, 100, 1,000; ``--small``: 10, 40), each on fresh contracts;
  ``register_ratio`` = register gas / register gas at the fewest providers (the draw reads every
  provider: the one O(providers) step), ``per_job_ratio`` likewise for the whole job, and
  ``last_stake_gas`` the gas of the last provider's first stake (its sorted insertion).

- ``simulate`` (``--simulate SCENARIO``; the full run takes ``scenarios/demo.yaml``, ``--small``
  none): the scenario over HTTP with real processes (``deai simulate SCENARIO --transport http``)
  once with the hub's SQLite ledger and once with ``--ledger evm`` (anvil, the hub a relay, every
  daemon reading the chain), in the same run; ``ratio`` = EVM wall time / SQLite wall time (the
  goal: at most 2), with each run's test accuracy and ledger entries (the same training both ways).

Without anvil (``make anvil``) the chain is the in-process py-evm one (gas is identical; the rate
is then py-evm's). ``--seed`` fixes the accounts and amounts.

    python benchmarks/evm.py [--small] [--seed S] [--simulate SCENARIO | --simulate none]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import tempfile
import time
from pathlib import Path

from deai.core.accounts import Account
from deai.core.encoding import hash_value
from deai.ledger import (
    COMPUTE,
    NetworkConfig,
    SignedTx,
    SqliteLedger,
    payout_tree,
    replication_commitment,
    result_commitment,
    txs,
)
from deai.ledger.evm.backend import EvmLedger
from deai.ledger.evm.node import AnvilNode, find_anvil, tester_chain
from deai.ledger.typed import sign_typed, typed_digest


def last_gas(ledger: EvmLedger) -> int:
    block = ledger.w3.eth.get_block("latest")
    return ledger.w3.eth.get_transaction_receipt(block["transactions"][-1])["gasUsed"]


def round_costs(ledger: EvmLedger, minter: Account, n: int, rng: random.Random, claims: int) -> dict:
    coordinator = Account.from_seed(f"evm-bench-coord-{n}", rng.randrange(10**9))
    payees = [Account.from_seed(f"evm-bench-payee-{n}", i) for i in range(n)]
    task = hash_value(f"task-{n}-{rng.random()}")
    ledger.send(minter, txs.Mint(to=coordinator.address, amount=10**9))
    ledger.send(coordinator, txs.CreateTask(task=task, budget=10**9, params=task))
    amounts = {p.address: rng.randint(1, 1_000) for p in payees}
    tree = payout_tree(amounts)
    ledger.send(coordinator, txs.PostCheckpoint(task=task, round=1, checkpoint=hash_value("c1")))
    checkpoint_gas = last_gas(ledger)
    ledger.send(coordinator, txs.PostPayoutRoot(task=task, epoch=1, root=tree.root, total=tree.total))
    payout_gas = last_gas(ledger)
    gas = []
    for p in rng.sample(payees, min(claims, n)):
        proof = tuple(tree.proof(p.address))
        ledger.send(p, txs.ClaimPayout(task=task, epoch=1, amount=amounts[p.address], proof=proof))
        gas.append(last_gas(ledger))
    return {
        "payees": n,
        "round_txs": 2,
        "round_gas": checkpoint_gas + payout_gas,
        "checkpoint_gas": checkpoint_gas,
        "payout_root_gas": payout_gas,
        "claim_gas": round(sum(gas) / len(gas)),
        "proof_hashes": math.ceil(math.log2(n)),
    }


def job_costs(ledger: EvmLedger, minter: Account, n: int, rng: random.Random) -> dict:
    """Gas of one replicated r = 3 job among ``n`` staked compute providers."""
    providers = {a.address: a for a in (Account.from_seed(f"evm-bench-prov-{n}", i) for i in range(n))}
    for p in providers.values():
        ledger.send(minter, txs.Mint(to=p.address, amount=20_000))
        ledger.send(p, txs.Stake(role=COMPUTE, amount=10_000 + rng.randrange(10_000)))
    stake_gas = last_gas(ledger)
    creator = Account.from_seed("evm-bench-creator", n)
    ledger.send(minter, txs.Mint(to=creator.address, amount=10_000))
    job, salt = hash_value(f"job-{n}-{rng.random()}"), hash_value(f"salt-{n}")
    ledger.send(
        creator,
        txs.RegisterJob(
            job=job,
            task=None,
            job_type="aggregate",
            inputs=(hash_value("in"),),
            fee=10,
            executors=3,
            replication=replication_commitment(job, True, 0, salt),
            commit_window_ms=60_000,
            reveal_window_ms=60_000,
        ),
    )
    gas = {"register": last_gas(ledger), "commits": 0, "reveal_replication": 0, "reveals": 0}
    record = ledger.job(job)
    assert record is not None
    digest = hash_value("result")
    for e in record.executors:
        s = hash_value(f"{job}{e}")
        ledger.send(providers[e], txs.Commit(job=job, commitment=result_commitment(job, e, digest, s)))
        gas["commits"] += last_gas(ledger)
    ledger.send(creator, txs.RevealReplication(job=job, replicated=True, primary=0, salt=salt))
    gas["reveal_replication"] = last_gas(ledger)
    for e in record.executors:
        ledger.send(providers[e], txs.Reveal(job=job, digest=digest, salt=hash_value(f"{job}{e}")))
        gas["reveals"] += last_gas(ledger)
    ledger.send(creator, txs.ResolveJob(job=job))
    gas["resolve"] = last_gas(ledger)
    final = ledger.job(job)
    assert final is not None and final.status == "accepted"
    return {
        "providers": n,
        "executors": 3,
        "gas": gas,
        "per_job_gas": sum(gas.values()),
        "last_stake_gas": stake_gas,
    }


def transfers(ledger, minter: Account, users: list[Account], n: int) -> float:
    for u in users:
        ledger.send(minter, txs.Mint(to=u.address, amount=10**9))
    signed = []
    nonces = {u.address: ledger.nonce(u.address) for u in users}
    for i in range(n):
        s, r = users[i % len(users)], users[(i * 7 + 3) % len(users)]
        tx = txs.Transfer(to=r.address, amount=1 + i % 100)
        signed.append(ledger.sign(s, tx, nonce=nonces[s.address]))
        nonces[s.address] += 1
    t = time.perf_counter()
    for stx in signed:
        ledger.submit(stx)
    return n / (time.perf_counter() - t)


def typed_cost(minter: Account, n: int) -> dict:
    tx = txs.Transfer(to=minter.address, amount=5)
    t = time.perf_counter()
    for i in range(n):
        SignedTx.create(minter, tx, nonce=i, network="bench")
    whole = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(n):
        sign_typed(minter, typed_digest(tx, minter.address, i, "bench"))
    typed = time.perf_counter() - t
    return {"create_us": round(whole / n * 1e6, 1), "typed_share": round(typed / whole, 3)}


def simulate(path: str) -> dict:
    """``path`` run over HTTP on the SQLite ledger, then on the EVM ledger (anvil)."""
    from deai.sim.runner import run_scenario
    from deai.sim.scenario import load_scenario

    scenario = load_scenario(path)
    runs = {}
    for backend in ("sqlite", "evm"):
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            report = run_scenario(scenario, out, transport="http", ledger=backend)
            runs[backend] = {
                "wall_s": round(time.perf_counter() - t0, 1),
                "test_accuracy": report["test_accuracy"],
                "ledger_entries": report["ledger_entries"],
                "ledger_verified": report["ledger_verified"],
            }
    return {"scenario": path, **runs, "ratio": round(runs["evm"]["wall_s"] / runs["sqlite"]["wall_s"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--simulate", default=None, help="a scenario or none (default: demo; --small: none)")
    args = parser.parse_args()
    scenario = args.simulate or ("none" if args.small else "scenarios/demo.yaml")
    rng = random.Random(args.seed)
    minter = Account.from_seed("evm-bench", args.seed)
    users = [Account.from_seed("evm-bench-user", args.seed * 100 + i) for i in range(4)]
    config = NetworkConfig(minter=minter.address, network="bench-evm")
    sizes = (10, 100) if args.small else (10, 100, 1_000)
    n_tx = 30 if args.small else 200
    with tempfile.TemporaryDirectory() as tmp:
        node = AnvilNode(Path(tmp) / "chain").start() if find_anvil() else None
        try:
            ledger = EvmLedger(node.url if node else tester_chain(), config)
            round_costs(ledger, minter, 2, rng, claims=1)  # warm-up: the first payout ever sets 0 -> x slots
            rounds = [round_costs(ledger, minter, n, rng, claims=5 if args.small else 20) for n in sizes]
            evm_rate = transfers(ledger, minter, users, n_tx)
            assert ledger.verify().ok
            jobs = []
            for n in (10, 40) if args.small else (10, 100, 1_000):
                fresh = EvmLedger(ledger.w3, config)  # new contracts: n providers exactly
                jobs.append(job_costs(fresh, minter, n, rng))
                assert fresh.verify().ok
        finally:
            if node:
                node.stop()
        sqlite = SqliteLedger(Path(tmp) / "bench.sqlite", config)
        sqlite_rate = transfers(sqlite, minter, users, n_tx)
        sqlite.close()
    gas = [r["round_gas"] for r in rounds]
    out = {
        "chain": "anvil" if node else "py-evm",
        "seed": args.seed,
        "rounds": rounds,
        "round_gas_spread": round((max(gas) - min(gas)) / min(gas), 4),
        "throughput": {
            "transfers": n_tx,
            "evm_tx_per_s": round(evm_rate, 1),
            "sqlite_tx_per_s": round(sqlite_rate, 1),
            "ratio_to_sqlite": round(evm_rate / sqlite_rate, 4),
        },
        "typed_signature": typed_cost(minter, 300 if args.small else 3_000),
        "jobs": [
            {
                **j,
                "register_ratio": round(j["gas"]["register"] / jobs[0]["gas"]["register"], 3),
                "per_job_ratio": round(j["per_job_gas"] / jobs[0]["per_job_gas"], 3),
            }
            for j in jobs
        ],
    }
    if scenario != "none":
        if find_anvil() is None:
            raise SystemExit("the simulate measurement needs anvil: make anvil")
        out["simulate"] = simulate(scenario)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
