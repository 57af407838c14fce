"""Peak memory of an ``aggregate`` job: updates loaded and stacked vs. streamed from their files.

Prints JSON. For each ``n`` (updates), ``d`` (float32 values per update) and aggregator, two fresh
subprocesses run the same aggregation job on the same update blobs in a blob store on disk:

- ``stacked``: every input loaded whole (``load_inputs``: read, hash, parse) and stacked ``[n, d]``
  -- the job as it ran before streaming, and what a kind that does not stream still does;
- ``streamed``: the executor's path (``Executor.compute``): the updates are opened lazily (hash
  verified by streaming, header checked) and the aggregator reads ``[n, CHUNK]`` blocks.

Each figure is the growth of the process's resident set during the job, in MiB: its high-water
mark at the end (``VmHWM`` of ``/proc/self/status``) minus the resident set just before (after
imports and setup), with the mark reset to the resident set just before the job (``echo 5 >
/proc/self/clear_refs``), so neither the imports' transient peak nor the parent's size at fork
(which ``getrusage(...).ru_maxrss`` also counts) hides the job's own. Where ``/proc`` offers no
reset (``hwm_reset`` false) the script falls back to ``ru_maxrss`` and small figures may read low.
``ratio`` is stacked / streamed. ``*_seconds``: the job's wall time (one thread; the streamed
path reads each update twice, once to verify its hash and once per pass of the aggregator, from
the page cache once warm). The output of both paths is checked to be the same
bits. ``n_d_mib`` is the size of the stacked updates, for scale.

    python benchmarks/aggregation_memory.py                 # n in {8, 32}, d in {1M, 8M}
    DEAI_SMALL=1 python benchmarks/aggregation_memory.py    # n in {5, 8}, d in {64K, 256K} (or --small)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SMALL = os.environ.get("DEAI_SMALL") == "1"
AGGREGATORS = {"mean": 0, "median": 1, "multi_krum": 1}


def _status_kib(key: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise OSError(f"no {key} in /proc/self/status")


def _child(root: str, inputs: list[str], aggregator: str, f: int, path: str, out: str) -> None:
    """Run one job in this (fresh) process and print its peak-memory growth as JSON."""
    import resource
    import time

    import torch

    import deai.learn.aggregators
    import deai.learn.federated  # noqa: F401 - imported by the kind at run time: not the job's memory
    from deai.core.accounts import Account
    from deai.core.blobs import BlobStore
    from deai.core.tensorio import to_safetensors
    from deai.protocol.jobs.executor import Executor
    from deai.protocol.jobs.kinds import get_kind, load_inputs
    from deai.protocol.jobs.spec import JobSpec

    torch.set_num_threads(1)  # the executors' deterministic setting; also keeps runs comparable
    store = BlobStore(root, fsync=False)
    spec = JobSpec("aggregate", tuple(inputs), {"aggregator": aggregator, "f": f}, seed=0)
    executor = Executor(Account.from_seed("memory-bench", 0), store)
    kind = get_kind("aggregate")

    def job(s: JobSpec):
        return (
            kind.execute(load_inputs(store, s), s.params, s.seed)
            if path == "stacked"
            else executor.compute(s)
        )

    # warm-up on tiny updates: lazy imports, allocator and thread-pool set-up are not the job's memory
    tiny = tuple(
        store.put(to_safetensors({"delta": torch.full((16,), float(i))})) for i in range(len(inputs))
    )
    job(JobSpec("aggregate", tiny, spec.params, seed=0))
    try:  # reset the high-water mark to the current resident set (Linux >= 4.0)
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
        before = _status_kib("VmRSS")
    except OSError:
        reset = False
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    result = job(spec)
    seconds = time.perf_counter() - start
    peak = _status_kib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    Path(out).write_bytes(to_safetensors(result))
    # both in KiB on Linux
    print(json.dumps({"peak_mib": round((peak - before) / 1024, 1), "seconds": seconds, "hwm_reset": reset}))


def _measure(root: str, inputs: list[str], aggregator: str, f: int, path: str, out: str) -> dict:
    cmd = [sys.executable, __file__, "--child", root, aggregator, str(f), path, out, *inputs]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{aggregator} {path} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _updates(root: str, n: int, d: int, seed: int) -> list[str]:
    import torch

    from deai.core.blobs import BlobStore
    from deai.core.tensorio import to_safetensors

    store = BlobStore(root, fsync=False)
    gen = torch.Generator().manual_seed(seed)
    return [store.put(to_safetensors({"delta": torch.randn(d, generator=gen)})) for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="the small form (as DEAI_SMALL=1)")
    small = SMALL or "--small" in sys.argv
    parser.add_argument("--n", type=int, nargs="+", default=[5, 8] if SMALL else [8, 32])
    parser.add_argument(
        "--d", type=int, nargs="+", default=[1 << 16, 1 << 18] if SMALL else [1 << 20, 1 << 23]
    )
    parser.add_argument("--aggregators", nargs="+", default=list(AGGREGATORS))
    args = parser.parse_args()

    from deai.core.tensorio import from_safetensors
    from deai.learn.aggregators import CHUNK

    results = []
    for d in args.d:
        for n in args.n:
            with tempfile.TemporaryDirectory() as tmp:
                root = os.path.join(tmp, "blobs")
                inputs = _updates(root, n, d, seed=n * 7919 + d)
                for agg in args.aggregators:
                    f = AGGREGATORS.get(agg, 1)
                    outs = {p: os.path.join(tmp, f"{agg}-{p}.safetensors") for p in ("stacked", "streamed")}
                    peaks = {p: _measure(root, inputs, agg, f, p, outs[p]) for p in outs}
                    same = [from_safetensors(Path(o).read_bytes())["delta"] for o in outs.values()]
                    row = {
                        "aggregator": agg,
                        "n": n,
                        "d": d,
                        "n_d_mib": round(n * d * 4 / 2**20, 1),
                        "stacked_peak_mib": peaks["stacked"]["peak_mib"],
                        "streamed_peak_mib": peaks["streamed"]["peak_mib"],
                        "ratio": round(
                            peaks["stacked"]["peak_mib"] / max(peaks["streamed"]["peak_mib"], 0.1), 2
                        ),
                        "stacked_seconds": round(peaks["stacked"]["seconds"], 2),
                        "streamed_seconds": round(peaks["streamed"]["seconds"], 2),
                        "same_bits": bool((same[0] == same[1]).all()),
                        "hwm_reset": all(p["hwm_reset"] for p in peaks.values()),
                    }
                    results.append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
    print(json.dumps({"chunk": CHUNK, "small": small, "results": results}, indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        root, aggregator, f, path, out, *inputs = sys.argv[2:]
        _child(root, inputs, aggregator, int(f), path, out)
    else:
        main()
