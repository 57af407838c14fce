"""Delegated training verified by refereed delegation: catch rates, honest safety, bisection, cost.

Code path: refereed ``train_steps`` jobs (:class:`deai.protocol.jobs.delegated.RefereedRun`, the one
job engine with the dispute as its decision) stepped in one process by
:class:`~deai.protocol.jobs.delegated.DelegatedDriver` on a manual clock, with in-process executors
(honest, and the cheating trainers of ``protocol/jobs/cheaters/``) sending their own signed
transactions to an in-memory ledger; the CNN on the digits images (8x8). No HTTP, no daemons.

Prints JSON. Every time is a ratio to a baseline measured in the same run, never a bare time.
``--small`` (or DEAI_SMALL=1) shrinks every size for CI.

    python benchmarks/delegated_training.py [--small]

1. **catch**: per cheating trainer, replicated jobs (p = 1, r = 2) on a ledger of two honest
   providers and the cheater until ``disputes`` jobs drew the cheater beside an honest one: the
   fraction where the dispute named the cheater the liar and the ledger slashed it (``wrong
   result``), and honest providers slashed (goal: 100% and 0). The cheater tops its stake back up.
2. **honest**: ``jobs`` replicated jobs over four honest providers on 1, 2, 3 and 4 intra-op threads:
   disputes and slashes (goal 0).
3. **bisection**: one dispute over T = 1,024 steps of the CNN (k = 1) between an honest trainer and
   one that forges the state at step T/3: bisection rounds and steps re-executed (goal <= 10 and 1),
   and the referee's work against re-running T steps.
4. **cost**: honest providers, p = 0.1, r = 2: executor compute over all jobs against running each
   job once without hashing, beside the expectation ``(1 + (r - 1) p_hat) x hashing``, ``p_hat`` the
   fraction of jobs hidden sampling replicated and ``hashing`` the measured cost of the committed
   state hashes (goal: within 5%).
5. **calibration**: the largest deviation of one CNN step and of 50 steps between thread counts
   1-4 and oneDNN on/off *without* the pinning, against the referee's tolerance, and the smallest
   deviation of a cheat (one skipped step) against it.
6. **lora** (``--lora``, alone): LoRA fine-tuning of the pretrained SmolLM2-135M (its adapters are
   the state): a dispute with a forged state at T/3 and the CPU cost of the state hashes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from deai.core.accounts import Account  # noqa: E402
from deai.core.blobs import BlobStore  # noqa: E402
from deai.core.tensorio import to_safetensors  # noqa: E402
from deai.learn.data import load_dataset  # noqa: E402
from deai.learn.models import build_model  # noqa: E402
from deai.learn.training import deterministic, shared_state  # noqa: E402
from deai.ledger.base import ManualClock  # noqa: E402
from deai.ledger.config import COMPUTE, NetworkConfig  # noqa: E402
from deai.ledger.memory import MemoryLedger  # noqa: E402
from deai.ledger.txs import Mint, Stake  # noqa: E402
from deai.protocol.jobs import JobConfig, JobSpec  # noqa: E402
from deai.protocol.jobs.calibrate import DEFAULT_SETTINGS  # noqa: E402
from deai.protocol.jobs.cheaters import make_executor  # noqa: E402
from deai.protocol.jobs.compare import agrees, max_deviation  # noqa: E402
from deai.protocol.jobs.delegated import REFEREE_RULE, DelegatedDriver  # noqa: E402
from deai.protocol.jobs.executor import Executor  # noqa: E402
from deai.protocol.jobs.kinds import StepProgram, load_inputs  # noqa: E402
from deai.protocol.jobs.refereed import expected_rounds  # noqa: E402

STAKE = 100_000
CHEATERS = ["skip_steps", "other_data", "fewer_epochs", "stale_checkpoint", "forged_state", "lazy_copy"]
CNN = {"model": "cnn", "in_features": 64, "num_classes": 10, "model_kwargs": {"channels": [4, 8]}}


def digits() -> dict[str, torch.Tensor]:
    ds = load_dataset("digits")
    x = ds.x.float()
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    return {"x": x.reshape(-1, 1, 8, 8).contiguous(), "y": ds.y}


class Bench:
    """A ledger with staked providers of the given behaviours and the in-process driver."""

    def __init__(self, tmp: Path, behaviours: list[str], *, p: float, seed: int, threads=(1,)) -> None:
        minter = Account.from_seed("dt-minter", seed)
        self.clock = ManualClock(0)
        self.creator = Account.from_seed("dt-creator", seed)  # a genesis resolver: resolves its jobs
        config = NetworkConfig(minter=minter.address, rep_step_bps=0, resolvers=(self.creator.address,))
        self.ledger = MemoryLedger(config, clock=self.clock)
        self.store = BlobStore(tmp / f"blobs-{seed}", fsync=False)
        self.ledger.send(minter, Mint(to=self.creator.address, amount=10**13))
        self.executors: dict[str, Executor] = {}
        for i, b in enumerate(behaviours):
            acct = Account.from_seed(f"dt-exec-{seed}", i)
            self.ledger.send(minter, Mint(to=acct.address, amount=10**12))
            self.ledger.send(acct, Stake(role=COMPUTE, amount=STAKE))
            self.executors[acct.address] = make_executor(
                b, acct, self.store, threads=threads[i % len(threads)]
            )
        self.driver = DelegatedDriver(
            self.ledger, self.clock, self.store, self.creator, self.executors,
            config=JobConfig(fee=10, r=2, p=p),
        )  # fmt: skip
        data = digits()
        self.data = self.store.put(to_safetensors(data))
        self.n = len(data["y"])

    def spec(self, j: int, steps: int, every: int | None = 1, n: int = 256) -> JobSpec:
        ck = shared_state(build_model("cnn", 64, 10, seed=j, channels=[4, 8]))
        params = {**CNN, "steps": steps, "lr": 0.05, "batch_size": 16}
        if every is not None:
            params["commit_every"] = every
        return JobSpec("train_steps", (self.store.put(to_safetensors(ck)), self.data), params, seed=j)

    def slashes(self, job_ids: set[str]) -> dict[str, str]:
        return {
            e.data["account"]: e.data["reason"]
            for e in self.ledger.events(0)
            if e.kind == "slashed" and e.data.get("job") in job_ids
        }

    def top_up(self, address: str) -> None:
        if (missing := STAKE - self.ledger.stake(address, COMPUTE)) > 0:
            self.ledger.send(self.executors[address].account, Stake(role=COMPUTE, amount=missing))


def bench_catch(tmp: Path, cheater: str, disputes: int, steps: int, seed: int) -> dict:
    b = Bench(tmp, ["honest", cheater, "honest"], p=1.0, seed=seed)
    bad = next(a for a, e in b.executors.items() if e.behaviour == cheater)
    disputed = caught = honest_slashed = jobs = 0
    rounds, reexecuted = [], []
    while disputed < disputes:
        report = b.driver.run(b.spec(jobs, steps))
        jobs += 1
        slashed = b.slashes({a.job for a in report.run.attempts})
        honest_slashed += any(a != bad for a in slashed)
        if bad in report.required:
            disputed += 1
            recs = [r for r in report.run.disputes if bad in r.parties]
            caught += bool(recs) and bad in recs[0].liars and slashed.get(bad) == "wrong result"
            rounds += [r.rounds for r in recs]
            reexecuted += [r.steps_reexecuted for r in recs]
        b.top_up(bad)
    b.ledger.check_invariants()
    return {
        "jobs": jobs,
        "disputed_jobs": disputed,
        "caught": caught,
        "catch_rate": caught / disputed,
        "jobs_with_honest_slashed": honest_slashed,
        "max_rounds": max(rounds, default=0),
        "max_steps_reexecuted": max(reexecuted, default=0),
    }


def bench_honest(tmp: Path, jobs: int, steps: int, seed: int) -> dict:
    b = Bench(tmp, ["honest"] * 4, p=1.0, seed=seed, threads=(1, 2, 3, 4))
    disputes = slashed = accepted_both = 0
    for j in range(jobs):
        report = b.driver.run(b.spec(j, steps))
        disputes += len(report.run.disputes)
        slashed += bool(report.slashed)
        accepted_both += len(report.accepted) == 2
    return {
        "jobs": jobs,
        "threads": [1, 2, 3, 4],
        "disputes": disputes,
        "jobs_with_a_slash": slashed,
        "jobs_both_accepted": accepted_both,
    }


def bench_bisection(tmp: Path, steps: int, seed: int) -> dict:
    b = Bench(tmp, ["honest", "forged_state", "honest"], p=1.0, seed=seed)
    bad = next(a for a, e in b.executors.items() if e.behaviour == "forged_state")
    for j in range(20):
        spec = b.spec(j, steps)
        report = b.driver.run(spec)
        if bad not in report.required:
            continue
        (rec,) = report.run.disputes
        with deterministic(1):
            program = StepProgram.from_job(load_inputs(b.store, spec), spec.params, spec.seed)
            t0 = time.thread_time()
            before = program.run(program.initial, 0, rec.step)
            program.run(before, rec.step)
            full = time.thread_time() - t0
            t0 = time.thread_time()
            program.run(before, rec.step, rec.step + rec.steps_reexecuted)
            referee = time.thread_time() - t0
        return {
            "steps": steps,
            "commit_every": 1,
            "rounds": rec.rounds,
            "expected_rounds": expected_rounds(steps),
            "steps_reexecuted": rec.steps_reexecuted,
            "divergent_step": rec.step,
            "forged_at": steps // 3,
            "liar_slashed": report.faulted == [bad],
            "referee_cpu_over_full_run": referee / full,
        }
    raise RuntimeError("the cheater was never drawn")


def _without_hashes(params: dict) -> dict:
    return {k: v for k, v in params.items() if k != "commit_every"}


class Timed(Executor):
    """The honest executor, counting the CPU time of its computations (``time.thread_time``: the
    figure does not move with the load of other processes on the machine, wall time does)."""

    cpu = 0.0

    def compute(self, spec: JobSpec):
        start = time.thread_time()
        try:
            return super().compute(spec)
        finally:
            self.cpu += time.thread_time() - start


def bench_cost(tmp: Path, jobs: int, steps: int, p: float, seed: int) -> dict:
    b = Bench(tmp, ["honest"] * 4, p=p, seed=seed)
    b.executors = {a: Timed(e.account, b.store) for a, e in b.executors.items()}
    b.driver.executors = dict(b.executors)
    specs = [b.spec(j, steps) for j in range(jobs)]
    base = Timed(Account.from_seed("dt-baseline", seed), b.store)
    hashed = Timed(Account.from_seed("dt-hashed", seed), b.store)
    plain = [JobSpec(s.kind, s.inputs, _without_hashes(s.params), s.seed) for s in specs]
    base.compute(plain[0]), hashed.compute(specs[0])  # warm-up, not counted
    base.cpu = hashed.cpu = 0.0
    replicated = executions = 0
    for j, spec in enumerate(specs):
        base.compute(plain[j])  # the baselines: the job once, without and with the hashes
        hashed.compute(spec)
        report = b.driver.run(spec)
        replicated += report.replicated
        executions += report.executions
    spent = sum(e.cpu for e in b.executors.values() if isinstance(e, Timed))
    p_hat = replicated / jobs
    hashing = hashed.cpu / base.cpu
    expected = (1 + p_hat) * hashing  # r = 2: 1 + (r - 1) p_hat executions per job
    ratio = spent / base.cpu
    return {
        "jobs": jobs,
        "steps": steps,
        "p": p,
        "r": 2,
        "replicated_fraction": p_hat,
        "executions_per_job": executions / jobs,
        "hashing_over_plain": hashing,
        "cost_over_plain": ratio,
        "expected_1_plus_r_minus_1_p_hat_times_hashing": expected,
        "theory_1_plus_r_minus_1_p": 1 + p,
        "within_5pct_of_expected": abs(ratio / expected - 1) <= 0.05,
    }


def bench_calibration(steps: int) -> dict:
    data = digits()
    ck = shared_state(build_model("cnn", 64, 10, seed=0, channels=[4, 8]))
    params = {**CNN, "steps": steps, "lr": 0.05, "batch_size": 16}
    with deterministic(1):
        ref_prog = StepProgram.from_job([ck, data], params, 0)
        ref_one = ref_prog.step(ref_prog.initial, 0)
        ref_all = ref_prog.run(ref_prog.initial)
    one, many, within = [], [], True
    for s in DEFAULT_SETTINGS:
        with s.applied():  # unpinned: the executor's own settings
            prog = StepProgram.from_job([ck, data], params, 0)
            a = prog.step(prog.initial, 0)
            z = prog.run(prog.initial)
        one.append({"setting": str(s), "abs_rel": max_deviation(ref_one, a)})
        many.append({"setting": str(s), "abs_rel": max_deviation(ref_all, z)})
        within &= agrees(a, ref_one, REFEREE_RULE)
    with deterministic(1):  # the smallest cheat: skip step 1 (state after step 1 = state after 0)
        skipped = max_deviation(ref_prog.step(ref_one, 1), ref_one)
    return {
        "rule": str(REFEREE_RULE),
        "one_step_max_abs": max(d["abs_rel"][0] for d in one),
        "one_step_max_rel": max(d["abs_rel"][1] for d in one),
        "one_step_within_rule": within,
        f"{steps}_steps_max_abs": max(d["abs_rel"][0] for d in many),
        "settings": [str(s) for s in DEFAULT_SETTINGS],
        "skipped_step_abs_rel": list(skipped),
        "skipped_step_outside_rule": not agrees(ref_prog.step(ref_one, 1), ref_one, REFEREE_RULE),
    }


def bench_lora(steps: int, seed: int, base: str = "smollm2-135m-instruct") -> dict:
    """LoRA adapters (rank 8 on q_proj, v_proj) of the pretrained SmolLM2-135M on random token
    windows of 32: the dispute between an honest trainer and one forging the state at T/3 (in
    process, :func:`~deai.protocol.jobs.refereed.referee`), and the hashing's CPU cost."""
    from deai.protocol.jobs.cheaters.forged_state import Forger
    from deai.protocol.jobs.refereed import Trainer, referee

    ctx, vocab = 32, 49152
    kw = {"base": base, "r": 8, "alpha": 16}
    ck = shared_state(build_model("lora", ctx, vocab, seed=seed, **kw))
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (64, ctx + 1), generator=g)
    data = {"x": ids[:, :-1].contiguous(), "y": ids[:, 1:].contiguous()}
    params = {
        "model": "lora", "in_features": ctx, "num_classes": vocab, "model_kwargs": kw,
        "steps": steps, "lr": 1e-3, "batch_size": 2, "commit_every": 1,
    }  # fmt: skip
    with deterministic(1):
        program = StepProgram.from_job([ck, data], params, seed)
        t0 = time.thread_time()
        program.run(program.initial)
        plain = time.thread_time() - t0
        t0 = time.thread_time()
        honest = Trainer(program)
        hashed = time.thread_time() - t0
        outcome = referee({"honest": honest, "forger": Forger(program)}, program)
        t0 = time.thread_time()
        program.step(program.initial, 0)
        one = time.thread_time() - t0
    return {
        "base": base,
        "adapter_params": sum(v.numel() for v in program.initial.values()),
        "steps": steps,
        "rounds": outcome.rounds,
        "expected_rounds": expected_rounds(steps),
        "steps_reexecuted": outcome.steps_reexecuted,
        "divergent_step": outcome.step,
        "forged_at": steps // 3,
        "liars": outcome.liars,
        "hashing_over_plain": hashed / plain,
        "referee_cpu_over_full_run": one / plain,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", default=os.environ.get("DEAI_SMALL") == "1")
    ap.add_argument("--lora", action="store_true", help="only the LoRA section (needs the SmolLM2 base)")
    args = ap.parse_args()
    small = args.small
    if args.lora:
        torch.set_num_threads(1)
        print(json.dumps({"lora": bench_lora(4 if small else 16, seed=0)}, indent=2))
        return
    start = time.perf_counter()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        catch = {c: bench_catch(t, c, 4 if small else 100, 8, seed=i) for i, c in enumerate(CHEATERS)}
        honest = bench_honest(t, 20 if small else 1000, 4, seed=20)
        bisection = bench_bisection(t, 64 if small else 1024, seed=21)
        cost = bench_cost(t, 10 if small else 200, 32 if small else 128, 0.1, seed=22)
    result = {
        "small": small,
        "catch": catch,
        "honest": honest,
        "bisection": bisection,
        "cost": cost,
        "calibration": bench_calibration(10 if small else 50),
    }
    result["goals"] = {
        "catch_rate_100pct": all(c["catch_rate"] == 1.0 for c in catch.values()),
        "no_honest_slashed": honest["jobs_with_a_slash"] == 0
        and all(c["jobs_with_honest_slashed"] == 0 for c in catch.values()),
        "rounds_at_most_10": bisection["rounds"] <= 10,
        "one_step_reexecuted": bisection["steps_reexecuted"] == 1,
        "cost_within_5pct": cost["within_5pct_of_expected"],
    }
    result["seconds"] = time.perf_counter() - start
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
